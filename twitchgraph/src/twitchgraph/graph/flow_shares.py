"""Flows (``flows.csv``) with their shares, as a streamer's pages and the reports show them.

A flow A -> B holds the chatters of A's stream ends seen in B next (`twitchgraph.build.flows`).
Its share *of A's ends* is ``viewers / end_chatters(A)``: of the chatters at A's ends, the part
that went to B. Its share *of B's arrivals* is ``viewers / (viewers of every flow into B)``:
of the chatters B gained from stream ends, the part that came from A.
"""

from __future__ import annotations

import pandas as pd

from twitchgraph.graphio import FLOW_COLUMNS, GraphData

__all__ = ["flow_shares", "flows_of"]


def flow_shares(data: GraphData) -> pd.DataFrame:
    """`data.flows` with ``share_of_ends`` and ``share_of_arrivals`` (fractions in [0, 1];
    NaN when the streamers table has no ``end_chatters``, as in a build before flows)."""
    flows = data.flows[FLOW_COLUMNS].copy()
    if "end_chatters" in data.streamers.columns:
        chatters = pd.to_numeric(data.streamers.set_index("Id")["end_chatters"],
                                 errors="coerce")
        ends = flows["Source"].map(chatters)
        flows["share_of_ends"] = (flows["viewers"] / ends.where(ends > 0)).astype(float)
    else:
        flows["share_of_ends"] = float("nan")
    arrivals = flows.groupby("Target")["viewers"].transform("sum")
    flows["share_of_arrivals"] = (flows["viewers"] / arrivals.where(arrivals > 0)).astype(float)
    return flows


def flows_of(data: GraphData, login: str, *, top: int = 10) -> dict[str, pd.DataFrame]:
    """A streamer's flows: ``out`` (where its viewers go when it ends) and ``in`` (where the
    viewers it gains at others' ends come from), most viewers first, `top` of each."""
    flows = flow_shares(data)
    order = dict(by=["viewers", "ends", "Source", "Target"],
                 ascending=[False, False, True, True])
    return {
        "out": flows[flows["Source"] == login].sort_values(**order).head(top),
        "in": flows[flows["Target"] == login].sort_values(**order).head(top),
    }
