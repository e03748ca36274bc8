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


Point = tuple  # (k, value, ci_low, ci_high)


def scaling_series(rows: Iterable[Mapping]) -> dict[tuple[str, str, str], list[Point]]:
    """(model, benchmark, method) -> [(k, value, ci_low, ci_high)] for voting@k and metaRM@k with k_meta = k/2;
    method 'greedy' and 'baseline:chance' give one point each (k = None), the plot's reference lines."""
    out: dict[tuple[str, str, str], list[Point]] = {}
    for r in _headline(rows):
        if r["method"] in ("voting", "greedy", "baseline:chance") or (
                r["method"] == "metarm" and r["k_meta"] == default_k_meta(r["k"])):
            if not math.isnan(r["value"]):
                point = (r["k"], r["value"], r.get("ci_low"), r.get("ci_high"))
                out.setdefault((r["model"], r["benchmark"], r["method"]), []).append(point)
    return {key: sorted(v, key=lambda p: p[0] or 0) for key, v in sorted(out.items())}


def scaling_plot(rows: Sequence[Mapping], path: str | Path) -> Path:
    """Headline metric vs k on a log2 axis: voting (solid) vs meta-RM voting (dashed) with their 95% intervals
    as bands, greedy (dotted) and chance (grey) as reference lines; one colour per benchmark (and model, when
    several were sampled). The y axis spans at least 30 points, so noise does not look like a slope."""
    import matplotlib

    matplotlib.use("Agg")  # no display; safe in worker processes
    import matplotlib.pyplot as plt

    series = scaling_series(rows)
    chance = {b: pts[0][1] for (m, b, method), pts in series.items() if method == "baseline:chance"}
    greedy = {(m, b): pts[0][1] for (m, b, method), pts in series.items() if method == "greedy"}
    series = {key: pts for key, pts in series.items() if key[2] in ("voting", "metarm")}
    models = sorted({m for m, _, _ in series})
    lines = sorted({(m, b) for m, b, _ in series})
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colours = plt.get_cmap("tab10")
    for i, (model, bench) in enumerate(lines):
        label = bench if len(models) <= 1 else f"{bench} ({model})"
        for method, style in (("voting", "-"), ("metarm", "--")):
            pts = series.get((model, bench, method))
            if pts:
                ks_, vs = [p[0] for p in pts], [p[1] for p in pts]
                ax.plot(ks_, vs, style, marker="o", color=colours(i % 10),
                        label=f"{label}: {'voting' if method == 'voting' else 'meta RM (k/2)'}")
                band = [(p[0], p[2], p[3]) for p in pts if p[2] is not None and p[3] is not None]
                if band:
                    ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                                    color=colours(i % 10), alpha=0.12 if method == "voting" else 0.06, linewidth=0)
        if (model, bench) in greedy:
            ax.axhline(greedy[(model, bench)], linestyle=":", color=colours(i % 10), linewidth=1,
                       label=f"{label}: greedy")
        if bench in chance:
            ax.axhline(chance[bench], color="grey", linewidth=0.8, alpha=0.6)
    ax.set_xscale("log", base=2)
    ks = sorted({p[0] for pts in series.values() for p in pts})
    if ks:
        ax.set_xticks(ks, [str(k) for k in ks])
    values = [v for pts in series.values() for p in pts for v in (p[1], p[2], p[3]) if v is not None]
    values += [chance[b] for _, b in lines if b in chance] + [greedy[x] for x in lines if x in greedy]
    if values:
        lo, hi = min(values), max(values)
        pad = max(0.0, 30.0 - (hi - lo)) / 2
        ax.set_ylim(max(0.0, lo - pad - 2), min(100.0, hi + pad + 2))
    ax.set_xlabel("k (samples per item; grey: chance)")
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


def _fmt_ci(r: Mapping | None) -> str:
    """A value with its 95% interval: ``61.2 [57.0, 65.3]``."""
    if r is None:
        return "-"
    if r.get("ci_low") is None or r.get("ci_high") is None:
        return _fmt(r["value"])
    return f"{_fmt(r['value'])} [{r['ci_low']:.1f}, {r['ci_high']:.1f}]"


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
    value = {(r["benchmark"], r["model"], r["method"], r["k"], r["k_meta"]): r for r in head}
    n_items = {}
    for r in head:
        n_items[r["benchmark"]] = max(n_items.get(r["benchmark"], 0), r["n"])

    def name(c):
        model, method, k, km = c
        if method == "greedy":
            return f"{model} greedy"
        if method == "voting":
            return f"{model} voting@{k}"
        if method == "metarm":
            return f"{model} metaRM@{k} (k_meta={km})"
        return f"{method}"

    lines = ["## Results (headline per benchmark, %, with 95% intervals)", ""]
    if not head:
        lines.append("No results: no judged items.")
    else:
        lines.append("| benchmark | n | " + " | ".join(name(c) for c in cols) + " |")
        lines.append("|---" * (len(cols) + 2) + "|")
        for b in benches:
            lines.append(f"| {b} | {n_items.get(b, '-')} | " + " | ".join(_fmt_ci(value.get((b, *c))) for c in cols) + " |")
    official = [r for r in rows if r["metric"] == "official" and r["subset"] == ALL]
    if official:
        lines += ["", "## Official numbers (each benchmark's own harness rule, %)", "",
                  "| model | benchmark | method | value [95% CI] | n |", "|---|---|---|---|---|"]
        for r in sorted(official, key=lambda r: (r["model"], r["benchmark"], r["method"], r["k"] or 0)):
            lines.append(f"| {r['model']} | {r['benchmark']} | {name((r['model'], r['method'], r['k'], r['k_meta']))} "
                         f"| {_fmt_ci(r)} | {r['n']} |")
    diffs = [r for r in rows if r["method"] == "difference"]
    if diffs:
        lines += ["", "## Paired differences (bootstrap over the same items; an interval containing 0 is noise)", "",
                  "| model | benchmark | difference | value [95% CI] | n |", "|---|---|---|---|---|"]
        for r in diffs:
            lines.append(f"| {r['model']} | {r['benchmark']} | {r['metric']} | {_fmt_ci(r)} | {r['n']} |")
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
