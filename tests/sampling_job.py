"""A sampling run of the judge kind over toy items, as its own process (for the kill-and-resume and Ray
tests): python tests/sampling_job.py STORE MODEL_DIR RUNNER [WORKERS] -> prints the artifact path."""

from __future__ import annotations

import logging
import sys

from grm.config import GenerationConfig, TaskRunnerConfig
from grm.generation import SamplingParams
from grm.sampling_plan import plan
from grm.prompts import Templates
from storage import Store
from tasks.base import StageContext
from tasks.sampling import BackendSpec, planned_rows, sample_table


def toy_items(n: int) -> list[dict]:
    return [
        {
            "item_id": f"item-{i:03d}",
            "conversation": [{"role": "user", "content": f"What is {i} plus {i}?"}],
            "responses": [f"It is {2 * i}.", f"It is {2 * i + 1}.", "I do not know."][: 2 + i % 2],
            "label_kind": "best",
            "best": 0,
            "ratings": None,
            "meta": None,
        }
        for i in range(n)
    ]


def run(store: str, model_dir: str, runner: str = "threads", workers: int = 1, n_items: int = 8, shard_size: int = 2,
        max_new_tokens: int = 8, model_len: int = 2048, items: list[dict] | None = None,
        backend: GenerationConfig | None = None, close: bool = True):
    items = items or toy_items(n_items)
    requests, planned = plan(items, k=3, seed=7, templates=Templates.default(), tag="judge:test")
    gen = backend or GenerationConfig(
        backend="hf", device="cpu", shard_size=shard_size, batch_size=4,
        task_runner=TaskRunnerConfig(kind=runner, workers=workers),
    )
    from flows.shard_map import map_jobs  # the pipeline's task-runner mapping (threads or Ray)

    ctx = StageContext("judge", Store(store), None, cache_key="testkey", logger=logging.getLogger("test"),
                       map_jobs=map_jobs)
    spec = BackendSpec(model_dir, gen, max_model_len=model_len)
    params = SamplingParams(temperature=1.0, max_new_tokens=max_new_tokens)
    rows = planned_rows(planned, {it["item_id"]: it for it in items}, model="grm", decoding="sample")
    return sample_table(ctx, "grm-sample", "judgments", requests, rows, spec, params, close=close)


if __name__ == "__main__":
    out = run(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    print("ARTIFACT", out.ref.path, out.shards_sampled)
