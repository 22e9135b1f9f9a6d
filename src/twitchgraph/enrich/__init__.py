"""Enrichment of the store: games (Helix, IGDB, Steam) and streamers' social links.

Every source caches in store tables (see :mod:`twitchgraph.enrich.schema`), asks only for
what is missing on a rerun, and fails soft: an error is recorded and the others go on.
"""

from __future__ import annotations

from twitchgraph.enrich.schema import ensure_enrich_tables

__all__ = ["ensure_enrich_tables"]
