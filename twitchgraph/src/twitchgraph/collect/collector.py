"""The collector: snapshots of who is live (Helix) and who is in their chat (anonymous IRC).

One snapshot:

1. page the live streams (most viewed first; `top`, `min_viewers`, `language`, `game_ids`)
   and fetch the broadcasters' profiles not fetched yet in this run;
2. hold chat in the snapshot's channels and listen for `window_s`;
3. store streams, chatters (with their source), per-channel listened seconds and profiles in
   one transaction (`twitchgraph.store.db.write_snapshot`): directly into an open store, or
   (`run_collector`) through the spool (`twitchgraph.store.spool`), which commits into the store
   whenever its lock is free, so readers can use the store while the collector runs.

A snapshot that finds no live stream, or whose chat side joined no channel or listened to
no room (every connection down for its whole window), is stored as ``failed`` with the
reason, never as an empty ``complete`` one. A snapshot holds only what chat delivered during
it: a room whose connection was down the whole window contributes nothing and is stored as
not listened (``listens.listened_s`` 0), and presence dies with the connection that saw it
(`twitchgraph.twitch.chat`).

`once=True` joins, listens and leaves. Otherwise (`every_s`) the collector stays joined between
snapshots: presence is kept up to date from JOIN/PART, newly live channels are joined and ended
ones parted, so a snapshot costs no re-joins. When more channels are live than the chat client
may hold, it rotates: each snapshot leaves the channels held longest and joins those listened
least recently; `listens` records how long each live channel was listened to (0 when not at
all). The schedule does not drift: snapshot k starts at start + k * every (slots missed by an
overrunning snapshot are skipped and counted as missed). SIGINT/SIGTERM stop cleanly: the
snapshot under way is discarded whole and the chat connections closed.

The collect/ modules: `options` (what to collect, chat limits), `sharding` (which shard
collects a channel), this one (one snapshot, the schedule), `run` (`run_collector`: the lock,
the spool, the state file), `progress` (the console line) and `signals` (SIGINT/SIGTERM).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx

from twitchgraph.clock import Clock, SystemClock
from twitchgraph.collect.options import CollectOptions
from twitchgraph.collect.sharding import shard_of
from twitchgraph.errors import TwitchgraphError
from twitchgraph.store.db import (
    BadSnapshot,
    SnapshotData,
    StoreBusy,
    StoreError,
    write_snapshot,
)
from twitchgraph.store.spool import Spool
from twitchgraph.twitch.chat import ChannelView, ChatClient, Raid
from twitchgraph.twitch.errors import AuthError, MissingCredentials, TwitchError
from twitchgraph.twitch.helix import HelixClient

__all__ = [
    "CollectError",
    "Collector",
    "SnapshotSummary",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[Mapping[str, Any]], None]


class CollectError(TwitchgraphError):
    """A snapshot could not be taken (the message says why and what to do)."""


@dataclass
class SnapshotSummary:
    """What one snapshot held and cost."""

    snapshot_id: int | None  # None while spooled (the store was busy)
    started_at: datetime
    status: str  # complete | failed
    seconds: float = 0.0
    streams: int = 0
    channels_listened: int = 0
    chatters: int = 0  # (channel, user) rows
    users: int = 0  # distinct users over all channels
    pages: int = 0
    requests: int = 0
    rate_limited: int = 0
    malformed: int = 0
    joins: int = 0
    reconnects: int = 0
    error: str = ""
    fatal: bool = False  # retrying cannot help (credentials refused): stop the schedule

    def line(self) -> str:
        """One human line for the log / console."""
        name = (f"snapshot {self.snapshot_id}" if self.snapshot_id is not None else
                f"snapshot of {self.started_at:%Y-%m-%d %H:%M:%S} (spooled: the store is busy)")
        if self.status != "complete":
            return f"{name} {self.status}: {self.error}"
        return (
            f"{name} complete in {self.seconds:.1f} s: "
            f"{self.streams:,} streams, {self.channels_listened:,} channels listened, "
            f"{self.chatters:,} chatters ({self.users:,} users); {self.pages} pages, "
            f"{self.requests} requests, {self.rate_limited} x 429, {self.malformed} malformed, "
            f"{self.joins} joins, {self.reconnects} reconnects"
        )


class Collector:
    """Takes snapshots into a store.

    Args:
        store: an open store (`open_store`) written directly, or a `Spool` (what
            `run_collector` uses: the store is opened only to commit).
        helix: Helix client (sync; called in a worker thread so chat keeps flowing).
        chat: anonymous chat client (its connections live on the running event loop).
        options: what to collect.
        clock: schedule and listening windows (the simulator may run it faster).
        on_progress: called with a dict (phase, pages, streams, channels_joined, users_seen).
        endpoints: where it collects from (`Endpoints.collect_label`), stored with each
            snapshot.
    """

    def __init__(
        self,
        store: duckdb.DuckDBPyConnection | Spool,
        *,
        helix: HelixClient,
        chat: ChatClient,
        options: CollectOptions,
        clock: Clock | None = None,
        on_progress: ProgressFn | None = None,
        endpoints: str = "",
    ) -> None:
        self.store = store
        self.endpoints = endpoints
        self.helix = helix
        self.chat = chat
        self.options = options
        self.clock = clock or SystemClock()
        self.on_progress = on_progress
        self._profiled: set[str] = set()
        self._held_since: dict[str, datetime] = {}
        self._last_listened: dict[str, datetime] = {}
        self._progress: dict[str, Any] = {}
        self._abort = False
        self._confirmed = 0  # channels whose JOIN was confirmed during this snapshot
        self._spooled: Path | None = None  # the last snapshot's spool file, to commit
        self._listed = 0  # live streams Helix listed in this snapshot, before sharding
        self.slots_missed = 0  # schedule slots skipped because a snapshot overran

    # -- schedule ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None,
                  on_snapshot: Callable[[SnapshotSummary], None] | None = None,
                  ) -> list[SnapshotSummary]:
        """Take one snapshot (`every_s` None) or loop until `for_s` passes or `stop` is set."""
        stop = stop or asyncio.Event()
        summaries: list[SnapshotSummary] = []
        every = self.options.every_s
        start = self.clock.now()
        if self.options.shard is not None and every:
            # On the grid: every shard's slot k starts at the same instant.
            start = datetime.fromtimestamp(math.ceil(start.timestamp() / every) * every,
                                           tz=start.tzinfo)
        k = 0
        while not stop.is_set():
            slot = start + timedelta(seconds=(every or 0) * k)
            if every is not None and self.options.for_s is not None and (
                slot >= start + timedelta(seconds=self.options.for_s)
            ):
                break
            wait = (slot - self.clock.now()).total_seconds()
            if wait > 0 and await self._sleep_or_stop(wait, stop):
                break
            summary = await self.snapshot(keep_joined=every is not None, interval_s=every)
            summaries.append(summary)
            if every is not None:
                # The next slot is fixed before committing: the commit runs in the wait.
                elapsed = (self.clock.now() - start).total_seconds()
                next_k = max(k + 1, math.ceil(elapsed / every))
                if next_k > k + 1:
                    log.warning("snapshot of %s overran the %g s interval; skipping %d "
                                "slot(s)", f"{summary.started_at:%H:%M:%S}", every,
                                next_k - k - 1)
                    self.slots_missed += next_k - k - 1
                k = next_k
            if self._spooled is not None:
                summary.snapshot_id = await asyncio.to_thread(self._commit, self._spooled)
                self._spooled = None
            if on_snapshot is not None:
                on_snapshot(summary)
            if every is None or summary.fatal:
                break
        return summaries

    async def _sleep_or_stop(self, seconds: float, stop: asyncio.Event) -> bool:
        """Wait `seconds` of clock time; True when `stop` was set meanwhile."""
        sleeper = asyncio.ensure_future(self.clock.asleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
        return stop.is_set()

    # -- one snapshot ------------------------------------------------------------------------

    async def snapshot(self, *, keep_joined: bool = False,
                       interval_s: float | None = None) -> SnapshotSummary:
        """Take and store one snapshot; a failure is stored as failed and reported, not raised.

        Cancellation (SIGINT/SIGTERM) discards the snapshot whole and re-raises.
        """
        started = self.clock.now()
        helix_before = self.helix.stats.as_dict()
        chat_before = asdict(self.chat.stats)
        self._confirmed = 0
        self._report(phase="streams", snapshot=f"{started:%H:%M:%S}", pages=0, streams=0)
        try:
            streams, users, wanted, views = await self._gather(keep_joined)
            self._report(phase="writing")
            finished = self.clock.now()
            listens = {c: (0.0, False) for c in wanted}
            listens.update({c: (v.listened_s, v.membership) for c, v in views.items()})
            # A room not listened to holds no chatters (a snapshot holds what it heard).
            views = {c: v for c, v in views.items() if v.listened_s > 0}
            helix_stats = _delta(self.helix.stats.as_dict(), helix_before)
            chat_stats = _delta(asdict(self.chat.stats), chat_before)
            raids = self.chat.take_raids()
            data = SnapshotData(
                started_at=started,
                finished_at=finished,
                streams=streams,
                chatters={c: v.users for c, v in views.items()},
                listens=listens,
                users=users,
                raids=[_raid_row(r) for r in raids],
                interval_s=interval_s,
                source="collect",
                params=_params(self.options),
                stats={"helix": helix_stats, "chat": chat_stats},
                endpoints=self.endpoints,
            )
            try:
                snapshot_id = await asyncio.to_thread(self._store, data)
            except BaseException:
                self.chat.give_back_raids(raids)  # they go with the next snapshot stored
                raise
            # Only a stored snapshot counts: profiles and listening times of a failed one
            # are fetched and owed again.
            if self.options.fetch_users:
                self._profiled.update(s["user_id"] for s in streams)
            for channel in views:
                self._last_listened[channel] = finished
        except asyncio.CancelledError:
            self._abort = True  # a Helix call still running in its thread stops at its next page
            log.warning("snapshot of %s interrupted and discarded", f"{started:%H:%M:%S}")
            raise
        except (TwitchError, httpx.HTTPError, OSError, duckdb.Error, CollectError,
                BadSnapshot) as exc:
            stats = {"helix": _delta(self.helix.stats.as_dict(), helix_before),
                     "chat": _delta(asdict(self.chat.stats), chat_before)}
            return await self._store_failed(exc, started, interval_s, stats)
        return _summary(snapshot_id, started, finished, streams, views, helix_stats, chat_stats)

    async def _gather(
        self, keep_joined: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], dict[str, ChannelView]]:
        """The live streams, their streamers' new profiles, the channels wanted, and who was
        in each channel's chat."""
        streams = await asyncio.to_thread(self._fetch_streams)
        # A shard whose share of the live channels is empty this time is done, not
        # failed: its slot is still complete once the other shards complete it.
        if not streams and not (self.options.shard and self._listed):
            raise CollectError(f"no live streams{_filters(self.options)}: nothing to "
                               "collect")
        users = await asyncio.to_thread(self._fetch_users, streams) \
            if self.options.fetch_users else []
        wanted = list(dict.fromkeys(s["user_login"] for s in streams))
        if keep_joined:
            views = await self._listen_persistent(wanted)
        else:
            views = await self._listen_once(wanted)
        why = f" ({self.chat.last_error})" if self.chat.last_error else ""
        if wanted and not self._confirmed:
            raise CollectError(f"chat: not one of {len(wanted)} channel(s) could be "
                               f"joined on {self.chat.host}:{self.chat.port}{why}")
        if wanted and not any(v.listened_s > 0 for v in views.values()):
            raise CollectError(f"chat: no room was listened to, the connection to "
                               f"{self.chat.host}:{self.chat.port} was down for the whole "
                               f"window{why}")
        return streams, users, wanted, views

    async def _store_failed(self, exc: Exception, started: datetime, interval_s: float | None,
                            stats: dict[str, Any]) -> SnapshotSummary:
        """Record a snapshot that failed with `exc` (if the store can take it) and say so."""
        error = str(exc) or type(exc).__name__
        log.info("snapshot of %s failed: %s", f"{started:%H:%M:%S}", error)
        failed = SnapshotData(
            started_at=started, finished_at=self.clock.now(), interval_s=interval_s,
            params=_params(self.options), status="failed", error=error, stats=stats,
            endpoints=self.endpoints)
        try:
            snapshot_id = await asyncio.to_thread(self._store, failed)
        except (CollectError, duckdb.Error) as store_exc:
            log.info("the failed snapshot could not be recorded: %s", store_exc)
            snapshot_id = None
        return SnapshotSummary(snapshot_id, started, "failed", error=error,
                               seconds=(self.clock.now() - started).total_seconds(),
                               fatal=isinstance(exc, AuthError | MissingCredentials))

    def _store(self, data: SnapshotData) -> int | None:
        """Write a finished snapshot: its id, or None once it is safe in the spool (`run`
        then commits it, off the schedule's clock)."""
        if not isinstance(self.store, Spool):
            return write_snapshot(self.store, data)
        try:
            self._spooled = self.store.put(data)
        except OSError as exc:
            raise CollectError(f"cannot write the snapshot to {self.store.dir}: "
                               f"{exc.strerror or exc}") from exc
        return None

    def _commit(self, path: Path) -> int | None:
        """Commit the spool now if the store is free; the snapshot's id, or None."""
        assert isinstance(self.store, Spool)
        try:
            return self.store.commit().get(path.name)
        except StoreBusy:
            return None  # committed by the retry loop once the store is free
        except StoreError as exc:
            log.error("%s; snapshots stay in %s", exc, self.store.dir)
            return None

    def _fetch_streams(self) -> list[dict[str, Any]]:
        o = self.options

        def on_page(pages: int, kept: int) -> None:
            if self._abort:
                raise CollectError("interrupted")
            self._report(pages=pages, streams=kept)

        streams = self.helix.streams(language=o.language, game_ids=o.game_ids,
                                     min_viewers=o.min_viewers, limit=o.top, on_page=on_page)
        self._listed = len(streams)
        if o.shard is None:
            return streams
        k, n = o.shard
        return [s for s in streams if shard_of(s["user_login"], n) == k]

    def _fetch_users(self, streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [s["user_id"] for s in streams if s["user_id"] not in self._profiled]
        if not ids:
            return []
        self._report(phase="profiles")
        return self.helix.users(ids=ids)

    async def _listen_once(self, wanted: list[str]) -> dict[str, ChannelView]:
        """Join, listen for the window and leave; in groups when more than `capacity`."""
        views: dict[str, ChannelView] = {}
        capacity = self.chat.capacity
        for i in range(0, len(wanted), capacity):
            group = wanted[i : i + capacity]
            began = self.clock.now()
            taken = await self._join(group)
            await self._listen()
            self._confirmed += self.chat.joined
            window = (self.clock.now() - began).total_seconds()
            views.update(self.chat.observe(taken, window_s=window))
            await self.chat.part(taken)
            for channel in taken:
                self._held_since.pop(channel, None)
        return views

    async def _listen_persistent(self, wanted: list[str]) -> dict[str, ChannelView]:
        """Keep holding live channels; join new ones, part ended ones, rotate when too many."""
        held = self.chat.channels
        wanted_set = set(wanted)
        ended = sorted(held - wanted_set)
        if ended:
            await self.chat.part(ended)
            for channel in ended:
                self._held_since.pop(channel, None)
        held = self.chat.channels
        # Channels not held, least recently listened first (never listened: most viewed first).
        never = datetime.min.replace(tzinfo=self.clock.now().tzinfo)
        order = {c: i for i, c in enumerate(wanted)}
        unheld = sorted((c for c in wanted if c not in held),
                        key=lambda c: (self._last_listened.get(c, never), order[c]))
        room = self.chat.capacity - len(held)
        if len(unheld) > room:
            rotate = min(len(unheld) - room, max(1, self.chat.capacity // 2))
            oldest = sorted(held, key=lambda c: (self._held_since.get(c, never), c))[:rotate]
            if oldest:
                log.info("more live channels than chat may hold: rotating %d", len(oldest))
                await self.chat.part(oldest)
                for channel in oldest:
                    self._held_since.pop(channel, None)
                room += len(oldest)
        began = self.clock.now()
        await self._join(unheld[: max(0, room)])
        await self._listen()
        self._confirmed = self.chat.joined
        window = max(self.options.window_s, (self.clock.now() - began).total_seconds())
        return self.chat.observe(window_s=window)

    async def _join(self, channels: list[str]) -> list[str]:
        self._report(phase="joining", channels_joined=self.chat.joined,
                     users_seen=self.chat.users_seen)
        ticker = asyncio.create_task(self._tick("joining"))
        try:
            taken = await self.chat.join(channels)
            # JOINs the server dropped are sent again; listen once they are in (or given up).
            await self.chat.wait_joined(taken)
        finally:
            ticker.cancel()
        now = self.clock.now()
        for channel in taken:
            self._held_since.setdefault(channel, now)
        return taken

    async def _listen(self) -> None:
        ticker = asyncio.create_task(self._tick("listening"))
        try:
            await self.clock.asleep(self.options.window_s)
        finally:
            ticker.cancel()

    async def _tick(self, phase: str) -> None:
        while True:
            self._report(phase=phase, channels_joined=self.chat.joined,
                         users_seen=self.chat.users_seen)
            await asyncio.sleep(0.25)

    def _report(self, **changes: Any) -> None:
        self._progress.update(changes)
        if self.on_progress is not None:
            self.on_progress(dict(self._progress))


def _summary(
    snapshot_id: int | None,
    started: datetime,
    finished: datetime,
    streams: list[dict[str, Any]],
    views: Mapping[str, ChannelView],
    helix_stats: Mapping[str, float],
    chat_stats: Mapping[str, float],
) -> SnapshotSummary:
    """The summary of a stored snapshot."""
    return SnapshotSummary(
        snapshot_id=snapshot_id,
        started_at=started,
        status="complete",
        seconds=(finished - started).total_seconds(),
        streams=len(streams),
        channels_listened=len(views),
        chatters=sum(len(v.users) for v in views.values()),
        users=len(set().union(*(v.users.keys() for v in views.values()))),
        pages=int(helix_stats["pages"]),
        requests=int(helix_stats["requests"]),
        rate_limited=int(helix_stats["rate_limited"]),
        malformed=int(helix_stats["malformed"]),
        joins=int(chat_stats["joins_sent"]),
        reconnects=int(chat_stats["reconnects"]),
    )


def _raid_row(raid: Raid) -> dict[str, Any]:
    # ISO text, not datetime: the spool's JSON then gives back exactly what was put in.
    return {"raided_at": raid.at.isoformat(), "from_login": raid.from_login,
            "from_name": raid.from_name, "to_login": raid.to_login, "viewers": raid.viewers}


def _delta(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in after}


def _filters(options: CollectOptions) -> str:
    parts = [f"{name} {value}" for name, value in (
        ("--language", options.language), ("--min-viewers", options.min_viewers or None),
        ("--game-id", ",".join(options.game_ids) or None)) if value]
    return f" matching {' '.join(parts)}" if parts else ""


def _params(options: CollectOptions) -> dict[str, Any]:
    params = asdict(options)
    params["game_ids"] = list(options.game_ids)
    params["shard"] = list(options.shard) if options.shard else None
    return params
