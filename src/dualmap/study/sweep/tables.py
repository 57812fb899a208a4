"""The sweep's table: one row per run (its grid values, hash, status, headline metrics, error), written as
``sweep.csv`` and ``sweep.parquet``."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from ..._io import atomic_open, json_default, write_text_atomic
from .grid import SweepRun
from .state import read_json

__all__ = ["aggregate", "cell", "headline_keys", "write_csv", "write_parquet"]


@functools.cache
def headline_keys() -> tuple[str, ...]:
    """The headline metrics of a study in the order of its report, read from their one home,
    :meth:`dualmap.study.pipeline.Study.headline` (src/dualmap/study/pipeline.py), on a study that has run no
    stage. Every run's row has these columns (empty where a run failed or a stage was off)."""
    from types import SimpleNamespace

    from ..pipeline import Study

    blank = Study(out=Path(), config=None, metrics={"stages": {}},
                  _cache={"dataset": SimpleNamespace(task="classification")})
    return tuple(blank.headline())


def cell(key: str, value):
    """A grid value as a table cell: ``network.widths`` as ``"64-64"``, other lists/dicts as JSON."""
    if key == "network.widths" and isinstance(value, list):
        return "-".join(str(width) for width in value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def _scalar(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return json.dumps(value, default=json_default)


def aggregate(runs: list[SweepRun], runs_dir: Path) -> tuple[list[dict], list[str]]:
    """One row per run of this grid, from its ``metrics.json`` or ``error.json``; and notes."""
    rows, notes = [], []
    for run in runs:
        run_dir = runs_dir / run.config_hash
        row = {key: cell(key, value) for key, value in run.values.items()}
        row["config_hash"] = run.config_hash
        metrics, problem = read_json(run_dir / "metrics.json")
        headline, error = {}, None
        if metrics is not None and metrics.get("status") == "complete":
            headline = metrics.get("headline")
            if not isinstance(headline, dict):
                notes.append(f"run {run.config_hash}: metrics.json has no 'headline' mapping")
                headline = {}
        else:
            record, _ = read_json(run_dir / "error.json")
            if record is not None:
                error = f"{record.get('error_type', 'Error')}: {record.get('message', '')}"
            elif metrics is not None:
                error = f"metrics.json has status {metrics.get('status')!r}, not 'complete'"
            else:
                error = f"not finished: {problem}"
        row["status"] = "failed" if error else "complete"
        rows.append((row, headline, error))
    known = headline_keys()
    extra = []                               # headline keys beyond the pipeline's, in order of appearance
    for _, headline, _ in rows:
        extra.extend(key for key in headline if key not in known and key not in extra)
    table = []
    for row, headline, error in rows:
        row.update({key: _scalar(headline.get(key)) for key in (*known, *extra)})
        row["error"] = error
        table.append(row)
    return table, notes


def _columns(table: list[dict]) -> list[str]:
    columns = []
    for row in table:
        columns.extend(key for key in row if key not in columns)
    return columns


def write_csv(path: Path, table: list[dict]) -> Path:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(table), lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return write_text_atomic(path, buffer.getvalue())


def write_parquet(path: Path, table: list[dict], notes: list[str]) -> Path | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        notes.append("Parquet skipped: pyarrow is not installed (pip install 'dualmap[distributed]'); "
                     "the CSV holds the same table")
        return None
    arrays = {}
    for column in _columns(table):
        values = [row.get(column) for row in table]
        try:
            arrays[column] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):     # mixed types in one column: keep them as text
            arrays[column] = pa.array([None if value is None else str(value) for value in values])
    with atomic_open(path, "wb") as handle:
        pq.write_table(pa.table(arrays), handle)
    return path
