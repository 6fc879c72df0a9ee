"""Human-readable reports (markdown tables and PNG plots) of simulation and evaluation results.

Each writer reads only the JSON-able results dict it is given (evaluate's report, a scenario's results), so that
report.md shows exactly what report.json / results.json hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def fmt(v: Any, digits: int = 4) -> str:
    """Numbers to ``digits`` significant figures (``-`` for None); other values as they are."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if v == v else "nan"
    return str(v)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def summary_rows(report: dict[str, Any], names: Sequence[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Methods of an evaluation report in report order, single models last (the table a person reads first)."""
    items = list(report["methods"].items())
    if names:
        items = [(n, m) for n, m in items if n in names]
    head = [(n, m) for n, m in items if not n.startswith("single:")]
    tail = [(n, m) for n, m in items if n.startswith("single:")]
    return head + tail


def _evaluation_table(report: dict[str, Any]) -> str:
    two = report["reference"]["strong_model"] is not None
    header = [
        "method",
        "quality",
        "cost USD/query",
        "V_B",
        "regret",
        "AIQ",
        "cheapest within 1pt (cost share)",
        "call-share entropy (bits)",
    ]
    if two:
        header += ["APGR", "CPT(50%)", "CPT(80%)"]
    rows = []
    for name, m in summary_rows(report):
        row = [
            name,
            m["quality"],
            m["cost_usd"],
            m["v_b"],
            m["regret"],
            m["aiq"],
            m["cheapest_within_1pt_cost_share"],
            m["call_share_entropy_bits"],
        ]
        if two:
            row += [m.get("apgr"), m.get("cpt50"), m.get("cpt80")]
        rows.append(row)
    return markdown_table(header, rows)


def _cascade_table(report: dict[str, Any]) -> list[str]:
    """Cascade rows (records with answers only): calls and sequential stages per query, the layout, lambda."""
    rows = [
        [n, m["v_b"], m["cost_share_of_best_single"], m["calls_per_query"], m["stages_per_query"],
         m["escalated_share"], " -> ".join("+".join(s) for s in m["stages"]), m["lam"]]
        for n, m in report["methods"].items()
        if "calls_per_query" in m
    ]  # fmt: skip
    if not rows:
        return []
    header = [
        "cascade",
        "V_B",
        "cost share of best single",
        "calls/query",
        "stages/query",
        "escalated",
        "layout",
        "lambda",
    ]
    return [
        "## Cascades",
        "",
        "Costs add up over every call; stages/query counts sequential rounds (the latency); the first stage's models "
        "are called in parallel. Test figures of the frozen greedy policy at the lambda chosen on the train split.",
        "",
        markdown_table(header, rows),
        "",
    ]


def winners_line(report: dict[str, Any]) -> str:
    """One line: which learned method wins on quality (V_B), on cheapest-within-1pt and on AIQ."""
    learned = {
        n: m
        for n, m in report["methods"].items()
        if n not in ("oracle", "random", "best_single") and not n.startswith("single:")
    }

    def best(key: str, maximise: bool) -> str:
        vals = {n: m[key] for n, m in learned.items() if m.get(key) is not None}
        if not vals:
            return "-"
        n = (max if maximise else min)(vals, key=lambda k: vals[k])
        return f"`{n}` ({fmt(vals[n])})"

    cheapest = best("cheapest_within_1pt_cost_share", False)
    quality, area = best("v_b", True), best("aiq", True)
    return f"**Wins:** quality at lambda 0 (V_B) {quality}; cheapest within 1pt {cheapest}; AIQ {area}."


def write_evaluation_report(report: dict[str, Any], out: Path) -> None:
    """report.md (the summary table of every method) and the cost-quality and call-share plots."""
    ds, ref = report["dataset"], report["reference"]
    md = [
        f"# Offline evaluation: {Path(ds['path']).name}",
        "",
        f"{ds['n_train']} train / {ds['n_test']} test queries, {len(ds['models'])} models"
        + (f", benchmark `{ds['benchmark']}`" if ds["benchmark"] else "")
        + f"; seed {report['config']['seed']}. Best single (chosen on train): `{ref['best_single_model']}` "
        f"quality {ref['best_single_quality']:.4f} at ${ref['best_single_cost_usd']:.6f}/query; oracle "
        f"{ref['oracle_quality']:.4f}.",
        "",
        "Quality, cost, V_B and regret at lambda = 0 on the test split. 'Cheapest within 1pt': the cost (as a share "
        "of the best single model's) at the lambda chosen on a validation part of the train split as the cheapest "
        "whose quality is within 0.01 of the best single's; '-' where no lambda got there.",
        "",
        winners_line(report),
        "",
        _evaluation_table(report),
        "",
        *_cascade_table(report),
        "![cost-quality curves](cost_quality.png)",
        "",
        "![call shares](call_shares.png)",
        "",
        f"Run took {report['seconds']} s. Config: see report.json `config`.",
    ]
    (out / "report.md").write_text("\n".join(md) + "\n")
    _plot_cost_quality(report, out / "cost_quality.png")
    _plot_call_shares(report, out / "call_shares.png")


#: units for axis labels that scenarios give without them (a label with "(...)" is kept as given)
UNITS = {
    "step": "step (queries routed)",
    "quality": "quality (score 0-1)",
    "cumulative regret": "cumulative regret (quality points below the oracle)",
}


def _label(text: str, unit: str | None = None) -> str:
    if unit:
        return f"{text} ({unit})"
    return text if "(" in text else UNITS.get(text, text)


def _legend_outside(ax: Any, n: int, right: bool = False) -> None:
    """A legend that never covers a line: right of the axes, or below them in columns."""
    if right:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(max(n, 1), 3), frameon=False)


def _save(fig: Any, path: Path, dpi: int = 110) -> None:
    # bbox_inches="tight" grows the image to hold the outside legend
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def cost_quality_figure(report: dict[str, Any]) -> Any:
    """Each learner's mean quality against its mean cost as lambda sweeps, the single models as reference."""
    fig, ax = plt.subplots(figsize=(9, 6))
    cmap = plt.get_cmap("tab20")
    curves = [
        (n, c)
        for n, c in report["curves"]["cost_quality"].items()
        if not n.startswith("single:") and n not in ("random", "best_single")
    ]
    for j, (name, c) in enumerate(curves):
        ax.plot(
            c["cost_usd"],
            c["quality"],
            marker=".",
            linewidth=1.2,
            label=name,
            color=cmap(j % 20),
            linestyle="--" if name.endswith("[online]") else "-",
        )
    singles = [(n, m) for n, m in report["methods"].items() if n.startswith("single:")]
    for k, (name, m) in enumerate(singles):
        ax.scatter([m["cost_usd"]], [m["quality"]], marker="x", color="grey", label="single model" if k == 0 else None)
        ax.annotate(
            name[7:],
            (m["cost_usd"], m["quality"]),
            fontsize=7,
            color="dimgrey",
            xytext=(3, 3),
            textcoords="offset points",
        )
    r = report["methods"]["random"]
    ax.scatter([r["cost_usd"]], [r["quality"]], marker="s", color="black", label="random")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD, log scale)")
    ax.set_ylabel("mean quality on the test split (score 0-1)")
    ax.set_title(f"Cost-quality trade-off as lambda varies\n{Path(report['dataset']['path']).name}", fontsize=12)
    ax.grid(True, which="major", alpha=0.3)
    _legend_outside(ax, len(curves) + 2, right=True)
    return fig


def _plot_cost_quality(report: dict[str, Any], path: Path) -> None:
    _save(cost_quality_figure(report), path)


def call_shares_figure(report: dict[str, Any]) -> Any:
    """Per method, the share of test queries sent to each model at lambda = 0 (stacked bars)."""
    names = [n for n in report["methods"] if not n.startswith("single:")]
    models = report["dataset"]["models"]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(names) + 2))
    left = [0.0] * len(names)
    cmap = plt.get_cmap("tab20")
    for j, m in enumerate(models):
        vals = [report["methods"][n]["call_share"][m] for n in names]
        ax.barh(names, vals, left=left, color=cmap(j % 20), label=m if len(models) <= 20 else None)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of test queries sent to each model (fraction, lambda = 0)")
    ax.set_ylabel("method")
    ax.set_title(f"Which model each method calls\n{Path(report['dataset']['path']).name}", fontsize=12)
    if len(models) <= 20:
        _legend_outside(ax, len(models), right=True)
    ax.invert_yaxis()
    return fig


def _plot_call_shares(report: dict[str, Any], path: Path) -> None:
    _save(call_shares_figure(report), path)


def write_simulation_report(results: dict[str, Any], out: Path) -> None:
    """report.md: every table of results.json and every plot, in order; the plots as PNG files."""
    ds = results["dataset"]
    md = [
        f"# Simulation `{results['scenario']}`: {Path(ds['path']).name}",
        "",
        f"{ds['n_train']} train / {ds['n_test']} test queries, {len(ds['models'])} models; seed {results['seed']}"
        + (" (quick)" if results.get("quick") else "")
        + f"; {results['seconds']} s. Config: config.toml beside this report.",
        "",
    ]
    for note in results.get("notes", []):
        md.append(f"- {note}")
    if results.get("notes"):
        md.append("")
    for name, rows in results.get("tables", {}).items():
        if not rows:
            continue
        header = list(rows[0])
        md += [f"## {name}", "", markdown_table(header, [[r.get(h) for h in header] for r in rows]), ""]
    for check, value in results.get("checks", {}).items():
        md.append(f"- check `{check}`: {value}")
    for plot in results.get("plots", []):
        _line_plot(plot, out / plot["file"])
        md += ["", f"![{plot['title']}]({plot['file']})"]
    (out / "report.md").write_text("\n".join(md) + "\n")


def line_figure(plot: dict[str, Any]) -> Any:
    """A scenario's plot: ``series`` ({name: {x, y, marker?}}), ``title``, ``xlabel``/``ylabel`` (optional
    ``xunit``/``yunit``), reference ``hlines`` [(y, label)] and ``vlines`` [x] (events such as a drift)."""
    fig, ax = plt.subplots(figsize=(9, 5))
    for name, s in plot["series"].items():
        ax.plot(s["x"], s["y"], label=name, linewidth=1.4, marker=s.get("marker"))
    for y, label in plot.get("hlines", []):
        ax.axhline(y, linestyle="--", color="grey", linewidth=0.9, label=label)
    for k, x in enumerate(plot.get("vlines", [])):
        ax.axvline(x, linestyle=":", color="red", linewidth=0.9, label="event" if k == 0 else None)
    ax.set_title(plot["title"], fontsize=12)
    ax.set_xlabel(_label(plot["xlabel"], plot.get("xunit")))
    ax.set_ylabel(_label(plot["ylabel"], plot.get("yunit")))
    ax.grid(True, alpha=0.3)
    _legend_outside(ax, len(plot["series"]) + len(plot.get("hlines", [])) + bool(plot.get("vlines")))
    return fig


def _line_plot(plot: dict[str, Any], path: Path) -> None:
    _save(line_figure(plot), path, dpi=100)
