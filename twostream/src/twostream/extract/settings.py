"""The options a clip's frames and flow depend on, as given on the command line, checked, and
recorded in each clip's completion marker (and in a run, for predict)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from twostream.errors import OptionError, TwostreamError
from twostream.flow.methods import FLOW_METHODS
from twostream.flow.presets import TVL1Params

__all__ = [
    "MAX_SHORT_SIDE",
    "MIN_SHORT_SIDE",
    "ExtractSettings",
    "SettingsMismatchError",
    "settings_difference",
]

MIN_SHORT_SIDE = 16  # DIS refuses smaller frames
# Frames of 4K video; each worker holds a few frames and their flow at this size (a short
# side of 100000 once tried to allocate 40 GB per frame in every worker).
MAX_SHORT_SIDE = 2160


@dataclass(frozen=True)
class ExtractSettings:
    """The options a clip's frames and flow depend on: one value from the CLI (or a run's
    record, in predict) to every clip.

    ``flow``: ``"tvl1"``, ``"tvl1-torch"``, ``"dis"`` or ``"farneback"``; ``short_side``: the
    short side in px (``None``: native size); ``bound``: flow is clipped to ``±bound`` px and
    mapped to 0..255; ``tvl1``: TV-L1 parameters (default OpenCV's); ``jpeg_quality``: of
    frames and flow; ``flow_scale``: flow computed on frames shrunk by it (0 < s <= 1),
    stored at full size.
    """

    flow: str = "tvl1"
    short_side: int | None = 256
    bound: float = 20.0
    tvl1: TVL1Params | None = None
    jpeg_quality: int = 95
    flow_scale: float = 1.0

    def check(self) -> None:
        """Refuse values outside what is allowed (:class:`OptionError`)."""
        if self.flow not in FLOW_METHODS:
            raise OptionError(f"unknown flow method {self.flow!r}; allowed: "
                              f"{', '.join(FLOW_METHODS)}")
        if not math.isfinite(self.flow_scale) or not 0.0 < self.flow_scale <= 1.0:
            raise OptionError(f"--flow-scale must be in (0, 1], got {self.flow_scale}")
        if self.flow == "tvl1-torch" and self.flow_scale != 1.0:
            raise OptionError("--flow-scale works with tvl1, dis and farneback, not tvl1-torch "
                              "(run tvl1-torch at full size, or pick another --flow)")
        if not math.isfinite(self.bound) or self.bound <= 0:
            # nan once gave all-zero flow and NaN (invalid JSON) in the report.
            raise OptionError(f"--bound must be a positive number of px, got {self.bound}")
        if self.short_side is not None and not (
                MIN_SHORT_SIDE <= self.short_side <= MAX_SHORT_SIDE):
            raise OptionError(f"--short-side must be 0 (native size) or {MIN_SHORT_SIDE}-"
                              f"{MAX_SHORT_SIDE} (smaller frames break optical flow, larger "
                              f"ones exhaust memory), got {self.short_side}")
        if not 1 <= self.jpeg_quality <= 100:
            raise OptionError(f"--jpeg-quality must be 1-100, got {self.jpeg_quality}")
        if self.tvl1 is not None:
            self.tvl1.check()

    def record(self) -> dict[str, Any]:
        """The settings as stored in a clip's completion marker and the extract report."""
        settings = {
            "flow": self.flow,
            "short_side": self.short_side,
            "bound": float(self.bound),
            "tvl1": (dataclasses.asdict(self.tvl1 or TVL1Params())
                     if self.flow.startswith("tvl1") else None),
            "jpeg_quality": int(self.jpeg_quality),
        }
        if self.flow_scale != 1.0:  # only then: clips extracted before the option stay valid
            settings["flow_scale"] = float(self.flow_scale)
        return settings

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ExtractSettings:
        """The settings :meth:`record` wrote (or a run's ``extract_settings``)."""
        return cls(flow=record["flow"], short_side=record["short_side"], bound=record["bound"],
                   tvl1=TVL1Params(**record["tvl1"]) if record.get("tvl1") else None,
                   jpeg_quality=record["jpeg_quality"],
                   flow_scale=record.get("flow_scale", 1.0))


class SettingsMismatchError(TwostreamError):
    """OUT holds clips extracted with other settings; redoing them needs ``force``."""


def settings_difference(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every setting that differs (nested keys as ``a.b``).

    Generic over the keys, so any new extraction option recorded by :meth:`ExtractSettings.record`
    is compared too.

    Examples:
        >>> settings_difference({"flow": "tvl1", "tvl1": {"warps": 5}},
        ...                     {"flow": "tvl1", "tvl1": {"warps": 2}})
        ['tvl1.warps: 5 -> 2']
    """
    if old is None:
        return ["settings: not recorded -> recorded"]
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}"
                      for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        else:
            diffs.append(f"{key}: {a!r} -> {b!r}")
    return diffs
