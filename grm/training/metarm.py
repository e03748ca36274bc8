"""The meta RM: a pointwise scalar classifier over a GRM trajectory, trained with binary cross-entropy
(paper §4; child program, see launch.py).

TRL's RewardTrainer is pairwise (Bradley-Terry), so this uses transformers' Trainer with a BCE loss on one
logit. Inputs are ``metarm_data.text`` (the meta-RM template already applied) enclosed in the tokenizer's
chat template, query and responses as the user turn and the GRM's output as the assistant turn (as in the
paper; grm.prompts.metarm_turns). An input longer than metarm.max_length is cut in the middle of its longest
response (grm.prompts.cap_responses), so the BOS token, the query and the GRM's output with its scores survive;
cut inputs are counted.

    python -m grm.training.metarm JOB_DIR
"""

from __future__ import annotations

import math

from grm.metrics import roc_auc
from grm.prompts import cap_responses, metarm_turns
from grm.training.jobs import checkpoint_step, child_main, common_arguments, job_paths, last_checkpoint, read_data, torch_dtype, write_model_card, resume_training
from grm.model_loading import ModelTrust, pretrained_kwargs
from grm.training.tokenizers import job_trust, load_tokenizer


def bce_loss(outputs, labels, num_items_in_batch=None):
    """Mean binary cross-entropy of the single logit against the 0/1 label."""
    import torch.nn.functional as F

    logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
    return F.binary_cross_entropy_with_logits(logits.squeeze(-1).float(), labels.float())


def _ids(tok, text: str) -> list[int]:
    chat = tok.apply_chat_template(metarm_turns(text), tokenize=False)  # the template writes the BOS token
    return tok(chat, add_special_tokens=False)["input_ids"]


def fit(tok, text: str, max_length: int) -> tuple[list[int], bool]:
    """Token ids of one meta-RM input (chat-wrapped) within ``max_length``, and whether it had to be cut.

    The responses are capped at the longest length (in characters) that fits, found by bisection, so only the
    middle of the longest responses goes. If even empty responses leave it too long (a very long query or GRM
    output), the middle of the whole sequence goes: the first quarter (BOS token, instructions) and the end (the
    GRM's output and its scores) stay."""
    ids = _ids(tok, text)
    if len(ids) <= max_length:
        return ids, False
    lo, hi = 0, len(text)  # the longest cap that fits lies in [lo, hi); cap 0 may not fit either
    best = None
    while lo < hi:
        cap = (lo + hi) // 2
        capped, n_cut = cap_responses(text, cap)
        got = _ids(tok, capped)
        if n_cut and len(got) <= max_length:
            best, lo = got, cap + 1
        else:
            hi = cap
    if best is not None:
        return best, True
    head = max_length // 4
    return ids[:head] + ids[len(ids) - (max_length - head):], True


def encode(tok, texts, max_length: int) -> tuple[dict, list[bool]]:
    """Model inputs of meta-RM inputs (each within ``max_length``, see ``fit``) and which of them were cut."""
    fitted = [fit(tok, t, max_length) for t in texts]
    ids = [i for i, _ in fitted]
    return {"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}, [cut for _, cut in fitted]


def load_classifier(path: str, tok, dtype, trust: ModelTrust = ModelTrust()):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype, **pretrained_kwargs(path, trust))
    model.config.pad_token_id = tok.pad_token_id  # the head pools the last non-pad token
    return model


def _dataset(tok, rows, max_length):
    """The examples, and how many inputs were cut to ``max_length``."""
    from datasets import Dataset

    enc, cut = encode(tok, [r["text"] for r in rows], max_length)
    return Dataset.from_dict({**enc, "labels": [float(r["label"]) for r in rows]}), sum(cut)


def evaluate_scores(trainer, dataset) -> dict:
    """Held-out loss, accuracy (logit > 0 <=> label 1) and ROC-AUC."""
    out = trainer.predict(dataset)
    logits = out.predictions.reshape(-1).tolist()
    labels = [int(y) for y in out.label_ids.reshape(-1).tolist()]
    acc = sum((s > 0) == bool(y) for s, y in zip(logits, labels)) / len(labels)
    auc = roc_auc(logits, labels)
    return {
        "heldout_loss": float(out.metrics["test_loss"]),
        "heldout_accuracy": 100.0 * acc,
        "heldout_roc_auc": None if math.isnan(auc.value) else auc.value,
        "heldout_n": len(labels),
        "heldout_positive": sum(labels),
    }


def build_trainer(job: dict):
    args, notes = common_arguments(job)  # first: a bad config fails before the slow imports
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    args.pop("activation_checkpointing", None)  # plain Trainer: off by default
    p = job.get("params", {})
    tok = load_tokenizer(job["model"], job_trust(job))
    set_seed(job["seed"])  # the new score head is drawn at load time, before Trainer seeds anything
    model = load_classifier(job["model"], tok, torch_dtype(job.get("dtype", "auto"), args["bf16"]), job_trust(job))
    rows = read_data(job["job_dir"])
    train_rows = [r for r in rows if r["split"] == "train"]
    held = [r for r in rows if r["split"] == "heldout"]
    config = TrainingArguments(**args, per_device_eval_batch_size=p.get("eval_batch_size", args["per_device_train_batch_size"]),
                               remove_unused_columns=False)
    max_length = p.get("max_length", 2048)
    train_set, cut = _dataset(tok, train_rows, max_length)
    heldout, held_cut = _dataset(tok, held, max_length) if held else (None, 0)
    trainer = Trainer(
        model=model,
        args=config,
        train_dataset=train_set,
        data_collator=DataCollatorWithPadding(tok),
        processing_class=tok,
        compute_loss_func=bce_loss,
    )
    return trainer, notes, heldout, {"train_inputs_cut": cut, "heldout_inputs_cut": held_cut}


def train(job: dict) -> dict:
    trainer, notes, heldout, cut = build_trainer(job)
    ckpt = last_checkpoint(job_paths(job["job_dir"])["checkpoints"])
    out = resume_training(trainer, ckpt, "metarm")
    metrics = {"train_loss": out.training_loss, "steps": trainer.state.global_step, "resumed_from_step": checkpoint_step(ckpt), **cut}
    if heldout is not None:
        metrics.update(evaluate_scores(trainer, heldout))
    final = job_paths(job["job_dir"])["model"]
    trainer.save_model(str(final))  # on every process: DeepSpeed ZeRO-3 gathers the sharded weights collectively
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final))
        write_model_card(final, "Meta RM (pointwise BCE classifier over GRM trajectories)", job, metrics)
    return {"metrics": metrics, "notes": notes}


if __name__ == "__main__":
    child_main(train)
