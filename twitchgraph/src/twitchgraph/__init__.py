"""twitchgraph: a Twitch community graph.

Pipeline: collect snapshots (Helix + anonymous chat) -> store -> build a streamer graph
weighted by shared viewers -> communities, layout -> exports (Cypher DB, Neo4j, GEXF, web map).
"""

__version__ = "0.1.0"
