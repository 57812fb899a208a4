"""Progress bars (tqdm), silenced by ``progress=False`` / ``--quiet``."""

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(iterable=None, *, desc: str, disable: bool = False, **kwargs):
    """A tqdm bar on stderr that leaves no trace when finished."""
    return tqdm(iterable, desc=desc, disable=disable, leave=False, dynamic_ncols=True, **kwargs)
