"""From the store to a streamer graph: the build's one definition (`definition`), its
parameters (`params`), the engines that run it (`engines`: DuckDB, Spark) and bot removal
(`bots`).

Import from the modules; this package re-exports nothing.
"""
