"""Adapters for formats with more than two responses per row: style matrices, rankings, best-of-N."""

from __future__ import annotations

import itertools
import math
import re
from typing import Mapping

from grm.formats.base import (
    BAD_LABEL,
    BEST_OUT_OF_RANGE,
    INCONSISTENT,
    NO_SINGLE_BEST,
    TIE,
    TOO_FEW_RESPONSES,
    WRONG_TYPE,
    Draft,
    RowContext,
    RowError,
    check_text,
    field_value,
    listwise,
    messages,
    optional_text,
    pairwise,
    rated,
    text,
    text_list,
    user,
)
from grm.formats.pairwise import rmb_answer, rmb_category
from grm.shuffling import permutation, shown

RM_BENCH_STYLES = ("concise", "detailed_plain", "detailed_markdown")
# RM-Bench reports by domain; the file a row comes from names its domain.
_RM_BENCH_DOMAINS = {"chat": "chat", "code": "code", "math": "math", "safety-refuse": "safety", "safety-response": "safety"}


def rm_bench(row: Mapping, ctx: RowContext) -> list[Draft]:
    """3 chosen x 3 rejected style variants -> 9 pairwise items. ``meta`` names both styles and the prompt id
    so the 3x3 accuracy matrix (easy / normal / hard) can be scored; the style pair is part of each item's
    identity, so two variants that happen to have equal text still fill their own matrix cell."""
    chosen = text_list(row, "chosen", 3)
    rejected = text_list(row, "rejected", 3)
    prompt_id = str(field_value(row, "id"))
    file_domain = ctx.stem.replace("_filtered", "")
    domain = _RM_BENCH_DOMAINS.get(file_domain, file_domain)
    conv = user(text(row, "prompt"))
    out = []
    for i, j in itertools.product(range(3), range(3)):
        styles = (RM_BENCH_STYLES[i], RM_BENCH_STYLES[j])
        out.append(pairwise(conv, chosen[i], rejected[j], 0, domain, prompt_id=prompt_id, chosen_style=styles[0],
                            rejected_style=styles[1], rm_bench_subset=row.get("subset"),
                            identity=["rm_bench", domain, prompt_id, *styles]))
    return out


def _preference_graph(prefs: list, n: int) -> dict[int, set[int]]:
    if not isinstance(prefs, list) or len(prefs) != n * (n - 1) // 2:
        raise RowError(WRONG_TYPE, f"preference must be a list of {n * (n - 1) // 2} ints")
    beats: dict[int, set[int]] = {i: set() for i in range(n)}
    for (a, b), v in zip(itertools.combinations(range(n), 2), prefs):
        if isinstance(v, bool) or v not in (0, 1, 2):
            raise RowError(BAD_LABEL, f"preference value {v!r} is not 0, 1 or 2")
        if v == 1:
            beats[a].add(b)
        elif v == 2:
            beats[b].add(a)
    return beats


def _has_cycle(beats: dict[int, set[int]]) -> bool:
    def reachable(start: int) -> set[int]:
        seen, stack = set(), [start]
        while stack:
            for w in beats[stack.pop()]:
                if w not in seen:
                    seen.add(w)
                    stack.append(w)
        return seen

    return any(i in reachable(i) for i in beats)


def ranking_best(prefs: list, n: int) -> tuple[int, list[float]]:
    """The best of n responses from their pairwise preferences (pairs in (0,1), (0,2), ... order; 1 = first
    better, 2 = second better, 0 = no preference). Contradictory preferences (a cycle) are inconsistent. The
    best is the unique response with the highest wins-minus-losses that no other response beats; when there
    is none the row has no single best. Returns the best index and every response's wins-minus-losses."""
    beats = _preference_graph(prefs, n)
    if _has_cycle(beats):
        raise RowError(INCONSISTENT, f"preferences {prefs} contain a cycle")
    losses = {i: sum(i in beats[j] for j in range(n)) for i in range(n)}
    score = [float(len(beats[i]) - losses[i]) for i in range(n)]
    top = [i for i in range(n) if score[i] == max(score)]
    if len(top) != 1 or losses[top[0]]:
        raise RowError(NO_SINGLE_BEST, f"preferences {prefs}")
    return top[0], score


def _passages(v) -> str:
    if not isinstance(v, list):
        raise RowError(WRONG_TYPE, "passages is not a list")
    blocks = []
    for i, p in enumerate(v):
        if not isinstance(p, list) or not p:
            raise RowError(WRONG_TYPE, f"passages[{i}] is not [title, sentence, ...]")
        title, *sentences = [check_text(s, f"passages[{i}]", allow_empty=True) for s in p]
        blocks.append(f"[{title}] " + " ".join(s.strip() for s in sentences))
    return "\n".join(blocks)


def finegrained_qa(row: Mapping, ctx: RowContext) -> list[Draft]:
    """FineGrainedRLHF qa-feedback: 4 answers ranked by 6 pairwise human preferences (see ``ranking_best``)."""
    responses = [text(row, f"prediction {i}") for i in range(1, 5)]
    best, score = ranking_best(field_value(row, "preference"), 4)
    query = text(row, "question")
    if row.get("passages"):
        query = f"{query}\n\nPassages:\n{_passages(row['passages'])}"
    return [listwise(user(query), responses, best, "qa_feedback", ratings=score, preference=row["preference"])]


def _finite(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def ultrafeedback(row: Mapping, ctx: RowContext) -> list[Draft]:
    """Per-response GPT-4 ratings (``fine-grained_score``, the mean of the four aspect ratings): the best is
    the highest. Responses without a finite score are left out (counted in meta); fewer than two rated
    responses, or a tie at the top, quarantines the row."""
    completions = field_value(row, "completions")
    if not isinstance(completions, list):
        raise RowError(WRONG_TYPE, "completions is not a list")
    responses, scores, models = [], [], []
    for i, c in enumerate(completions):
        if not isinstance(c, Mapping):
            raise RowError(WRONG_TYPE, f"completions[{i}] is not an object")
        s = _finite(c.get("fine-grained_score"))
        if s is None:
            continue
        responses.append(check_text(c.get("response"), f"completions[{i}].response"))
        scores.append(s)
        models.append(c.get("model"))
    if len(responses) < 2:
        raise RowError(TOO_FEW_RESPONSES, f"{len(responses)} rated completion(s)")
    top = max(scores)
    if scores.count(top) > 1:
        raise RowError(TIE, f"{scores.count(top)} completions share the top score {top}")
    return [listwise(user(text(row, "instruction")), responses, scores.index(top), optional_text(row, "source"),
                     ratings=scores, models=models, unrated=len(completions) - len(responses))]


def rmb_bon(row: Mapping, ctx: RowContext) -> list[Draft]:
    """RMB best-of-N: ``bon_best`` must beat every answer in ``loser_list``; it is listed first."""
    conv = messages(field_value(row, "conversation_input"), "conversation_input")
    best = rmb_answer(field_value(row, "bon_best"), "bon_best")
    losers = field_value(row, "loser_list")
    if not isinstance(losers, list) or not losers:
        raise RowError(TOO_FEW_RESPONSES, "loser_list is not a non-empty list")
    responses = [best] + [rmb_answer(x, f"loser_list[{i}]") for i, x in enumerate(losers)]
    return [listwise(conv, responses, 0, rmb_category(row, "BoN_set/"), bon_uid=row.get("bon_uid"),
                     models=[row["bon_best"].get("llm_name")] + [x.get("llm_name") for x in losers])]


_PPE_DOMAIN = re.compile(r"PPE-(.+?)-Best-of-K", re.IGNORECASE)


def ppe_domain(ctx: RowContext) -> str:
    m = _PPE_DOMAIN.search(ctx.path)
    return m.group(1) if m else (ctx.stem if ctx.stem not in ("train", "test", "data") else ctx.parent_name)


def ppe_correctness(row: Mapping, ctx: RowContext) -> list[Draft]:
    """PPE correctness best-of-K: K sampled responses with 0/1 correctness ``scores``; PPE's accuracy is
    measured on ``sampled_conflict_pairs`` (one correct, one incorrect), so each pair becomes an item."""
    scores = field_value(row, "scores")
    if not isinstance(scores, list) or not scores:
        raise RowError(WRONG_TYPE, "scores is not a non-empty list")
    k = len(scores)
    pairs = field_value(row, "sampled_conflict_pairs")
    if not isinstance(pairs, list) or not pairs:
        raise RowError(TOO_FEW_RESPONSES, "no sampled_conflict_pairs")
    conv = user(text(row, "prompt"))
    out = []
    for p in pairs:
        if not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in p)):
            raise RowError(WRONG_TYPE, f"conflict pair {p!r} is not two indices")
        a, b = p
        if not (0 <= a < k and 0 <= b < k):
            raise RowError(BEST_OUT_OF_RANGE, f"conflict pair {p} outside {k} responses")
        sa, sb = (_finite(float(s) if isinstance(s, bool) else s) for s in (scores[a], scores[b]))
        if sa is None or sb is None or sa == sb:
            raise RowError(BAD_LABEL, f"conflict pair {p} has scores {scores[a]!r}, {scores[b]!r}")
        out.append(pairwise(conv, text(row, f"response_{a + 1}"), text(row, f"response_{b + 1}"), 0 if sa > sb else 1,
                            ppe_domain(ctx), question_id=row.get("question_id"), model_name=row.get("model_name"),
                            pair=[a, b]))
    return out


def qwen_math_bon(row: Mapping, ctx: RowContext) -> list[Draft]:
    """Qwen2.5-Math best-of-8: 8 solutions with 0/1 correctness (``score``). Several can be correct, so there
    is no single best: each solution becomes a single-response correctness item, grouped by ``meta.problem``
    (best-of-N selection is then the highest-scored solution of each group). Equal texts of one problem stay
    separate items (``meta.identity``) so every group keeps its 8 members."""
    responses = text_list(row, "response")
    correct = field_value(row, "score")
    if not isinstance(correct, list) or len(correct) != len(responses):
        raise RowError(WRONG_TYPE, f"score must be a list of {len(responses)} booleans")
    if not all(isinstance(c, bool) for c in correct):
        raise RowError(BAD_LABEL, f"score {correct!r} holds non-booleans")
    preds = row.get("pred") if isinstance(row.get("pred"), list) else [None] * len(responses)
    conv = user(text(row, "question"))
    subset = optional_text(row, "level") or "math"
    problem = row.get("idx")
    return [rated(conv, r, c, subset, problem=problem, response_index=i, gt=row.get("gt"),
                  pred=preds[i] if i < len(preds) else None, identity=["qwen_math_bon", problem, i])
            for i, (r, c) in enumerate(zip(responses, correct))]


RB2_TIES = "Ties"
_RB2_TIES_ID = re.compile(r"(ref|tied):\d+")
RB2_ORDER_SEED = 0  # fixed, not a config seed: an item's response order is part of its identity


def _count(row: Mapping, key: str) -> int:
    v = field_value(row, key)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise RowError(WRONG_TYPE, f"{key}={v!r} is not a count")
    return v


def rewardbench2(row: Mapping, ctx: RowContext) -> list[Draft]:
    """RewardBench 2 (allenai/reward-bench-2, split test): one item per row holding ALL its completions, so a
    pointwise GRM rates them in one pass (the paper's n-response mode). Ties rows hold many (up to 20+), all in
    one prompt: ``grm.sampling_plan`` makes one request per sample with every completion in it, each sample in
    its own shuffled order; a prompt longer than the judge's context is skipped by the judge and counted in its
    skipped prompts, like any other item.

    The official ratings mode rates each completion on its own, so order does not matter there; our GRM sees
    them together and any unshuffled read (greedy decoding, a plan with shuffle off) takes the item's order, so
    the correct one must not always come first. The completions, unrolled as the harness does (chosen, then
    rejected; the first ``num_correct`` are correct), are placed in an order seeded by the row id. ``best`` is
    where ``chosen[0]`` went (the completion the harness's ``scores[0]`` credits); ``meta`` records
    ``num_correct``, ``total_completions``, ``correct`` (the item positions of every correct completion,
    ascending), ``order`` (the unrolled index of each item position) and ``rb2_id`` (Ties: ``ref:<pid>`` /
    ``tied:<pid>``, which the Ties formula pairs)."""
    rb2_id = field_value(row, "id")
    if isinstance(rb2_id, bool) or not isinstance(rb2_id, (str, int)):
        raise RowError(WRONG_TYPE, f"id={rb2_id!r} is not a string or an integer")
    rb2_id = str(rb2_id)
    subset = text(row, "subset")
    if subset == RB2_TIES and not _RB2_TIES_ID.fullmatch(rb2_id):
        raise RowError(BAD_LABEL, f"Ties id {rb2_id!r} is not 'ref:<n>' or 'tied:<n>'")
    chosen = text_list(row, "chosen")
    rejected = text_list(row, "rejected")
    num_correct = _count(row, "num_correct")
    total = _count(row, "total_completions")
    if len(chosen) != num_correct:
        raise RowError(WRONG_TYPE, f"chosen has {len(chosen)} completions but num_correct={num_correct}")
    if len(chosen) + len(rejected) != total:
        raise RowError(WRONG_TYPE, f"chosen + rejected hold {len(chosen) + len(rejected)} completions but "
                                   f"total_completions={total}")
    if not chosen:
        raise RowError(TOO_FEW_RESPONSES, "no correct completion (chosen is empty)")
    if not rejected:
        raise RowError(TOO_FEW_RESPONSES, "no incorrect completion (rejected is empty)")
    both = set(chosen) & set(rejected)
    if both:
        raise RowError(BAD_LABEL, f"a completion is both chosen and rejected: {next(iter(both))[:60]!r}")
    order = permutation(total, RB2_ORDER_SEED, "rewardbench2", rb2_id)
    correct = [j for j, u in enumerate(order) if u < num_correct]
    return [listwise(user(text(row, "prompt")), shown(chosen + rejected, order), order.index(0), subset,
                     rb2_id=rb2_id, num_correct=num_correct, total_completions=total, correct=correct, order=order)]
