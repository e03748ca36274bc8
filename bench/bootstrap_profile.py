"""Where a bootstrap training step's time goes (issue 18, item 4; not a test).

    .venv/bin/python -m bench.bootstrap_profile [--config configs/tiny.yaml] [--batch 32] [--length 110] [--steps 10]

Builds the bootstrap model of the config (its shapes, from scratch) and times the training step that
grm.miniworld.bootstrap.pretrain runs (forward, next-token loss, backward, clipping, AdamW) on one batch of
random token ids, under torch's profiler. Prints the ops by self CPU time and the matrix multiplies' rate
(GFLOP/s): if `aten::mm` dominates at about the CPU's fp32 rate, the step is compute-bound and only fewer tokens
or fewer steps make the bootstrap shorter. The numerics follow the config (`models.cpu_numerics`), set before
torch loads, as `grm run` does; `--set models.cpu_numerics=native` for the CPU's own.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=110, help="tokens per row (tiny.yaml's examples: ~90-100)")
    ap.add_argument("--steps", type=int, default=10, help="profiled steps, after 5 warm-up steps")
    ap.add_argument("--vocab", type=int, default=480, help="the trained tokenizer's size (tiny.yaml: ~470-490)")
    a = ap.parse_args(argv)

    from grm import cpu_numerics
    from grm.config import ConfigError, load_config

    try:
        cfg = load_config(a.config, a.overrides)
        cpu_numerics.apply(cfg.models.cpu_numerics)  # before torch loads
    except (ConfigError, cpu_numerics.NumericsError) as e:
        raise SystemExit(f"bench.bootstrap_profile: {e}")
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile
    from transformers import MistralConfig, MistralForCausalLM

    b = cfg.bootstrap
    if b.threads:
        torch.set_num_threads(b.threads)
    model = MistralForCausalLM(MistralConfig(
        vocab_size=a.vocab, hidden_size=b.hidden_size, intermediate_size=b.intermediate_size,
        num_hidden_layers=b.layers, num_attention_heads=b.heads, num_key_value_heads=b.heads,
        head_dim=b.hidden_size // b.heads, max_position_embeddings=cfg.models.max_length, tie_word_embeddings=True,
    )).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, a.vocab, (a.batch, a.length))

    def step():
        logits = model(input_ids=ids).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(5):
        step()
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(a.steps):
            step()
    wall = (time.perf_counter() - t0) / a.steps
    ops = prof.key_averages()
    total = sum(o.self_cpu_time_total for o in ops)
    mm = [o for o in ops if o.key in ("aten::mm", "aten::addmm", "aten::bmm")]
    mm_us = sum(o.self_cpu_time_total for o in mm)
    mm_flops = sum(o.flops for o in mm)
    print(f"numerics {cfg.models.cpu_numerics}, threads {torch.get_num_threads()}, batch {a.batch} x {a.length} "
          f"tokens: {wall * 1000:.0f} ms per step under the profiler, {a.batch * a.length / wall:,.0f} tokens/s")
    print(f"matrix multiplies: {100 * mm_us / total:.0f}% of self CPU time, {mm_flops / mm_us / 1e3:.0f} GFLOP/s")
    for o in sorted(ops, key=lambda o: -o.self_cpu_time_total)[:8]:
        print(f"  {o.key[:50]:50s} {100 * o.self_cpu_time_total / total:5.1f}%")


if __name__ == "__main__":
    main()
