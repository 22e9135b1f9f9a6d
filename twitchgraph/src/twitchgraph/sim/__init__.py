"""A simulated Twitch on loopback, for tests and the demo only (never on the product path).

`run_simulator` serves the id service, Helix, IGDB, Steam, the web GQL endpoint and an IRC chat
server over a seeded synthetic population; see `twitchgraph.sim.serve`.

The servers and the population load on first use (PEP 562 `__getattr__`), so that reading
`FAULTS` (e.g. for `sim serve --help`) costs no more than the names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twitchgraph.sim.config import FAULTS, SimConfig

if TYPE_CHECKING:
    from twitchgraph.sim.clock import AcceleratedClock
    from twitchgraph.sim.serve import SimCredentials, Simulator, run_simulator, start_simulator

__all__ = [
    "FAULTS",
    "AcceleratedClock",
    "SimConfig",
    "SimCredentials",
    "Simulator",
    "run_simulator",
    "start_simulator",
]

_LAZY = {"AcceleratedClock": "twitchgraph.sim.clock", "SimCredentials": "twitchgraph.sim.serve",
         "Simulator": "twitchgraph.sim.serve", "run_simulator": "twitchgraph.sim.serve",
         "start_simulator": "twitchgraph.sim.serve"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'twitchgraph.sim' has no attribute {name!r}")
