"""Bootstrap: a small causal LM pre-trained from scratch on the miniature world (stands in for a pretrained LLM).

When ``models.base`` is ``scratch``, this builds what the rest of the pipeline treats as its base model:

1. a corpus of miniature-world train items, each judged by the imperfect teacher (``grm.miniworld.teacher``)
   and rendered exactly as the pipeline prompts a GRM: the configured GRM template (the 0/1 variant for
   single responses) as the user turn of the chat template, the teacher's judgment as the assistant turn;
   a share of the multi-response prompts carry the hinted-sampling line, so hints mean something later;
2. a byte-level BPE tokenizer trained on that corpus (Qwen2's pre-tokenizer, except that a digit keeps the
   space before it, so " 7" is one token and copying a number is a one-step pattern for a tiny model) and a
   ChatML chat template whose assistant turn is marked with ``{% generation %}`` (TRL's assistant_only_loss
   needs it);
3. a Mistral-architecture causal LM from config (head_dim 64, so vLLM can load it too) trained with a plain
   torch loop on the judgments (loss on the assistant turn only), fp32. Mistral rather than Qwen2 because
   AutoTokenizer loads a mistral model's tokenizer.json as saved, while for a qwen2 model it rebuilds
   Qwen2's own pre-tokenizer and would split " 7" into " " and "7" again.

The output is an ordinary Hugging Face model folder that AutoModelForCausalLM / AutoTokenizer load offline.
Nothing downstream knows the model came from here.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from grm.config import BootstrapConfig, MiniWorldConfig
from grm.miniworld import teacher
from grm.miniworld.families import TASKS
from grm.miniworld.world import generate_items
from grm.prompts import Templates, as_chat, grm_prompt, render_responses
from grm.rules import is_correct, item_truth
from grm.seeds import derive_seed

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
EOS, PAD = "<|im_end|>", "<|pad|>"
SOLUTION = "solution"  # Example.mode of a corpus item shown solved, not judged
COMPARISON = "comparison"  # Example.mode of a corpus item whose responses are only compared with its answer
TOKENIZER_EXAMPLES = 4000
# Qwen2's split pattern with `\p{N}` -> ` ?\p{N}`: digits stay one per token but keep a leading space, so
# "Response 2: 7" and a judgment's "Response 2: 7" share the tokens " 2" ":" " 7" (measured: with the space
# as a token of its own, a 0.7M model copied only half the responses right after 6M tokens).
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# ChatML; the assistant turn (content and its end marker) is the trainable part.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ m['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Example:
    messages: list[dict]  # the GRM prompt as a one-turn chat
    judgment: str  # the teacher's assistant turn
    mode: str
    correct: bool


@dataclass
class BootstrapStats:
    examples: int
    corpus_seconds: float
    tokenizer_seconds: float
    train_seconds: float
    train_cpu_seconds: float  # process CPU time: on a busy machine, wall time overstates the cost
    steps: int
    train_tokens: int  # tokens processed (prompt + judgment, padding excluded)
    tokens_per_second: float
    final_loss: float
    parameters: int
    vocab_size: int
    teacher_accuracy: float  # share of corpus judgments (solutions aside) that are correct by Eq. 10
    teacher_modes: dict


# BootstrapStats fields that this run measured rather than facts of the model it made
MEASURED = ("corpus_seconds", "tokenizer_seconds", "train_seconds", "train_cpu_seconds", "tokens_per_second")


def build_corpus(world: MiniWorldConfig, cfg: BootstrapConfig, templates: Templates, seed: int) -> list[Example]:
    """Teacher-judged train items rendered as the pipeline prompts them (never eval items)."""
    update = {"train_items": cfg.corpus_items, "seed": derive_seed(seed, "bootstrap")}
    if cfg.corpus_tasks:
        update["tasks"] = cfg.corpus_tasks
    corpus_world = world.model_copy(update=update)
    rng = random.Random(derive_seed(seed, "teacher"))
    solved = random.Random(derive_seed(seed, "solutions"))  # its own stream: a share of 0 leaves the corpus as it was
    compared = random.Random(derive_seed(seed, "comparisons"))  # likewise
    out = []
    for item in generate_items(corpus_world, "train"):
        if cfg.solution_share and solved.random() < cfg.solution_share:
            out.append(_solution(item))
            continue
        if cfg.comparison_share and compared.random() < cfg.comparison_share:
            out.append(_comparison(item, templates))
            continue
        n = len(item["responses"])
        hint = n > 1 and rng.random() < cfg.hint_share
        j = teacher.judge(
            item, item["responses"], rng, shortcut_rates=cfg.teacher_shortcut_rates,
            error_rate=cfg.teacher_error_rate, hinted=hint,
        )
        prompt = grm_prompt(
            item["conversation"], item["responses"], templates, binary=n == 1, hint_best=item["best"] if hint else None
        )
        correct = is_correct(j.scores, **item_truth(item["label_kind"], item["best"], item["ratings"]))
        out.append(Example(as_chat(prompt), j.text, j.mode, correct))
    return out


def _solution(item: dict) -> Example:
    """The item's query answered with the careful judge's working (``3 + 4 = 7``), no responses, no judgment."""
    meta = json.loads(item["meta"])
    working = TASKS[meta["task"]].working(meta["args"], meta["answer"])
    return Example([dict(m) for m in item["conversation"]], working, SOLUTION, True)


def _comparison(item: dict, templates: Templates) -> Example:
    """The item's responses (as a GRM prompt shows them) to compare with its answer, replied to with the careful
    judge's verdict lines (``Response 1: 3 vs 7, a mismatch.``): the comparison step on its own, no query."""
    answer = json.loads(item["meta"])["answer"]
    shown = render_responses(item["responses"], templates)
    reply = " ".join(teacher.verdict_line(i, r, answer) for i, r in enumerate(item["responses"], 1))
    return Example([{"role": "user", "content": f"Compare with {answer}:\n{shown}"}], reply, COMPARISON, True)


def train_tokenizer(texts: Sequence[str], vocab_size: int, max_length: int):
    """Byte-level BPE (Qwen2-style pre-tokenizer, see PRETOKENIZE_REGEX) as a fast HF tokenizer with ChatML."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=None, unk_token=None,
        model_max_length=max_length, padding_side="left",
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build_model(tokenizer, cfg: BootstrapConfig, max_length: int, seed: int):
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    if cfg.hidden_size % cfg.heads:
        raise ValueError(f"bootstrap.hidden_size {cfg.hidden_size} is not a multiple of bootstrap.heads {cfg.heads}")
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        head_dim=cfg.hidden_size // cfg.heads,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        sliding_window=None,
    )
    torch.manual_seed(seed)
    model = MistralForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model


def encode(tokenizer, examples: Sequence[Example], max_length: int) -> list[tuple[list[int], int]]:
    """(ids, prompt_len) per example: the full chat, and where the assistant turn starts. Too long ones are cut."""
    prompts = tokenizer.apply_chat_template([e.messages for e in examples], tokenize=False, add_generation_prompt=True)
    fulls = [p + e.judgment + EOS + "\n" for p, e in zip(prompts, examples)]
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    f_ids = tokenizer(fulls, add_special_tokens=False)["input_ids"]
    out = []
    for p, f in zip(p_ids, f_ids):
        if f[: len(p)] != p:
            raise ValueError("the prompt's tokens are not a prefix of the full chat's tokens")
        out.append((f[:max_length], len(p)))
    return out


def _batches(encoded, batch_size: int, rng: random.Random):
    """Endless batches; each pool of 64 batches is sorted by length so padding stays small."""
    while True:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        pool = 64 * batch_size
        for s in range(0, len(order), pool):
            chunk = sorted(order[s : s + pool], key=lambda i: len(encoded[i][0]))
            bs = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            rng.shuffle(bs)
            yield from bs


def pretrain(model, tokenizer, encoded, cfg: BootstrapConfig, seed: int, log: Callable[[str], None] = print) -> dict:
    """Next-token loss on the assistant turns; AdamW, linear warm-up and cosine decay. Returns timing stats."""
    import torch
    import torch.nn.functional as F

    t = cfg.train
    opt = torch.optim.AdamW(model.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay, betas=(0.9, 0.98))
    warm = max(1, int(t.warmup_ratio * t.max_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / t.max_steps))))
    )
    pad = tokenizer.pad_token_id
    model.train()
    batches = _batches(encoded, t.batch_size, random.Random(derive_seed(seed, "batches")))
    tokens, t0, c0, ema = 0, time.perf_counter(), time.process_time(), None
    for step in range(1, t.max_steps + 1):
        idx = next(batches)
        width = max(len(encoded[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        labels = torch.full((len(idx), width), -100, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            seq, plen = encoded[i]
            ids[r, : len(seq)] = torch.tensor(seq)
            mask[r, : len(seq)] = 1
            labels[r, plen : len(seq)] = torch.tensor(seq[plen:])
            tokens += len(seq)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        ema = loss.item() if ema is None else 0.9 * ema + 0.1 * loss.item()
        if step % 50 == 0 or step == t.max_steps:
            el = time.perf_counter() - t0
            log(f"bootstrap step {step}/{t.max_steps} loss {ema:.3f} {tokens / el:,.0f} tok/s {el:.0f}s "
                f"(cpu {time.process_time() - c0:.0f}s)")
    seconds = time.perf_counter() - t0
    model.eval()
    return {"seconds": seconds, "cpu_seconds": time.process_time() - c0, "tokens": tokens, "final_loss": float(ema or 0.0)}


def _check_reload(folder: Path, tokenizer, examples: Sequence[Example]) -> None:
    """The saved folder must tokenize as training did: AutoTokenizer may rebuild a model type's own pipeline."""
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)  # our own folder: the library's code only
    texts = [e.judgment for e in examples]
    if loaded(texts, add_special_tokens=False)["input_ids"] != tokenizer(texts, add_special_tokens=False)["input_ids"]:
        raise RuntimeError(f"AutoTokenizer.from_pretrained({folder}) does not reproduce the trained tokenizer's ids")


def bootstrap(
    out_dir: str | Path,
    world: MiniWorldConfig,
    cfg: BootstrapConfig,
    templates: Templates,
    *,
    max_length: int,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> BootstrapStats:
    """Build and pre-train the base model; writes an HF model folder (model, tokenizer, bootstrap.json)."""
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    examples = build_corpus(world, cfg, templates, seed)
    t1 = time.perf_counter()
    # The world's vocabulary is small: a few thousand examples show every word the tokenizer needs.
    sample = examples[:TOKENIZER_EXAMPLES]
    texts = [m["content"] for e in sample for m in e.messages] + [e.judgment for e in sample]
    # The chat template's role names too, or each costs the model several tokens in every example.
    texts += [role for e in sample for role in [m["role"] for m in e.messages] + ["assistant"]]
    tokenizer = train_tokenizer(texts, cfg.vocab_size, max_length)
    encoded = encode(tokenizer, examples, max_length)
    t2 = time.perf_counter()
    model = build_model(tokenizer, cfg, max_length, seed)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"bootstrap: {len(examples)} examples, vocab {len(tokenizer)}, {n_params:,} parameters, "
        f"mean {sum(len(s) for s, _ in encoded) / len(encoded):.0f} tokens/example")
    run = pretrain(model, tokenizer, encoded, cfg, seed, log)
    judged = [e for e in examples if e.mode not in (SOLUTION, COMPARISON)]
    modes: dict[str, int] = {}
    for e in examples:
        modes[e.mode] = modes.get(e.mode, 0) + 1
    stats = BootstrapStats(
        examples=len(examples),
        corpus_seconds=t1 - t0,
        tokenizer_seconds=t2 - t1,
        train_seconds=run["seconds"],
        train_cpu_seconds=run["cpu_seconds"],
        steps=cfg.train.max_steps,
        train_tokens=run["tokens"],
        tokens_per_second=run["tokens"] / run["seconds"] if run["seconds"] else 0.0,
        final_loss=run["final_loss"],
        parameters=n_params,
        vocab_size=len(tokenizer),
        teacher_accuracy=sum(e.correct for e in judged) / max(len(judged), 1),
        teacher_modes=modes,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _check_reload(out, tokenizer, examples[:50])
    # the model's facts only: what this run measured (times, speed) varies run to run and is in the manifest
    facts = {k: v for k, v in asdict(stats).items() if k not in MEASURED}
    (out / "bootstrap.json").write_text(json.dumps(facts, indent=2, sort_keys=True))
    return stats
