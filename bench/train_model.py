"""`salespulse train` on 90 days of simulator history: training time (target <= 10 min on 2 cores) and the
acceptance figures (model test sales MAE <= 0.9x the best baseline's, overall and for >= 4 of 5 countries;
p10-p90 coverage 70-90 %).

Usage: python bench/train_model.py [--days 90] [--rate 1.0] [--workdir DIR]. Builds the history lake with the
real commands (`salespulse simulate`, then `salespulse backfill`), unless DIR already holds one, then times
`salespulse train` as a user runs it. Writes the 'train' section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import LoadWatch, publish

ROOT = Path(__file__).resolve().parent.parent
END = "2026-09-21T14:13:20Z"  # the other benches' end time
TARGET_MINUTES = 10


def run(*args: str) -> float:
    """Run `salespulse ARGS` from this checkout; wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "salespulse", *args], check=True, cwd=ROOT, env=env)
    return time.perf_counter() - began


def build_lake(work: Path, days: float, rate: float) -> str:
    lake = work / "lake"
    if (lake / "_manifest.json").exists():
        return f"not timed here: reused the lake already in {lake}, built with these two commands"
    simulate_s = run("simulate", "--history-days", f"{days:g}", "--history-rate", f"{rate:g}", "--end", END,
                     "--out", str(work / "landing"), "--quiet")
    backfill_s = run("backfill", "--input", str(work / "landing" / "history" / "sales"), "--profile", "canonical",
                     "--lake", str(lake))
    return f"built in {simulate_s:,.0f} s (simulate) + {backfill_s:,.0f} s (backfill)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--rate", type=float, default=1.0, help="history sales events per second")
    parser.add_argument("--workdir", type=Path, help="keep the landing files, lake and registry here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="salespulse-train-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        lake_note = build_lake(work, args.days, args.rate)
        registry = work / f"models-{time.strftime('%Y%m%dT%H%M%S')}"
        with LoadWatch() as load:
            train_s = run("train", "--lake", str(work / "lake"), "--registry", str(registry), "--quiet")
        version = next(p for p in registry.iterdir() if p.is_dir() and not p.name.startswith("."))
        metrics = json.loads((version / "metrics.json").read_text())
    publish("train", body(metrics, args, train_s, lake_note, load.summary()))


def _ratio(block: dict) -> tuple[float, str]:
    best = min(("seasonal_naive", "linear_regression"), key=lambda b: block[b]["sales"]["mae"])
    return block["model"]["sales"]["mae"] / block[best]["sales"]["mae"], best


def body(metrics: dict, args: argparse.Namespace, train_s: float, lake_note: str, load: str) -> str:
    overall_ratio, overall_best = _ratio(metrics["overall"])
    coverage = metrics["overall"]["model"]["sales"]["coverage_p10_p90"]
    countries = []
    for country, block in metrics["by_country"].items():
        ratio, best = _ratio(block)
        countries.append((country, block, ratio, best))
    passing = sum(ratio <= 0.9 for *_, ratio, _ in countries)
    rows = "\n".join(
        f"| {c} | {b['model']['sales']['mae']:,.1f} | {b['seasonal_naive']['sales']['mae']:,.1f} | "
        f"{b['linear_regression']['sales']['mae']:,.1f} | {r:.3f} ({best}) | "
        f"{100 * b['model']['sales']['coverage_p10_p90']:.1f} % |" for c, b, r, best in countries)
    o = metrics["overall"]
    search = ", ".join(f"{t['candidate']} {t['epochs']} epochs {t['seconds']:.0f} s" for t in metrics["search"])

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def maes(measure: str, digits: int) -> str:
        return " / ".join(f"{o[m][measure]['mae']:,.{digits}f}"
                          for m in ("model", "seasonal_naive", "linear_regression"))

    minutes = train_s / 60
    return f"""
## Forecast model training (`salespulse train`, {args.days:g} days of simulator history)

History: `salespulse simulate --history-days {args.days:g} --history-rate {args.rate:g} --end {END}`, then
`salespulse backfill` ({lake_note}); data window {metrics['data_window']['start']} to
{metrics['data_window']['end']}; test origins after {metrics['split']['validation_end']} (+24 h gap) up to
{metrics['split']['test_end']}, {metrics['rows']['test']:,} test rows (series x origin, 24 hours each).
Load average during training: {load}.

| measure | value |
| --- | --- |
| **training time** (wall, incl. reading gold and writing the registry) | **{minutes:.1f} min** \
(target <= {TARGET_MINUTES} min: {met(minutes <= TARGET_MINUTES)}) |
| search | {search}; chosen **{metrics['chosen']}** |
| test sales MAE: model / seasonal naive / linear regression | {maes("sales", 1)} |
| **model / best baseline ({overall_best}), overall** | **{overall_ratio:.3f}** (target <= 0.9: \
{met(overall_ratio <= 0.9)}) |
| countries with ratio <= 0.9 | **{passing} of {len(countries)}** (target >= 4 of 5: {met(passing >= 4)}) |
| **p10-p90 coverage**, sales, overall | **{100 * coverage:.1f} %** (target 70-90 %: \
{met(0.7 <= coverage <= 0.9)}) |
| test units MAE: model / seasonal naive / linear regression | {maes("units_sold", 2)} |
| promoted | {metrics['promoted']} |

Test sales MAE per country (all series of the country: its products and its total):

| country | model | seasonal naive | linear regression | model / best baseline | coverage |
| --- | --- | --- | --- | --- | --- |
{rows}
"""


if __name__ == "__main__":
    main()
