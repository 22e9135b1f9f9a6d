"""The one base of every error a twostream user can fix (bad paths, options, runs, data).

The CLI turns a :class:`TwostreamError` into one red line and exit code 1; anything else is a
bug and keeps its traceback. It derives from ``ValueError`` so callers that caught the older
``ValueError`` subclasses (``DatasetError``, ``FusionError``...) keep working.
"""

from __future__ import annotations

__all__ = ["TwostreamError"]


class TwostreamError(ValueError):
    """A problem with the user's input or files; the message names the thing and the fix."""
