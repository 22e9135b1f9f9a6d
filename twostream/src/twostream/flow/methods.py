"""Dense optical flow between consecutive frames, and its 8-bit quantisation.

TV-L1 (OpenCV-contrib ``DualTVL1OpticalFlow``) is the reference the two-stream literature uses;
DIS and Farneback are much faster. Over a whole frame they look close to TV-L1 because most
pixels are still, but on the pixels that move they are off by several pixels, so accuracy is
measured with :func:`endpoint_error` on moving pixels only.

Quantisation follows denseflow / MMAction2: clip to ``±bound`` and map linearly to 0..255
(``-bound -> 0``, ``+bound -> 255``), so 128 is (almost exactly) zero motion.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from twostream.flow.presets import TVL1Params

# cv2 is imported where it is used: tvl1_torch and datasets import this package on machines
# without OpenCV (benchmarks/gpu_check.py's check runs with torch, NumPy and Pillow only).

__all__ = [
    "FLOW_METHODS",
    "compute_flow",
    "iter_flow",
    "quantize_flow",
    "dequantize_flow",
    "endpoint_error",
]

FLOW_METHODS = ("tvl1", "tvl1-torch", "dis", "farneback")


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    if frame.ndim == 2:
        return frame if frame.dtype == np.uint8 else np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    raise ValueError(f"expected (H, W) grey or (H, W, 3) RGB frames, got shape {frame.shape}")


def _pair_fn(method: str, tvl1: TVL1Params | None):
    import cv2

    if method == "tvl1":
        algo = (tvl1 or TVL1Params()).create()
        return lambda a, b: algo.calc(a, b, None)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(
            a, b, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5,
            poly_sigma=1.2, flags=0,
        )
    raise ValueError(f"unknown flow method {method!r}; allowed: {', '.join(FLOW_METHODS)}")


def _scaled_flow(frames: Iterable[np.ndarray], scale: float, **kwargs) -> Iterator[np.ndarray]:
    """:func:`iter_flow` on frames shrunk by ``scale`` (area interpolation), brought back to
    full size: resized bilinearly and its displacements divided by ``scale`` (they were
    measured in small pixels)."""
    import cv2

    size = None

    def shrunk():
        nonlocal size
        for frame in frames:
            grey = _grey(np.asarray(frame))
            size = (grey.shape[1], grey.shape[0])
            small = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            yield cv2.resize(grey, small, interpolation=cv2.INTER_AREA)

    for flow in iter_flow(shrunk(), **kwargs):
        yield cv2.resize(flow, size, interpolation=cv2.INTER_LINEAR) / np.float32(scale)


def iter_flow(
    frames: Iterable[np.ndarray],
    *,
    method: str = "tvl1",
    tvl1: TVL1Params | None = None,
    scale: float = 1.0,
) -> Iterator[np.ndarray]:
    """Yield the (H, W, 2) float32 flow of each consecutive pair of ``frames`` as it goes;
    with ``scale`` < 1, computed on frames shrunk by that factor and returned at full size in
    full-size pixels (at 0.5 TV-L1 does about a quarter of the work; what that costs in
    accuracy: :mod:`twostream.flow.table`).

    ``frames`` may be any iterable (e.g. :func:`twostream.decode.iter_frames`), so a long clip
    never has to sit in memory whole.
    """
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"flow scale must be in (0, 1], got {scale}")
    if scale != 1.0:
        yield from _scaled_flow(frames, scale, method=method, tvl1=tvl1)
        return
    if method == "tvl1-torch":  # on CPU, a few pairs per batch; extraction batches on a device
        from twostream.flow.tvl1_torch import iter_tvl1_flow

        yield from iter_tvl1_flow((_grey(np.asarray(f)) for f in frames), tvl1)
        return
    calc = _pair_fn(method, tvl1)
    prev = None
    for frame in frames:
        grey = _grey(np.asarray(frame))
        if prev is not None:
            yield np.asarray(calc(prev, grey), dtype=np.float32)
        prev = grey


def compute_flow(
    frames: np.ndarray | Iterable[np.ndarray],
    *,
    method: str = "tvl1",
    tvl1: TVL1Params | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """Optical flow between consecutive frames.

    Parameters
    ----------
    frames:
        (T, H, W, 3) uint8 RGB or (T, H, W) grey frames, T >= 2.
    method:
        ``"tvl1"`` (default, OpenCV-contrib Dual TV-L1), ``"tvl1-torch"`` (the same TV-L1 in
        PyTorch, :mod:`twostream.flow.tvl1_torch`), ``"dis"`` (DIS, medium preset) or
        ``"farneback"``.
    tvl1:
        TV-L1 parameters (default: OpenCV's defaults); see ``TVL1_PRESETS`` for ``"fast"``.
    scale:
        Compute the flow on frames shrunk by this factor (0 < scale <= 1) and return it at
        full size, in full-size pixels.

    Returns
    -------
    np.ndarray
        (T-1, H, W, 2) float32; ``[..., 0]`` is the x (rightward) and ``[..., 1]`` the
        y (downward) displacement in pixels from frame t to frame t+1.

    Examples
    --------
    >>> import cv2
    >>> rng = np.random.default_rng(0)
    >>> img = cv2.GaussianBlur(rng.integers(0, 256, (48, 64), dtype=np.uint8), (5, 5), 0)
    >>> flow = compute_flow(np.stack([img, np.roll(img, 2, axis=1)]), method="dis")
    >>> flow.shape, bool(np.median(flow[0, 8:-8, 8:-8, 0]) > 1.5)
    ((1, 48, 64, 2), True)
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; allowed: {', '.join(FLOW_METHODS)}")
    flows = list(iter_flow(frames, method=method, tvl1=tvl1, scale=scale))
    if not flows:
        raise ValueError("compute_flow needs at least 2 frames")
    return np.stack(flows)


def quantize_flow(flow: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Clip flow to ``±bound`` and map it linearly to uint8: v -> round(255 (v+bound) / 2 bound)."""
    if bound <= 0:
        raise ValueError(f"bound must be positive, got {bound}")
    clipped = np.clip(np.asarray(flow, dtype=np.float32), -bound, bound)
    return np.rint(255.0 * (clipped + bound) / (2.0 * bound)).astype(np.uint8)


def dequantize_flow(u8: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Inverse of :func:`quantize_flow` (up to its rounding): value / 255 * 2 bound - bound."""
    if bound <= 0:
        raise ValueError(f"bound must be positive, got {bound}")
    return (np.asarray(u8, dtype=np.float32) / 255.0 * (2.0 * bound) - bound).astype(np.float32)


def endpoint_error(flow: np.ndarray, ref: np.ndarray, moving_threshold: float = 1.0) -> float:
    """Mean endpoint error of ``flow`` against ``ref`` on pixels where ``ref`` moves.

    A pixel counts as moving when the reference displacement exceeds ``moving_threshold``
    pixels. Averaging over still pixels too would hide most of the error: in typical clips most
    pixels do not move and every method gets them right. Returns NaN when nothing moves.
    """
    flow = np.asarray(flow, dtype=np.float32)
    ref = np.asarray(ref, dtype=np.float32)
    if flow.shape != ref.shape or flow.shape[-1] != 2:
        raise ValueError(
            f"flow and ref must have equal (..., 2) shapes, got {flow.shape}, {ref.shape}"
        )
    moving = np.linalg.norm(ref, axis=-1) > moving_threshold
    if not moving.any():
        return float("nan")
    return float(np.linalg.norm(flow - ref, axis=-1)[moving].mean())
