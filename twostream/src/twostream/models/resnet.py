"""ResNet streams for two-stream action recognition.

The spatial stream is a torchvision ResNet on one RGB frame (3 input channels); the temporal
stream is the same network with a first convolution over ``2L`` stacked flow channels
(x and y displacement of L consecutive frame pairs, interleaved ``x1, y1, x2, y2, ...``).

Weights keep torchvision's parameter names, so ImageNet checkpoints (``resnet50-*.pth``)
load directly. Loading adapts instead of failing:

* a different ``in_chans`` adapts ``conv1`` by cross-modality initialisation as in TSN
  (Wang et al. 2016): average the RGB filters over their input channels, then replicate
  that mean to every input channel;
* a different ``num_classes`` drops the classifier head (it stays randomly initialised);
* missing and unexpected keys are logged; a file whose tensors do not fit the architecture
  raises :class:`WeightsMismatchError` naming the file and the keys.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from twostream.errors import OptionError, TwostreamError

__all__ = [
    "ARCHS",
    "StreamResNet",
    "WeightsMismatchError",
    "build_model",
    "find_cached_weights",
    "load_weights",
    "read_torch_file",
]

logger = logging.getLogger(__name__)

# arch -> (block, layers): ResNet-18 for quick runs, ResNet-50 as in the two-stream setup.
ARCHS: dict[str, tuple[type[nn.Module], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


class WeightsMismatchError(TwostreamError):
    """A weights file whose tensors do not fit the requested architecture."""


class StreamResNet(ResNet):
    """A torchvision ResNet with a configurable input width and a split forward.

    Args:
        arch: ``"resnet18"`` or ``"resnet50"``.
        in_chans: input channels: 3 for RGB frames, ``2 * L`` for L stacked flow fields.
        num_classes: number of action classes.
        drop_rate: dropout before the classifier (0 disables it).
    """

    def __init__(
        self,
        arch: str,
        *,
        in_chans: int = 3,
        num_classes: int = 1000,
        drop_rate: float = 0.0,
    ) -> None:
        if arch not in ARCHS:
            raise OptionError(f"unknown arch {arch!r}; choose one of {sorted(ARCHS)}")
        block, layers = ARCHS[arch]
        super().__init__(block, layers, num_classes=num_classes)
        self.arch = arch
        self.in_chans = in_chans
        self.num_features = self.fc.in_features
        if in_chans != 3:
            self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone up to the last residual stage: ``(N, C, H, W) -> (N, F, h, w)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x

    def forward_head(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """Global pooling, dropout and classifier: ``(N, F, h, w) -> (N, num_classes)``."""
        x = torch.flatten(self.avgpool(x), 1)
        x = self.drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def find_cached_weights(arch: str) -> Path | None:
    """Return torchvision's cached ImageNet file for ``arch`` (``$TORCH_HOME/hub/checkpoints``)."""
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(checkpoints.glob(f"{arch}-*.pth")) if checkpoints.is_dir() else []
    return found[-1] if found else None


def _adapt_conv1(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    # TSN cross-modality initialisation: the mean RGB filter, replicated to every channel.
    return weight.mean(dim=1, keepdim=True).repeat(1, in_chans, 1, 1)


def read_torch_file(path: str | Path, what: str = "PyTorch weights file") -> object:
    """``torch.load(path, weights_only=True)`` on CPU, with one clear error for a bad file.

    Raises:
        TwostreamError: the file is missing, empty, truncated or not a PyTorch file. The
            message never repeats PyTorch's advice to pass ``weights_only=False``: loading an
            untrusted file that way can run arbitrary code.
    """
    path = Path(path)
    if not path.is_file():
        raise TwostreamError(f"{what} not found: {path}")
    if path.stat().st_size == 0:
        raise TwostreamError(f"{what} {path} is empty (0 bytes): restore or recreate it")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a truncated or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = "not a PyTorch file" if "weights_only" in str(exc) else first
        raise TwostreamError(
            f"{what} {path} is unreadable (truncated or not made by PyTorch: {reason}); "
            "restore or recreate it"
        ) from None


def load_weights(model: StreamResNet, path: str | Path) -> None:
    """Load a weights file into ``model``, adapting ``conv1`` and the head where needed.

    Accepts a bare state dict (torchvision's ImageNet files) or one of our checkpoints
    (a dict with a ``"model"`` entry).

    Raises:
        TwostreamError: the file is missing, empty or unreadable.
        WeightsMismatchError: tensors of the backbone do not fit this architecture.
    """
    path = Path(path)
    state = read_torch_file(path, "weights file")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise WeightsMismatchError(f"{path} does not hold a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}

    own = model.state_dict()
    conv1 = state.get("conv1.weight")
    if conv1 is not None and conv1.shape[1] != model.in_chans and conv1.shape[0] == 64:
        state["conv1.weight"] = _adapt_conv1(conv1, model.in_chans)
        logger.info(
            "%s: conv1 adapted from %d to %d input channels (cross-modality init)",
            path.name, conv1.shape[1], model.in_chans,
        )
    head = [k for k in ("fc.weight", "fc.bias") if k in state and state[k].shape != own[k].shape]
    if head:
        logger.info("%s: classifier head dropped (different number of classes)", path.name)
        for k in head:
            del state[k]

    mismatched = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    missing = [k for k in own if k not in state and not k.startswith("fc.")]
    if mismatched or missing:
        shown = (mismatched + [f"{k} missing" for k in missing])[:6]
        more = len(mismatched) + len(missing) - len(shown)
        raise WeightsMismatchError(
            f"{path} does not fit {model.arch} with {model.in_chans} input channels: "
            + "; ".join(shown)
            + (f" (and {more} more)" if more > 0 else "")
        )
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys:
        logger.warning("%s: missing keys left at init: %s", path.name, result.missing_keys)
    if result.unexpected_keys:
        logger.warning("%s: unexpected keys ignored: %s", path.name, result.unexpected_keys)


def build_model(
    arch: str,
    *,
    in_chans: int,
    num_classes: int,
    weights: str | Path | None = None,
    drop_rate: float = 0.0,
) -> StreamResNet:
    """Build a stream network, initialised from ImageNet weights when they are available.

    Args:
        arch: ``"resnet18"`` or ``"resnet50"``.
        in_chans: 3 for the spatial stream, ``2 * L`` for the temporal one.
        num_classes: number of action classes.
        weights: a weights file; ``None`` looks in torchvision's cache
            (``$TORCH_HOME/hub/checkpoints/<arch>-*.pth``) and falls back to random
            initialisation with one warning; ``"none"`` means random init on purpose.
        drop_rate: dropout before the classifier.

    Examples:
        >>> m = build_model("resnet18", in_chans=20, num_classes=51, weights="none")
        >>> m(torch.zeros(1, 20, 64, 64)).shape
        torch.Size([1, 51])
    """
    model = StreamResNet(arch, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
    if isinstance(weights, str) and weights.lower() == "none":
        return model
    path = Path(weights) if weights is not None else find_cached_weights(arch)
    if path is None:
        logger.warning(
            "no ImageNet weights for %s (pass --weights PATH or put %s-*.pth in %s): "
            "training from random initialisation",
            arch, arch, Path(torch.hub.get_dir()) / "checkpoints",
        )
        return model
    load_weights(model, path)
    logger.info("initialised %s from %s", arch, path)
    return model
