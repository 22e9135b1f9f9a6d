"""The one base of every error a twostream user can fix (bad paths, options, runs, data).

The CLI turns a :class:`TwostreamError` into one red line and exit code 1; anything else is a
bug and keeps its traceback. Library code converts a library's ``ValueError``/``OSError``
into one where the mistake is known to be the user's (:func:`writing`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DatasetError", "OptionError", "TwostreamError", "writing"]


class TwostreamError(Exception):
    """A problem with the user's input or files; the message names the thing and the fix."""


class OptionError(TwostreamError, ValueError):
    """An option value outside what is allowed.

    Also a ``ValueError``: to a caller of the library it is a bad argument.
    """


class DatasetError(TwostreamError):
    """A dataset folder is missing or holds nothing usable; the message names it."""


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn an ``OSError`` while creating or writing the user-chosen ``path`` into a
    :class:`TwostreamError` naming it (a file where a folder should be, no permission)."""
    try:
        yield
    except OSError as exc:
        raise TwostreamError(f"cannot write {path}: {exc.strerror or exc}") from exc
