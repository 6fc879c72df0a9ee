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
        "![cost-quality curves](cost_quality.png)",
        "",
        "![call shares](call_shares.png)",
        "",
        f"Run took {report['seconds']} s. Config: see report.json `config`.",
    ]
    (out / "report.md").write_text("\n".join(md) + "\n")
    _plot_cost_quality(report, out / "cost_quality.png")
    _plot_call_shares(report, out / "call_shares.png")


def _plot_cost_quality(report: dict[str, Any], path: Path) -> None:
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
            linewidth=1,
            label=name,
            color=cmap(j % 20),
            linestyle="--" if name.endswith("[online]") else "-",
        )
    for name, m in report["methods"].items():
        if name.startswith("single:"):
            ax.scatter([m["cost_usd"]], [m["quality"]], marker="x", color="grey")
            ax.annotate(name[7:], (m["cost_usd"], m["quality"]), fontsize=6, color="grey")
    r = report["methods"]["random"]
    ax.scatter([r["cost_usd"]], [r["quality"]], marker="s", color="black", label="random")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD, log)")
    ax.set_ylabel("mean quality")
    ax.set_title(f"Cost-quality curves (lambda sweep), {Path(report['dataset']['path']).name}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_call_shares(report: dict[str, Any], path: Path) -> None:
    names = [n for n in report["methods"] if not n.startswith("single:")]
    models = report["dataset"]["models"]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(names) + 2))
    left = [0.0] * len(names)
    cmap = plt.get_cmap("tab20")
    for j, m in enumerate(models):
        vals = [report["methods"][n]["call_share"][m] for n in names]
        ax.barh(names, vals, left=left, color=cmap(j % 20), label=m if len(models) <= 20 else None)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlabel("share of calls at lambda = 0")
    if len(models) <= 20:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def _line_plot(plot: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 5))
    for name, s in plot["series"].items():
        ax.plot(s["x"], s["y"], label=name, linewidth=1.2, marker=s.get("marker"))
    for y, label in plot.get("hlines", []):
        ax.axhline(y, linestyle="--", color="grey", linewidth=0.8)
        ax.annotate(label, (ax.get_xlim()[0], y), fontsize=7, color="grey")
    for x in plot.get("vlines", []):
        ax.axvline(x, linestyle=":", color="red", linewidth=0.8)
    ax.set_title(plot["title"])
    ax.set_xlabel(plot["xlabel"])
    ax.set_ylabel(plot["ylabel"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
