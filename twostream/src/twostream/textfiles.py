"""Text of the list files users bring: split files, rawframe lists, ``classes.txt`` and
``classInd.txt``, as Windows editors and other tools save them.

UTF-16 with or without a byte-order mark, UTF-8 with or without one, else Latin-1 (which never
fails and keeps names byte-identical to the disk's).
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

__all__ = ["decode_text", "read_text"]


def decode_text(raw: bytes) -> str:
    """Text of a list file's bytes; a byte-order mark is dropped.

    Examples:
        >>> decode_text("a 1\\n".encode("utf-16")), decode_text(b"\\xef\\xbb\\xbfa 1\\n")
        ('a 1\\n', 'a 1\\n')
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")  # the BOM picks the byte order and is dropped
    # UTF-16 without a BOM (as Windows editors save "Unicode"): ASCII names put a NUL in
    # every other byte, on the odd positions for little-endian.
    if len(raw) >= 4 and raw.count(0) * 3 >= len(raw):
        odd = raw[1::2].count(0) >= raw[0::2].count(0)
        try:
            return raw.decode("utf-16-le" if odd else "utf-16-be")
        except UnicodeDecodeError:
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.removeprefix("\ufeff")


def read_text(path: str | os.PathLike[str]) -> str:
    """:func:`decode_text` of the file at ``path``."""
    return decode_text(Path(path).read_bytes())
