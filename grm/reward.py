"""The trained GRM as a reward: score batches of (conversation, responses) the way the paper does at
inference, and plug into TRL as a reward function.

Each item gets k samples (shuffled response order per sample, temperature 0.5; k = 1 is greedy in the
original order), scores mapped back to the original order, parse failures left out, then voting (Eq. 14)
or, with a meta RM, meta-RM-guided voting over the top k_meta samples. Planning, prompting and parsing reuse
``grm.sampling_plan``; voting reuses ``grm.voting``.

    from grm.generation.hf import HFBackend
    from grm.reward import GRMReward
    reward = GRMReward(HFBackend("store/models/grm/<id>"), k=8)
    [r] = reward.score([([{"role": "user", "content": "2+2?"}], ["4", "5"])])
    r.scores, r.best              # voted totals per response, the tie-broken argmax
    trainer = GRPOTrainer(..., reward_funcs=reward.reward_function())
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Sequence

from grm import sampling_plan
from grm.generation.base import Backend, SamplingParams
from grm.model_loading import ModelTrust, pretrained_kwargs, tokenizer_kwargs
from grm.prompts import Templates
from grm.training.examples import metarm_text
from grm.voting import Vote, default_k_meta, metarm_select, metarm_vote, method_tag, tie_key, vote

Conversation = Sequence[Mapping[str, str]]
# meta-RM inputs (grm.prompts.metarm_input: \x1e before the GRM output, \x1f around each response; metarm_turns
# splits them into a chat and drops the marks) -> one logit each
MetaScorer = Callable[[Sequence[str]], Sequence[float]]


@dataclass(frozen=True)
class SampleJudgment:
    sample_idx: int
    permutation: list[int]  # the order this sample saw: shown position j held response permutation[j]
    scores: list[int] | None  # in the original response order; None when the output did not parse
    parse_status: str
    principles: str
    critique: str
    text: str
    meta_score: float | None = None
    used: bool = False  # counted in the final vote


@dataclass(frozen=True)
class Judgment:
    scores: list[int] | None  # voted totals per response (sum over the samples used); None when none parsed
    mean_scores: list[float] | None  # totals / samples used: on the 1-10 scale of one judgment
    best: int | None  # argmax with the seeded tie-break
    tied: bool
    n_used: int
    n_failed: int  # samples that did not parse
    n_discarded: int = 0  # parsed samples the meta RM left out of the vote
    samples: list[SampleJudgment] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class JudgeInputError(ValueError):
    """A (conversation, responses) pair the GRM cannot judge; the message names which one and why."""


def _check(i: int, conversation: Conversation, responses: Sequence[str]) -> None:
    if not isinstance(responses, (list, tuple)) or not responses:
        raise JudgeInputError(f"item {i}: needs at least one response")
    if not all(isinstance(r, str) for r in responses):
        raise JudgeInputError(f"item {i}: every response must be a string")
    if not conversation or not all(isinstance(m, Mapping) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str) for m in conversation):
        raise JudgeInputError(f"item {i}: the conversation must be a non-empty list of {{role, content}} messages")


def _item_id(i: int, conversation: Conversation, responses: Sequence[str]) -> str:
    h = hashlib.sha256(repr((list(map(dict, conversation)), list(responses))).encode()).hexdigest()[:16]
    return f"{i}:{h}"


class GRMReward:
    """Scores (conversation, responses) with a GRM through any generation backend."""

    def __init__(
        self,
        backend: Backend,
        *,
        k: int = 1,
        k_meta: int | None = None,
        meta_scorer: MetaScorer | None = None,
        temperature: float | None = None,
        max_new_tokens: int = 512,
        top_p: float = 1.0,
        seed: int = 0,
        templates: Templates | None = None,
    ):
        if k < 1:
            raise ValueError("k must be at least 1")
        if k_meta is not None and not 1 <= k_meta <= k:
            raise ValueError(f"k_meta must be between 1 and k={k}, got {k_meta}")
        self.backend, self.k, self.seed = backend, k, seed
        self.meta_scorer = meta_scorer
        self.k_meta = (k_meta or default_k_meta(k)) if meta_scorer is not None else None
        # the paper: greedy by default, temperature 0.5 for parallel sampling
        self.temperature = temperature if temperature is not None else (0.0 if k == 1 else 0.5)
        self.params = SamplingParams(temperature=self.temperature, max_new_tokens=max_new_tokens, top_p=top_p)
        self.templates = templates or Templates.default()

    @property
    def tag(self) -> str:
        if self.meta_scorer is not None:
            return method_tag("metarm", self.k, self.k_meta)
        return method_tag("voting", self.k) if self.temperature > 0 else "greedy"

    def score(self, batch: Sequence[tuple[Conversation, Sequence[str]]]) -> list[Judgment]:
        """One Judgment per (conversation, responses), in order; all items go to the backend together."""
        items = []
        for i, (conversation, responses) in enumerate(batch):
            _check(i, conversation, responses)
            items.append({
                "item_id": _item_id(i, conversation, responses),
                "conversation": list(conversation),
                "responses": list(responses),
                "label_kind": None,  # unlabelled: graded 1-10 scores for any n, no correctness
                "best": None,
            })
        if not items:
            return []
        requests, planned = sampling_plan.plan(
            items, k=self.k, seed=self.seed, templates=self.templates, tag="reward", shuffle=self.temperature > 0,
            single_mode="graded",
        )
        results = self.backend.generate(requests, self.params)
        by_id = {it["item_id"]: it for it in items}
        rows = sampling_plan.collect(results, requests, planned, by_id)
        per_item: dict[str, list[dict]] = {it["item_id"]: [] for it in items}
        for r in rows:
            per_item[r["item_id"]].append(r)
        metas = self._meta_scores(rows, by_id)
        out = []
        for it in items:
            samples = sorted(per_item[it["item_id"]], key=lambda r: r["sample_idx"])
            out.append(self._judgment(it, samples, metas))
        return out

    def _meta_scores(self, rows: list[dict], items: Mapping[str, Mapping]) -> dict[tuple[str, int], float]:
        if self.meta_scorer is None:
            return {}
        parsed = [r for r in rows if r["scores"] is not None]
        texts = [metarm_text(items[r["item_id"]], r["permutation"], r["completion"], self.templates) for r in parsed]
        scores = list(self.meta_scorer(texts)) if texts else []
        if len(scores) != len(texts):
            raise RuntimeError(f"the meta RM returned {len(scores)} scores for {len(texts)} judgments")
        # a non-finite meta score ranks nowhere: treated as absent
        return {(r["item_id"], r["sample_idx"]): float(s) for r, s in zip(parsed, scores) if math.isfinite(float(s))}

    def _judgment(self, item: Mapping, samples: list[dict], metas: Mapping[tuple[str, int], float]) -> Judgment:
        n = len(item["responses"])
        scores = [None if r["scores"] is None else list(r["scores"]) for r in samples]
        key = tie_key(item["item_id"], self.tag)
        meta = [metas.get((item["item_id"], r["sample_idx"])) for r in samples]
        if self.meta_scorer is not None:
            v: Vote = metarm_vote(scores, meta, n, self.k_meta, seed=self.seed, key=key)
            used = set(metarm_select(meta, [s is not None for s in scores], self.k_meta))
        else:
            v = vote(scores, n, seed=self.seed, key=key)
            used = {i for i, s in enumerate(scores) if s is not None}
        details = [
            SampleJudgment(
                sample_idx=r["sample_idx"], permutation=list(r["permutation"]), scores=scores[i],
                parse_status=r["parse_status"], principles=r["principles"], critique=r["critique"],
                text=r["completion"], meta_score=meta[i], used=i in used,
            )
            for i, r in enumerate(samples)
        ]
        return Judgment(
            scores=list(v.totals) if v.totals is not None else None,
            mean_scores=[t / v.n_used for t in v.totals] if v.totals is not None else None,
            best=v.best,
            tied=v.tied,
            n_used=v.n_used,
            n_failed=v.n_failed,
            n_discarded=v.n_discarded,
            samples=details,
        )

    # ---- TRL ------------------------------------------------------------------------------------------
    def reward_function(self, *, group: bool = False, failure_reward: float | None = None):
        """A TRL reward function ``f(prompts, completions, **kwargs) -> list[float | None]``.

        Pointwise (default): each completion is judged alone and gets its mean 1-10 score. ``group=True``
        judges the completions of one prompt together (the GRM's listwise input, so scores are relative).
        A completion no sample could score gets ``failure_reward`` (None: TRL ignores it for that function).
        Prompts and completions may be strings or conversational message lists, as TRL passes them.
        """

        def as_conversation(prompt) -> list[dict]:
            if isinstance(prompt, str):
                return [{"role": "user", "content": prompt}]
            return [dict(m) for m in prompt]

        def as_text(completion) -> str:
            if isinstance(completion, str):
                return completion
            return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")

        def reward(prompts, completions, **kwargs) -> list[float | None]:
            if len(prompts) != len(completions):
                raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
            out: list[float | None] = [failure_reward] * len(completions)
            if group:
                groups: dict[str, list[int]] = {}
                for i, p in enumerate(prompts):
                    groups.setdefault(repr(p), []).append(i)
                batch = [(as_conversation(prompts[idx[0]]), [as_text(completions[i]) for i in idx]) for idx in groups.values()]
                for idx, j in zip(groups.values(), self.score(batch)):
                    if j.mean_scores is not None:
                        for pos, i in enumerate(idx):
                            out[i] = j.mean_scores[pos]
            else:
                batch = [(as_conversation(p), [as_text(c)]) for p, c in zip(prompts, completions)]
                for i, j in enumerate(self.score(batch)):
                    if j.mean_scores is not None:
                        out[i] = j.mean_scores[0]
            return out

        reward.__name__ = f"grm_{self.tag.replace('@', '_').replace('/', '_')}"
        return reward


class HFMetaScorer:
    """A trained meta RM (sequence classifier with one logit) scoring meta-RM inputs: each text is wrapped in
    the model's chat template (GRM output as the assistant turn) and, when longer than ``max_length``, cut in
    the middle of its longest response, as in training (grm.training.metarm.fit).

    The k samples of one judging prompt share its whole user turn (query and responses, most of the tokens), so
    texts with a long common token prefix are scored together: the prefix goes through the model once and each
    text's own tail attends to its cache (``shared_prefix``, same logits as separate forwards up to float
    rounding; ``shared_prefix=False`` or a model without a ``score`` head scores every text on its own)."""

    MIN_SHARED = 32  # shorter common prefixes are not worth a separate forward

    def __init__(self, path: str, *, device: str = "auto", max_length: int = 2048, batch_size: int = 8,
                 trust: ModelTrust = ModelTrust(), shared_prefix: bool = True):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
        load = pretrained_kwargs(path, trust)
        self.tok = AutoTokenizer.from_pretrained(path, **tokenizer_kwargs(trust))
        self.model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **load).to(self.device).eval()
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.model.config.pad_token_id = self.tok.pad_token_id
        self.max_length, self.batch_size = max_length, batch_size
        self.shared_prefix = shared_prefix and hasattr(self.model, "score")
        self.forwards = {"shared": 0, "single": 0}  # texts scored each way

    def __call__(self, texts: Sequence[str]) -> list[float]:
        return self.score(texts)[0]

    def score(self, texts: Sequence[str]) -> tuple[list[float], list[bool]]:
        """One logit per text, and which texts had to be cut to ``max_length``."""
        import torch

        from grm.training.metarm import encode  # the encoding the meta RM was trained with

        enc, cut = encode(self.tok, list(texts), self.max_length)
        ids = enc["input_ids"]
        out: list[float | None] = [None] * len(ids)
        alone: list[int] = []
        with torch.inference_mode():
            for group, shared in self._prefix_groups(ids):
                if shared < self.MIN_SHARED:
                    alone += group
                    continue
                for i, logit in zip(group, self._score_shared([ids[i] for i in group], shared)):
                    out[i] = logit
                self.forwards["shared"] += len(group)
            alone.sort()
            for s in range(0, len(alone), self.batch_size):
                part = alone[s : s + self.batch_size]
                batch = self.tok.pad({"input_ids": [ids[i] for i in part]}, padding=True, return_tensors="pt").to(self.device)
                for i, logit in zip(part, self.model(**batch).logits[:, 0].float().tolist()):
                    out[i] = logit
                self.forwards["single"] += len(part)
        return out, cut  # type: ignore[return-value]

    def _pooled(self, ids: list[int]) -> int:
        """The position the classifier head reads: the last token that is not padding (as the model pools)."""
        pad = self.model.config.get_text_config().pad_token_id
        return max((p for p, t in enumerate(ids) if t != pad), default=0)

    def _prefix_groups(self, ids: list[list[int]]) -> list[tuple[list[int], int]]:
        """Texts in groups of at most ``batch_size`` that share a token prefix, each with the length of prefix
        it can share: at most the group's common prefix, and short of every text's pooled position (each text
        keeps at least that token of its own). Without shared prefixes every text is its own group."""
        if not self.shared_prefix:
            return [([i], 0) for i in range(len(ids))]
        order = sorted(range(len(ids)), key=lambda i: ids[i])  # lexicographic: common prefixes end up adjacent
        groups: list[tuple[list[int], int]] = []
        for i in order:
            if groups:
                group, common = groups[-1]
                first = ids[group[0]]
                n = _common_prefix(first, ids[i], common)
                if len(group) < self.batch_size and n >= self.MIN_SHARED:
                    groups[-1] = (group + [i], min(n, self._pooled(ids[i])))
                    continue
            groups.append(([i], min(len(ids[i]), self._pooled(ids[i]))))
        return [(g, n) if len(g) > 1 else (g, 0) for g, n in groups]

    def _score_shared(self, ids: list[list[int]], shared: int) -> list[float]:
        """Logits of texts whose first ``shared`` tokens are the same: one forward of the prefix, then the texts'
        tails (right-padded) on copies of its cache."""
        import torch

        dev, n = self.device, len(ids)
        backbone = getattr(self.model, self.model.base_model_prefix)
        prefix = torch.tensor([ids[0][:shared]], device=dev)
        cache = backbone(input_ids=prefix, use_cache=True).past_key_values
        cache.batch_repeat_interleave(n)
        tails = [t[shared:] for t in ids]
        width = max(len(t) for t in tails)
        tail_ids = torch.full((n, width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for r, t in enumerate(tails):
            tail_ids[r, : len(t)] = torch.tensor(t)
            mask[r, shared : shared + len(t)] = 1
        positions = torch.arange(shared, shared + width).expand(n, width)
        hidden = backbone(input_ids=tail_ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev),
                          past_key_values=cache, use_cache=True).last_hidden_state
        read = torch.tensor([self._pooled(t) - shared for t in ids], device=dev)
        return self.model.score(hidden[torch.arange(n, device=dev), read]).float()[:, 0].tolist()


def _common_prefix(a: Sequence[int], b: Sequence[int], limit: int | None = None) -> int:
    """Length of the common prefix of two token lists (looked for up to ``limit`` tokens)."""
    n = min(len(a), len(b), limit if limit is not None else len(a))
    for p in range(n):
        if a[p] != b[p]:
            return p
    return n
