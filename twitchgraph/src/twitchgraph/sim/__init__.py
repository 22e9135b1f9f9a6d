"""A simulated Twitch on loopback, for tests and the demo only (never on the product path).

`run_simulator` serves the id service, Helix, IGDB, Steam, the web GQL endpoint and an IRC chat
server over a seeded synthetic population; see `twitchgraph.sim.serve`.
"""

from __future__ import annotations

from twitchgraph.sim.clock import AcceleratedClock
from twitchgraph.sim.config import FAULTS, SimConfig
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
