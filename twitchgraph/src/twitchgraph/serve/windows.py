"""The time slider's windows kept on disk in serve's folder, so a closed window is built once.

One JSON file per window under ``windows/<key digest>/``: the window's bounds, the key it was
computed under (build parameters, resolution, seed, the store's schema version and this
file format), the store's fingerprint of the window (`evolve.window_fingerprint`) and the
result. A file is used only when all of these match the rebuild asking for it; the digest
in the folder name only groups the files, the full key inside each file is what is checked,
so a window cached under other parameters is never reused. Written atomically: a rebuild
killed mid-way leaves whole files or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from twitchgraph.atomic import write_text
from twitchgraph.graph.evolve import WindowResult

__all__ = ["DiskWindowCache", "window_key"]

logger = logging.getLogger(__name__)

FORMAT = 1  # bump when the file's content or the window's definition changes


def window_key(build_params: dict[str, Any], *, resolution: float, seed: int,
               schema_version: int) -> dict[str, Any]:
    """What a window's result depends on apart from the store's rows: the key of its file."""
    params = {k: v for k, v in build_params.items() if k not in ("since", "until")}
    return {"format": FORMAT, "schema_version": schema_version, "build_params": params,
            "resolution": resolution, "seed": seed}


class DiskWindowCache:
    """A `twitchgraph.graph.evolve.WindowCache` in `folder` for the results made under `key`.

    Counts the windows it served (`reused`) and kept (`computed`) since `reset_counts`.
    """

    def __init__(self, folder: str | Path, key: dict[str, Any]) -> None:
        self.key = json.loads(json.dumps(key))  # as it reads back from a file
        digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()
        self.root = Path(folder)
        self.folder = self.root / digest[:16]
        self.reused = 0
        self.computed = 0

    def _path(self, since: datetime, until: datetime) -> Path:
        return self.folder / f"{since:%Y%m%dT%H%M%S}-{until:%Y%m%dT%H%M%S}.json"

    def get(self, since: datetime, until: datetime,
            fingerprint: list[Any]) -> WindowResult | None:
        path = self._path(since, until)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # unreadable: built again and rewritten
            logger.warning("window cache %s unreadable (%s): building the window again",
                           path, exc)
            return None
        if (record.get("key") != self.key or record.get("since") != since.isoformat()
                or record.get("until") != until.isoformat()
                or record.get("fingerprint") != json.loads(json.dumps(fingerprint))):
            return None
        self.reused += 1
        edges = pd.DataFrame(record["edges"])
        if edges.empty:
            edges = pd.DataFrame(columns=["Source", "Target", "Weight"])
        return WindowResult(membership={k: int(v) for k, v in record["membership"].items()},
                            modularity=float(record["modularity"]), edges=edges,
                            note=str(record.get("note", "")))

    def put(self, since: datetime, until: datetime, fingerprint: list[Any],
            result: WindowResult) -> None:
        self.computed += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"key": self.key, "since": since.isoformat(), "until": until.isoformat(),
                  "fingerprint": fingerprint, "membership": result.membership,
                  "modularity": result.modularity, "note": result.note,
                  "edges": _columns(result.edges)}
        write_text(self._path(since, until), json.dumps(record))

    def reset_counts(self) -> None:
        self.reused = self.computed = 0

    def prune(self) -> None:
        """Remove the files kept under other keys (other parameters, an older format)."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir() and folder != self.folder:
                shutil.rmtree(folder, ignore_errors=True)


def _columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """A frame as plain JSON lists (floats round-trip exactly through `json`)."""
    return {column: [_plain(v) for v in frame[column].tolist()] for column in frame.columns}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
