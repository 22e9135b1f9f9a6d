from __future__ import annotations

import cv2
import numpy as np
import pytest

from twostream.flow.methods import (
    compute_flow,
    dequantize_flow,
    endpoint_error,
    quantize_flow,
)
from twostream.flow.presets import TVL1_PRESETS, TVL1Params
from twostream.synth import render_motion_clip

DIRECTIONS = {"right": (2, 0), "left": (-2, 0), "down": (0, 2), "up": (0, -2)}


def _moving_square(dx: int, dy: int, frames: int = 5, h: int = 48, w: int = 64):
    """Grey frames with a textured 20x20 square moving by (dx, dy) px per frame, and its masks."""
    rng = np.random.default_rng(1)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (20, 20)).astype(np.float32), (0, 0), 1.0)
    tex = cv2.normalize(tex, None, 30, 230, cv2.NORM_MINMAX)
    bg = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.5)
    bg = cv2.normalize(bg, None, 60, 180, cv2.NORM_MINMAX).astype(np.uint8)
    out = np.repeat(bg[None], frames, axis=0)
    masks = np.zeros((frames, h, w), bool)
    x0, y0 = (w - 20) // 2 - dx * frames // 2, (h - 20) // 2 - dy * frames // 2
    for t in range(frames):
        x, y = x0 + dx * t, y0 + dy * t
        out[t, y : y + 20, x : x + 20] = tex.astype(np.uint8)
        masks[t, y + 4 : y + 16, x + 4 : x + 16] = True  # interior, away from edges
    return out, masks


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("method", ["tvl1", "tvl1-torch", "dis", "farneback"])
def test_quantised_flow_points_the_way_content_moves(direction, method):
    dx, dy = DIRECTIONS[direction]
    frames, masks = _moving_square(dx, dy)
    q = quantize_flow(compute_flow(frames, method=method), bound=20.0)
    qx = np.median(q[..., 0][masks[:-1]])
    qy = np.median(q[..., 1][masks[:-1]])
    # 2 px/frame with bound 20 is 128 +/- 12.75 in quantised units.
    expect_x = 128 + np.sign(dx) * 12.75
    expect_y = 128 + np.sign(dy) * 12.75
    assert abs(qx - expect_x) <= 5, (qx, qy)
    assert abs(qy - expect_y) <= 5, (qx, qy)
    # The still, textured background stays at ~128.
    still = np.ones_like(masks[0])
    still[6:-6, 6:-6] = False
    assert abs(np.median(q[0, ..., 0][still]) - 128) <= 1
    assert abs(np.median(q[0, ..., 1][still]) - 128) <= 1


@pytest.mark.parametrize("kind", ["right", "left", "up", "down"])
def test_synthetic_motion_classes_have_their_direction_in_tvl1_flow(kind):
    clip = render_motion_clip(kind, np.random.default_rng(3), width=64, height=48, frames=5)
    flow = compute_flow(clip, method="tvl1", tvl1=TVL1_PRESETS["fast"])
    moving = np.linalg.norm(flow, axis=-1) > 0.5
    assert moving.mean() > 0.03  # the disc moves
    mx, my = flow[moving].mean(0)
    sign = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}[kind]
    main, other = (mx, my) if sign[0] else (my, mx)
    assert main * (sign[0] or sign[1]) > 0.5 and abs(other) < 0.3


def test_compute_flow_shape_and_errors():
    frames = np.random.default_rng(0).integers(0, 256, (4, 24, 32, 3), dtype=np.uint8)
    flow = compute_flow(frames, method="dis")
    assert flow.shape == (3, 24, 32, 2) and flow.dtype == np.float32
    with pytest.raises(ValueError, match="at least 2 frames"):
        compute_flow(frames[:1])
    with pytest.raises(ValueError, match="allowed: tvl1, tvl1-torch, dis, farneback"):
        compute_flow(frames, method="lucas")


def test_tvl1_params_reach_opencv():
    algo = TVL1Params().create()
    assert (algo.getScalesNumber(), algo.getWarpingsNumber()) == (5, 5)
    assert (algo.getInnerIterations(), algo.getOuterIterations()) == (30, 10)
    fast = TVL1_PRESETS["fast"].create()
    assert fast.getScalesNumber() < 5 and fast.getWarpingsNumber() < 5
    custom = TVL1Params().replace(tau=0.2, warps=3, epsilon=None).create()
    assert custom.getTau() == pytest.approx(0.2) and custom.getWarpingsNumber() == 3
    assert custom.getEpsilon() == pytest.approx(0.01)


def test_quantize_maps_bounds_and_clips():
    v = np.array([-100.0, -20.0, 0.0, 10.0, 20.0, 55.0], np.float32)
    assert quantize_flow(v).tolist() == [0, 0, 128, 191, 255, 255]
    assert quantize_flow(v, bound=10.0).tolist() == [0, 0, 128, 255, 255, 255]
    assert quantize_flow(v).dtype == np.uint8
    with pytest.raises(ValueError, match="bound"):
        quantize_flow(v, bound=0)


def test_dequantize_inverts_quantize_within_half_a_step():
    v = np.random.default_rng(0).uniform(-20, 20, 1000).astype(np.float32)
    back = dequantize_flow(quantize_flow(v, 20.0), 20.0)
    assert back.dtype == np.float32
    assert np.abs(back - v).max() <= 0.5 * 40 / 255 + 1e-5
    assert dequantize_flow(np.array([0, 255], np.uint8)).tolist() == [-20.0, 20.0]


def test_endpoint_error_counts_only_pixels_where_reference_moves():
    ref = np.zeros((2, 10, 10, 2), np.float32)
    ref[:, :5, :, 0] = 4.0  # top half moves 4 px right
    flow = ref.copy()
    flow[:, :5, :, 1] = 3.0  # error of 3 px on the moving half...
    flow[:, 5:, :, :] = 100.0  # ...and a huge error where the reference is still: ignored
    assert endpoint_error(flow, ref) == pytest.approx(3.0)
    assert np.isnan(endpoint_error(flow, np.zeros_like(ref)))
    with pytest.raises(ValueError, match="shapes"):
        endpoint_error(flow[0], ref)


@pytest.mark.parametrize("method", ["tvl1", "dis"])
def test_reduced_resolution_flow_comes_back_at_full_size_in_full_size_pixels(method):
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (96, 128)).astype(np.float32), (0, 0), 2.0)
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    frames = np.stack([img, np.roll(img, (-2, 4), axis=(0, 1))])  # 4 px right, 2 px up
    params = TVL1_PRESETS["fast"] if method == "tvl1" else None
    full = compute_flow(frames, method=method, tvl1=params)
    half = compute_flow(frames, method=method, tvl1=params, scale=0.5)
    assert half.shape == full.shape == (1, 96, 128, 2)
    # On the half-size frames the content moves 2 and -1 px; returned: 4 and -2 again.
    inner = half[0, 16:-16, 16:-16].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [4.0, -2.0], atol=0.3)
    assert endpoint_error(half, full) < 1.0
    with pytest.raises(ValueError, match=r"scale must be in \(0, 1\]"):
        compute_flow(frames, scale=1.5)
