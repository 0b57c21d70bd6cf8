"""`salespulse train` on 90 days of simulator history: training time (target <= 10 min on 2 cores) beside the
baselines' fit times, and the acceptance figures (model test sales MAE <= 0.95x the best of seasonal naive,
ridge and gradient-boosted trees; p10-p90 coverage 75-85 %), with the oracle (the simulator's expected
demand: the noise floor) scored on the same test hours.

Usage: python bench/train_model.py [--days 90] [--rate 1.0] [--seed 2027] [--workdir DIR]. Builds the history
lake with the real commands (`salespulse simulate`, then `salespulse backfill`), unless DIR already holds one,
then times `salespulse train --oracle-seed SEED --oracle-end END` as a user runs it. The default seed is one
no test uses. Writes the 'train' section of BENCHMARKS.md.
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _report import LoadWatch, publish

from model.card import horizon_weights
from model.metrics import best_baseline

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


def build_lake(work: Path, days: float, rate: float, seed: int, built: str | None) -> str:
    lake = work / "lake"
    if (lake / "_manifest.json").exists():
        return f"not timed here: reused the lake already in {lake}, {built or 'built with these two commands'}"
    simulate_s = run("simulate", "--history-days", f"{days:g}", "--history-rate", f"{rate:g}", "--end", END,
                     "--seed", str(seed), "--out", str(work / "landing"), "--quiet")
    backfill_s = run("backfill", "--input", str(work / "landing" / "history" / "sales"), "--profile", "canonical",
                     "--lake", str(lake))
    return f"built in {simulate_s:,.0f} s (simulate) + {backfill_s:,.0f} s (backfill)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--rate", type=float, default=1.0, help="history sales events per second")
    parser.add_argument("--seed", type=int, default=2027, help="simulator seed (one the tests do not use)")
    parser.add_argument("--workdir", type=Path, help="keep the landing files, lake and registry here")
    parser.add_argument("--lake-built", help="how the lake already in --workdir was built, when not by the two "
                                             "commands (reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="salespulse-train-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        lake_note = build_lake(work, args.days, args.rate, args.seed, args.lake_built)
        registry = work / f"models-{time.strftime('%Y%m%dT%H%M%S')}"
        with LoadWatch() as load:
            train_s = run("train", "--lake", str(work / "lake"), "--registry", str(registry), "--quiet",
                          "--oracle-seed", str(args.seed), "--oracle-end", END, "--oracle-rate", f"{args.rate:g}")
        version = next(p for p in registry.iterdir() if p.is_dir() and not p.name.startswith("."))
        metrics = json.loads((version / "metrics.json").read_text())
    publish("train", body(metrics, args, train_s, lake_note, load.summary()))


METHODS = ("model", "seasonal_naive", "linear_regression", "gradient_boosting", "oracle")
RATIO_TARGET = 0.95
COVERAGE_TARGET = (0.75, 0.85)


def _ratio(block: dict) -> tuple[float, str]:
    best = best_baseline(block)
    return block["model"]["sales"]["mae"] / block[best]["sales"]["mae"], best


def body(metrics: dict, args: argparse.Namespace, train_s: float, lake_note: str, load: str) -> str:
    overall_ratio, overall_best = _ratio(metrics["overall"])
    coverage = metrics["overall"]["model"]["sales"]["coverage_p10_p90"]
    countries = [(country, block, *_ratio(block)) for country, block in metrics["by_country"].items()]
    rows = "\n".join(
        f"| {c} | " + " | ".join(f"{b[m]['sales']['mae']:,.1f}" for m in METHODS) + f" | {r:.3f} ({best}) | "
        f"{b['model']['sales']['mase']:.3f} | {100 * b['model']['sales']['coverage_p10_p90']:.1f} % | "
        f"{100 * b['gradient_boosting']['sales']['coverage_p10_p90']:.1f} % |" for c, b, r, best in countries)
    o = metrics["overall"]
    floor = metrics["noise_floor"]
    search = ", ".join(f"{t['candidate']} {t['epochs']} epochs {t['seconds']:.0f} s" for t in metrics["search"])
    fits = metrics["fit_seconds"]
    blend = metrics["blend"]
    trees_mae = o["gradient_boosting"]["sales"]["mae"]
    rounds = ", ".join(f"{name} {n}" for name, n in metrics["gradient_boosting_rounds"].items())

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def values(measure: str, key: str, digits: int, methods: tuple[str, ...] = METHODS) -> str:
        return " / ".join("n/a" if o[m][measure][key] is None else f"{o[m][measure][key]:,.{digits}f}"
                          for m in methods)

    def pinballs(method: str) -> str:
        return " / ".join(f"{o[method]['sales'][f'scaled_pinball_{q}']:.3f}" for q in ("p10", "p50", "p90"))

    minutes = train_s / 60
    low, high = COVERAGE_TARGET
    return f"""
## Forecast model training (`salespulse train`, {args.days:g} days of simulator history)

History: `salespulse simulate --history-days {args.days:g} --history-rate {args.rate:g} --seed {args.seed} --end {END}`,
then `salespulse backfill` ({lake_note}); data window {metrics['data_window']['start']} to
{metrics['data_window']['end']}; test origins after {metrics['split']['validation_end']} (+24 h gap) up to
{metrics['split']['test_end']}, {metrics['rows']['test']:,} test rows (series x origin, 24 hours each).
Trained with `--oracle-seed {args.seed} --oracle-end {END}`, so the oracle (the simulator's expected demand of
every series and hour, from its parameters) is scored on the same test hours. Load average during training: {load}.

Methods, in this order below: model (p50, the served blend of networks and trees) / seasonal naive / linear
regression (ridge) / gradient-boosted trees (HistGradientBoostingRegressor, quantile loss, p50) / oracle.

| measure | value |
| --- | --- |
| **training time** (wall, incl. reading gold, all baselines and writing the registry) | **{minutes:.1f} min** \
(target <= {TARGET_MINUTES} min: {met(minutes <= TARGET_MINUTES)}) |
| fit time: model search / ridge / gradient-boosted trees | {fits['model']:,.0f} s / \
{fits['linear_regression']:,.0f} s / {fits['gradient_boosting']:,.0f} s |
| search | {search}; networks weighted on validation: **{metrics['chosen']}** |
| gradient-boosted trees: leaves / boosting rounds kept (early stopping on validation) | \
{metrics['gradient_boosting_max_leaf_nodes']} / {rounds} |
| served model = blend chosen on validation: network weight at horizons 1-6 / 7-12 / 13-18 / 19-24 h, sales; \
units; p10 and p90 spread factors, sales | {horizon_weights(blend, 0)}; {horizon_weights(blend, 1)}; \
{blend['low_spread'][0]:.2f} and {blend['high_spread'][0]:.2f} |
| networks alone: test sales MAE / trees' | {blend['network_alone_test_sales_mae']:,.1f} / {trees_mae:,.1f} = \
{blend['network_alone_test_sales_mae'] / trees_mae:.3f} |
| test sales MAE | {values("sales", "mae", 1)} |
| **model / best baseline ({overall_best}), overall** | **{overall_ratio:.3f}** (target <= {RATIO_TARGET}: \
{met(overall_ratio <= RATIO_TARGET)}) |
| **oracle test sales MAE** (noise floor) / model as a multiple of it | **{floor['oracle_sales_mae']:,.1f}** / \
**{floor['model_multiple_of_oracle']:.3f}x** |
| share of the best baseline's distance to the oracle that the model closes | {100 * floor['gap_closed']:.0f} % |
| **p10-p90 coverage**, sales, overall: model / gradient-boosted trees | **{100 * coverage:.1f} %** \
(target {100 * low:.0f}-{100 * high:.0f} %: {met(low <= coverage <= high)}) / \
{100 * o['gradient_boosting']['sales']['coverage_p10_p90']:.1f} % |
| sales MASE (mean over series, against each series' in-sample seasonal-naive MAE) | {values("sales", "mase", 3)} |
| sales scaled pinball p10 / p50 / p90: model | {pinballs("model")} |
| sales scaled pinball p10 / p50 / p90: gradient-boosted trees | {pinballs("gradient_boosting")} |
| test units MAE | {values("units_sold", "mae", 2)} |
| promoted | {metrics['promoted']} |

Test sales MAE per country (all series of the country: its products and its total), the model's MASE and the
p10-p90 coverage of the two quantile methods:

| country | model | seasonal naive | ridge | gradient-boosted trees | oracle | model / best baseline | model MASE \
| model coverage | trees coverage |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}
"""


if __name__ == "__main__":
    main()
