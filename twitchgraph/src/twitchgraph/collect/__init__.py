"""Filling the store: the collector (`collector`), what a running collection looks like
(`status`) and the import of JSON dumps (`importer`).

Import from the modules; this package re-exports nothing.
"""
