"""Range checks of command options that need no data, so a bad value fails at once.

Torch-free on purpose: the CLI runs these before importing the model code, which takes
seconds.
"""

from __future__ import annotations

from twostream.errors import OptionError

__all__ = ["check_test_options", "parse_splits"]


def parse_splits(value: str | int | None, *, allow_all: bool = True) -> list[int] | None:
    """``"1"``/``"2"``/``"3"`` (or ``"all"`` when allowed) as a list of splits; None stays None.

    Examples:
        >>> parse_splits("all"), parse_splits(2), parse_splits(None)
        ([1, 2, 3], [2], None)
    """
    if value is None:
        return None
    if str(value) == "all" and allow_all:
        return [1, 2, 3]
    if str(value) in ("1", "2", "3"):
        return [int(value)]
    allowed = "1, 2, 3 or all" if allow_all else "1, 2 or 3"
    raise OptionError(f"--split must be {allowed}, got {value!r}")


def check_test_options(
    *,
    crops: int = 1,
    segments: int = 25,
    train_segments: int = 1,
    batch_size: int = 1,
    workers: int = 0,
    top_k: int = 1,
) -> None:
    """Raise :class:`OptionError` for a test-protocol option out of range."""
    if crops not in (1, 10):
        raise OptionError(f"--crops must be 1 or 10, got {crops}")
    for name, value, low in (("--segments", segments, 1), ("--train-segments", train_segments, 1),
                             ("--batch-size", batch_size, 1), ("--workers", workers, 0),
                             ("--top-k", top_k, 1)):
        if value < low:
            raise OptionError(f"{name} must be at least {low}, got {value}")
