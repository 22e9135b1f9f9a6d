"""Analysing a built graph: communities (`communities`), the map's layout (`layout`) and how
communities change between windows (`evolve`).

Import from the modules; this package re-exports nothing.
"""
