"""Training examples for the three trainers, built from ``items`` rows and sampled trajectories.

Pure Python (no torch): the stages call these, the trainers only read what they produce.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from grm.sampling_plan import is_binary
from grm.prompts import Templates, as_chat, grm_prompt, metarm_input
from grm.seeds import derive_seed
from grm.shuffling import permutation, shown, shown_index

TRAIN_SINGLE_MODE = "binary"  # single-response items are trained with the 0/1 variant (paper §1.2)


def trainable(item: Mapping) -> bool:
    """Items whose correctness (Eq. 10) is defined in training: a best response among n >= 2 responses, or a
    single response with a 0/1 label. Graded single responses (e.g. a 1-10 rating) have no training target."""
    n = len(item["responses"])
    if item["label_kind"] == "best":
        return n >= 2 and item.get("best") is not None and 0 <= int(item["best"]) < n
    if item["label_kind"] == "rating":
        ratings = item.get("ratings") or []
        return n == 1 and len(ratings) >= 1 and ratings[0] in (0, 1)
    return False


# ---- rejective fine-tuning -------------------------------------------------------------------------------
def unhinted_prompt(item: Mapping, perm: Sequence[int], templates: Templates) -> str:
    """The GRM prompt of a trajectory without the hint line. A hinted trajectory is trained on the prompt the
    model will see at inference (no hint): the hint only helped find a correct trajectory for a hard item."""
    responses = shown(list(item["responses"]), perm)
    return grm_prompt(item["conversation"], responses, templates, binary=is_binary(item, TRAIN_SINGLE_MODE))


def sft_example(prompt: str, completion: str) -> dict:
    """A conversational prompt-completion pair: the trainer puts the loss on the completion only."""
    return {"prompt": as_chat(prompt), "completion": [{"role": "assistant", "content": completion}]}


@dataclass
class ChatData:
    examples: list[dict]
    problems: list[str] = field(default_factory=list)  # "file:row: reason" for every row that was left out


def _chat_example(messages, where: str) -> tuple[dict | None, str | None]:
    if not isinstance(messages, (list, tuple)) or not messages:
        return None, f"{where}: `messages` must be a non-empty list"
    for m in messages:
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            return None, f"{where}: every message needs string `role` and `content`"
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        return None, f"{where}: the last message must be a non-empty assistant turn (the training target)"
    if len(messages) < 2:
        return None, f"{where}: no prompt before the assistant turn"
    prompt = [{"role": m["role"], "content": m["content"]} for m in messages[:-1]]
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": messages[-1]["content"]}]}, None


def load_general_chat(path: str | Path) -> ChatData:
    """A general instruction dataset (a JSONL, JSON or Parquet file, a folder of them, or a Hugging Face dataset
    id's train split; a ``messages`` list per row) as prompt-completion pairs: the last assistant turn is the
    target, the turns before it are the prompt. Bad rows are reported, not fatal; a source that cannot be read
    at all fails naming rft.general_data."""
    from grm.formats.readers import SourceReadError, iter_records  # the readers every data source goes through

    out = ChatData([])
    try:
        for rec in iter_records(str(path)):
            if rec.error is not None:
                out.problems.append(f"{rec.row_ref}: {rec.error}")
                continue
            messages = rec.value.get("messages") if isinstance(rec.value, Mapping) else None
            ex, why = _chat_example(messages, rec.row_ref)
            if ex is None:
                out.problems.append(why)
            else:
                out.examples.append(ex)
    except SourceReadError as e:
        raise ValueError(f"rft.general_data: {e}") from None
    return out


def mix_general(rm: Sequence[dict], general: Sequence[dict], ratio: float, seed: int) -> tuple[list[dict], dict]:
    """The SFT mix: all RM examples plus general examples making up ``ratio`` of the total (as many as exist),
    shuffled. Returns the examples and the counts actually used."""
    if not 0 <= ratio < 1:
        raise ValueError(f"general_ratio must be in [0, 1), got {ratio}")
    want = round(len(rm) * ratio / (1 - ratio)) if ratio > 0 else 0
    rng = random.Random(derive_seed(seed, "sft-mix"))
    picked = rng.sample(list(general), min(want, len(general)))
    mixed = [dict(e, origin="rm") for e in rm] + [dict(e, origin="general") for e in picked]
    rng.shuffle(mixed)
    total = len(mixed)
    return mixed, {
        "rm_examples": len(rm),
        "general_examples": len(picked),
        "general_wanted": want,
        "general_available": len(general),
        "general_share": len(picked) / total if total else 0.0,
    }


# ---- rule-based RL ---------------------------------------------------------------------------------------
def draws_per_item(n_items: int, max_steps: int, prompts_per_step: int) -> int:
    """How many differently shuffled copies of each item the RL run needs to draw prompts for every step."""
    if n_items == 0:
        return 0
    return max(1, math.ceil(max_steps * prompts_per_step / n_items))


def grpo_rows(items: Iterable[Mapping], *, draws: int, seed: int, templates: Templates) -> list[dict]:
    """One GRPO prompt per (item, draw): each draw shows the responses in its own seeded order. TRL samples the
    G completions of a group from one prompt (the group shares one order, which the group-relative advantage
    needs); different draws of an item see different orders. The reward columns are in the shown order."""
    rows = []
    for item in items:
        iid, responses = item["item_id"], list(item["responses"])
        n, binary = len(responses), is_binary(item, TRAIN_SINGLE_MODE)
        for d in range(draws):
            perm = permutation(n, seed, "rl", iid, d)
            rows.append(
                {
                    "prompt": as_chat(grm_prompt(item["conversation"], shown(responses, perm), templates, binary=binary)),
                    "item_id": iid,
                    "draw": d,
                    "permutation": perm,
                    "n_responses": n,
                    "best_shown": shown_index(int(item["best"]), perm) if item["label_kind"] == "best" else None,
                    "label": int(item["ratings"][0]) if item["label_kind"] == "rating" else None,
                    "binary": binary,
                }
            )
    return rows


# ---- meta RM ---------------------------------------------------------------------------------------------
def metarm_text(item: Mapping, perm: Sequence[int], completion: str, templates: Templates) -> str:
    """The meta RM's input for one trajectory: the responses in the order that trajectory saw them."""
    return metarm_input(item["conversation"], shown(list(item["responses"]), perm), completion, templates)


def heldout(item: Mapping, fraction: float, seed: int) -> bool:
    """Held-out split by prompt: every trajectory of an item, and every item asking the same conversation
    (datasets often pair one prompt with several response sets), falls on the same side, so a held-out score
    never rewards remembering a prompt seen in training."""
    prompt = json.dumps([[m["role"], m["content"]] for m in item["conversation"]], ensure_ascii=False)
    return derive_seed(seed, "metarm-heldout", prompt) / 0x80000000 < fraction
