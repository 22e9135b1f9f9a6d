"""Stream networks: shapes, the forward seam, weights loading and its adaptations."""

from __future__ import annotations

import logging

import pytest
import torch

from twostream.errors import TwostreamError
from twostream.models import StreamResNet, WeightsMismatchError, build_model, load_weights


@pytest.fixture()
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


@pytest.fixture()
def imagenet_like(tmp_path):
    """torchvision's own resnet18 state dict (3 channels, 1000 classes; random values, as
    there is no download here) saved to a file, as ImageNet checkpoints are."""
    import torchvision

    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize(("in_chans", "classes"), [(3, 6), (20, 51)])
def test_forward_is_features_then_head(in_chans, classes, torch_home):
    model = build_model("resnet18", in_chans=in_chans, num_classes=classes, weights="none").eval()
    x = torch.randn(2, in_chans, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (2, 512, 2, 2)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 512)
    torch.testing.assert_close(model(x), model.forward_head(feats))
    assert model(x).shape == (2, classes)


def test_cross_modality_init_and_head_drop(imagenet_like, caplog):
    path, state = imagenet_like
    with caplog.at_level(logging.INFO, logger="twostream.models.resnet"):
        model = build_model("resnet18", in_chans=20, num_classes=6, weights=path)
    conv1 = model.conv1.weight.detach()
    assert conv1.shape == (64, 20, 7, 7)
    expected = state["conv1.weight"].mean(dim=1, keepdim=True).expand(-1, 20, -1, -1)
    torch.testing.assert_close(conv1, expected)
    layer = model.layer3[1].conv2.weight.detach()
    torch.testing.assert_close(layer, state["layer3.1.conv2.weight"])
    assert model.fc.weight.shape == (6, 512)
    assert "cross-modality" in caplog.text and "head dropped" in caplog.text


def test_same_shape_weights_load_exactly_and_checkpoints_are_accepted(imagenet_like, tmp_path):
    path, state = imagenet_like
    model = build_model("resnet18", in_chans=3, num_classes=1000, weights=path)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k])
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, ckpt)
    other = StreamResNet("resnet18", in_chans=3, num_classes=1000)
    load_weights(other, ckpt)
    torch.testing.assert_close(other.fc.weight, state["fc.weight"])


def test_weights_of_another_architecture_are_a_clear_error(imagenet_like):
    path, _ = imagenet_like
    with pytest.raises(WeightsMismatchError) as err:
        build_model("resnet50", in_chans=3, num_classes=10, weights=path)
    msg = str(err.value)
    assert str(path) in msg and "resnet50" in msg
    assert "layer1.0.conv1.weight" in msg  # a mismatched key is named


class _NotAllowed:  # a pickled custom class: weights_only=True refuses it
    pass


def _weights_file(tmp_path, kind: str):
    path = tmp_path / f"{kind}.pth"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif kind == "truncated":
        torch.save(build_model("resnet18", in_chans=3, num_classes=2, weights="none")
                   .state_dict(), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "pickle":
        torch.save({"model": _NotAllowed()}, path)
    return path


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated", "pickle"])
def test_bad_weights_file_is_one_clear_error_without_unsafe_advice(tmp_path, kind):
    path = _weights_file(tmp_path, kind)
    with pytest.raises(TwostreamError) as err:
        build_model("resnet18", in_chans=3, num_classes=2, weights=path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    assert "weights_only" not in msg  # PyTorch's advice would make loading unsafe


def test_torchvision_cache_is_used_else_one_warning(torch_home, imagenet_like, caplog):
    with caplog.at_level(logging.WARNING):
        build_model("resnet18", in_chans=3, num_classes=4)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "random initialisation" in warnings[0].getMessage()

    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    path, state = imagenet_like
    (cache / "resnet18-f37072fd.pth").write_bytes(path.read_bytes())
    model = build_model("resnet18", in_chans=3, num_classes=4)
    torch.testing.assert_close(model.conv1.weight.detach(), state["conv1.weight"])


def test_unknown_arch():
    with pytest.raises(ValueError, match="resnet18"):
        build_model("vgg16", in_chans=3, num_classes=2, weights="none")
