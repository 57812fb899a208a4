"""Progress on stderr, silenced by ``progress=False`` / ``--quiet``.

On a terminal: a tqdm bar that leaves no trace when finished. Anywhere else (a log file, a pipe, a batch
job): plain lines, one when the task starts, then at most one every ``_LINE_SECONDS`` seconds, and one when
it ends — tqdm's carriage returns would turn a log into one huge line.
"""

from __future__ import annotations

import sys
import time

__all__ = ["progress_bar", "LineProgress"]

_LINE_SECONDS = 10.0


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(iterable=None, *, desc: str, disable: bool = False, **kwargs):
    """A tqdm bar on a terminal, :class:`LineProgress` otherwise (same interface for what dualmap uses)."""
    if disable or not _stderr_is_terminal():
        return LineProgress(iterable, desc=desc, disable=disable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=disable, leave=False, dynamic_ncols=True, **kwargs)


class LineProgress:
    """Line-based progress with the part of tqdm's interface dualmap uses (iterate, ``update``,
    ``set_postfix``, ``set_description``, ``write``, ``close``, context manager)."""

    def __init__(self, iterable=None, *, desc: str = "", total=None, initial: int = 0, disable: bool = False,
                 unit: str = "it", every: float = _LINE_SECONDS, file=None, **_ignored):
        self.iterable, self.desc, self.unit, self.disable = iterable, desc, unit, disable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.every = total, initial, every
        self.postfix = ""
        self.file = file
        self.started = self._last = time.perf_counter()
        self._closed = False
        self._print(f"{self.desc}: started" + (f", {self.n}/{self.total} {self.unit}" if self.total else ""))

    def _print(self, text: str) -> None:
        if not self.disable:
            print(text, file=self.file or sys.stderr, flush=True)

    def _line(self, final: bool = False) -> str:
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        elapsed = time.perf_counter() - self.started
        return (f"{self.desc}: {done} {self.unit}, {elapsed:.1f} s" + (f" ({self.postfix})" if self.postfix else "")
                + (" — done" if final else ""))

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._last >= self.every:
            self._last = now
            self._print(self._line())

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
        values = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def set_postfix_str(self, text: str = "", refresh=True) -> None:
        self.postfix = text

    def set_description(self, desc=None, refresh=True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def write(self, text: str, file=None) -> None:
        print(text, file=file or self.file or sys.stderr, flush=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._print(self._line(final=True))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
