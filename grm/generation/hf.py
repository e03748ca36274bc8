"""The transformers backend: batched, left-padded, one prompt encoding shared by its n samples.

A batch of prompts is prefilled once; the KV cache is then expanded so that each prompt's n samples continue
from the same cache, and our own decode loop samples every row. Sample i of a request with seed s draws
one uniform number per token from its own generator seeded s + i (inverse-CDF sampling over the processed
distribution), so a sample depends only on the model, its prompt and its seed: not on what else is in the
batch, nor on the global RNG.

The KV cache is allocated once per batch for the prompt plus the token budget (``_PreallocatedLayer``): with
transformers' growing cache every decode step copied the whole cache (torch.cat), which was half of the
decode time of a 135M model on CPU (BENCHMARKS.md, issue 17).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Sequence

import torch

from grm.generation.base import SKIPPED_TOO_LONG, Backend, BackendError, Request, Result, Sample, SamplingParams
from grm.model_loading import ModelTrust, pretrained_kwargs, tokenizer_kwargs
from transformers.cache_utils import Cache, DynamicLayer


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendError("generation.device is 'cuda' but torch sees no CUDA device")
    return torch.device(device)


def _pick_dtype(dtype: str, device: torch.device) -> torch.dtype | str:
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32  # half precision on CPU is slow and lossy


def process_logits(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Log-probabilities after temperature and nucleus filtering (tokens outside the nucleus get -inf)."""
    logits = logits.float() / temperature
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens ranked above it already reach top_p (the first token always stays)
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.log_softmax(-1)


class _PreallocatedLayer(DynamicLayer):
    """One layer's KV cache in buffers of ``capacity`` positions, allocated on the first (prefill) update: a
    decode step writes its position in place and attention reads a view of the filled part, where
    transformers' DynamicLayer concatenates (copies the whole cache) at every step."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            b, h, _, d = key_states.shape
            self.dtype, self.device = key_states.dtype, key_states.device
            self._k = key_states.new_empty((b, h, self.capacity, d))
            self._v = value_states.new_empty((b, h, self.capacity, value_states.shape[-1]))
            self.is_initialized = True
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise BackendError(f"KV cache of {self.capacity} positions is full (internal error: {end} needed)")
        self._k[:, :, self.length : end] = key_states
        self._v[:, :, self.length : end] = value_states
        self.length = end
        self._views()
        return self.keys, self.values

    def _views(self) -> None:
        self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Keep (or repeat) batch rows ``beam_idx``: the filled part is copied into buffers of the same capacity."""
        if self.is_initialized:
            for name in ("_k", "_v"):
                old = getattr(self, name)
                new = old.new_empty((len(beam_idx), *old.shape[1:]))
                new[:, :, : self.length] = old[:, :, : self.length].index_select(0, beam_idx.to(old.device))
                setattr(self, name, new)
            self._views()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.reorder_cache(indices)

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("the preallocated cache is not cropped")


@dataclass
class _Row:
    """One sample being decoded."""

    request: int  # index into the batch's requests
    seed: int
    generator: torch.Generator
    tokens: list[int] = field(default_factory=list)
    finish: str = "length"


class HFBackend(Backend):
    name = "hf"

    def __init__(
        self,
        model_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        max_model_len: int | None = None,
        trust: ModelTrust = ModelTrust(),
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = _pick_device(device)
        try:
            load = pretrained_kwargs(model_path, trust)
            self.tokenizer = AutoTokenizer.from_pretrained(model_path, **tokenizer_kwargs(trust))
            self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=_pick_dtype(dtype, self.device), **load)
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot load model {model_path!r} for the hf backend: {e}") from e
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        limit = getattr(self.model.config, "max_position_embeddings", None)
        self.max_model_len = min(x for x in (max_model_len, limit) if x) if (max_model_len or limit) else None
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = eos_ids
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos_ids, default=0)
        self._lock = threading.Lock()  # one model, one forward at a time; callers may be threads of a runner

    # ---- prompts -------------------------------------------------------------------------------------
    def encode(self, messages) -> list[int]:
        """Token ids of a chat with the model's chat template and the generation prompt."""
        ids = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True, return_dict=True)
        return list(ids["input_ids"])

    def _too_long(self, n_prompt: int, params: SamplingParams) -> str | None:
        if self.max_model_len is None:
            return None
        room = self.max_model_len - params.max_new_tokens
        if n_prompt > room:
            return f"{SKIPPED_TOO_LONG}: {n_prompt} > {room} tokens"
        return None

    # ---- generation ----------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request], params: SamplingParams) -> list[Result]:
        results: list[Result | None] = [None] * len(requests)
        encoded: list[tuple[int, list[int]]] = []
        for i, req in enumerate(requests):
            ids = self.encode(req.messages)
            why = self._too_long(len(ids), params)
            if why is not None:
                results[i] = Result(req.prompt_id, [], skipped=why, prompt_tokens=len(ids))
            elif req.n <= 0:
                results[i] = Result(req.prompt_id, [], prompt_tokens=len(ids))
            else:
                encoded.append((i, ids))
        encoded.sort(key=lambda x: len(x[1]))  # similar lengths together: less padding
        greedy = params.temperature <= 0  # greedy samples are all the same: decode one, copy it
        with self._lock, torch.inference_mode():
            for start in range(0, len(encoded), self.batch_size):
                batch = encoded[start : start + self.batch_size]
                todo = [(replace(requests[i], n=1) if greedy else requests[i], ids) for i, ids in batch]
                for (i, ids), samples in zip(batch, self._generate_batch(todo, params)):
                    req = requests[i]
                    if greedy:
                        samples = [replace(samples[0], seed=req.seed + j) for j in range(req.n)]
                    results[i] = Result(req.prompt_id, samples, prompt_tokens=len(ids))
        return results  # type: ignore[return-value]

    def _generate_batch(self, batch: list[tuple[Request, list[int]]], params: SamplingParams) -> list[list[Sample]]:
        dev = self.device
        width = max(len(ids) for _, ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, (_, ids) in enumerate(batch):
            input_ids[b, width - len(ids) :] = torch.tensor(ids)
            mask[b, width - len(ids) :] = 1
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        input_ids, mask, positions = input_ids.to(dev), mask.to(dev), positions.to(dev)

        layers = self.model.config.get_text_config().num_hidden_layers
        cache = Cache(layers=[_PreallocatedLayer(width + params.max_new_tokens) for _ in range(layers)])
        try:
            # logits of the last position only: the output head over every prompt position cost a fifth of the prefill
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True,
                             logits_to_keep=1)
        except torch.OutOfMemoryError as e:
            raise BackendError(f"out of memory prefilling {len(batch)} prompts of up to {width} tokens: {e}") from e
        # expand: each prompt's cache row is shared by its n samples (no second prefill)
        owner = [b for b, (req, _) in enumerate(batch) for _ in range(req.n)]
        rows = [
            _Row(b, req.seed + j, torch.Generator().manual_seed(req.seed + j))
            for b, (req, _) in enumerate(batch)
            for j in range(req.n)
        ]
        index = torch.tensor(owner, device=dev)
        cache.reorder_cache(index)
        logits = out.logits[:, -1, :].index_select(0, index)
        mask = mask.index_select(0, index)
        last_pos = positions[:, -1].index_select(0, index)
        active = list(range(len(rows)))

        for step in range(params.max_new_tokens):
            next_tokens = self._choose(logits, [rows[r] for r in active], params)
            keep = []
            for slot, (r, tok) in enumerate(zip(active, next_tokens)):
                rows[r].tokens.append(tok)
                if tok in self.eos_ids:
                    rows[r].finish = "stop"
                else:
                    keep.append(slot)
            if not keep or step == params.max_new_tokens - 1:
                break
            fed = torch.tensor(next_tokens, device=dev).unsqueeze(1)
            if len(keep) < len(active):  # drop finished rows from the cache: the rest decode faster
                sel = torch.tensor(keep, device=dev)
                cache.reorder_cache(sel)
                fed, mask, last_pos = fed.index_select(0, sel), mask.index_select(0, sel), last_pos.index_select(0, sel)
                active = [active[s] for s in keep]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            last_pos = last_pos + 1
            try:
                out = self.model(
                    input_ids=fed, attention_mask=mask, position_ids=last_pos.unsqueeze(1), past_key_values=cache, use_cache=True
                )
            except torch.OutOfMemoryError as e:
                raise BackendError(f"out of memory decoding {len(active)} samples: {e}") from e
            logits = out.logits[:, -1, :]

        samples: list[list[Sample]] = [[] for _ in batch]
        for row in rows:
            body = row.tokens[:-1] if row.finish == "stop" else row.tokens
            text = self.tokenizer.decode(body, skip_special_tokens=True)
            samples[row.request].append(Sample(text, row.seed, len(row.tokens), row.finish))
        return samples

    @staticmethod
    def _choose(logits: torch.Tensor, rows: list[_Row], params: SamplingParams) -> list[int]:
        if params.temperature <= 0:
            return logits.argmax(-1).tolist()
        probs = process_logits(logits, params.temperature, params.top_p).double().exp()
        # inverse CDF: the first token whose cumulative probability exceeds u * total is a sample of probs
        # (a token with probability 0 never is). One uniform per row and token, from each sample's own
        # generator on the CPU so that CPU and GPU draw the same numbers; drawing a Gumbel noise vector over
        # the whole vocabulary per row instead cost ~10% of a decode step at a 49k vocabulary.
        cdf = probs.cumsum(-1)
        u = torch.cat([torch.rand(1, generator=r.generator, dtype=torch.float64) for r in rows]).to(cdf.device)
        picked = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)
        return picked.clamp_max(cdf.shape[-1] - 1).tolist()

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
