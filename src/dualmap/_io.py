"""One file format for every saved dualmap object.

A dualmap file is a NumPy ``.npz`` archive (``numpy.savez``, no pickles) holding

* ``__meta__``: a 0-d unicode array with a JSON object ``{"kind": ..., "format_version": ...,
  "dualmap_version": ..., ...}`` — the object's type and its scalar parameters;
* the object's arrays under documented names (see ``docs/file-format.md``).

Files are written atomically (to a temporary file in the same folder, then renamed), so an
interrupted save never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._version import __version__

__all__ = ["save_archive", "load_archive", "atomic_open", "atomic_path", "json_default", "write_text_atomic",
           "CorruptFileError"]

FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_path(path, *, suffix: str = ".tmp"):
    """Yield the path of a new empty temporary file next to ``path`` (ending in ``suffix``) for the block to
    write; on success give it the permissions of a normally created file (``mkstemp`` makes it 0600) and rename
    it onto ``path`` (atomic on POSIX); on any error remove it, so ``path`` is either the old file or the complete
    new one, never half-written. For writers that want a file name (e.g. matplotlib's animation writers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode: str = "w"):
    """Open a temporary file next to ``path`` for writing, published onto ``path`` when the block succeeds and
    removed when it fails (:func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
        yield handle


class CorruptFileError(ValueError):
    """A file is not a readable dualmap archive of the expected kind."""


def json_default(value):
    """``json.dumps(..., default=json_default)``: numpy scalars and arrays as plain numbers and lists, paths as
    strings; anything else is an error rather than a silently stringified object."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_open`); return the path."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)


def save_archive(path, kind: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` atomically; return the path written."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    header = {"kind": kind, "format_version": FORMAT_VERSION, "dualmap_version": __version__}
    header.update(meta or {})
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    if "__meta__" in payload:
        raise ValueError("'__meta__' is a reserved array name")
    payload["__meta__"] = np.array(json.dumps(header))
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **payload)
    return path


def load_archive(path, kind: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a dualmap archive of the given ``kind``; return ``(meta, arrays)``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CorruptFileError
        If the file is truncated, not an ``.npz`` archive, lacks the header, or holds another kind.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"{path} is not a readable dualmap file (truncated or corrupt): {exc}") from exc
    if "__meta__" not in arrays:
        raise CorruptFileError(f"{path} has no dualmap header ('__meta__'); it was not written by dualmap")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path} has a corrupt dualmap header: {exc}") from exc
    if meta.get("kind") != kind:
        raise CorruptFileError(f"{path} holds a {meta.get('kind')!r}, not a {kind!r}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CorruptFileError(
            f"{path} uses format version {meta['format_version']}; this dualmap reads up to {FORMAT_VERSION}"
        )
    return meta, arrays
