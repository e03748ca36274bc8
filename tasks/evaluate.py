"""Stage `evaluate`: judgments + items -> results (greedy, voting@k, metaRM@k, bias, length baseline), the
scaling plot, and a markdown summary for the Prefect UI."""

from __future__ import annotations

from grm.evaluation.methods import k_grid, k_meta_grid, methods_for
from grm.evaluation.report import scaling_plot, summary_markdown
from grm.evaluation.results import results_table
from grm.evaluation.sql import evaluate_judgments, sample_budget
from storage.sql import connect
from storage import ArtifactRef
from tasks.base import StageContext, StageOutput
from tasks.stage import FILES, TABLE, stage

PLOT_NAME = "scaling.png"


@stage(group="evaluation", outputs={"results": TABLE, "plots": FILES}, optional_outputs=("plots",),
       config=("evaluate", "judge.k_max", "prompts.single_eval"))
def run(ctx: StageContext, items: ArtifactRef, judgments: ArtifactRef) -> StageOutput:
    store, cfg = ctx.store, ctx.config.evaluate

    with connect(store, views=["judgments", "items"], refs={"judgments": judgments, "items": items}) as con:
        k_avail = sample_budget(con)
        k_values = k_grid(k_avail, cfg.k_values) if k_avail else []
        k_metas = {k: k_meta_grid(k, cfg.k_meta_alternatives) for k in k_values}
        data = evaluate_judgments(
            con,
            methods_for(k_values, k_metas),
            seed=cfg.tie_seed,
            binary_single=ctx.config.prompts.single_eval == "binary",
        )
    rows = results_table(data, bootstrap_draws=cfg.interval_draws, seed=cfg.tie_seed)
    ref = store.write_table("results", rows, **ctx.manifest())
    artifacts = {"results": ref}

    plot_path = None
    if cfg.plot:
        folder = store.staging_folder()
        scaling_plot(rows, folder / PLOT_NAME)
        plots = store.publish_folder("files", "plots", folder, **ctx.manifest())
        artifacts["plots"] = plots
        plot_path = f"{plots.path}/{PLOT_NAME}"

    notes = [f"Left out: {what} = {n}" for what, n in data.skipped.items() if n]
    for note in notes:
        ctx.logger.warning("evaluate: %s", note)
    return StageOutput(
        artifacts=artifacts,
        rows_in=(judgments.rows or 0) + (items.rows or 0),
        rows_out=ref.rows or 0,
        summary_md=summary_markdown(rows, plot_path, notes),
        metrics={"k_values": k_values, "results": len(rows), **{f"skipped_{k}": v for k, v in data.skipped.items()}},
    )
