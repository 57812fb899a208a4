"""The state of one run's folder ``out/runs/<config hash>/``, and one run in a worker.

A run is *finished* when its ``metrics.json`` is readable, says ``"status": "complete"`` and every file it
records is still the one its stage wrote; a run that raised leaves ``error.json`` instead. Every file is
written atomically (src/dualmap/_io.py).
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from typing import Callable

from ..._io import json_default, write_text_atomic
from ..config import StudyConfig, config_hash

__all__ = ["error_record", "incomplete", "read_json", "run_one", "run_state", "write_json_atomic"]


def write_json_atomic(path: Path, data) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, default=json_default) + "\n")


def read_json(path: Path) -> tuple[dict | None, str | None]:
    """``(data, None)`` for a readable JSON object, else ``(None, why)``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"no {path.name}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} is unreadable (truncated or corrupt: {exc})"
    if not isinstance(data, dict):
        return None, f"{path.name} does not hold a JSON object (got {type(data).__name__})"
    return data, None


def incomplete(run_dir: Path) -> str | None:
    """None when ``run_dir/metrics.json`` is readable and complete and every file it records is still the one
    its stage wrote (same SHA-256), else why not."""
    metrics, problem = read_json(run_dir / "metrics.json")
    if metrics is None:
        return problem
    if metrics.get("status") != "complete":
        return f"metrics.json has status {metrics.get('status')!r}, not 'complete'"
    files = metrics.get("files")
    if isinstance(files, dict) and files:
        from ..pipeline import file_sha256

        for name, record in files.items():
            path = run_dir / name
            if not path.is_file():
                return f"{name} is missing"
            if not isinstance(record, dict) or file_sha256(path) != record.get("sha256"):
                return f"{name} changed or is corrupt (its content hash differs from metrics.json)"
    return None


def run_state(run_dir: Path) -> tuple[bool, str]:
    """``(finished, why not)`` for one run folder."""
    why = incomplete(run_dir)
    if why == "no metrics.json" and (run_dir / "error.json").exists():
        why = "failed before (error.json)"
    return why is None, why or ""


def run_one(runner: Callable, config: StudyConfig, run_dir: str) -> dict:
    """Run one study into ``run_dir``; on an exception write ``error.json`` instead of raising.

    Runs in a worker process. Returns ``{"config_hash", "status", "seconds", "error"}``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    digest = config_hash(config)
    if incomplete(run_dir) is None:    # dask recomputes a result lost with its worker: never run a study twice
        return {"config_hash": digest, "status": "complete", "seconds": 0.0, "error": None}
    _set_aside_unreadable(run_dir / "metrics.json")
    started = time.perf_counter()
    error = None
    try:
        returned = runner(config, run_dir, progress=False)
        if not (run_dir / "metrics.json").exists() and isinstance(returned, dict):
            write_json_atomic(run_dir / "metrics.json", returned)
        why = incomplete(run_dir)
        if why is not None:
            raise RuntimeError(f"the runner returned without a complete metrics.json: {why}")
    except Exception as exc:  # noqa: BLE001 - any failure of one run is recorded, the sweep goes on
        error = error_record(type(exc).__name__, str(exc), traceback.format_exc(), digest,
                              time.perf_counter() - started)
        write_json_atomic(run_dir / "error.json", error)
    seconds = time.perf_counter() - started
    if error is None:
        try:
            (run_dir / "error.json").unlink()
        except FileNotFoundError:
            pass
    return {"config_hash": digest, "status": "failed" if error else "complete", "seconds": seconds,
            "error": f"{error['error_type']}: {error['message']}" if error else None}


def _set_aside_unreadable(path: Path) -> None:
    """Rename an unreadable ``metrics.json`` to ``metrics.json.corrupt`` so the runner starts afresh."""
    if path.exists() and read_json(path)[0] is None:
        os.replace(path, path.with_name(path.name + ".corrupt"))


def error_record(error_type: str, message: str, trace: str, digest: str, seconds: float | None) -> dict:
    return {"status": "failed", "error_type": error_type, "message": message, "traceback": trace,
            "config_hash": digest, "seconds": seconds,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pid": os.getpid()}
