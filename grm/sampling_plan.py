"""Sampling plans: which GRM samples to draw for an item (orders, hints, seeds), and the scored trajectories
made of what the backend generated.

Every sample sees the responses in its own seeded order (paper §4: "responses are shuffled before
sampling"). Samples of one item that drew the same order share one backend request with ``n`` > 1, so the
prompt is encoded once for all of them; sample i of a request with seed s is drawn with seed s + i. Scores
are mapped back to the original response order before anything else looks at them.

Used by every stage that samples judgments: rft_sample, rl's too-easy filter, metarm_data and judge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from grm import rules
from grm.generation.base import Request, Result
from grm.parsing import BINARY, GRADED, parse_judgment
from grm.prompts import Templates, as_chat, grm_prompt
from grm.seeds import derive_seed
from grm.shuffling import identity, permutation, shown, shown_index, to_original

SKIPPED = "skipped"  # parse_status of a sample the backend did not generate (e.g. prompt too long)


@dataclass(frozen=True)
class PlannedSample:
    item_id: str
    sample_idx: int
    permutation: tuple[int, ...]
    hinted: bool
    binary: bool
    request_id: str
    position: int  # index of this sample within its request's n samples
    seed: int


def is_binary(item: Mapping, single_mode: str) -> bool:
    """Single-response items use the 0/1 variant in training, and in evaluation when configured so."""
    return len(item["responses"]) == 1 and item["label_kind"] == "rating" and single_mode == "binary"


def _hint_strength(item: Mapping) -> str | None:
    """The preference strength in words (``meta.hint_strength``, e.g. 'much better'; HelpSteer2-Preference),
    which the hint shows; the label's digit (``meta.preference_strength``) would mean nothing to the sampler."""
    meta = item.get("meta")
    if not meta:
        return None
    try:
        return json.loads(meta).get("hint_strength")
    except (json.JSONDecodeError, AttributeError):
        return None


def plan(
    items: Iterable[Mapping],
    *,
    k: int,
    seed: int,
    templates: Templates,
    tag: str,
    shuffle: bool = True,
    hinted: bool = False,
    single_mode: str = "binary",
    both_orders: Callable[[Mapping], bool] | None = None,
) -> tuple[list[Request], list[PlannedSample]]:
    """Requests for k non-hinted samples per item (plus one hinted sample, ``sample_idx`` k, when asked and
    the item has a best response). ``tag`` names the purpose (e.g. 'rft', 'judge:grm') so different stages
    draw different orders and seeds. Items for which ``both_orders`` holds also get each sample j in the
    reversed order, as ``sample_idx`` k + j (JudgeBench's second game)."""
    requests: list[Request] = []
    planned: list[PlannedSample] = []
    for item in items:
        iid, responses = item["item_id"], list(item["responses"])
        n, binary = len(responses), is_binary(item, single_mode)
        groups: dict[tuple[int, ...], list[int]] = {}
        for j in range(k):
            perm = tuple(permutation(n, seed, tag, iid, j) if shuffle else identity(n))
            groups.setdefault(perm, []).append(j)
            if both_orders is not None and n >= 2 and both_orders(item):
                groups.setdefault(perm[::-1], []).append(k + j)
        wants_hint = hinted and item["label_kind"] == "best" and n >= 2
        hint_perm = tuple(permutation(n, seed, tag, iid, "hint") if shuffle else identity(n)) if wants_hint else None
        batches = [(perm, idxs, None) for perm, idxs in groups.items()]
        if hint_perm is not None:
            batches.append((hint_perm, [k], shown_index(int(item["best"]), hint_perm)))
        for perm, idxs, hint_best in batches:
            rid = f"{tag}:{iid}:{'-'.join(map(str, perm))}" + (":hint" if hint_best is not None else "")
            rseed = derive_seed(seed, rid)
            prompt = grm_prompt(
                item["conversation"],
                shown(responses, perm),
                templates,
                binary=binary,
                hint_best=hint_best,
                hint_strength=_hint_strength(item) if hint_best is not None else None,
            )
            requests.append(Request(rid, as_chat(prompt), len(idxs), rseed))
            for pos, j in enumerate(idxs):
                planned.append(PlannedSample(iid, j, perm, hint_best is not None, binary, rid, pos, rseed + pos))
    return requests, planned


def collect(
    results: Sequence[Result],
    requests: Sequence[Request],
    planned: Sequence[PlannedSample],
    items_by_id: Mapping[str, Mapping],
) -> list[dict]:
    """One row per planned sample: prompt, completion, scores in original order, parse status, principles,
    critique and correctness (Eq. 10; None where the item has no 0/1 or best label for this variant)."""
    by_id = {r.prompt_id: r for r in results}
    prompts = {r.prompt_id: r.messages[-1]["content"] for r in requests}
    rows = []
    for p in planned:
        item = items_by_id[p.item_id]
        n = len(item["responses"])
        res = by_id.get(p.request_id)
        row = {
            "item_id": p.item_id,
            "sample_idx": p.sample_idx,
            "hinted": p.hinted,
            "seed": p.seed,
            "permutation": list(p.permutation),
            "prompt": prompts.get(p.request_id, ""),
        }
        if res is None or res.skipped or p.position >= len(res.samples):
            why = res.skipped if res is not None and res.skipped else "no sample returned"
            row.update(completion="", scores=None, parse_status=SKIPPED, principles="", critique=why, correct=False)
            rows.append(row)
            continue
        text = res.samples[p.position].text
        parsed = parse_judgment(text, n, BINARY if p.binary else GRADED)
        scores = to_original(parsed.scores, p.permutation) if parsed.scores is not None else None
        if item["label_kind"] == "best" or p.binary:
            correct = rules.is_correct(scores, **rules.item_truth(item["label_kind"], item.get("best"), item.get("ratings")))
        else:
            correct = None  # graded single response: no correctness, only a score (ROC-AUC)
        row.update(
            completion=text,
            scores=scores,
            parse_status=parsed.status,
            principles=parsed.principles,
            critique=parsed.critique,
            correct=correct,
        )
        rows.append(row)
    return rows
