"""What a dualmap output folder is, and who is writing it.

Every folder that ``dualmap run`` or ``dualmap sweep`` writes carries a marker, ``.dualmap.json``:
``{"kind": "study" | "sweep", ...identity...}``. A command checks the marker before it writes anything, so a
study is never written into a sweep folder (or the other way round), into a folder of unrelated files, or
over a file. A folder without a marker is claimed only when it is empty, or when it is a folder written by an
earlier dualmap (``adopt`` decides). A running command holds an exclusive lock (``.lock``, ``flock``; the
kernel releases it when the process dies, so a killed run never leaves a stale lock behind).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from pathlib import Path
from typing import Callable

from .._io import write_text_atomic
from .._version import __version__

__all__ = ["MARKER", "LOCK", "FolderError", "read_marker", "write_marker", "claim", "hold_lock", "check_writable"]

MARKER = ".dualmap.json"
LOCK = ".lock"

#: files an interrupted or failed dualmap run may leave in a folder before its marker exists
_LEFTOVERS = {"error.json", "metrics.json.corrupt", LOCK}


class FolderError(RuntimeError):
    """An output folder cannot be used as asked (a file, another kind, foreign content, locked, read-only)."""


def read_marker(folder) -> dict | None:
    """The folder's marker, or None when it has none; a corrupt marker is an error."""
    path = Path(folder) / MARKER
    try:
        marker = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FolderError(f"{path} is corrupt ({exc}); it marks {folder} as a dualmap folder — remove it only "
                          "if you know what the folder holds") from None
    if not isinstance(marker, dict) or "kind" not in marker:
        raise FolderError(f"{path} is not a dualmap folder marker (no 'kind')")
    return marker


def write_marker(folder, kind: str, **identity) -> dict:
    marker = {"kind": kind, **identity, "dualmap_version": __version__,
              "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    previous = read_marker(folder)
    if previous is not None and previous.get("created"):
        marker["created"] = previous["created"]
    write_text_atomic(Path(folder) / MARKER, json.dumps(marker, indent=1) + "\n")
    return marker


def check_writable(folder, what: str = "--out") -> Path:
    """``folder`` as a Path, or a FolderError when it names a file or cannot be created or written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{what} {folder} is a file, not a folder; choose a folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FolderError(f"{what} {folder}: a parent of it is a file, not a folder") from None
    except PermissionError:
        raise FolderError(f"{what} {folder} cannot be created: permission denied") from None
    except OSError as exc:
        raise FolderError(f"{what} {folder} cannot be created: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FolderError(f"{what} {folder} is read-only (permission denied); choose a folder you can write, or "
                          "copy it first")
    return folder


def _describe(marker: dict) -> str:
    if marker["kind"] == "study":
        return f"a dualmap study (config hash {marker.get('config_hash')})"
    if marker["kind"] == "sweep":
        return f"a dualmap sweep ({len(marker.get('grids', {}))} grid(s))"
    return f"a dualmap {marker['kind']!r} folder"


def claim(folder, kind: str, *, adopt: Callable[[Path], dict | None] | None = None, what: str = "--out") -> dict | None:
    """Make sure ``folder`` may hold a ``kind`` folder; return its marker (None when it is new or empty).

    A folder marked with another kind is refused; an unmarked folder that is not empty is refused unless
    ``adopt(folder)`` recognises it (a folder of an earlier dualmap) and returns its identity, which is then
    written as the marker. Nothing is written for a new or empty folder: the caller writes its marker.
    """
    folder = check_writable(folder, what)
    marker = read_marker(folder)
    if marker is not None:
        if marker["kind"] != kind:
            raise FolderError(f"{what} {folder} holds {_describe(marker)}, not a {kind}; choose another folder")
        return marker
    entries = sorted(p.name for p in folder.iterdir()
                     if p.name not in _LEFTOVERS and not (p.name.startswith(".") and p.name.endswith(".tmp")))
    if not entries:
        return None
    identity = adopt(folder) if adopt is not None else None
    if identity is not None:
        return write_marker(folder, kind, **identity)
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    raise FolderError(f"{what} {folder} is not empty and was not written by dualmap as a {kind} (it holds "
                      f"{shown}); choose a new or empty folder")


@contextlib.contextmanager
def hold_lock(folder, what: str):
    """Hold ``folder/.lock`` exclusively while the block runs; a FolderError if another process holds it."""
    import fcntl

    path = Path(folder) / LOCK
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):     # a file system without locks (some NFS)
                import sys

                print(f"note: {folder} cannot be locked ({exc.strerror}); make sure no other dualmap command "
                      "writes into it at the same time", file=sys.stderr)
                yield path
                return
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise FolderError(f"{folder} is in use: {holder} is running in it; wait for it to finish, or choose "
                              "another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{what} (pid {os.getpid()}, since {time.strftime('%H:%M:%S UTC', time.gmtime())})")
        handle.flush()
        try:
            yield path
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
