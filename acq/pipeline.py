"""The one analysis pipeline from run files to verdicts and a report, used by ``sflab analyze``, ``run``,
``demo`` and ``resume`` (the GUI shows the per-run summaries the runner stored through the same
:func:`acq.summary.summarize`).

:func:`analyze_paths` reads run files and campaign folders, takes each run's stored summary (or computes
it), pools the campaign once (:func:`acq.summary.analyze_campaign`: :func:`analysis.sf.assess` once per
verdict) and, when asked, renders the report from those same verdict objects.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.sf import SFVerdict

from .campaign import Campaign
from .store import RunData, open_run
from .summary import analyze_campaign, summarize

log = logging.getLogger(__name__)

__all__ = ["AnalysisResult", "analyze_paths", "expand_inputs", "write_report"]


@dataclass
class AnalysisResult:
    runs: list[RunData] = field(default_factory=list)
    #: files that could not be read ("path: why")
    bad: list[str] = field(default_factory=list)
    #: run file name → its summary (stored in the file, or recomputed)
    per_run: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the pooled campaign summary (None when it could not be computed)
    campaign: dict[str, Any] | None = None
    #: the pooled verdict objects behind ``campaign`` (label → SFVerdict), for the report
    verdicts: dict[str, SFVerdict] = field(default_factory=dict)
    #: the report's main page, when one was asked for and written
    report: str | None = None
    report_asked: bool = False
    report_error: str | None = None

    @property
    def verdict(self) -> Any:
        if self.campaign:
            return self.campaign.get("verdict")
        return next(iter(self.per_run.values())).get("verdict") if len(self.per_run) == 1 else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "campaign": self.campaign, "runs": self.per_run,
                               "files": [str(r.path) for r in self.runs]}
        if self.report_asked:
            out["report"] = self.report
        return out


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Run files from run files, campaign folders (their index) and plain folders (their ``*.h5``)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir() or p.suffix == ".json":
            try:
                out += Campaign.open(p).run_files()
                continue
            except FileNotFoundError:
                if p.is_dir():
                    found = sorted(x for x in p.glob("*.h5") if ".interrupted" not in x.name
                                   and ".unreadable" not in x.name and not x.name.startswith("."))
                    out += found or [p]   # an empty folder is reported by name
                    continue
        out.append(p)
    return out


def _per_run(runs: list[RunData], recompute: bool) -> dict[str, dict[str, Any]]:
    per: dict[str, dict[str, Any]] = {}
    for r in runs:
        stored = r.analysis if isinstance(r.analysis, dict) and "verdict" in r.analysis else None
        if stored is not None and not recompute:
            per[r.path.name] = stored
            continue
        try:
            per[r.path.name] = summarize(r)
        except Exception as exc:
            log.error("summary of %s failed: %s", r.path, exc)
            per[r.path.name] = {"verdict": "error", "error": f"{type(exc).__name__}: {exc}"}
    return per


def analyze_paths(paths: list[Path], *, report: Path | None = None, recompute: bool = False) -> AnalysisResult:
    """Read, summarise and pool ``paths``; write the report folder ``report`` if given."""
    res = AnalysisResult()
    for p in expand_inputs(paths):
        try:
            res.runs.append(open_run(p))
        except (OSError, ValueError) as exc:
            res.bad.append(str(exc) if str(p) in str(exc) else f"{p}: {exc}")
    if not res.runs:
        return res
    res.per_run = _per_run(res.runs, recompute)
    try:
        ca = analyze_campaign(res.runs)
        res.campaign, res.verdicts = ca.summary, ca.verdicts
    except Exception as exc:
        log.error("campaign summary failed: %s", exc)
        res.campaign = {"verdict": "error", "error": f"{type(exc).__name__}: {exc}"}
    if report is not None:
        res.report_asked = True
        try:
            res.report = write_report(res, report)
        except Exception as exc:
            log.error("report failed: %s", exc, exc_info=True)
            res.report_error = f"{type(exc).__name__}: {exc}"
    return res


def write_report(res: AnalysisResult, folder: Path) -> str:
    """The report folder of :func:`analysis.report.render` (figures, report.md/.html, summary.json) from the
    campaign's verdict objects, plus campaign-summary.json with sflab's own summaries. Returns the path of
    the main page."""
    from analysis.report import render

    folder.mkdir(parents=True, exist_ok=True)
    if res.verdicts:
        render(res.verdicts, folder, title="SF analysis — " + ", ".join(sorted({r.sample_name for r in res.runs})))
    (folder / "campaign-summary.json").write_text(json.dumps({"campaign": res.campaign, "runs": res.per_run},
                                                             indent=1, default=str), encoding="utf-8")
    return str(folder / ("report.html" if res.verdicts else "campaign-summary.json"))
