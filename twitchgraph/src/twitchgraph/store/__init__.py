"""Where collected data lives: the DuckDB store (`db`), the spool of snapshots waiting for it
(`spool`), the collector's lock and state files beside it (`locks`), the chatter sources'
order (`chatter_sources`) and the partitioned Parquet dataset of several shards (`dataset`).

Import from the modules; this package re-exports nothing, so importing one of them (the chat
client imports `chatter_sources`) does not load DuckDB or pandas.
"""
