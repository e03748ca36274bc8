"""metarm_train: the meta RM (sequence classifier, one logit, BCE) on ``metarm_data`` -> ``models/metarm``."""

from __future__ import annotations

from grm.training.launch import clear_checkpoints

from tasks.base import StageContext, StageOutput
from tasks.models import model_path, publish_model, run_trainer


def run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config
    ref = ctx.inputs.get("metarm_data") or ctx.store.require("tables", "metarm_data", "run stage 'metarm_data' first")
    rows = ctx.store.read_table(ref, columns=["text", "label", "split"]).to_pylist()
    train = [r for r in rows if r["split"] == "train"]
    if not train:
        raise ValueError(f"metarm_train: {ref.short} has no train rows")
    base = model_path(ctx, "metarm_base")
    data = {
        "train": len(train),
        "train_positive": sum(r["label"] for r in train),
        "heldout": len(rows) - len(train),
        "metarm_data": ref.short,
    }
    result = run_trainer(
        ctx, "metarm", base, cfg.metarm.train, {"max_length": cfg.metarm.max_length}, rows,
        description="Pointwise scalar classifier (one logit, binary cross-entropy) over GRM trajectories: "
        "the logit scores how likely a trajectory's scores are correct (paper Eq. 10).",
        card_data=data,
    )
    model = publish_model(ctx, "metarm", result["model_dir"], metrics=result["metrics"], data=data)
    clear_checkpoints(ctx.work_dir())
    m = result["metrics"]
    md = f"# metarm_train\n\n{data['train']} train trajectories ({data['train_positive']} correct), {m['steps']} steps.\n"
    if "heldout_accuracy" in m:
        auc = "n/a (one class)" if m["heldout_roc_auc"] is None else f"{m['heldout_roc_auc']:.1f}%"
        md += f"Held-out prompts ({m['heldout_n']} trajectories): accuracy {m['heldout_accuracy']:.1f}%, ROC-AUC {auc}, BCE {m['heldout_loss']:.4f}.\n"
    return StageOutput({"metarm": model}, rows_in=len(rows), rows_out=m["steps"], summary_md=md, metrics=m)
