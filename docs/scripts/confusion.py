"""Confusion table of the SF verdict on campaigns from the independent generator (tests/analysis/gen.py).

    PYTHONPATH=. python docs/scripts/confusion.py [N per class, default 10] [--json out.json]

Each class (gen.CLASSES) gets N campaigns with seeds 0..N−1 (parameters, lineshapes with tails and
Lorentzian wings, measured-style IRFs drawn per seed). Prints the confusion table (rows: truth class,
columns: verdict / confuser) as markdown, and the wrong cases with their first reason.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from analysis.sf import Evidence, assess  # noqa: E402
from tests.analysis.gen import CLASSES, EXPECTED, campaign  # noqa: E402


def label(verdict: str, confuser: str | None) -> str:
    return verdict if verdict != "not SF" else f"not SF ({confuser or '—'})"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10
    out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    classes = sys.argv[sys.argv.index("--classes") + 1].split(",") if "--classes" in sys.argv else list(CLASSES)
    rows: dict[str, Counter[str]] = {}
    wrong, records = [], []
    t0 = time.process_time()
    for kind in classes:
        rows[kind] = Counter()
        for seed in range(n):
            v = assess(Evidence.from_dict(campaign(kind, seed)))
            lab = label(v.verdict, v.confuser)
            rows[kind][lab] += 1
            ok = (v.verdict, v.confuser) == EXPECTED[kind]
            records.append({"class": kind, "seed": seed, "verdict": v.verdict, "confuser": v.confuser, "ok": ok,
                            "reason": v.reasons[0] if v.reasons else ""})
            if not ok:
                wrong.append((kind, seed, lab, v.reasons[0] if v.reasons else ""))
            print(f"{kind:12s} {seed:3d} {lab:28s} {'ok' if ok else 'WRONG'}", flush=True)
    cols = sorted({c for r in rows.values() for c in r})
    print(f"\n{len(classes) * n} campaigns, {time.process_time() - t0:.0f} s CPU\n")
    print("| truth \\ verdict | " + " | ".join(cols) + " | right |")
    print("|---|" + "---|" * (len(cols) + 1))
    for kind in classes:
        exp = label(*EXPECTED[kind])
        print(f"| {kind} | " + " | ".join(str(rows[kind].get(c, 0)) for c in cols)
              + f" | {rows[kind].get(exp, 0)}/{n} |")
    for w in wrong:
        print(f"- {w[0]} seed {w[1]} → {w[2]}: {w[3][:200]}")
    if out:
        Path(out).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
