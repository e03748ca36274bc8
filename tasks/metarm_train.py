"""metarm_train: the meta RM (sequence classifier, one logit, BCE) on ``metarm_data`` -> ``models/metarm``."""

from __future__ import annotations

from grm.training.launch import clear_checkpoints

from storage import ArtifactRef
from tasks.base import StageContext, StageOutput
from tasks.models import publish_model, run_trainer
from tasks.stage import MODEL, stage


@stage(group="metarm", outputs={"metarm": MODEL}, config=("seed", "models", "metarm.train", "metarm.max_length"),
       models={"metarm_base": ("models.metarm_base", "models.base")})
def run(ctx: StageContext, metarm_data: ArtifactRef, metarm_base: ArtifactRef) -> StageOutput:
    cfg = ctx.config
    ref = metarm_data
    rows = ctx.store.read_table(ref, columns=["text", "label", "split"]).to_pylist()
    train = [r for r in rows if r["split"] == "train"]
    if not train:
        raise ValueError(f"metarm_train: {ref.short} has no train rows")
    data = {
        "train": len(train),
        "train_positive": sum(r["label"] for r in train),
        "heldout": len(rows) - len(train),
        "metarm_data": ref.short,
    }
    result = run_trainer(
        ctx, "metarm", metarm_base, cfg.metarm.train, {"max_length": cfg.metarm.max_length}, rows,
        description="Pointwise scalar classifier (one logit, binary cross-entropy) over GRM trajectories: "
        "the logit scores how likely a trajectory's scores are correct (paper Eq. 10).",
        card_data=data,
    )
    model = publish_model(ctx, "metarm", result["model_dir"], metrics=result["metrics"], data=data)
    clear_checkpoints(ctx.work_dir())
    m = result["metrics"]
    md = (f"# metarm_train\n\n{data['train']} train trajectories ({data['train_positive']} correct), {m['steps']} steps; "
          f"{m['train_inputs_cut']} train and {m['heldout_inputs_cut']} held-out inputs cut in the middle of their longest "
          f"response to fit metarm.max_length {cfg.metarm.max_length}.\n")
    if "heldout_accuracy" in m:
        auc = "n/a (one class)" if m["heldout_roc_auc"] is None else f"{m['heldout_roc_auc']:.1f}%"
        md += f"Held-out prompts ({m['heldout_n']} trajectories): accuracy {m['heldout_accuracy']:.1f}%, ROC-AUC {auc}, BCE {m['heldout_loss']:.4f}.\n"
    return StageOutput({"metarm": model}, rows_in=len(rows), rows_out=m["steps"], summary_md=md, metrics=m)
