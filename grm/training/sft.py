"""Rejective fine-tuning: TRL's SFTTrainer on accepted trajectories (child program; see launch.py).

Data are conversational prompt-completion pairs (user = the GRM prompt the sample saw, assistant = its
output), so the loss falls on the GRM's output only with any chat template (no ``{% generation %}`` markers
needed), and general instruction data mixes in as the same kind of pairs.

    python -m grm.training.sft JOB_DIR
"""

from __future__ import annotations

from grm.training.jobs import checkpoint_step, child_main, common_arguments, job_paths, last_checkpoint, read_data, torch_dtype, write_model_card, resume_training
from grm.model_loading import pretrained_kwargs
from grm.training.tokenizers import job_trust, load_tokenizer


def build_trainer(job: dict):
    args, notes = common_arguments(job)  # first: a bad config fails before the slow imports
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    params = job.get("params", {})
    tok = load_tokenizer(job["model"], job_trust(job))
    model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch_dtype(job.get("dtype", "auto"), args["bf16"]),
                                                 **pretrained_kwargs(job["model"], job_trust(job)))
    rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in read_data(job["job_dir"])]
    config = SFTConfig(
        **args,
        max_length=params.get("max_length", 2048),
        packing=False,
        completion_only_loss=True,
        dataset_num_proc=None,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tok)
    return trainer, notes


def train(job: dict) -> dict:
    trainer, notes = build_trainer(job)
    ckpt = last_checkpoint(job_paths(job["job_dir"])["checkpoints"])
    out = resume_training(trainer, ckpt, "sft")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "train_loss": out.training_loss,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "steps": trainer.state.global_step,
        "resumed_from_step": checkpoint_step(ckpt),
    }
    final = job_paths(job["job_dir"])["model"]
    trainer.save_model(str(final))  # on every process: DeepSpeed ZeRO-3 gathers the sharded weights collectively
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final))
        write_model_card(final, "GRM after rejective fine-tuning (SPCT step 1)", job, metrics)
    return {"metrics": metrics, "notes": notes, "log_history": trainer.state.log_history}


if __name__ == "__main__":
    child_main(train)
