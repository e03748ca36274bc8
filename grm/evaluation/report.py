"""The evaluation report: the inference-time scaling plot and a markdown summary for the Prefect UI.

Both read ``results`` rows (dicts with the RESULTS columns) and nothing else.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from grm.evaluation.benchmarks import ALL
from grm.evaluation.protocols import headline_metric
from grm.voting import default_k_meta


def _headline(rows: Iterable[Mapping]) -> list[Mapping]:
    return [r for r in rows if r["subset"] == ALL and r["metric"] == headline_metric(r["benchmark"])]


def scaling_series(rows: Iterable[Mapping]) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    """(model, benchmark, method) -> [(k, value)] for voting@k and metaRM@k with k_meta = k/2."""
    out: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in _headline(rows):
        if r["method"] == "voting" or (r["method"] == "metarm" and r["k_meta"] == default_k_meta(r["k"])):
            if not math.isnan(r["value"]):
                out.setdefault((r["model"], r["benchmark"], r["method"]), []).append((r["k"], r["value"]))
    return {key: sorted(v) for key, v in sorted(out.items())}


def scaling_plot(rows: Sequence[Mapping], path: str | Path) -> Path:
    """Headline metric vs k on a log2 axis: voting (solid) vs meta-RM voting (dashed), one colour per
    benchmark (and model, when several were sampled)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; safe in worker processes
    import matplotlib.pyplot as plt

    series = scaling_series(rows)
    models = sorted({m for m, _, _ in series})
    lines = sorted({(m, b) for m, b, _ in series})
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colours = plt.get_cmap("tab10")
    for i, (model, bench) in enumerate(lines):
        label = bench if len(models) <= 1 else f"{bench} ({model})"
        for method, style in (("voting", "-"), ("metarm", "--")):
            pts = series.get((model, bench, method))
            if pts:
                ax.plot([k for k, _ in pts], [v for _, v in pts], style, marker="o", color=colours(i % 10),
                        label=f"{label}: {'voting' if method == 'voting' else 'meta RM (k/2)'}")
    ax.set_xscale("log", base=2)
    ks = sorted({k for pts in series.values() for k, _ in pts})
    if ks:
        ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (samples per item)")
    ax.set_ylabel("headline score (%)")
    ax.set_title("Inference-time scaling: voting vs meta-RM-guided voting")
    ax.grid(True, alpha=0.3)
    if lines:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no sampled judgments to scale", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def summary_markdown(rows: Sequence[Mapping], plot_path: str | None = None, notes: Sequence[str] = ()) -> str:
    """The results table (headline per benchmark and method) plus bias and plot path, for the Prefect UI."""
    # meta-RM columns at the default k_meta only (the alternatives are in the results table)
    head = [r for r in _headline(rows) if r["method"] != "metarm" or r["k_meta"] == default_k_meta(r["k"])]
    cols: list[tuple[str, str, int | None, int | None]] = []
    for r in head:
        c = (r["model"], r["method"], r["k"], r["k_meta"])
        if c not in cols:
            cols.append(c)
    order = {"greedy": 0, "voting": 1, "metarm": 2}
    cols.sort(key=lambda c: (c[0], order.get(c[1], 3), c[2] or 0, c[3] or 0))
    benches = sorted({r["benchmark"] for r in head}, key=lambda b: (b == "overall", b))
    value = {(r["benchmark"], r["model"], r["method"], r["k"], r["k_meta"]): r["value"] for r in head}

    def name(c):
        model, method, k, km = c
        if method == "greedy":
            return f"{model} greedy"
        if method == "voting":
            return f"{model} voting@{k}"
        if method == "metarm":
            return f"{model} metaRM@{k} (k_meta={km})"
        return f"{method}"

    lines = ["## Results (headline per benchmark, %)", ""]
    if not head:
        lines.append("No results: no judged items.")
    else:
        lines.append("| benchmark | " + " | ".join(name(c) for c in cols) + " |")
        lines.append("|---" * (len(cols) + 1) + "|")
        for b in benches:
            lines.append(f"| {b} | " + " | ".join(_fmt(value.get((b, *c))) for c in cols) + " |")
    bias = [r for r in rows if r["method"] == "bias" and r["subset"] == ALL]
    if bias:
        lines += ["", "## Bias (all subsets of a benchmark, %)", "", "| model | benchmark | metric | value | n |", "|---|---|---|---|---|"]
        for r in sorted(bias, key=lambda r: (r["model"], r["benchmark"], r["metric"])):
            lines.append(f"| {r['model']} | {r['benchmark']} | {r['metric']} | {_fmt(r['value'])} | {r['n']} |")
    if plot_path:
        lines += ["", f"Scaling plot: `{plot_path}`"]
    for n in notes:
        lines += ["", n]
    return "\n".join(lines) + "\n"
