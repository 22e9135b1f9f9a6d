"""`twitchgraph serve`: the local web app (`app`) and the rebuild that keeps its graph fresh
(`rebuild`).

Import from the modules; this package re-exports nothing.
"""
