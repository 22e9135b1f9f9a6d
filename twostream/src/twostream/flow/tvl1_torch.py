"""TV-L1 optical flow in PyTorch, batched, matching OpenCV-contrib's ``DualTVL1OpticalFlow``.

The same model and numerical scheme as OpenCV's CPU implementation (``optflow/tvl1flow.cpp``;
Zach, Pock & Bischof 2007, in the form of Sanchez Perez, Meinhardt-Llopis & Facciolo, IPOL
2013), step by step, so that its flow is OpenCV's flow up to float rounding:

- grey levels stay 0..255 (no normalisation);
- pyramid: each level is the previous one resized by ``scale_step`` with bilinear
  interpolation (pixel centres, border replicated, OpenCV's rounding of the level size); no
  Gaussian pre-smoothing; levels smaller than 16 px are dropped;
- flow starts at zero on the coarsest level and is carried to the next finer level by bilinear
  resizing and a multiplication by ``1 / scale_step``;
- per warp: ``I1`` and its centred gradient (one-sided halves at the border) are warped with
  bicubic interpolation (a = -0.75, samples outside the image are 0, as ``cv::remap``), then
  ``outer_iterations`` x (5x5 median filter of the flow, ``inner_iterations`` primal-dual
  steps) with forward differences and the matching divergence;
- ``epsilon``: OpenCV stops a warp's iterations once the squared change of the flow summed over
  the image drops to ``epsilon**2 * area``. Here every pair of a batch keeps its own stop flag:
  a pair that has converged is frozen (its flow and dual variables are no longer updated, and
  its median filtering stops) while the rest of the batch iterates on, so each pair gets the
  iterations OpenCV would give it; converged pairs leave the batch at the next outer
  iteration, so they cost nothing more. ``epsilon=0`` runs the full
  ``outer_iterations * inner_iterations`` steps per warp, a fixed count.

Everything is whole-tensor arithmetic on ``(B, C, H, W)`` tensors, the same code on CPU and
CUDA; :func:`tvl1_flow` takes ``compile=True`` to fuse each primal-dual step with
``torch.compile`` (worth it on a GPU).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from twostream.flow.presets import TVL1Params

__all__ = [
    "default_batch",
    "iter_tvl1_flow",
    "median5",
    "pyramid_sizes",
    "tvl1_flow",
    "tvl1_flow_numpy",
]

_FLT_EPSILON = float(np.finfo(np.float32).eps)
_MIN_LEVEL = 16  # OpenCV drops pyramid levels narrower or lower than this


def pyramid_sizes(height: int, width: int, nscales: int, scale_step: float) -> list[tuple]:
    """``(height, width)`` of each pyramid level, finest first, as OpenCV sizes them."""
    sizes = [(height, width)]
    for _ in range(1, nscales):
        h, w = sizes[-1]
        # cv::resize with fx=fy=scale_step: the size is rounded half to even (cvRound).
        nh, nw = round(h * scale_step), round(w * scale_step)
        if nh < _MIN_LEVEL or nw < _MIN_LEVEL:
            break
        sizes.append((nh, nw))
    return sizes


@functools.lru_cache(maxsize=64)
def _linear_weights(n_out: int, n_in: int, scale: float) -> np.ndarray:
    """(n_out, n_in) bilinear resampling matrix, OpenCV's INTER_LINEAR: pixel centres map with
    ``src = (dst + 0.5) * scale - 0.5``, and samples past the border take the border pixel."""
    src = (np.arange(n_out) + 0.5) * scale - 0.5
    i0 = np.floor(src).astype(np.int64)
    frac = src - i0
    frac[i0 < 0] = 0.0
    i0[i0 < 0] = 0
    last = i0 >= n_in - 1
    frac[last] = 0.0
    i0[last] = n_in - 1
    weights = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(weights, (rows, i0), 1.0 - frac)
    np.add.at(weights, (rows, np.minimum(i0 + 1, n_in - 1)), frac)
    return weights.astype(np.float32)


def _resize(x: torch.Tensor, size: tuple[int, int], scale: tuple[float, float]) -> torch.Tensor:
    """Bilinear resize of ``(..., H, W)`` to ``size``; ``scale`` is (src / dst) per axis."""
    wy = torch.from_numpy(_linear_weights(size[0], x.shape[-2], scale[0])).to(x.device)
    wx = torch.from_numpy(_linear_weights(size[1], x.shape[-1], scale[1])).to(x.device)
    return wy @ x @ wx.T


@functools.lru_cache(maxsize=1)
def _median25_network() -> tuple[tuple[str, int, int, bool, bool], ...]:
    """Compare-exchange steps that leave the median of 25 values in slot 12.

    Batcher's odd-even merge sort of 32 slots (slots 25..31 hold +inf), with every step that
    cannot reach slot 12 pruned: 113 steps, 202 min/max operations, exact. A sorting network
    is plain elementwise min/max, which runs (and fuses) well on any device, where
    ``torch.median`` over 25 shifted copies is two orders of magnitude slower on CPU.
    """
    steps = []
    p = 1
    while p < 32:
        k = p
        while k >= 1:
            for j in range(k % p, 32 - k, 2 * k):
                for i in range(min(k, 32 - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        steps.append((i + j, i + j + k))
            k //= 2
        p *= 2
    infinite = set(range(25, 32))
    ops: list[tuple] = []
    for a, b in steps:
        if b in infinite:  # min(x, inf) = x stays in a; inf stays in b
            continue
        if a in infinite:  # the finite value moves down to a
            infinite.discard(a)
            infinite.add(b)
            ops.append(("move", a, b))
        else:
            ops.append(("cmp", a, b))
    needed, kept = {12}, []
    for kind, a, b in reversed(ops):
        if kind == "move":
            if a in needed:
                needed.discard(a)
                needed.add(b)
                kept.append((kind, a, b, True, False))
        elif a in needed or b in needed:
            kept.append((kind, a, b, a in needed, b in needed))
            needed.update((a, b))
    return tuple(reversed(kept))


def median5(x: torch.Tensor) -> torch.Tensor:
    """5x5 median filter of ``(B, C, H, W)`` with the border replicated (``cv2.medianBlur``)."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    v = [padded[..., dy : dy + h, dx : dx + w] for dy in range(5) for dx in range(5)]
    for kind, a, b, need_min, need_max in _median25_network():
        if kind == "move":
            v[a] = v[b]
            continue
        lo = torch.minimum(v[a], v[b]) if need_min else None
        hi = torch.maximum(v[a], v[b]) if need_max else None
        v[a], v[b] = lo, hi
    return v[12]


def _centred_gradient(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences over 2; at the border, half the one-sided difference (OpenCV's)."""
    p = F.pad(img.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    dx = 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    dy = 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    return dx, dy


def _forward_gradient(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences, 0 on the last column / row."""
    dx = torch.zeros_like(u)
    dy = torch.zeros_like(u)
    torch.sub(u[..., :, 1:], u[..., :, :-1], out=dx[..., :, :-1])
    torch.sub(u[..., 1:, :], u[..., :-1, :], out=dy[..., :-1, :])
    return dx, dy


def _divergence(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Backward differences, the negative adjoint of :func:`_forward_gradient` (OpenCV's)."""
    div = px + py
    div[..., :, 1:] -= px[..., :, :-1]
    div[..., 1:, :] -= py[..., :-1, :]
    return div


def _warp(images: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Sample ``images`` (B, C, H, W) at ``x + u1, y + u2`` like ``cv::remap(INTER_CUBIC)``."""
    _, _, h, w = images.shape
    ys = torch.arange(h, device=u.device, dtype=u.dtype).view(1, h, 1)
    xs = torch.arange(w, device=u.device, dtype=u.dtype).view(1, 1, w)
    # OpenCV 5's remap samples at the float coordinates (4.x rounded them to 1/32 px).
    grid = torch.stack(
        (2 * (xs + u[:, 0]) / (w - 1) - 1, 2 * (ys + u[:, 1]) / (h - 1) - 1), dim=-1
    )
    return F.grid_sample(images, grid, mode="bicubic", padding_mode="zeros", align_corners=True)


def _step(
    u: torch.Tensor,
    px: torch.Tensor,
    py: torch.Tensor,
    grads: torch.Tensor,
    neg_inv_grad: torch.Tensor,
    rho_c: torch.Tensor,
    active: torch.Tensor | None,
    l_t: float,
    theta: float,
    taut: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One primal-dual iteration; returns u, px, py and each pair's squared change of u.

    ``grads`` stacks the warped gradient of I1 (and ``gamma`` for the illumination channel)
    along dim 1 like ``u``. Pairs whose ``active`` flag is False keep u, px, py unchanged
    (``active=None``: all pairs step).
    """
    rho = rho_c + (grads * u).sum(dim=1)
    # Thresholding step of the data term (OpenCV's estimateV): -rho/|grad I1|^2, clipped to
    # +-lambda*theta. Where the gradient vanishes OpenCV takes the sign branches, which the
    # clip reproduces (neg_inv_grad is huge there).
    fi = (rho * neg_inv_grad).clamp_(-l_t, l_t)
    u_new = torch.addcmul(u, fi.unsqueeze(1), grads)
    u_new.add_(_divergence(px, py), alpha=theta)
    error = (u_new - u).square_().sum(dim=(1, 2, 3))
    gx, gy = _forward_gradient(u_new)
    norm = torch.hypot(gx, gy).mul_(taut).add_(1.0)
    px_new = torch.add(px, gx, alpha=taut).div_(norm)
    py_new = torch.add(py, gy, alpha=taut).div_(norm)
    if active is None:
        return u_new, px_new, py_new, error
    keep = active.view(-1, 1, 1, 1)
    return (
        torch.where(keep, u_new, u),
        torch.where(keep, px_new, px),
        torch.where(keep, py_new, py),
        error,
    )


def _one_scale(
    i0: torch.Tensor,
    i1: torch.Tensor,
    u: torch.Tensor,
    params: TVL1Params,
    step,
) -> torch.Tensor:
    """All warps of one pyramid level (OpenCV's ``procOneScale``)."""
    batch, _, h, w = u.shape
    scaled_eps = params.epsilon * params.epsilon * h * w
    l_t = params.lambda_ * params.theta
    taut = params.tau / params.theta
    i1x, i1y = _centred_gradient(i1)
    stacked = torch.stack((i1, i1x, i1y), dim=1)
    px = torch.zeros_like(u)
    py = torch.zeros_like(u)
    # Pairs that have converged drop out of the batch at each outer iteration (a gather and
    # a scatter per inner_iterations steps), so a batch costs about the sum of its pairs'
    # iterations, not its slowest pair's times the batch size. Within an outer iteration a
    # converged pair is masked. On CPU, asking whether pairs still run costs nothing, so it
    # is asked every step; on a GPU the answer would stall the queue of kernels.
    on_cpu = u.device.type == "cpu"
    for _ in range(params.warps):
        warped = _warp(stacked, u)
        i1w, ix, iy = warped[:, 0], warped[:, 1], warped[:, 2]
        grad = ix * ix + iy * iy
        rho_c = i1w - ix * u[:, 0] - iy * u[:, 1] - i0
        neg_inv_grad = -1.0 / grad.clamp_min(_FLT_EPSILON)
        grads = [ix, iy] + ([torch.full_like(ix, params.gamma)] if params.gamma else [])
        grads = torch.stack(grads, dim=1)
        active = torch.ones(batch, dtype=torch.bool, device=u.device)
        for _ in range(params.outer_iterations):
            idx = torch.nonzero(active).squeeze(1)
            n = idx.numel()
            if n == 0:
                break
            state = (u, px, py, grads, neg_inv_grad, rho_c)
            if n < batch:
                state = tuple(t.index_select(0, idx) for t in state)
            us, pxs, pys, *fixed = state
            running = torch.ones(n, dtype=torch.bool, device=u.device)
            if params.median_filtering > 1:
                us = torch.cat((_median(us[:, :2], params.median_filtering), us[:, 2:]), dim=1)
            for _ in range(params.inner_iterations):
                mask = None if on_cpu and bool(running.all()) else running
                us, pxs, pys, error = step(us, pxs, pys, *fixed, mask, l_t, params.theta, taut)
                running = running & (error > scaled_eps)
                if on_cpu and not bool(running.any()):
                    break
            if n == batch:
                u, px, py, active = us, pxs, pys, running
            else:
                u = u.index_copy(0, idx, us)
                px = px.index_copy(0, idx, pxs)
                py = py.index_copy(0, idx, pys)
                active = active.index_copy(0, idx, running)
    return u


def _median(u: torch.Tensor, size: int) -> torch.Tensor:
    if size == 5:
        return median5(u)
    # cv2.medianBlur accepts 3 or 5 for float images; 3 is rare enough for a plain median.
    if size != 3:
        raise ValueError(f"median_filtering must be 0, 1, 3 or 5 (OpenCV's), got {size}")
    h, w = u.shape[-2:]
    padded = F.pad(u, (1, 1, 1, 1), mode="replicate")
    shifted = [padded[..., dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
    return torch.stack(shifted, dim=-1).median(dim=-1).values


def tvl1_flow(
    frames0: torch.Tensor,
    frames1: torch.Tensor,
    params: TVL1Params | None = None,
    *,
    compile: bool = False,
) -> torch.Tensor:
    """TV-L1 optical flow from each of ``frames0`` to the matching one of ``frames1``.

    Parameters
    ----------
    frames0, frames1:
        ``(B, H, W)`` grey frames, uint8 or float on the 0..255 scale, on any device; the flow
        is computed on that device.
    params:
        Every :class:`~twostream.flow.presets.TVL1Params` field, with OpenCV's meaning (default:
        OpenCV's defaults). See the module docstring for how ``epsilon`` maps onto a batch.
    compile:
        Fuse each primal-dual step with ``torch.compile`` (a few kernels instead of 26 on a
        GPU; compiling takes a minute or two, once per process).

    Returns
    -------
    torch.Tensor
        ``(B, H, W, 2)`` float32 flow in pixels, ``[..., 0]`` rightward, ``[..., 1]`` downward,
        on the frames' device.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> img = torch.rand(1, 1, 40, 48, generator=g) * 255
    >>> img = F.avg_pool2d(img, 5, 1, 2).squeeze(1)  # smooth, so it can be tracked
    >>> flow = tvl1_flow(img, torch.roll(img, 1, dims=2), TVL1Params(nscales=2))
    >>> flow.shape, bool(abs(flow[0, 10:-10, 10:-10, 0].median() - 1) < 0.2)
    (torch.Size([1, 40, 48, 2]), True)
    """
    params = params or TVL1Params()
    if frames0.shape != frames1.shape or frames0.dim() != 3:
        raise ValueError(
            f"expected two (B, H, W) batches of equal shape, got {tuple(frames0.shape)} and "
            f"{tuple(frames1.shape)}"
        )
    if params.nscales < 1 or params.warps < 1 or not 0 < params.scale_step < 1:
        raise ValueError("nscales and warps must be >= 1 and scale_step in (0, 1)")
    if params.median_filtering not in (0, 1, 3, 5):
        raise ValueError(
            f"median_filtering must be 0, 1, 3 or 5 (OpenCV's), got {params.median_filtering}"
        )
    batch, h, w = frames0.shape
    if h < 3 or w < 3:
        raise ValueError(f"frames must be at least 3x3 px, got {h}x{w}")
    step = torch.compile(_step, dynamic=True) if compile else _step
    sizes = pyramid_sizes(h, w, params.nscales, params.scale_step)
    inv = 1.0 / params.scale_step
    with torch.inference_mode():
        levels = [(frames0.float(), frames1.float())]
        for size in sizes[1:]:
            a, b = levels[-1]
            levels.append((_resize(a, size, (inv, inv)), _resize(b, size, (inv, inv))))
        channels = 3 if params.gamma else 2
        u = frames0.new_zeros((batch, channels, *sizes[-1]), dtype=torch.float32)
        for s in range(len(sizes) - 1, -1, -1):
            u = _one_scale(*levels[s], u, params, step)
            if s == 0:
                break
            finer = sizes[s - 1]
            # Sized by the target (fx = 0 in OpenCV): the mapping uses the size ratio.
            u = _resize(u, finer, (sizes[s][0] / finer[0], sizes[s][1] / finer[1]))
            u = torch.cat((u[:, :2] * inv, u[:, 2:]), dim=1)  # u3 (illumination) is not scaled
        return u[:, :2].permute(0, 2, 3, 1).contiguous()



def default_batch(height: int, width: int, device: str | torch.device) -> int:
    """Frame pairs per batch worth running: 64 on a GPU, which needs batches to fill up; on
    CPU only small frames (up to ~64k pixels a batch), as batching there pays for per-call
    overhead but is slower per pair at 340x256 (the working set leaves the caches;
    benchmarks/tvl1_torch.py)."""
    if torch.device(device).type == "cuda":
        return 64
    return max(1, min(8, 2**16 // max(height * width, 1)))


def tvl1_flow_numpy(
    frames0: np.ndarray,
    frames1: np.ndarray,
    params: TVL1Params | None = None,
    *,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """:func:`tvl1_flow` on ``(B, H, W)`` uint8 numpy frames; returns ``(B, H, W, 2)`` float32."""
    a = torch.from_numpy(np.ascontiguousarray(frames0)).to(device)
    b = torch.from_numpy(np.ascontiguousarray(frames1)).to(device)
    return tvl1_flow(a, b, params).cpu().numpy()


def iter_tvl1_flow(
    frames: Iterable[np.ndarray],
    params: TVL1Params | None = None,
    *,
    device: str | torch.device = "cpu",
    batch: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield the flow of each consecutive pair of ``(H, W)`` uint8 ``frames``, ``batch`` pairs
    per call of :func:`tvl1_flow`, holding at most ``batch + 1`` frames.

    ``batch=None``: :func:`default_batch`.
    """
    if batch is not None and batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    held: list[np.ndarray] = []
    for frame in frames:
        held.append(frame)
        if batch is None:
            batch = default_batch(*frame.shape[:2], device)
        if len(held) == batch + 1:
            stack = np.stack(held)
            yield from tvl1_flow_numpy(stack[:-1], stack[1:], params, device=device)
            held = held[-1:]
    if len(held) > 1:
        stack = np.stack(held)
        yield from tvl1_flow_numpy(stack[:-1], stack[1:], params, device=device)
