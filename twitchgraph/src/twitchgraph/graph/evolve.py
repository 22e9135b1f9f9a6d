"""Communities over time: one graph per time window, communities matched window to window.

For consecutive windows t and t+1, every community of t is compared with every community of
t+1 by the Jaccard index of their members; pairs at or above `min_jaccard` are matches
(Greene, Doyle & Cunningham 2010, "Tracking the evolution of communities in dynamic social
networks"). From the matches:

- birth: a community of t+1 with no match in t; death: a community of t with none in t+1;
- split: a community of t matched by two or more of t+1; merge: one of t+1 matching two or
  more of t; otherwise it continues;
- each community carries a lineage id: it inherits its best match's lineage when it is also
  that predecessor's best successor, and gets a new one otherwise;
- a streamer present in both windows whose lineage changed has moved.

A window's result (`WindowResult`) depends only on the snapshots inside it, the bot lists and
the parameters, so a closed window never needs building twice: `evolve_store` takes a
`WindowCache` (serve keeps one on disk) and builds only the windows whose snapshots or bots
changed since the result was kept (`window_fingerprint`).

A window without a graph (no complete snapshot in it, or none of its streamers kept by the
build's thresholds) is a gap, not the end of every community: lineages carry over it, the
next window with a graph is compared with the last one before the gap, and the gap keeps the
reason it is empty (`Evolution.notes`).

Windows are placed between 2011 (Twitch's start) and a day after now; a store holding
snapshots dated outside that range is refused with the dates, as is a window length that
would cut the store into more than `MAX_WINDOWS` windows, before any graph is built.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from twitchgraph.build.params import BuildParams
from twitchgraph.clock import utcnow
from twitchgraph.durations import parse_duration
from twitchgraph.errors import BadValue, TwitchgraphError
from twitchgraph.graph.communities import find_communities
from twitchgraph.graphio import write_csv

__all__ = [
    "EARLIEST",
    "MAX_WINDOWS",
    "Evolution",
    "EvolveError",
    "Transition",
    "WindowCache",
    "WindowResult",
    "evolve_store",
    "match_communities",
    "parse_window",
    "track_communities",
    "window_fingerprint",
    "write_evolution",
]

logger = logging.getLogger(__name__)

EARLIEST = datetime(2011, 1, 1, tzinfo=UTC)  # Twitch went live in June 2011
MAX_WINDOWS = 1000


class EvolveError(TwitchgraphError, ValueError):
    """The store cannot be split into windows with graphs; the message says why."""


def parse_window(text: str) -> timedelta:
    """Parse a window length such as ``30m``, ``6h``, ``1d`` or ``2w`` (see `parse_duration`).

    >>> parse_window("1d")
    datetime.timedelta(days=1)
    """
    seconds = parse_duration(text)
    if seconds <= 0:
        raise BadValue(f"window {text!r} must be longer than zero (e.g. 30m, 6h, 1d or 1w)")
    return timedelta(seconds=seconds)


def match_communities(
    previous: dict[str, int],
    current: dict[str, int],
    *,
    min_jaccard: float = 0.3,
) -> list[tuple[int, int, float]]:
    """Pairs (previous community, current community, Jaccard of members) with J >= min_jaccard.

    Parameters
    ----------
    previous, current : login -> community id in two windows.

    Examples
    --------
    >>> match_communities({"a": 0, "b": 0, "c": 1}, {"a": 5, "b": 5, "d": 5, "c": 6})
    [(0, 5, 0.6666666666666666), (1, 6, 1.0)]
    """
    if not 0 < min_jaccard <= 1:
        raise BadValue(f"min_jaccard must be in (0, 1], got {min_jaccard}")
    prev_sets = _groups(previous)
    curr_sets = _groups(current)
    pairs: dict[tuple[int, int], int] = {}
    for login, a in previous.items():
        b = current.get(login)
        if b is not None:
            pairs[(a, b)] = pairs.get((a, b), 0) + 1
    out = []
    for (a, b), inter in sorted(pairs.items()):
        jaccard = inter / (len(prev_sets[a]) + len(curr_sets[b]) - inter)
        if jaccard >= min_jaccard:
            out.append((a, b, jaccard))
    return out


def _groups(membership: dict[str, int]) -> dict[int, set[str]]:
    groups: dict[int, set[str]] = {}
    for login, c in membership.items():
        groups.setdefault(c, set()).add(login)
    return groups


@dataclass
class Transition:
    """What happened between two consecutive windows."""

    window: str
    matches: list[tuple[int, int, float]]
    births: list[int]
    deaths: list[int]
    splits: dict[int, list[int]]
    merges: dict[int, list[int]]
    moved: list[tuple[str, int, int]]  # login, lineage before, lineage after
    # The window compared with: the last one before with a graph (None: there is none).
    # Windows between it and this one are empty, and lineages carry over them.
    previous: int | None = None
    gap: bool = False  # this window has no graph: nothing happened in it


@dataclass
class WindowResult:
    """One window's graph as the slider and the trends need it: membership (login ->
    community id; empty when the build kept nothing), modularity, the built edges, and why
    the window is empty ("" when it has a graph)."""

    membership: dict[str, int]
    modularity: float
    edges: pd.DataFrame
    note: str = ""


class WindowCache(Protocol):
    """Where `evolve_store` keeps window results between calls. An implementation is bound to
    one set of build parameters, resolution and seed, and returns a result only when it was
    kept for the same bounds and the same `fingerprint` (see `window_fingerprint`)."""

    def get(self, since: datetime, until: datetime,
            fingerprint: list[Any]) -> WindowResult | None: ...

    def put(self, since: datetime, until: datetime, fingerprint: list[Any],
            result: WindowResult) -> None: ...


@dataclass
class Evolution:
    """Per-window communities with lineage ids, transitions, and summary tables."""

    windows: list[str]
    memberships: list[dict[str, int]]
    lineages: list[dict[int, int]]  # per window: community id -> lineage id
    transitions: list[Transition]
    sizes: list[dict[int, int]] = field(default_factory=list)
    modularity: list[float] = field(default_factory=list)
    # per window, the built edges (Source, Target, Weight, ...); empty when not kept
    edges: list[pd.DataFrame] = field(default_factory=list)
    reused: int = 0  # windows taken from a WindowCache
    computed: int = 0  # windows built
    # per window, why it has no graph ("" when it has one)
    notes: list[str] = field(default_factory=list)

    def note(self, i: int) -> str:
        """What the summary says of window `i`: why it is empty, or what it was compared with
        when windows before it were empty."""
        if not self.memberships[i]:
            why = self.notes[i] if i < len(self.notes) and self.notes[i] else "no streamer"
            return f"no graph: {why}"
        t = self.transitions[i - 1] if i > 0 else None
        if t is not None and t.previous is not None and t.previous < i - 1:
            skipped = i - 1 - t.previous
            return (f"compared with {self.windows[t.previous]}, across {skipped} empty "
                    f"window{'' if skipped == 1 else 's'}")
        return ""

    @property
    def summary(self) -> pd.DataFrame:
        rows = []
        for i, window in enumerate(self.windows):
            t = self.transitions[i - 1] if i > 0 else None
            rows.append({
                "window": window,
                "streamers": len(self.memberships[i]),
                "communities": len(self.sizes[i]),
                "modularity": round(self.modularity[i], 4) if self.modularity else None,
                "births": len(t.births) if t else len(self.sizes[i]),
                "deaths": len(t.deaths) if t else 0,
                "splits": len(t.splits) if t else 0,
                "merges": len(t.merges) if t else 0,
                "moved": len(t.moved) if t else 0,
                "note": self.note(i),
            })
        return pd.DataFrame(rows)

    @property
    def events(self) -> pd.DataFrame:
        rows: list[dict[str, Any]] = []
        for i, t in enumerate(self.transitions):
            was = t.previous if t.previous is not None else i
            before, after = self.lineages[was], self.lineages[i + 1]
            size_b, size_a = self.sizes[was], self.sizes[i + 1]
            for c in t.births:
                rows.append({"window": t.window, "event": "birth", "from": "",
                             "to": f"L{after[c]}", "size": size_a[c]})
            for c in t.deaths:
                rows.append({"window": t.window, "event": "death", "from": f"L{before[c]}",
                             "to": "", "size": size_b[c]})
            for c, into in t.splits.items():
                rows.append({"window": t.window, "event": "split", "from": f"L{before[c]}",
                             "to": ";".join(f"L{after[x]}" for x in into), "size": size_b[c]})
            for c, parts in t.merges.items():
                rows.append({"window": t.window, "event": "merge",
                             "from": ";".join(f"L{before[x]}" for x in parts),
                             "to": f"L{after[c]}", "size": size_a[c]})
        return pd.DataFrame(rows, columns=["window", "event", "from", "to", "size"])

    @property
    def moves(self) -> pd.DataFrame:
        rows = [{"window": t.window, "login": login, "from": f"L{a}", "to": f"L{b}"}
                for t in self.transitions for login, a, b in t.moved]
        return pd.DataFrame(rows, columns=["window", "login", "from", "to"])


def track_communities(
    windows: list[str],
    memberships: list[dict[str, int]],
    *,
    min_jaccard: float = 0.3,
    modularity: list[float] | None = None,
    notes: list[str] | None = None,
) -> Evolution:
    """Match communities between consecutive windows and give them lineage ids.

    Parameters
    ----------
    windows : window labels, in time order.
    memberships : per window, login -> community id (an empty dict for an empty window).
    min_jaccard : the Jaccard of members two communities need to match.
    notes : per window, why it is empty ("" for a window with a graph).

    Returns
    -------
    Evolution with transitions (births, deaths, splits, merges, moved streamers). An empty
    window is a gap: its transition is empty, and the next window with a graph is matched
    with the last one before the gap, so lineages carry over it.

    Examples
    --------
    >>> evo = track_communities(["d0", "d1", "d2"], [{"a": 0, "b": 0}, {}, {"a": 4, "b": 4}])
    >>> evo.lineages, evo.transitions[1].births, evo.transitions[1].previous
    ([{0: 0}, {}, {4: 0}], [], 0)
    """
    if len(windows) != len(memberships):
        raise ValueError("need one membership per window")
    next_lineage = 0
    lineages: list[dict[int, int]] = []
    sizes = [{c: len(m) for c, m in _groups(members).items()} for members in memberships]
    transitions: list[Transition] = []
    last: int | None = None  # the last window with a graph
    for i, members in enumerate(memberships):
        if not members:
            lineages.append({})
            if i > 0:
                transitions.append(Transition(window=windows[i], matches=[], births=[],
                                              deaths=[], splits={}, merges={}, moved=[],
                                              previous=last, gap=True))
            continue
        previous = memberships[last] if last is not None else {}
        matches = match_communities(previous, members, min_jaccard=min_jaccard)
        succ: dict[int, list[tuple[int, float]]] = {}
        pred: dict[int, list[tuple[int, float]]] = {}
        for a, b, j in matches:
            succ.setdefault(a, []).append((b, j))
            pred.setdefault(b, []).append((a, j))
        best_succ = {a: max(v, key=lambda x: (x[1], -x[0]))[0] for a, v in succ.items()}
        before = lineages[last] if last is not None else {}
        lineage = {}
        for c in sorted(sizes[i]):
            if c in pred:
                a = max(pred[c], key=lambda x: (x[1], -x[0]))[0]
                if best_succ[a] == c:
                    lineage[c] = before[a]
                    continue
            lineage[c] = next_lineage
            next_lineage += 1
        lineages.append(lineage)
        if i > 0:
            moved = sorted(
                (login, before[previous[login]], lineage[members[login]])
                for login in previous.keys() & members.keys()
                if before[previous[login]] != lineage[members[login]]
            )
            transitions.append(Transition(
                window=windows[i],
                matches=matches,
                births=sorted(c for c in sizes[i] if c not in pred),
                deaths=sorted(a for a in sizes[last] if a not in succ) if last is not None
                else [],
                splits={a: sorted(b for b, _ in v) for a, v in sorted(succ.items())
                        if len(v) > 1},
                merges={b: sorted(a for a, _ in v) for b, v in sorted(pred.items())
                        if len(v) > 1},
                moved=moved,
                previous=last,
            ))
        last = i
    return Evolution(windows=windows, memberships=memberships, lineages=lineages,
                     transitions=transitions, sizes=sizes, modularity=modularity or [],
                     notes=list(notes) if notes is not None else [""] * len(windows))


def _window_bounds(con, window: timedelta) -> list[tuple[datetime, datetime]]:
    row = con.execute("SELECT min(started_at), max(started_at) FROM snapshots "
                      "WHERE status = 'complete'").fetchone()
    if row is None or row[0] is None:
        raise EvolveError("the store has no complete snapshot: collect some first")
    first, last = (t.astimezone(UTC) for t in row)
    latest = utcnow() + timedelta(days=1)
    if first < EARLIEST or last > latest:
        outside = con.execute(
            "SELECT count(*) FROM snapshots WHERE status = 'complete' AND (started_at < ? OR "
            "started_at > ?)", [EARLIEST, latest]).fetchone()[0]
        raise EvolveError(
            f"the store holds {outside} complete snapshot(s) dated outside "
            f"{EARLIEST:%Y-%m-%d} .. now plus a day (it spans {first:%Y-%m-%d} .. "
            f"{last:%Y-%m-%d}): a wrong clock or a bad import; windows over them would be "
            "meaningless, so collect or import into a store without them")
    # Align windows to multiples of their length since the epoch: 1d windows start at 00:00 UTC.
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = epoch + window * ((first - epoch) // window)
    count = (last - start) // window + 1  # counted before any is made
    if count > MAX_WINDOWS:
        raise EvolveError(f"{count:,} windows of {window} from {first:%Y-%m-%d} to "
                          f"{last:%Y-%m-%d}: at most {MAX_WINDOWS:,}, choose a longer --window")
    return [(start + k * window, start + (k + 1) * window) for k in range(count)]


def window_fingerprint(con, since: datetime, until: datetime) -> list[Any]:
    """What a window's result depends on in the store, besides the parameters: its complete
    snapshots (how many, the largest id, the sum of ids) and the imported bot list.

    Snapshots are written whole and never change once complete (`store.db`), so a window
    whose fingerprint is unchanged builds to the same graph.
    """
    count, top, total = con.execute(
        "SELECT count(*), max(snapshot_id), sum(snapshot_id) FROM snapshots "
        "WHERE status = 'complete' AND started_at >= ? AND started_at < ?",
        [since, until]).fetchone()
    return [int(count), None if top is None else int(top), None if total is None else
            int(total), _bots_digest(con)]


def _bots_digest(con) -> str:
    has_bots = con.execute("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_name = 'bots'").fetchone()[0]
    if not has_bots:
        return ""
    row = con.execute("SELECT count(*), md5(coalesce(string_agg(DISTINCT lower(login), ',' "
                      "ORDER BY lower(login)), '')) FROM bots").fetchone()
    return f"{row[0]}:{row[1]}"


def _window_result(con, params: BuildParams, since: datetime, until: datetime, label: str, *,
                   resolution: float, seed: int) -> WindowResult:
    from twitchgraph.build.definition import BuildError, build_graph

    snapshots = con.execute(
        "SELECT count(*) FROM snapshots WHERE status = 'complete' AND started_at >= ? "
        "AND started_at < ?", [since, until]).fetchone()[0]
    try:
        if not snapshots:
            raise BuildError("no complete snapshot in this window")
        result = build_graph(con, replace(params, since=since, until=until))
    except BuildError as exc:
        logger.info("window %s: no graph (%s)", label, exc)
        return WindowResult({}, 0.0, pd.DataFrame(columns=["Source", "Target", "Weight"]),
                            note=str(exc).splitlines()[0] if str(exc) else "no streamer")
    found = find_communities(result, resolution=resolution, seed=seed)
    logger.info("window %s: %d streamers, %d communities", label, len(found.membership),
                len(found.table))
    return WindowResult(found.membership, found.modularity, result.edges)


def _label(start: datetime, window: timedelta) -> str:
    if window % timedelta(days=1) == timedelta(0):
        return start.strftime("%Y-%m-%d")
    return start.strftime("%Y-%m-%dT%H:%M")


def evolve_store(
    db: str | os.PathLike,
    *,
    window: timedelta,
    resolution: float = 1.0,
    seed: int = 0,
    min_jaccard: float = 0.3,
    build_params: BuildParams | None = None,
    cache: WindowCache | None = None,
) -> Evolution:
    """Build one graph per window from the store at `db`, find communities, track them.

    Windows where the build keeps no streamer are empty, with the reason in
    `Evolution.notes`; lineages carry over them (see `track_communities`). With a `cache`, a
    window whose snapshots and bots are unchanged is taken from it instead of built (the
    counts are in `Evolution.reused` and `Evolution.computed`).
    """
    from twitchgraph.store.db import open_store

    params = build_params or BuildParams()
    con = open_store(db, read_only=True)
    reused = 0
    try:
        bounds = _window_bounds(con, window)
        labels, memberships, modularity, edges, notes = [], [], [], [], []
        for since, until in bounds:
            labels.append(_label(since, window))
            fingerprint = None if cache is None else window_fingerprint(con, since, until)
            found = None if cache is None else cache.get(since, until, fingerprint)
            if found is None:
                found = _window_result(con, params, since, until, labels[-1],
                                       resolution=resolution, seed=seed)
                if cache is not None:
                    cache.put(since, until, fingerprint, found)
            else:
                reused += 1
            notes.append(found.note)
            memberships.append(found.membership)
            modularity.append(found.modularity)
            edges.append(found.edges)
    finally:
        con.close()
    if sum(bool(m) for m in memberships) == 0:
        raise EvolveError("no window has a graph: lower the build thresholds or collect more")
    evolution = track_communities(labels, memberships, min_jaccard=min_jaccard,
                                  modularity=modularity, notes=notes)
    evolution.edges = edges
    evolution.reused, evolution.computed = reused, len(bounds) - reused
    return evolution


def write_evolution(evolution: Evolution, out_dir: str | os.PathLike) -> list[Path]:
    """Write summary.csv, events.csv, moves.csv and evolve.png into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("summary", evolution.summary), ("events", evolution.events),
                        ("moves", evolution.moves)):
        write_csv(frame, out / f"{name}.csv")  # atomically: a rerun never leaves half a table
        written.append(out / f"{name}.csv")
    written.append(plot_evolution(evolution, out / "evolve.png"))
    return written


def plot_evolution(evolution: Evolution, path: str | os.PathLike) -> Path:
    """Communities as discs (x: window, y: lineage, area: size), matches as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(evolution.windows)), 5), dpi=120)
    for i, t in enumerate(evolution.transitions):
        if t.gap or t.previous is None:
            continue
        was = t.previous
        before, after = evolution.lineages[was], evolution.lineages[i + 1]
        for a, b, j in t.matches:  # dashed across empty windows
            ax.plot([was, i + 1], [before[a], after[b]], color="0.5", alpha=0.3 + 0.7 * j,
                    linewidth=1 + 3 * j, zorder=1, linestyle="-" if was == i else "--")
    for i, members in enumerate(evolution.memberships):
        if not members:
            ax.axvspan(i - 0.4, i + 0.4, color="0.92", zorder=0)
    for i, sizes in enumerate(evolution.sizes):
        for c, size in sizes.items():
            ax.scatter(i, evolution.lineages[i][c], s=20 + 8 * size, zorder=2,
                       color=f"C{evolution.lineages[i][c] % 10}")
    ticks = []
    for i, window in enumerate(evolution.windows):
        if not evolution.memberships[i]:
            ticks.append(f"{window}\nno graph")
            continue
        if i == 0:
            ticks.append(window)
            continue
        t = evolution.transitions[i - 1]
        ticks.append(f"{window}\n+{len(t.births)} born, {len(t.deaths)} died\n"
                     f"{len(t.splits)} split, {len(t.merges)} merged\n{len(t.moved)} moved")
    ax.set_xticks(range(len(evolution.windows)), ticks, fontsize=8)
    lineages = sorted({lin for per in evolution.lineages for lin in per.values()})
    ax.set_yticks(lineages, [f"L{lin}" for lin in lineages])
    ax.set_xlim(-0.5, len(evolution.windows) - 0.5)
    ax.set_ylabel("community lineage")
    ax.set_title("Communities over time (area: members, lines: Jaccard matches)", fontsize=10)
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target)
    plt.close(fig)
    return target
