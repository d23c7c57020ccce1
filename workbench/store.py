"""Result files that survive a full disk, a killed writer and a stray edit: atomic writes, checksummed loads.

A result is a flat dict of NumPy arrays stored as an ``.npz`` file (readable with ``np.load``), plus one
extra entry :data:`CHECKSUM_KEY`: the SHA-256 of every other entry's name, dtype, shape and bytes.

* :func:`save_result` writes to a temporary file in the same folder, flushes, ``fsync``\\ s, then
  ``os.replace``\\ s it onto the final name (atomic on POSIX and Windows): a reader sees the old file or the
  new one, never half of one. The folder is ``fsync``\\ ed too (where the platform allows) so the rename
  survives a power cut.
* :func:`load_result` returns ``None`` for a missing file, and also, with one :class:`DamagedResultWarning`
  naming the file and the reason, for a damaged one: empty, truncated, not a zip archive, a CRC error,
  pickled objects, no checksum (a foreign ``.npz``) or a checksum that does not match. The caller then
  recomputes the point and overwrites the file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["CHECKSUM_KEY", "DamagedResultWarning", "checksum", "load_result", "save_result"]

#: the entry of the ``.npz`` that holds the checksum of all the others
CHECKSUM_KEY = "__workbench_sha256__"


class DamagedResultWarning(UserWarning):
    """A result file existed but could not be trusted; it is treated as missing and recomputed."""


def checksum(arrays: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the entries of ``arrays`` (sorted by name): name, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        if name == CHECKSUM_KEY:
            continue
        a = np.ascontiguousarray(np.asarray(arrays[name]))
        h.update(name.encode("utf-8") + b"\0")
        h.update(f"{a.dtype.str}{a.shape}".encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_result(path: str | os.PathLike[str], arrays: Mapping[str, Any]) -> None:
    """Write ``arrays`` (name -> array) with their checksum to ``path`` atomically (see the module docstring)."""
    path = os.fspath(path)
    if not isinstance(arrays, Mapping) or not arrays:
        raise ValueError(f"arrays must be a non-empty mapping of name -> array, got {type(arrays).__name__}")
    data = {str(k): np.asarray(v) for k, v in arrays.items()}
    for k, v in data.items():
        if k == CHECKSUM_KEY:
            raise ValueError(f"arrays must not hold the reserved name {CHECKSUM_KEY!r}")
        if v.dtype == object:
            raise TypeError(f"arrays[{k!r}] has dtype object; only plain numeric/string arrays can be stored")
    data[CHECKSUM_KEY] = np.asarray(checksum(data))
    buf = io.BytesIO()
    np.savez(buf, **data)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def _read(path: str) -> tuple[dict[str, np.ndarray] | None, str]:
    """(arrays, "") for a sound file, else (None, why not)."""
    try:
        with open(path, "rb") as fh:  # read whole: np.load leaks its handle when the archive is broken
            raw = fh.read()
    except OSError as exc:
        return None, f"it cannot be read ({exc.strerror})"
    if not raw:
        return None, "it is empty"
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            if not hasattr(f, "files"):
                return None, "it is a bare array, not a result archive"
            data = {k: f[k] for k in f.files}
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, ValueError (pickles), OSError...
        return None, f"it is damaged or not a result file ({type(exc).__name__}: {' '.join(str(exc).split())[:80]})"
    stored = data.pop(CHECKSUM_KEY, None)
    if stored is None:
        return None, "it has no checksum (not written by workbench.store)"
    if str(stored) != checksum(data):
        return None, "its checksum does not match its contents"
    return data, ""


def load_result(path: str | os.PathLike[str], *, warn: bool = True) -> dict[str, np.ndarray] | None:
    """The arrays stored at ``path`` by :func:`save_result`; ``None`` if the file is missing or damaged.

    A damaged file (see the module docstring) is reported once by a :class:`DamagedResultWarning` (unless
    ``warn=False``) that names the file, says why and that the point will be recomputed.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return None
    data, why = _read(path)
    if data is None and warn:
        warnings.warn(f"result file {path} is ignored because {why}; that point is recomputed",
                      DamagedResultWarning, stacklevel=2)
    return data
