"""The decode roofline on this CPU: fp32 GEMM throughput at a decoder's weight shapes.

Decoding a batch of B rows runs every weight matrix once per step as a (B x d_in) @ (d_in x d_out) GEMM, so
the fastest possible decode is one pass over all the model's matrices per step: tokens/s <= B / (time of
one pass). This bench times exactly that pass, with torch, on distinct weight tensors per layer (as the
model has them: no layer finds its weights already in cache), and reports GFLOP/s and the tokens/s bound.
Attention over the KV cache, sampling and framework overhead are not in it: they are what a backend adds.

    PYTHONPATH=. python bench/roofline.py [--rows 8 48 96] [--repeats 5] [--dtype float32]

Shapes default to SmolLM2-135M (hidden 576, intermediate 1536, 30 layers, 9 query / 3 key-value heads of 64,
vocabulary 49152, tied embeddings): 0.27 GFLOP per generated token.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DecoderShape:
    hidden: int = 576
    intermediate: int = 1536
    layers: int = 30
    heads: int = 9
    kv_heads: int = 3
    head_dim: int = 64
    vocab: int = 49152

    def matrices(self) -> list[tuple[int, int]]:
        """(d_in, d_out) of one layer's projections: q, k, v, o, gate, up, down."""
        h, q, kv, f = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        return [(h, q), (h, kv), (h, kv), (q, h), (h, f), (h, f), (f, h)]

    @property
    def flops_per_token(self) -> float:
        """Multiply-adds x 2 of every weight matrix (layers and the output head); attention scores excluded."""
        per_layer = sum(i * o for i, o in self.matrices())
        return 2.0 * (self.layers * per_layer + self.hidden * self.vocab)


SMOLLM2_135M = DecoderShape()


@dataclass
class RooflinePoint:
    rows: int
    seconds: list[float]  # one full pass over the weights, per repeat

    def pass_s(self) -> float:
        return statistics.median(self.seconds)

    def gflops(self, shape: DecoderShape) -> float:
        return self.rows * shape.flops_per_token / self.pass_s() / 1e9

    def tokens_per_s(self) -> float:
        return self.rows / self.pass_s()


def gemm_pass(shape: DecoderShape, rows_list: list[int], *, repeats: int = 5, dtype: torch.dtype = torch.float32) -> list[RooflinePoint]:
    """Time one pass over every weight matrix of ``shape`` at each batch size in ``rows_list`` (median of
    ``repeats`` after one warm-up pass)."""
    g = torch.Generator().manual_seed(0)
    weights = [torch.randn(o, i, generator=g, dtype=dtype) * 0.02 for _ in range(shape.layers) for i, o in shape.matrices()]
    head = torch.randn(shape.vocab, shape.hidden, generator=g, dtype=dtype) * 0.02
    out = []
    with torch.inference_mode():
        for rows in rows_list:
            xs = {i: torch.randn(rows, i, generator=g, dtype=dtype) for i, _ in shape.matrices()}
            x_head = torch.randn(rows, shape.hidden, generator=g, dtype=dtype)

            def one_pass():
                for w in weights:
                    torch.nn.functional.linear(xs[w.shape[1]], w)
                torch.nn.functional.linear(x_head, head)

            one_pass()
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                one_pass()
                times.append(time.perf_counter() - t)
            out.append(RooflinePoint(rows, times))
    return out


def table(points: list[RooflinePoint], shape: DecoderShape, dtype: str) -> str:
    lines = [f"{dtype} GEMM pass over {shape.layers} layers + output head ({shape.flops_per_token / 1e9:.3f} GFLOP per token), "
             f"torch threads {torch.get_num_threads()}", "",
             "| rows (batch) | pass ms (median, min-max) | GFLOP/s | tokens/s bound |", "|---|---|---|---|"]
    for p in points:
        lines.append(f"| {p.rows} | {1e3 * p.pass_s():.1f} ({1e3 * min(p.seconds):.1f}-{1e3 * max(p.seconds):.1f}) | "
                     f"{p.gflops(shape):.0f} | {p.tokens_per_s():.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[8, 48, 96])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    points = gemm_pass(SMOLLM2_135M, a.rows, repeats=a.repeats, dtype=getattr(torch, a.dtype))
    print(table(points, SMOLLM2_135M, a.dtype))


if __name__ == "__main__":
    main()
