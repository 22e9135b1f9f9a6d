"""`twitchgraph serve`: the live local web app over the store (see `twitchgraph.serve.app`)."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
from pathlib import Path

import typer

from twitchgraph.cli._app import DbOption, app
from twitchgraph.cli._app import err as _err
from twitchgraph.cli._app import fail as _fail
from twitchgraph.cli._app import notice as _notice
from twitchgraph.cli._app import out as _out
from twitchgraph.errors import TwitchgraphError

logger = logging.getLogger(__name__)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    db: Path = DbOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1: this "
                             "machine only; anything else lets others on the network read)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    rebuild_every: str = typer.Option("30m", help="Rebuild the graph this often (e.g. 10m, "
                                      "2h; 0 = only at start and on SIGHUP)."),
    graph_dir: Path = typer.Option(None, help="Where rebuilt graphs go (default: DB.serve/ "
                                   "beside the store)."),
    every_nth: int = typer.Option(3, min=1, help="Build: use every k-th snapshot."),
    language: str = typer.Option(None, help="Build: keep only streams in this language."),
    min_live_minutes: float = typer.Option(60, help="Build: minimum minutes live."),
    min_viewer_mean: float = typer.Option(10, help="Build: minimum mean viewers."),
    min_chatter_mean: float = typer.Option(10, help="Build: minimum mean chatters."),
    min_weight: float = typer.Option(10, help="Build: keep edges whose weight reaches this."),
    resolution: float = typer.Option(1.0, help="Communities: modularity resolution."),
    layout_iterations: int = typer.Option(300, min=1, help="Layout: ForceAtlas2 iterations."),
    window: str = typer.Option("1d", help="Windows of the map's time slider and the "
                               "streamers' trends, as in `evolve` (1d, 1w); 'none' to skip."),
    allow_host: list[str] = typer.Option(
        [], "--allow-host", help="Also answer requests for this host name (the Host header; "
        "localhost, 127.0.0.1, [::1] and --host always work; *.example.org: its subdomains). "
        "Repeat for several."),
) -> None:
    """Serve the live map, streamer pages and collection status over the store, read-only.

    The graph is rebuilt (build, communities, layout) in the background at start, then every
    --rebuild-every and on SIGHUP, beside a running collector; pages show the last good
    graph meanwhile. Every page has a JSON twin (/map.json, /streamer/LOGIN.json,
    /status.json).

    Example: twitchgraph serve --db twitchgraph.duckdb --rebuild-every 30m --language it
    """
    import uvicorn

    from twitchgraph.build.params import BuildParams
    from twitchgraph.durations import parse_duration
    from twitchgraph.graph.evolve import parse_window
    from twitchgraph.graph.layout import MAX_ITERATIONS
    from twitchgraph.serve.app import create_app
    from twitchgraph.serve.rebuild import Rebuilder

    if not db.exists():
        raise _fail(f"no store at {db}: run `twitchgraph collect --db {db}` first or pass --db")
    if db.is_dir():
        raise _fail(f"--db {db} is a folder: pass the store's file (e.g. twitchgraph.duckdb)")
    try:
        every_s = parse_duration(rebuild_every)
    except TwitchgraphError as exc:
        raise _fail(f"--rebuild-every: {exc}") from None
    try:
        windows = None if window.strip().lower() == "none" else parse_window(window)
    except TwitchgraphError as exc:
        raise _fail(f"--window: {exc}") from None
    root = graph_dir or Path(f"{db}.serve")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"cannot use {root} for the rebuilt graphs: {exc.strerror or exc}; pass "
                    "--graph-dir a folder you may write") from None
    if layout_iterations > MAX_ITERATIONS:
        raise _fail(f"--layout-iterations must be at most {MAX_ITERATIONS:,}, got "
                    f"{layout_iterations}")
    try:
        params = BuildParams(every_nth=every_nth, language=language,
                             min_live_minutes=min_live_minutes, min_viewer_mean=min_viewer_mean,
                             min_chatter_mean=min_chatter_mean, min_weight=min_weight)
    except TwitchgraphError as exc:
        raise _fail(str(exc)) from None
    # Bound before anything is said or started: a port in use is one line and exit 1.
    try:
        listener = _bind(host, port)
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server "
                    "there? pass --port)") from None
    rebuilder = Rebuilder(db, root, every_s=every_s or None, build_params=params,
                          resolution=resolution, layout_iterations=layout_iterations,
                          window=windows)
    rebuilder.adopt_latest()
    app_ = create_app(rebuilder, allowed_hosts=[host, *allow_host])
    if not _loopback(host):
        _notice(f"serving on {host}: anyone who can reach this address can read the pages "
                "(use --host 127.0.0.1 to keep it to this machine; --allow-host NAME for the "
                "names they reach it by)")
    _out.print(f"twitchgraph serve: http://{host if ':' not in host else f'[{host}]'}:{port}/ "
               f"over {db}, rebuilding every {rebuild_every} (SIGHUP: now); Ctrl-C stops")
    signal.signal(signal.SIGHUP, lambda *_: rebuilder.request())
    # A browser's keep-alive connection must not hold Ctrl-C up for ever.
    server = uvicorn.Server(uvicorn.Config(app_, log_level="warning",
                                           timeout_graceful_shutdown=5))
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on
        _err.print("stopped")
        raise typer.Exit(130) from None
    finally:
        listener.close()
    _err.print("stopped")


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (IPv4 or IPv6, as the address resolves)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise OSError(f"{host!r} is not an address of this machine ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock
