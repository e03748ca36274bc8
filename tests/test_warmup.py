"""The format warm-up: Auto-J critiques become GRM outputs whose box the parser reads (single, pairwise,
listwise), short enough to reach the box; the stage drops critiques of eval queries, writes `warmup_examples` and
publishes models/warm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grm.config import ConfigError, parse_config
from grm.parsing import parse_scores
from grm.prompts import Templates
from grm.warmup import conclusion, parse_autoj_single, read_critiques, warmup_examples


def autoj_row(query: str, response: str, critique: str, rating: str = "4") -> dict:
    msg = (f"Write critiques for a submitted response on a given user's query, and grade the response:\n  \n[BEGIN DATA]"
           f"\n***\n[Query]: {query}\n***\n[Response]: {response}\n***\n[END DATA]\n\nWrite critiques for this response.")
    return {"usrmsg": msg, "target_output": f"{critique}\n\nRating: [[{rating}]]", "pred_score": rating,
            "scenario": "default", "source_dataset": "chatbot_arena"}


LONG = ("The response lists languages. It does not measure efficiency.\n\nIn conclusion, the response misses the "
        "question. It gives ease-of-use scores instead of efficiency. It cites no source. It repeats itself.")


def test_a_critique_row_is_read_or_named():
    c, why = parse_autoj_single(autoj_row("Q?", "A.", LONG, "3"), "f.jsonl:1")
    assert why is None and (c.query, c.response, c.score) == ("Q?", "A.", 3) and "Rating" not in c.critique
    assert parse_autoj_single(autoj_row("Q?", "A.", "Fine.", "6.5"), "f:2")[0].score == 6  # half-points round
    assert parse_autoj_single({**autoj_row("Q?", "A.", "Ok."), "target_output": "Ok.\n\nRating: [[4]]."}, "f:3")[0]
    for row, reason in ((autoj_row("Q?", "A.", "No rating at all", "x"), "does not end in 'Rating: [[n]]'"),
                        (autoj_row("Q?", "A.", "Too good.", "11"), "outside 1-10"),
                        ({"usrmsg": "no data block", "target_output": "x\n\nRating: [[3]]"}, "[Query]"),
                        ([1, 2], "not a JSON object")):
        got, why = parse_autoj_single(row, "f.jsonl:9")
        assert got is None and why.startswith("f.jsonl:9: ") and reason in why


def test_the_conclusion_is_the_last_paragraph_in_whole_sentences():
    assert conclusion(LONG, 400) == ("In conclusion, the response misses the question. It gives ease-of-use scores "
                                     "instead of efficiency. It cites no source. It repeats itself.")
    assert conclusion(LONG, 60) == "In conclusion, the response misses the question."
    assert len(conclusion("word " * 200, 50)) <= 51


def test_examples_put_the_judges_ratings_in_the_box_in_the_order_shown():
    rows = [autoj_row("Q1?", f"answer {i}", LONG, str(r)) for i, r in enumerate((3, 7, 5, 7))]
    rows.append(autoj_row("Q2?", "lonely", LONG, "2"))
    critiques = [parse_autoj_single(r, f"f:{i}")[0] for i, r in enumerate(rows)]
    ex = warmup_examples(critiques, Templates.default(), critique_chars=120, seed=1)
    kinds = [e["kind"] for e in ex]
    assert kinds.count("single") == 5 and kinds.count("pairwise") == 1 and kinds.count("listwise") == 1
    for e in ex:
        status, scores = parse_scores(e["completion"], e["n_responses"])
        assert status == "ok" and list(scores) == e["scores"]
        shown = [next(c for c in critiques if c.ref == ref) for ref in e["refs"]]
        positions = [e["prompt"].index(c.response) for c in shown]
        assert positions == sorted(positions)  # the box's order is the prompt's order
        n = e["n_responses"]  # the analysis shares one budget (at least 100 characters a response)
        assert len(e["completion"]) <= 40 + n * (max(100, 120 // n) + 16)
    listwise = next(e for e in ex if e["kind"] == "listwise")
    assert sorted(listwise["scores"]) == [3, 5, 7]  # one response per rating: ties are not a clear order


def test_the_real_autoj_file_makes_parseable_examples(shared_data):
    read = read_critiques(shared_data / "auto_j/data/training/single_traindata.jsonl")
    assert len(read.rows) + len(read.problems) == 960 and len(read.problems) <= 5
    ex = warmup_examples(read.rows, Templates.default())
    assert {k: sum(e["kind"] == k for e in ex) for k in ("single", "pairwise", "listwise")}["pairwise"] >= 50
    assert all(parse_scores(e["completion"], e["n_responses"])[0] == "ok" for e in ex)
    assert max(len(e["completion"]) for e in ex) < 700  # ~175 tokens: within a 256-token budget


def test_the_warmup_cannot_start_from_its_own_output():
    with pytest.raises(ConfigError, match="warmup.model 'base' names the warm-up's own output"):
        parse_config({"models": {"base": "warm"}, "warmup": {"model": "base", "data": "x.jsonl"}})


def test_the_stage_drops_eval_queries_writes_its_table_and_publishes_warm(tmp_path, tiny_model_dir, monkeypatch):
    from storage import Store
    from tasks.runner import run_stage

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    eval_query = "Explain how a hash map resolves collisions with separate chaining in detail please"
    lines = [autoj_row(eval_query, "copied", LONG, "3"), autoj_row("Q1?", "a", LONG, "2"),
             autoj_row("Q1?", "b", LONG, "8"), {"usrmsg": "broken"}]
    data = tmp_path / "critiques.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    store = Store(tmp_path / "store")
    store.write_table("items", [{"item_id": "e1", "source": "bench", "format": "f", "split": "eval", "subset": "x",
                                 "conversation": [{"role": "user", "content": eval_query}],
                                 "responses": ["r1", "r2"], "label_kind": "best", "best": 0}])
    compact = str(Path(__file__).parents[1] / "configs/templates/miniworld_grm.txt")  # the tiny tokenizer's budget
    cfg = parse_config({"models": {"base": "warm", "dtype": "float32", "max_length": 1024}, "prompts": {"grm": compact},
                        "warmup": {"model": str(tiny_model_dir), "data": str(data),
                                   "train": {"learning_rate": 1e-3, "batch_size": 2, "per_device_batch_size": 2,
                                             "max_steps": 1}}})
    out = run_stage("warmup", cfg, store)
    rows = store.read_rows(out.artifacts["warmup_examples"])
    assert sorted(r["kind"] for r in rows) == ["pairwise", "single", "single"]
    assert all(eval_query not in r["prompt"] for r in rows)
    m = out.metrics
    assert (m["critiques_read"], m["rows_left_out"], m["contaminated"], m["too_long"], m["steps"]) == (4, 1, 1, 0, 1)
    assert store.require("models", "warm").path == out.artifacts["warm"].path
    short = parse_config({**cfg.model_dump(mode="json", exclude={"source_path"}),
                          "models": {"base": "warm", "dtype": "float32", "max_length": 40}})
    with pytest.raises(ValueError, match=r"no example left .*3 longer than models.max_length"):
        run_stage("warmup", short, store)  # cut inside its target, an example teaches nothing: left out, counted
