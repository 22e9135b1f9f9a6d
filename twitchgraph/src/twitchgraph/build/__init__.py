"""From the store to a streamer graph: the build's one definition (`definition`), its
parameters (`params`), the engines that run it (`engines`: DuckDB, Spark), bot removal
(`bots`) and the audience flows at stream ends (`flows`).

Import from the modules; this package re-exports nothing.
"""
