"""benchmarks/gpu_check.py: the bundle fits in 60 MB, and ``check --device cpu --quick`` passes
in a process that can import neither PyAV nor OpenCV (nor onnx, scikit-learn, matplotlib):
what a bare PyTorch machine has."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PROJECT = Path(__file__).resolve().parents[1]
SCRIPT = PROJECT / "benchmarks" / "gpu_check.py"
# What a machine with only Python, torch, torchvision, NumPy and Pillow lacks and twostream
# could reach for. None in sys.modules makes `import x` raise ImportError and
# importlib.util.find_spec(x) return None, as for a package that is not installed.
ABSENT = ("av", "cv2", "skvideo", "sklearn", "matplotlib", "onnx", "onnxruntime", "scipy",
          "pandas", "duckdb", "kuzu")
SHIM = (
    "import runpy, sys\n"
    "for name in {absent!r}:\n"
    "    sys.modules[name] = None\n"
    "sys.argv = [{script!r}, *sys.argv[1:]]\n"
    "runpy.run_path({script!r}, run_name='__main__')\n"
)


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpu-check") / "bundle"
    _gpu_check().make_bundle(out, epochs=1, pairs=2, echo=lambda *a, **k: None)
    return out


def _bare_python(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    shim = SHIM.format(absent=ABSENT, script=str(SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    return subprocess.run([sys.executable, "-c", shim, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_bundle_fits_and_holds_what_the_check_reads(bundle: Path) -> None:
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    assert size <= 60 * 2**20
    manifest = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    assert manifest["format"] == 1
    for stream in ("spatial", "temporal"):
        run = bundle / "runs" / stream
        assert (run / "checkpoint_split1.pt").is_file() and (run / "scores_split1.npz").is_file()
    with np.load(bundle / "pairs.npz") as z:
        assert z["full_frames0"].shape == (2, 256, 340)
        assert z["full_flow"].shape == (2, 256, 340, 2)
        assert z["small_flow"].shape == (2, 128, 170, 2)
        assert np.abs(z["full_flow"]).max() > 1.0  # the pairs move
    predicted = json.loads((bundle / "runs" / "predict.json").read_text(encoding="utf-8"))
    assert len(predicted) == manifest["synth"]["classes"]  # one test video per class


@pytest.mark.slow
def test_quick_cpu_check_passes_without_pyav_or_opencv(bundle: Path, tmp_path: Path) -> None:
    blocked = _bare_python(cwd=tmp_path)  # no arguments: argparse's usage error, after imports
    assert "usage" in blocked.stderr and "ModuleNotFoundError" not in blocked.stderr

    done = _bare_python("check", str(bundle), "--device", "cpu", "--quick", "--out",
                        str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text(encoding="utf-8"))
    assert result["ok"] and result["device"] == "cpu" and result["quick"]
    assert result["importable"] == {"av": False, "cv2": False, "onnx": False}
    rows = result["rows"]
    assert not [r for r in rows if r["ok"] is False]
    epe = [r["value"] for r in rows if r["figure"].startswith("EPE vs OpenCV")]
    assert len(epe) == 2 and max(epe) <= 0.3
    for step in ("evaluate", "predict"):
        top1 = [r["value"] for r in rows if r["step"] == step and "top-1" in r["figure"]]
        diffs = [r["value"] for r in rows if r["step"] == step and "max |score" in r["figure"]]
        assert top1 and all(a == b for a, b in (t.split("/") for t in top1))
        assert diffs and max(diffs) <= 1e-3
    learned = next(r for r in rows if r["figure"] == "test accuracy, motion classes")
    assert learned["value"] >= 0.6
    assert any(r["step"] == "train" and r["unit"] == "img/s" and r["value"] > 0 for r in rows)
    assert {r["value"] for r in rows if r["step"] == "onnx"} == {"skipped: onnx not installed"}
    assert (tmp_path / "out" / "gpu_check.txt").read_text(encoding="utf-8") in done.stdout


def test_compare_fails_on_another_top1_or_a_score_off_by_more_than_the_tolerance() -> None:
    gc = _gpu_check()
    cpu = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3498, 0.3502]])

    same = gc.Report()
    gc._compare("evaluate", "x", cpu + 5e-4, cpu, same)
    assert same.ok

    swapped = cpu.copy()
    swapped[1] = [0.1, 0.3, 0.6]
    other = gc.Report()
    gc._compare("evaluate", "x", swapped, cpu, other)
    assert not other.ok and [r["ok"] for r in other.rows] == [False, False]
    assert other.rows[0]["value"] == "2/3"

    tie = cpu.copy()
    tie[2] = [0.3, 0.3502, 0.3498]  # CPU's top two are 0.0004 apart: either is a right top-1
    close = gc.Report()
    gc._compare("evaluate", "x", tie, cpu, close)
    assert close.ok and close.rows[0]["value"] == "3/3"
    assert "FAIL" in other.table() and "FAIL" not in close.table()


@pytest.mark.slow
def test_onnx_step_exports_and_matches_onnxruntime_where_onnx_is_installed(
    bundle: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    import torch

    gc = _gpu_check()
    report = gc.Report()
    gc.check_onnx(bundle, torch.device("cpu"), tmp_path, report)
    assert report.ok and len(report.rows) == 2
    assert (tmp_path / "temporal.onnx").stat().st_size > 0
    assert report.rows[1]["value"] <= 1e-3  # onnxruntime's logits vs torch's
