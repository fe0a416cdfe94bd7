"""Campaign analysis on a Dask cluster (``sflab analyze --workers N`` / ``--scheduler ADDRESS``).

The unit of work is one run file: each task opens its file on the worker and computes the run's summary with
the same function the serial path uses (``acq.summary.summarize``; the summary stored in the file is used
unless ``recompute``). The campaign verdict — pooled evidence of every file, ``acq.summary.summarize_campaign``
— is one more task that runs beside them, on the same files, so the verdicts are those of the serial path
(tests/acq/test_cluster.py). Results come back as they finish (``progress(done, total, name)``).

``workers=N`` starts a local ``dask.distributed`` cluster of N single-threaded worker processes (the fits
hold the GIL) and stops it afterwards; ``scheduler="tcp://host:8786"`` uses an existing cluster, whose
workers must see the same paths (a shared data folder) and have sflab installed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["run_summary", "campaign_summary", "distributed_summaries"]

Progress = Callable[[int, int, str], None]


def run_summary(path: str, recompute: bool = False) -> tuple[str, dict[str, Any]]:
    """(file name, summary) of one run file — what ``sflab analyze`` shows per file."""
    from . import summary
    from .store import open_run

    p = Path(path)
    try:
        run = open_run(p)
        stored = run.analysis if isinstance(run.analysis, dict) and "verdict" in run.analysis else None
        if stored is not None and not recompute:
            return p.name, stored
        return p.name, summary.summarize(run)
    except Exception as exc:  # noqa: BLE001 - reported per file, as in the serial path
        log.error("summary of %s failed: %s", p, exc)
        return p.name, {"verdict": "error", "error": f"{type(exc).__name__}: {exc}"}


def campaign_summary(paths: Sequence[str]) -> dict[str, Any]:
    """The campaign verdict of ``paths`` (pooled evidence), computed from the data."""
    from . import summary
    from .store import open_run

    try:
        return summary.summarize_campaign([open_run(p) for p in paths])
    except Exception as exc:  # noqa: BLE001 - reported, as in the serial path
        log.error("campaign summary failed: %s", exc)
        return {"verdict": "error", "error": f"{type(exc).__name__}: {exc}"}


def distributed_summaries(paths: Sequence[str | Path], *, recompute: bool = False, workers: int | None = None,
                          scheduler: str | None = None, progress: Progress | None = None, campaign: bool = True
                          ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Per-run summaries (in the order of ``paths``) and the campaign summary (None unless ``campaign``),
    computed on a Dask cluster."""
    from dask.distributed import Client, LocalCluster, as_completed

    if (workers is None) == (scheduler is None):
        raise ValueError("give either workers (a local cluster) or scheduler (an existing one)")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be ≥ 1, not {workers}")
    files = [str(Path(p)) for p in paths]
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core",
                 "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)   # the CLI shows its own progress
    cluster = None
    if workers is not None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               host="127.0.0.1", silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout=30)
    try:
        total = len(files) + int(campaign)
        # the campaign task first: it is the longest, so it starts at once beside the per-file tasks
        camp_f = (client.submit(campaign_summary, files, key="campaign-summary", pure=False, priority=10)
                  if campaign else None)
        futs = [client.submit(run_summary, f, recompute, pure=False) for f in files]
        per_by_name: dict[str, Any] = {}
        camp: dict[str, Any] | None = None
        done = 0
        for fut in as_completed([camp_f, *futs] if camp_f is not None else futs):
            res = fut.result()
            done += 1
            if fut is camp_f:
                camp = res
                label = "campaign verdict"
            else:
                name, sm = res
                per_by_name[name] = sm
                label = name
            if progress is not None:
                progress(done, total, label)
        per = {Path(f).name: per_by_name[Path(f).name] for f in files}
        return per, camp
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
