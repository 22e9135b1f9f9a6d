"""`run_collector`: a whole collection run, as `twitchgraph collect` starts it.

`run_collector` holds ``<db>.collector.lock`` for the run (a second collector on the same
store is refused), sends finished snapshots through the spool (committed whenever the store's
lock is free, so readers use the store meanwhile), keeps ``<db>.collector.json`` up to date
for `twitchgraph status`, and ends cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from twitchgraph.atomic import write_text
from twitchgraph.clock import Clock, utcnow
from twitchgraph.collect.collector import CollectError, Collector, SnapshotSummary
from twitchgraph.collect.options import ChatLimits, CollectOptions
from twitchgraph.collect.progress import ConsoleProgress
from twitchgraph.collect.signals import (
    ignore_hangup,
    install_stop_handlers,
    remove_stop_handlers,
)
from twitchgraph.store.db import (
    StoreBusy,
    StoreError,
    open_store,
    snapshot_endpoints,
)
from twitchgraph.store.locks import collector_lock_path, collector_state_path
from twitchgraph.store.spool import Spool
from twitchgraph.twitch.auth import AppTokenAuth
from twitchgraph.twitch.chat import ChatClient
from twitchgraph.twitch.credentials import load_credentials, read_env
from twitchgraph.twitch.endpoints import Endpoints, is_twitch_label
from twitchgraph.twitch.helix import HelixClient

__all__ = [
    "CollectRun",
    "collector_lock",
    "run_collector",
]

log = logging.getLogger(__name__)


@dataclass
class CollectRun:
    """What a `run_collector` call did."""

    summaries: list[SnapshotSummary] = field(default_factory=list)
    interrupted: str = ""  # "SIGINT" / "SIGTERM" when a signal ended the run
    spooled: int = 0  # snapshots still waiting in the spool at the end (the store was busy)
    slots_missed: int = 0

    @property
    def complete(self) -> int:
        return sum(s.status == "complete" for s in self.summaries)


@contextlib.contextmanager
def collector_lock(db: Path) -> Iterator[None]:
    """Hold the store's collector lock for the body; a second collector gets CollectError.

    flock is released by the kernel when the process dies, even by ``kill -9``.
    """
    path = collector_lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise CollectError(f"another collector is already running on {db}"
                               + (f" (PID {holder})" if holder else "")
                               + ": one collector per store") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def _refuse_other_endpoints(db: Path, label: str) -> None:
    """Refuse to add snapshots from Twitch to a store holding snapshots from elsewhere (the
    simulator), or the other way round: a build could not tell them apart. (Two simulator
    runs differ in their ports only, and may share a store.)"""
    try:
        con = open_store(db, read_only=True, wait_s=2.0)
    except StoreBusy:
        log.warning("cannot check which endpoints %s was collected from: the store is busy", db)
        return
    try:
        others = [(e, n) for e, n in snapshot_endpoints(con)
                  if is_twitch_label(e) != is_twitch_label(label)]
    finally:
        con.close()
    if others:
        shown = "; ".join(f"{n} from {e}" for e, n in others[:3])
        raise CollectError(f"{db} holds snapshots collected from other endpoints ({shown}); "
                           f"this run collects from {label}: use another --db, or pass "
                           "--mix-endpoints to add them anyway")


def _write_state(path: Path, state: Mapping[str, Any]) -> None:
    """Replace the state file whole (a reader never sees half of it)."""
    try:
        write_text(path, json.dumps(state, default=str, indent=1))
    except OSError as exc:  # status is a convenience; collecting goes on
        log.debug("cannot write %s: %s", path, exc)


def run_collector(
    db: str | Path,
    options: CollectOptions,
    *,
    env: Mapping[str, str] | None = None,
    dotenv_path: str | Path | None = ".env",
    clock: Clock | None = None,
    chat_limits: ChatLimits | None = None,
    console: Any = None,
    transport: httpx.BaseTransport | None = None,
    commit_wait_s: float = 30.0,
    mix_endpoints: bool = False,
) -> CollectRun:
    """Collect into the store at `db` with credentials and endpoints from env / .env.

    The store is not held open: finished snapshots go through the spool and are committed
    whenever the store's lock is free, so reading commands run beside the collector.
    Prints one summary line per snapshot on `console` (a rich Console) and shows live
    progress when it is a terminal. SIGINT/SIGTERM end the run cleanly (SIGHUP, a closed
    terminal, is ignored: the collection goes on). At the end it waits up to `commit_wait_s`
    for the store to commit what is still spooled.

    Each snapshot records the endpoints it is collected from; the first line printed says
    when they are not Twitch's (TWITCH_API_URL / TWITCH_CHAT_HOST set, e.g. by `sim serve`).

    Raises:
        MissingCredentials: TWITCH_CLIENT_ID / TWITCH_CLIENT_SECRET not set.
        CollectError: another collector runs on `db`; the store holds snapshots collected
            from other endpoints and `mix_endpoints` is False.
        StoreError: `db` is not a store this version can write (newer, foreign, not DuckDB).
    """
    values = read_env(env, dotenv_path)
    credentials = load_credentials(values, dotenv_path=None)
    endpoints = Endpoints.from_env(values)
    label = endpoints.collect_label()
    if not endpoints.collects_from_twitch:
        line = (f"collecting from endpoints that are not Twitch's: {label} (TWITCH_API_URL, "
                "TWITCH_AUTH_URL or TWITCH_CHAT_HOST are set, e.g. by `sim serve`)")
        if console is not None:
            console.print(line, style="yellow", highlight=False, soft_wrap=True)
        else:
            log.warning("%s", line)
    limits = chat_limits or ChatLimits()
    db = Path(db)
    notify = (lambda line: console.print(line, style="yellow")) if console is not None else None
    with collector_lock(db), ignore_hangup():
        # Create or migrate the store now, so a file we cannot use is refused at once.
        try:
            open_store(db, wait_s=2.0, notify=notify).close()
        except StoreBusy:
            pass  # readers or a writer have it: the spool waits for them
        if not mix_endpoints:
            _refuse_other_endpoints(db, label)
        spool = Spool(db, notify=notify)
        with contextlib.suppress(StoreBusy):
            spool.commit(budget_s=math.inf)  # what a previous run left spooled
        http = httpx.Client(timeout=httpx.Timeout(15.0, connect=10.0), transport=transport)
        auth = AppTokenAuth(credentials, auth_url=endpoints.auth_url, http=http)
        # Helix rate limits run on real time, whatever clock drives the schedule.
        helix = HelixClient(http=http, auth=auth, api_url=endpoints.api_url)
        try:
            run = asyncio.run(_collect(db, spool, helix, endpoints, options, clock, limits,
                                       console))
        finally:
            helix.close()
        deadline = time.monotonic() + commit_wait_s
        while spool.pending() and time.monotonic() < deadline:
            try:
                if not spool.commit(wait_s=max(0.0, deadline - time.monotonic())):
                    break  # a file that cannot go in (logged); it stays for the next run
            except StoreBusy as exc:
                log.warning("%s", exc)
                break
        run.spooled = len(spool.pending())
        state_path = collector_state_path(db)
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(state_path.read_text(encoding="utf-8"))
            _write_state(state_path, {**state, "running": False, "spooled": run.spooled,
                                      "ended_at": utcnow().isoformat()})
    return run


async def _collect(db: Path, spool: Spool, helix: HelixClient, endpoints: Endpoints,
                   options: CollectOptions, clock: Clock | None, limits: ChatLimits,
                   console: Any) -> CollectRun:
    stop = asyncio.Event()
    run = CollectRun()
    began = utcnow()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    collecting: list[asyncio.Task] = []  # the collector's task, once it runs

    def interrupt(name: str) -> None:
        if not stop.is_set():
            run.interrupted = name
            stop.set()
            # The snapshot under way is discarded whole; before the collector runs (chat
            # still connecting) there is none, and the setup itself stops.
            (collecting[0] if collecting else main).cancel()

    # Taken before the first await. asyncio.run's own Ctrl-C handler cancels this task
    # wherever it is; taken late, a Ctrl-C while the chat connected cancelled the
    # collector's task instead, and the run ended as if nothing had completed (exit 1,
    # not 130).
    installed = install_stop_handlers(loop, interrupt)
    try:
        await _collect_until_stopped(db, spool, helix, endpoints, options, clock, limits,
                                     console, run, stop, began, collecting)
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    finally:
        remove_stop_handlers(loop, installed)
    if stop.is_set() and console is not None:
        console.print("stopped: the snapshot under way (if any) was discarded", style="yellow")
    return run


async def _collect_until_stopped(db: Path, spool: Spool, helix: HelixClient,
                                 endpoints: Endpoints, options: CollectOptions,
                                 clock: Clock | None, limits: ChatLimits, console: Any,
                                 run: CollectRun, stop: asyncio.Event, began: datetime,
                                 collecting: list[asyncio.Task]) -> None:
    progress = ConsoleProgress(console) if console is not None and console.is_terminal else None
    state_path = collector_state_path(db)

    def show(summary: SnapshotSummary) -> None:
        if progress is not None:
            progress.stop()
        if console is not None:
            style = "green" if summary.status == "complete" else "red"
            console.print(summary.line(), style=style, highlight=False, soft_wrap=True)
        else:
            log.info("%s", summary.line())

    async with ChatClient.from_endpoints(
        endpoints, clock=clock, channels_per_connection=limits.channels_per_connection,
        max_connections=limits.max_connections, joins_per_window=limits.joins_per_window,
        join_window_s=limits.join_window_s,
    ) as chat:
        collector = Collector(spool, helix=helix, chat=chat, options=options, clock=clock,
                              on_progress=progress, endpoints=endpoints.collect_label())

        def save_state() -> None:
            last = run.summaries[-1] if run.summaries else None
            errors = [s for s in run.summaries if s.status != "complete"]
            _write_state(state_path, {
                "pid": os.getpid(), "running": True, "started_at": began.isoformat(),
                "every_s": options.every_s, "for_s": options.for_s,
                "complete": run.complete, "failed": len(errors),
                "slots_missed": collector.slots_missed, "spooled": len(spool.pending()),
                "last": asdict(last) if last else None,
                "last_error": errors[-1].line() if errors else (spool.last_error or ""),
                "spool_error": spool.last_error,
                "chat": {"connections": chat.connected, "channels_held": len(chat.channels),
                         "channels_joined": chat.joined, "last_error": chat.last_error},
                "helix": helix.stats.as_dict(),
            })

        def keep(summary: SnapshotSummary) -> None:
            run.summaries.append(summary)
            show(summary)
            save_state()

        async def commit_when_free() -> None:
            # Snapshots spooled while readers held the store go in as soon as it is free:
            # poll often while something waits (readers hold back meanwhile, see
            # store.announce_write), rarely otherwise.
            busy = False
            while True:
                await asyncio.sleep(0.05 if busy else 0.5)
                busy = False
                if spool.pending():
                    try:
                        if await asyncio.to_thread(spool.commit):
                            save_state()
                    except StoreBusy:
                        busy = True
                    except StoreError as exc:
                        log.debug("commit: %s", exc)

        save_state()
        task = asyncio.create_task(collector.run(stop, on_snapshot=keep))
        collecting.append(task)
        committer = asyncio.create_task(commit_when_free())
        try:
            await asyncio.wait([task])  # a cancelled collector is an interrupt, not an error
            if not task.cancelled():
                task.result()
        finally:
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer
            if progress is not None:
                progress.stop()
        run.slots_missed = collector.slots_missed
