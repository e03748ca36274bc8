"""The transformers backend: batched, left-padded, one prompt encoding shared by its n samples.

A batch of prompts is prefilled once, and our own decode loop samples every row. Sample i of a request with
seed s draws one uniform number per token from its own generator seeded s + i (inverse-CDF sampling over the
processed distribution), so a sample depends only on the model, its prompt and its seed: not on what else is
in the batch, nor on the global RNG.

Shared prompt KV ("cascade" attention). After the prefill, each prompt's keys and values stay un-expanded
([prompts, kv heads, prompt length, head dim], with the prompt's left padding as a mask), and the tokens a
sample generates go into a per-row suffix buffer allocated once for the token budget (``_SharedPrefixLayer``).
A decode step attends in two parts (``_PrefixShare.attend``): all of a prompt's rows and query heads against
the prompt's keys in one batched call (the prompt's KV is read once per step, not once per sample), and
each row against its own suffix; the two softmax parts are merged exactly by their log-sum-exp. On a CPU both
parts run in torch's fused attention kernel, which returns the log-sum-exp; elsewhere as matmuls. A finished row
is dropped from the small suffix buffer only; a prompt none of whose rows is left is dropped from the prefix.
This needs standard scaled dot-product attention (``shared_prefix_blocker``): models with logit softcapping
(Gemma-2), attention sinks, a sliding window shorter than the batch's span, or a model type not known here
(or ``HFBackend(shared_prefix=False)``) decode with the expanded cache: each prompt's cache copied to its n
rows, in buffers allocated once per batch and written in place (``_PreallocatedLayer``; transformers' growing
cache copied the whole cache with torch.cat every step, issue 17).
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


class _KVBuffer:
    """Keys and values of some rows in buffers of ``capacity`` positions, allocated once and written in place:
    attention reads a view of the filled part, where transformers' DynamicLayer concatenates (copies the whole
    cache) at every step."""

    def __init__(self, capacity: int, key_states: torch.Tensor, value_states: torch.Tensor):
        rows, heads = key_states.shape[:2]
        self.capacity, self.length = capacity, 0
        self.k = key_states.new_empty((rows, heads, capacity, key_states.shape[-1]))
        self.v = value_states.new_empty((rows, heads, capacity, value_states.shape[-1]))

    def append(self, key_states: torch.Tensor, value_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise BackendError(f"KV cache of {self.capacity} positions is full (internal error: {end} needed)")
        self.k[:, :, self.length : end] = key_states
        self.v[:, :, self.length : end] = value_states
        self.length = end
        return self.views()

    def views(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.k[:, :, : self.length], self.v[:, :, : self.length]

    def keep_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep (or repeat) rows ``rows``: the filled part is copied into buffers of the same capacity."""
        for name in ("k", "v"):
            old = getattr(self, name)
            new = old.new_empty((len(rows), *old.shape[1:]))
            new[:, :, : self.length] = old[:, :, : self.length].index_select(0, rows.to(old.device))
            setattr(self, name, new)
        return self.views()


class _PreallocatedLayer(DynamicLayer):
    """One layer's KV cache, every row's prompt and generated tokens, in a ``_KVBuffer`` of ``capacity``
    positions allocated on the first (prefill) update."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.buffer: _KVBuffer | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.dtype, self.device = key_states.dtype, key_states.device
            self.buffer = _KVBuffer(self.capacity, key_states, value_states)
            self.is_initialized = True
        self.keys, self.values = self.buffer.append(key_states, value_states)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.buffer.length if self.is_initialized else 0

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self.is_initialized:
            self.keys, self.values = self.buffer.keep_rows(beam_idx)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.reorder_cache(indices)

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("the preallocated cache is not cropped")


class _SharedPrefixLayer(DynamicLayer):
    """One layer's KV cache as the prompts' keys and values, un-expanded ([prompts, kv heads, width, head dim],
    kept from the prefill), plus a suffix ``_KVBuffer`` of ``capacity`` positions per decoding row, allocated at
    the first decode step. A decode step's ``update`` returns the rows' suffixes only: the attention
    (``_PrefixShare.attend``) reads the prefix from here."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.prefix_k: torch.Tensor | None = None
        self.prefix_v: torch.Tensor | None = None
        self.suffix: _KVBuffer | None = None  # generated positions, the same number for every row

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:  # the prefill: what the prompts' rows attend to from now on
            self.dtype, self.device = key_states.dtype, key_states.device
            self.prefix_k, self.prefix_v = key_states.contiguous(), value_states.contiguous()
            self.keys, self.values = self.prefix_k, self.prefix_v
            self.is_initialized = True
            return self.prefix_k, self.prefix_v
        if self.suffix is None:
            self.suffix = _KVBuffer(self.capacity, key_states, value_states)
        self.keys, self.values = self.suffix.append(key_states, value_states)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        if not self.is_initialized:
            return 0
        return self.prefix_k.shape[-2] + (self.suffix.length if self.suffix is not None else 0)

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Keep suffix rows ``rows``."""
        if self.suffix is not None:
            self.keys, self.values = self.suffix.keep_rows(rows)

    def keep_prompts(self, prompts: torch.Tensor) -> None:
        self.prefix_k = self.prefix_k.index_select(0, prompts)
        self.prefix_v = self.prefix_v.index_select(0, prompts)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("the shared-prefix cache keeps rows with keep_rows and prompts with keep_prompts")

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("the shared-prefix cache is not cropped")


class _PrefixShare:
    """Which prompt each decoding row continues, and the decode step's attention over the shared prompt KV.

    Passed to the model as the keyword ``grm_shared_prefix``, which transformers hands through to the attention
    function of every layer (``_attention``). Rows are grouped by prompt (a prompt's rows are contiguous, in
    prompt order); ``per_prompt`` is the most rows any prompt has, and a prompt with fewer gets empty query
    slots (``slot``: where each row sits in the prompts x per_prompt grid; None when the grid is full)."""

    def __init__(self, layers: list[_SharedPrefixLayer], padding: torch.Tensor, span: int):
        self.layers = layers
        self.span = span  # positions the batch can reach: prompt width + token budget
        self.prompts_kept = list(range(padding.shape[0]))  # prompts (batch indices) still in the prefix
        # additive mask over the prefix: 0 on prompt tokens, -inf on left padding; [prompts, 1, 1, width]
        self.bias = torch.zeros(padding.shape, dtype=torch.float32, device=padding.device)
        self.bias = self.bias.masked_fill(~padding.bool(), float("-inf"))[:, None, None, :]
        self.attended = 0  # layers that ran this step's attention here (checked after each forward)

    def keep_rows(self, rows: torch.Tensor, owners: list[int]) -> None:
        """Keep the decoding rows ``rows`` (their suffixes) and continue with ``owners``, their prompts."""
        for layer in self.layers:
            layer.keep_rows(rows)
        self.set_rows(owners)

    def set_rows(self, owners: list[int]) -> None:
        """The decoding rows from now on, by the prompt (batch index, non-decreasing) each continues."""
        present = sorted(set(owners))
        if present != self.prompts_kept:  # a prompt has no rows left: drop its prefix
            where = {b: i for i, b in enumerate(self.prompts_kept)}
            keep = torch.tensor([where[b] for b in present], device=self.bias.device)
            for layer in self.layers:
                layer.keep_prompts(keep)
            self.bias = self.bias.index_select(0, keep)
            self.prompts_kept = present
        where = {b: i for i, b in enumerate(present)}
        compact = [where[b] for b in owners]
        rank, counts = [], [0] * len(present)
        for p in compact:
            rank.append(counts[p])
            counts[p] += 1
        self.prompts, self.per_prompt = len(present), max(counts)
        full = all(c == self.per_prompt for c in counts) and compact == sorted(compact)
        self.slot = None if full else torch.tensor([p * self.per_prompt + r for p, r in zip(compact, rank)], device=self.bias.device)

    def _bias_as(self, dtype: torch.dtype) -> torch.Tensor:
        return self.bias if self.bias.dtype == dtype else self.bias.to(dtype)

    def attend(self, module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float | None,
               kwargs: dict) -> torch.Tensor:
        """One decode step's attention of ``query`` [rows, heads, 1, head dim] against the row's prompt (the
        layer's prefix, with its padding) and its own suffix (``key``/``value`` [rows, kv heads, generated,
        head dim], the current token included). Returns [rows, 1, heads, value dim]."""
        for name in ("softcap", "s_aux", "sinks", "position_bias"):
            if kwargs.get(name) is not None:
                raise BackendError(f"internal error: the shared-prefix attention got {name!r}, which it does not implement")
        window = kwargs.get("sliding_window")
        if window is not None and window < self.span:
            raise BackendError(f"internal error: sliding window {window} < {self.span} positions in the shared-prefix attention")
        layer = self.layers[module.layer_idx]
        rows, heads, _, dim = query.shape
        kv_heads, dv = key.shape[1], value.shape[-1]
        groups = heads // kv_heads  # query heads h = kv_head * groups + g, as transformers' repeat_kv
        prompts, m = self.prompts, self.per_prompt
        q = query.reshape(rows, kv_heads, groups, dim) * (dim**-0.5 if scaling is None else scaling)

        # (a) the prompt part: every row and query head of a prompt against the prompt's keys in one call
        grid = q if self.slot is None else q.new_zeros((prompts * m, kv_heads, groups, dim)).index_copy_(0, self.slot, q)
        grid = grid.view(prompts, m, kv_heads, groups, dim).transpose(1, 2).reshape(prompts, kv_heads, m * groups, dim)

        def per_row(t: torch.Tensor) -> torch.Tensor:  # [prompts, kv, m*g, x] -> [rows, kv, g, x]
            t = t.reshape(prompts, kv_heads, m, groups, t.shape[-1]).transpose(1, 2).reshape(prompts * m, kv_heads, groups, t.shape[-1])
            return t if self.slot is None else t.index_select(0, self.slot)

        if _FLASH_CPU is not None and query.device.type == "cpu":
            # torch's fused CPU attention returns each part's log-sum-exp, which is all the merge needs
            o1, lse1 = _FLASH_CPU(grid, layer.prefix_k, layer.prefix_v, 0.0, False, attn_mask=self._bias_as(grid.dtype), scale=1.0)
            o2, lse2 = _FLASH_CPU(q, key, value, 0.0, False, scale=1.0)  # each row against its own generated tokens
            lse1, lse2 = per_row(lse1.unsqueeze(-1)), lse2.unsqueeze(-1)
            total = torch.logaddexp(lse1, lse2)
            out = per_row(o1).float() * (lse1 - total).exp_() + o2.float() * (lse2 - total).exp_()
        else:
            s1 = torch.matmul(grid, layer.prefix_k.transpose(-1, -2)).float().add_(self.bias)  # [prompts, kv, m*g, width]
            m1 = s1.amax(-1, keepdim=True)
            p1 = s1.sub_(m1).exp_()
            l1 = p1.sum(-1, keepdim=True)
            o1 = torch.matmul(p1.to(layer.prefix_v.dtype), layer.prefix_v)  # [prompts, kv, m*g, dv]
            o1, m1, l1 = per_row(o1), per_row(m1), per_row(l1)
            # (b) each row against its own generated tokens (never empty: the current token is there)
            s2 = torch.matmul(q, key.transpose(-1, -2)).float()  # [rows, kv, g, generated]
            m2 = s2.amax(-1, keepdim=True)
            p2 = s2.sub_(m2).exp_()
            l2 = p2.sum(-1, keepdim=True)
            o2 = torch.matmul(p2.to(value.dtype), value)  # [rows, kv, g, dv]
            # exact merge of the two softmax parts, each scaled to the common maximum
            top = torch.maximum(m1, m2)
            a1, a2 = (m1 - top).exp_(), (m2 - top).exp_()
            out = (o1.float() * a1 + o2.float() * a2) / (l1 * a1 + l2 * a2)
        self.attended += 1
        return out.to(query.dtype).reshape(rows, 1, heads, dv)


# torch's fused CPU attention with the log-sum-exp of each query (what merging two parts exactly needs); None
# where this torch lacks it: the decode attention then runs as matmuls and softmax parts
_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)

_ATTENTION = "grm_shared_prefix"
# model types whose attention is plain scaled dot-product attention (sliding windows checked per batch): their
# decode may read the shared prompt KV. Others (Gemma-2's softcapping, gpt-oss's sinks, ...) decode expanded.
_STANDARD_ATTENTION = {"llama", "mistral", "qwen2", "qwen3", "phi3", "smollm3", "granite", "olmo2", "gemma"}


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, grm_shared_prefix=None, **kwargs):
    """transformers attention function (registered as ``_ATTENTION``): a decode step with ``grm_shared_prefix``
    reads the shared prompt KV (``_PrefixShare.attend``); anything else is transformers' sdpa attention."""
    if grm_shared_prefix is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    if query.shape[2] != 1 or dropout:
        raise BackendError("internal error: the shared-prefix attention is for decode steps (one query, no dropout)")
    return grm_shared_prefix.attend(module, query, key, value, scaling, kwargs), None


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(_ATTENTION, _attention)
    AttentionMaskInterface.register(_ATTENTION, sdpa_mask)  # the prefill's masks are sdpa's


def shared_prefix_blocker(config) -> str | None:
    """Why a model with ``config`` cannot decode with the shared prompt KV exactly (None: it can). The sliding
    window is checked per batch (``sliding_window``)."""
    if getattr(config, "attn_logit_softcapping", None):
        return "attention logit softcapping"
    if getattr(config, "_attn_implementation", None) not in ("sdpa", _ATTENTION):
        return f"attention implementation {config._attn_implementation!r} (the shared-prefix attention replaces sdpa)"
    if config.model_type not in _STANDARD_ATTENTION:
        return f"model type {config.model_type!r} is not known to use standard attention"
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    if kinds - {"full_attention", "sliding_attention"}:
        return f"layer types {sorted(kinds)}"
    return None


def sliding_window(config) -> int | None:
    """The sliding window some layer of the model attends within (None: full attention everywhere)."""
    window = getattr(config, "sliding_window", None)
    kinds = getattr(config, "layer_types", None)
    if window is None or (kinds is not None and "sliding_attention" not in kinds):
        return None
    return int(window)


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
        shared_prefix: bool = True,
    ):
        """``shared_prefix=False`` decodes every model with the expanded cache (the path it falls back to)."""
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
        # decode with the shared prompt KV where that is exact for the model (see the module docstring)
        self.shared_prefix_off = shared_prefix_blocker(self.model.config) if shared_prefix else "turned off"
        if self.shared_prefix_off is None:
            _register_attention()
            self.model.set_attn_implementation(_ATTENTION)
        self.window = sliding_window(self.model.config.get_text_config())
        self.decode_paths = {"shared": 0, "expanded": 0}  # batches decoded each way
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

        span = width + params.max_new_tokens
        shared = self.shared_prefix_off is None and (self.window is None or self.window >= span)
        self.decode_paths["shared" if shared else "expanded"] += 1
        layers = self.model.config.get_text_config().num_hidden_layers
        if shared:
            cache_layers = [_SharedPrefixLayer(params.max_new_tokens) for _ in range(layers)]
        else:
            cache_layers = [_PreallocatedLayer(span) for _ in range(layers)]
        cache = Cache(layers=cache_layers)
        try:
            # logits of the last position only: the output head over every prompt position cost a fifth of the prefill
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True,
                             logits_to_keep=1)
        except torch.OutOfMemoryError as e:
            raise BackendError(f"out of memory prefilling {len(batch)} prompts of up to {width} tokens: {e}") from e
        # each prompt's n samples continue from its one prefill
        owner = [b for b, (req, _) in enumerate(batch) for _ in range(req.n)]
        rows = [
            _Row(b, req.seed + j, torch.Generator().manual_seed(req.seed + j))
            for b, (req, _) in enumerate(batch)
            for j in range(req.n)
        ]
        index = torch.tensor(owner, device=dev)
        logits = out.logits[:, -1, :].index_select(0, index)
        last_pos = positions[:, -1].index_select(0, index)
        if shared:  # the prompts' KV stays un-expanded; generated tokens go to the rows' suffixes
            share = _PrefixShare(cache_layers, mask, span)
            share.set_rows(owner)
        else:  # expand: each prompt's cache row copied to its n samples
            cache.reorder_cache(index)
            mask = mask.index_select(0, index)
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
                fed, last_pos = fed.index_select(0, sel), last_pos.index_select(0, sel)
                active = [active[s] for s in keep]
                if shared:
                    share.keep_rows(sel, [rows[r].request for r in active])
                else:
                    cache.reorder_cache(sel)
                    mask = mask.index_select(0, sel)
            last_pos = last_pos + 1
            if shared:  # no mask: the prompt padding is the share's, the suffixes have none
                step_args = {"attention_mask": None, "grm_shared_prefix": share}
                share.attended = 0
            else:
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                step_args = {"attention_mask": mask}
            try:
                out = self.model(input_ids=fed, position_ids=last_pos.unsqueeze(1), past_key_values=cache, use_cache=True, **step_args)
            except torch.OutOfMemoryError as e:
                raise BackendError(f"out of memory decoding {len(active)} samples: {e}") from e
            if shared and share.attended != layers:  # a model that does not pass the keyword through to attention
                raise BackendError(f"internal error: the shared-prefix attention ran in {share.attended} of {layers} layers")
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
