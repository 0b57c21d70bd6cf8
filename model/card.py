"""The model card (card.md of a registry version): data window, features, metrics, known limits. Pure."""

from __future__ import annotations

from typing import Any

from model.blend import WEIGHT_BLOCK_HOURS
from model.metrics import best_baseline

METHOD_NAMES = {"model": "model (p50)", "seasonal_naive": "seasonal naive (same hour last week)",
                "linear_regression": "linear regression (ridge, same features)",
                "gradient_boosting": "gradient-boosted trees (p50, quantile loss, same features)",
                "oracle": "oracle (the simulator's expected demand)"}



def _number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _noise_floor_lines(metrics: dict[str, Any]) -> list[str]:
    """The model against the oracle, for a simulated history (nothing otherwise)."""
    floor = metrics.get("noise_floor")
    if floor is None:
        return []
    closed = "n/a" if floor["gap_closed"] is None else f"{100 * floor['gap_closed']:.0f} %"
    multiple = "n/a" if floor["model_multiple_of_oracle"] is None else f"{floor['model_multiple_of_oracle']:.3f}x"
    return [
        "## Noise floor (simulated history)",
        "",
        f"Oracle test sales MAE **{floor['oracle_sales_mae']:,.2f}**: the simulator's expected demand for every "
        "series and hour, the MAE no forecaster beats on average. "
        f"Model test sales MAE **{floor['model_sales_mae']:,.2f}** = "
        f"**{multiple}** the oracle's; the model closes **{closed}** of the distance from the best baseline "
        f"({floor['best_baseline']}, {floor['best_baseline_sales_mae']:,.2f}) to the oracle.",
        "The oracle knows what a forecaster cannot: the run's demand parameters (rates, hour and weekday "
        "profiles, trend, price and discount mixes) and its promotion calendar (when a promotion starts, how much "
        "it lifts, when it ends). It does not know the random draws (which orders arrive, their size and "
        "price), stock-outs (demand beyond stock is lost) or late events (moved up to 3 h earlier).",
        "",
    ]


def horizon_weights(blend: dict[str, Any], measure: int) -> str:
    """A blend's network weights of one measure (``MEASURES`` index), one per block of horizons it was fitted
    on: "0.85 / 0.65 / 0.55 / 0.50"."""
    return " / ".join(f"{w:.2f}" for w in blend["network_weight"][measure][::WEIGHT_BLOCK_HOURS])


def render_card(metrics: dict[str, Any], spec: dict[str, Any]) -> str:
    overall = metrics["overall"]
    best = best_baseline(overall)
    best_mae = overall[best]["sales"]["mae"]
    lines = [
        f"# Forecast model {metrics['version']}",
        "",
        f"Hourly `sales` and `units_sold`, next {spec['horizon_hours']} h, quantiles p10/p50/p90, for every "
        "country x product and every country total. "
        f"Networks, weighted on validation: **{spec['architecture']}**. "
        f"Promoted: **{'yes' if metrics['promoted'] else 'no'}** (rule: test sales MAE below the best baseline's).",
        "",
        "## Data",
        "",
        f"- history: {metrics['data_window']['start']} to {metrics['data_window']['end']} (UTC hours)",
        f"- split by forecast origin (a {spec['horizon_hours']} h gap after each split): train up to "
        f"{metrics['split']['train_end']}, validation up to {metrics['split']['validation_end']}, "
        f"test up to {metrics['split']['test_end']}",
        f"- rows (series x origin): train {metrics['rows']['train']:,}, validation "
        f"{metrics['rows']['validation']:,}, test {metrics['rows']['test']:,}",
        "",
        "## Features",
        "",
        f"{len(spec['feature_columns'])} columns per (series, origin), from the {spec['history_hours']} h ending at "
        "the origin, every value divided by the series' trailing one-week mean: the last 168 hourly values of both "
        "measures; for each target hour the same hour two weeks before and the mean of the same hour over the "
        "last 7 days; 6 h and 24 h means, 24 h and 168 h standard deviations, the previous week's mean (trend), "
        "the last 6 h against the same hours a week before, the last 3 h and 24 h against the same hours' mean "
        "over the 7 days before and how many hours the 3 h lift has stayed above 1.4 (promotions: whether one "
        "runs and for how long already), the run of zero hours (stock-outs), "
        "the scale itself; origin hour of day and day of week (UTC, one-hot); country, product and "
        "country-total flags.",
        "",
        "## Test metrics (overall)",
        "",
        "| method | measure | MAE | RMSE | R² | sMAPE % | p10–p90 coverage |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, by_measure in overall.items():
        for measure, m in by_measure.items():
            coverage = "n/a" if m["coverage_p10_p90"] is None else f"{100 * m['coverage_p10_p90']:.1f} %"
            lines.append(f"| {METHOD_NAMES[method]} | {measure} | {_number(m['mae'])} | {_number(m['rmse'])} | "
                         f"{_number(m['r2'], 3)} | {_number(m['smape'], 1)} | {coverage} |")
    blend = metrics["blend"]
    lines += [
        "",
        f"Model / best baseline ({best}) sales MAE: **{overall['model']['sales']['mae'] / best_mae:.3f}**.",
        "",
        "The model is a blend of the networks and the gradient-boosted trees, chosen on the validation split: "
        f"network weight at horizons 1-6 / 7-12 / 13-18 / 19-24 h {horizon_weights(blend, 0)} for sales and "
        f"{horizon_weights(blend, 1)} for units (the trees have the rest); p50-p10 distances times "
        f"{blend['low_spread'][0]:.2f} / {blend['low_spread'][1]:.2f} and p90-p50 distances times "
        f"{blend['high_spread'][0]:.2f} / {blend['high_spread'][1]:.2f} (sales / units). The networks alone "
        f"(their weighted mean): test sales MAE {blend['network_alone_test_sales_mae']:,.2f}.",
        "",
        *_noise_floor_lines(metrics),
        "## Scale-free test metrics (mean over series; each series' errors divided by its in-sample "
        "seasonal-naive MAE)",
        "",
        "| method | measure | MASE | scaled pinball p10 | scaled pinball p50 | scaled pinball p90 |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {METHOD_NAMES[method]} | {measure} | {_number(m['mase'], 3)} | {_number(m['scaled_pinball_p10'], 3)} | "
          f"{_number(m['scaled_pinball_p50'], 3)} | {_number(m['scaled_pinball_p90'], 3)} |"
          for method, by_measure in overall.items() for measure, m in by_measure.items()],
        "",
        "## Test sales MAE by country (all series of the country, products and total)",
        "",
        "| country | model | seasonal naive | linear regression | gradient boosting | model / best baseline "
        "| model MASE | model coverage | gradient boosting coverage |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for country, block in metrics["by_country"].items():
        maes = {method: block[method]["sales"]["mae"] for method in block}
        best_country = maes[best_baseline(block)]
        lines.append(f"| {country} | {_number(maes['model'])} | {_number(maes['seasonal_naive'])} | "
                     f"{_number(maes['linear_regression'])} | {_number(maes['gradient_boosting'])} | "
                     f"{maes['model'] / best_country:.3f} | {_number(block['model']['sales']['mase'], 3)} | "
                     f"{100 * block['model']['sales']['coverage_p10_p90']:.1f} % | "
                     f"{100 * block['gradient_boosting']['sales']['coverage_p10_p90']:.1f} % |")
    lines += [
        "",
        "## Fit time (seconds, wall)",
        "",
        " · ".join(f"{METHOD_NAMES.get(m, m)}: {s:,.1f}" for m, s in metrics["fit_seconds"].items())
        + " (the model's time is its whole search).",
    ]
    lines += [
        "",
        "## Search (validation)",
        "",
        "| candidate | epochs | validation pinball loss | validation sales MAE | seconds |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {t['candidate']} | {t['epochs']} | {t['validation_loss']:.4f} | {t['validation_sales_mae']:,.2f} | "
          f"{t['seconds']:.0f} |" for t in metrics["search"]],
        "",
        "## Known limits",
        "",
        "- Needs two weeks of history per series before it forecasts; new series get no forecast until then.",
        "- Promotions and stock-outs are inferred from the recent sales shape only (no promotion calendar or "
        "stock levels as inputs): their starts are not foreseen, their ends are guessed.",
        "- Calendar features are UTC; local-time effects are learned per country from the series identity.",
        "- No holidays; a trend much faster than in training (or a new country or product) needs retraining.",
        "- The p10/p90 spreads are calibrated on the validation fortnight only; check coverage on the test split "
        "above.",
        "",
    ]
    return "\n".join(lines)
