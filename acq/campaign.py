"""A campaign: the folder one plan runs into.

::

    <out>/campaign.json     the index: plan, sample, how the lab was opened, every run file and its status
    <out>/queue.json        the persisted queue (acq.queue.RunQueue) — what ``sflab resume`` continues
    <out>/plan.toml|.py     a copy of the plan as it was run
    <out>/NNN_<Procedure>_<sample>.h5   one run file per procedure run

``campaign.json`` is rewritten atomically whenever the queue changes, so it always lists every run
file of the plan (also those not started yet: ``run_file`` null, status ``queued``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .names import safe_name
from .plans import Plan
from .queue import WAIT, QueueItem, RunQueue, _atomic_write

log = logging.getLogger(__name__)

__all__ = ["Campaign", "INDEX", "QUEUE", "find_campaign"]

INDEX = "campaign.json"
QUEUE = "queue.json"


@dataclass
class Campaign:
    folder: Path
    queue: RunQueue
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def index_path(self) -> Path:
        return self.folder / INDEX

    @classmethod
    def create(cls, folder: str | Path, plan: Plan, lab: Mapping[str, Any]) -> Campaign:
        """A new campaign folder for ``plan`` (refuses a folder that already holds a campaign)."""
        folder = Path(folder)
        if (folder / INDEX).exists() or (folder / QUEUE).exists():
            raise FileExistsError(f"{folder} already holds a campaign; continue it with `sflab resume {folder}` "
                                  "or choose another --out")
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / ("plan" + plan.path.suffix)
        if plan.source:
            copy.write_bytes(plan.source)     # the plan exactly as it was read and validated
        else:
            shutil.copyfile(plan.path, copy)
        info = {"version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "plan": str(plan.path),
                "plan_copy": copy.name, "plan_sha256": plan.sha256, "title": plan.title, "sample": plan.sample,
                "lab": dict(lab), "queue": QUEUE,
                "estimate": {"lab_seconds": plan.lab_seconds, "bytes": plan.bytes, "points": plan.n_points}}
        q = RunQueue(folder / QUEUE, meta={"campaign": INDEX})
        c = cls(folder, q, info)
        with q._lock:
            for r in plan.runs:
                q.items.append(QueueItem(f"{len(q.items):03d}", r.procedure, dict(r.parameters), r.title,
                                         estimate_s=r.estimate_s if r.estimate_s == r.estimate_s else None,
                                         n_points=r.n_points))
        q.on_change.append(lambda _q: c.write_index())
        q.save()
        return c

    @classmethod
    def open(cls, folder_or_file: str | Path) -> Campaign:
        folder = find_campaign(folder_or_file)
        info = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        q = RunQueue(folder / info.get("queue", QUEUE))
        c = cls(folder, q, info)
        q.on_change.append(lambda _q: c.write_index())
        return c

    def filename(self, it: QueueItem, index: int) -> str:
        sample = safe_name(str(self.info.get("sample", "")))
        return f"{index:03d}_{safe_name(it.procedure)}" + (f"_{sample}" if sample else "") + ".h5"

    def write_index(self) -> None:
        runs = []
        for it in self.queue.items:
            runs.append({"id": it.id, "procedure": it.procedure, "title": it.title, "status": it.status,
                         "run_file": (Path(it.run_file).name if it.run_file and Path(it.run_file).parent ==
                                      self.folder else it.run_file),
                         "n_points": it.n_points, "estimate_s": it.estimate_s, "error": it.error,
                         "parameters": it.parameters})
        d = dict(self.info) | {"updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "runs": runs}
        _atomic_write(self.index_path, json.dumps(d, indent=1, default=str))

    def run_files(self, *, existing: bool = True) -> list[Path]:
        out = []
        for it in self.queue.items:
            if it.procedure == WAIT or not it.run_file:
                continue
            p = Path(it.run_file)
            if not p.is_absolute() and not p.exists():
                p = self.folder / p
            if not existing or p.exists():
                out.append(p)
        return out


def find_campaign(path: str | Path) -> Path:
    """The campaign folder of ``path`` (the folder, its campaign.json or its queue.json)."""
    p = Path(path)
    if p.is_dir() and (p / INDEX).exists():
        return p
    if p.is_file() and p.name in (INDEX, QUEUE):
        return p.parent
    if p.is_file() and p.suffix == ".json":
        return p.parent
    raise FileNotFoundError(f"{path}: not a campaign folder (no {INDEX})")


#: the plan of ``sflab demo`` (``@SAMPLE@`` is replaced by the virtual sample's name): a fluence calibration,
#: a PL temperature series at three fluences with its thermal-cycle repeat (P1 step 7), a fluence series at
#: 5 K (P2), the isolated-NC reference film (P1 step 1) and the in-situ absorption (P6) at 5 K, an RL
#: temperature series and an HBT g2 at 20 K
DEMO_PLAN = """\
sample = "@SAMPLE@"
title = "sflab demo: PL T x fluence, reversibility, fluence series, reference, absorption, RL, HBT g2"

[defaults]
hold_s = 60.0

[[step]]
procedure = "FluenceCalibration"
title = "fluence calibration"
n_steps = 12

[[step]]
procedure = "PLTemperatureSeries"
title = "PL temperature series at three fluences"
temperatures = [295, 200, 130, 90, 60, 40, 20, 5]
fluences = [0.3, 1.2, 5.0]
reversibility = {repeat = [20, 5], warm_K = 295}
# decays of up to 20 s, summed from histograms that stop at the PicoHarp's stop count until they hold 2·10⁶
# counts: the 5 K decay in the SF window then resolves its few-ps delayed rise under the 49 ps SPAD (item 5;
# one stop-count histogram, ~5·10⁵ counts, gave 2.5–3.5σ)
decay_s = 20.0
decay_counts = 2e6

[[step]]
procedure = "FluenceSeries"
title = "fluence series at 5 K"
temperature = 5
fluences = {start = 0.1, stop = 6.0, num = 6, log = true}

[[step]]
procedure = "ReferenceSpectra"
title = "isolated-NC reference film at 5 K"
temperatures = [5]
fluences = [5.0]

[[step]]
procedure = "Transmission"
title = "in-situ absorption at 5 K"
temperatures = [5]

[[step]]
procedure = "RLTemperatureSeries"
title = "RL temperature series"
temperatures = [180, 100, 60, 20]

[[step]]
procedure = "HBTCorrelation"
title = "HBT g2 at 20 K"
temperatures = [20]
g2_s = 2.0
tags_s = 0.05
"""
