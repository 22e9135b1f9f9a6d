"""Sharding: N collectors on N machines, each collecting the live channels whose login
hashes to its shard, so that one slot's N snapshots form one (`twitchgraph dataset`)."""

from __future__ import annotations

import hashlib

from twitchgraph.errors import BadValue

__all__ = [
    "parse_shard",
    "shard_of",
]


def parse_shard(text: str) -> tuple[int, int]:
    """(K, N) from 'K/N' (1 <= K <= N); raises ValueError otherwise."""
    try:
        k, n = (int(part) for part in text.strip().split("/"))
    except ValueError:
        raise BadValue(f"not a shard: {text!r} (use K/N, e.g. 2/3)") from None
    if not 1 <= k <= n:
        raise BadValue(f"not a shard: {text!r} (K must be between 1 and N, e.g. 2/3)")
    return k, n


def shard_of(login: str, shards: int) -> int:
    """The shard (1..shards) that collects channel `login`: a hash stable across machines,
    processes and Python versions (not Python's salted ``hash``)."""
    digest = hashlib.blake2b(login.lower().encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards + 1
