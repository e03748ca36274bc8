"""The miniature world: its items, its imperfect teacher, and the bootstrap model built from them."""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from grm.config import BootstrapConfig, MiniWorldConfig, TrainerConfig, load_config
from grm.miniworld import teacher
from grm.miniworld.world import generate_items, item_query, query_split
from grm.parsing import BINARY, GRADED, parse_judgment
from grm.prompts import Templates
from grm.rules import is_correct, item_truth
from storage.schemas import ITEMS

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = Templates.load(
    {"grm": "templates/miniworld_grm.txt", "single": "templates/miniworld_single.txt",
     "response": "templates/miniworld_response.txt"},
    base_dir=ROOT / "configs",
)
RATES = {"add": 0.5, "sort": 0.5, "max": 0.1, "reverse": 0.1, "count": 0.1}


def oracle(query: str) -> str:
    """An answer computed from the query text alone, independently of the generator."""
    nums = lambda s: [int(x) for x in s.split()]  # noqa: E731
    if m := re.fullmatch(r"What is (\d+) \+ (\d+)\?", query):
        return str(int(m[1]) + int(m[2]))
    if m := re.fullmatch(r"Which is the largest of ([\d ]+)\?", query):
        return str(max(nums(m[1])))
    if m := re.fullmatch(r"Sort ascending: ([\d ]+)", query):
        return " ".join(map(str, sorted(nums(m[1]))))
    if m := re.fullmatch(r"Reverse the letters: ([a-z ]+)", query):
        return " ".join(m[1].split()[::-1])
    if m := re.fullmatch(r"How many ([a-z]) in ([a-z ]+)\?", query):
        return str(m[2].split().count(m[1]))
    raise AssertionError(f"unknown query {query!r}")


@pytest.fixture(scope="module")
def world() -> MiniWorldConfig:
    return MiniWorldConfig(train_items=400, eval_items=300, seed=3)


@pytest.fixture(scope="module")
def items(world):
    return {s: generate_items(world, s) for s in ("train", "eval")}


def test_generator_is_deterministic_per_seed(world, items):
    assert generate_items(world, "train") == items["train"]
    other = generate_items(world.model_copy(update={"seed": 4}), "train")
    assert other != items["train"]


def test_splits_are_disjoint_by_query_for_any_seed(world, items):
    train_q = {item_query(r) for r in items["train"]}
    for seed in (3, 4):
        eval_q = {item_query(r) for r in generate_items(world.model_copy(update={"seed": seed}), "eval")}
        assert not train_q & eval_q
    assert all(query_split(item_query(r), world.eval_share) == r["split"] for s in items.values() for r in s)


def test_ground_truth_is_correct_by_program(items):
    for r in items["train"] + items["eval"]:
        right = oracle(item_query(r))
        if r["label_kind"] == "rating":
            assert len(r["responses"]) == 1 and r["best"] is None
            assert r["ratings"] == [float(r["responses"][0] == right)]
        else:
            assert r["responses"][r["best"]] == right
            assert sum(x == right for x in r["responses"]) == 1  # every other response is wrong
            assert len(set(r["responses"])) == len(r["responses"])


def test_items_cover_every_shape_and_fit_the_items_schema(items):
    rows = items["eval"]
    pa.Table.from_pylist(rows, schema=ITEMS)  # raises on a column or type mismatch
    shapes = Counter(r["subset"].split("/")[1] for r in rows)
    assert set(shapes) == {"pairwise", "listwise", "single"}
    sizes = {r["subset"].split("/")[1]: set() for r in rows}
    for r in rows:
        sizes[r["subset"].split("/")[1]].add(len(r["responses"]))
        assert r["source"] == "miniworld" and json.loads(r["meta"])["answer"] == oracle(item_query(r))
    assert sizes == {"pairwise": {2}, "listwise": {3, 4}, "single": {1}}
    singles = [r["ratings"][0] for r in rows if r["label_kind"] == "rating"]
    assert 0.3 < sum(singles) / len(singles) < 0.7  # right and wrong single responses both occur


def test_unknown_task_family_is_rejected_with_the_field_named():
    with pytest.raises(ValueError, match="tasks"):
        MiniWorldConfig(tasks={"divide": 1.0})


def _judge_all(rows, **kw):
    rng = random.Random(0)
    return [(r, teacher.judge(r, r["responses"], rng, **kw)) for r in rows]


def test_every_teacher_judgment_parses_and_the_wrong_share_is_as_intended(items):
    judged = _judge_all(items["train"], shortcut_rates=RATES, error_rate=0.25)
    by_mode: dict[str, list[bool]] = {}
    for r, j in judged:
        n = len(r["responses"])
        p = parse_judgment(j.text, n, BINARY if n == 1 else GRADED)
        assert p.ok and p.scores == j.scores, j.text
        assert p.principles and p.critique
        by_mode.setdefault(j.mode, []).append(
            is_correct(p.scores, **item_truth(r["label_kind"], r["best"], r["ratings"]))
        )
    assert all(by_mode["careful"]) and not any(by_mode["fooled"])
    assert 0.2 < sum(by_mode["shortcut"]) / len(by_mode["shortcut"]) < 0.8  # right only by chance
    shortcut_share = len(by_mode["shortcut"]) / len(judged)
    expected = sum(RATES[json.loads(r["meta"])["task"]] for r, _ in judged) / len(judged)
    assert abs(shortcut_share - expected) < 0.07
    fooled_share = len(by_mode["fooled"]) / (len(judged) - len(by_mode["shortcut"]))
    assert abs(fooled_share - 0.25) < 0.07


def test_teacher_scores_follow_its_analysis(items):
    for r, j in _judge_all(items["train"], shortcut_rates=RATES, error_rate=0.25):
        if j.mode == teacher.SHORTCUT:
            assert "At a glance Response 1" in j.text and j.scores[0] == max(j.scores)
            continue
        said = teacher.verdicts(j.text)
        assert [i for i, *_ in said] == list(range(1, len(r["responses"]) + 1))
        for i, value, answer, match in said:
            assert value == r["responses"][i - 1] and match == (value == answer)  # the copy, and the comparison
            s = j.scores[i - 1]
            if len(r["responses"]) == 1:
                assert s == match
            else:
                assert (s >= 8) == match


def test_hinted_teacher_works_carefully(items):
    multi = [r for r in items["train"] if len(r["responses"]) > 1]
    rng = random.Random(1)
    for r in multi:
        j = teacher.judge(r, r["responses"], rng, shortcut_rates={"add": 1.0}, error_rate=1.0, hinted=True)
        assert j.mode == teacher.CAREFUL and is_correct(j.scores, best=r["best"])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, world):
    from grm.miniworld.bootstrap import bootstrap

    out = tmp_path_factory.mktemp("boot") / "base"
    cfg = BootstrapConfig(
        vocab_size=300, hidden_size=64, layers=1, heads=1, intermediate_size=64, corpus_items=96,
        teacher_shortcut_rates=RATES, teacher_error_rate=0.2, threads=1,
        train=TrainerConfig(learning_rate=1e-3, batch_size=8, per_device_batch_size=8, max_steps=3),
    )
    stats = bootstrap(out, world, cfg, TEMPLATES, max_length=256, seed=0, log=lambda _: None)
    return out, stats


def test_tokenizer_round_trips_and_autotokenizer_reproduces_its_ids(tiny_model, items):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    out, _ = tiny_model
    tok = AutoTokenizer.from_pretrained(out)
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    r = items["eval"][0]
    j = teacher.judge(r, r["responses"], random.Random(0), shortcut_rates={}, error_rate=0.0)
    chat = [{"role": "user", "content": item_query(r)}, {"role": "assistant", "content": j.text}]
    text = tok.apply_chat_template(chat, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids == raw.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == text
    assert tok.eos_token == "<|im_end|>" and tok.padding_side == "left"
    enc = tok.apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True)
    kept = [i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.decode(kept) == j.text + "<|im_end|>"  # only the judgment is trainable


def test_bootstrap_writes_a_loadable_model_folder(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, stats = tiny_model
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.head_dim == 64 and model.config.model_type == "mistral"
    assert json.loads((out / "bootstrap.json").read_text())["steps"] == 3
    assert stats.examples == 96 and stats.train_tokens > 0 and 0 < stats.teacher_accuracy < 1
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)
    with torch.no_grad():
        g = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert g.shape[1] > prompt["input_ids"].shape[1]


def test_tiny_yaml_points_at_the_miniworld_templates():
    cfg = load_config(ROOT / "configs" / "tiny.yaml")
    assert cfg.data.miniworld is not None and cfg.models.base == "scratch"
    t = Templates.load({"grm": cfg.prompts.grm, "single": cfg.prompts.single}, base_dir=cfg.base_dir)
    assert t.grm == TEMPLATES.grm and t.single == TEMPLATES.single


def test_corpus_tasks_broaden_the_pretraining_corpus_but_not_the_judging_tasks():
    from grm.miniworld.bootstrap import build_corpus

    world = MiniWorldConfig(tasks={"add": 1.0, "max": 1.0}, train_items=40, eval_items=40)
    cfg = BootstrapConfig(corpus_items=200, corpus_tasks={"add": 1.0, "reverse": 1.0}, teacher_shortcut_rates={})
    queries = [e.messages[0]["content"] for e in build_corpus(world, cfg, TEMPLATES, seed=0)]
    assert any("Reverse the letters" in q for q in queries) and any("What is" in q for q in queries)
    assert not any("largest" in q for q in queries)
    assert {json.loads(r["meta"])["task"] for r in generate_items(world, "eval")} == {"add", "max"}
    default = build_corpus(world, cfg.model_copy(update={"corpus_tasks": None}), TEMPLATES, seed=0)
    assert not any("Reverse" in e.messages[0]["content"] for e in default)  # None: the judging tasks' families
    assert any("largest" in e.messages[0]["content"] for e in default)
    with pytest.raises(ValueError, match="corpus_tasks"):
        BootstrapConfig(corpus_tasks={"mul": 1.0})


def test_solution_share_shows_that_share_of_the_corpus_solved_and_zero_leaves_it_as_it_was():
    """bootstrap.solution_share: items shown as the query answered with the careful working (what pretraining
    teaches about the tasks), not judged; 0 gives exactly the judgments-only corpus."""
    from grm.miniworld.bootstrap import SOLUTION, build_corpus

    world = MiniWorldConfig(tasks={"add": 1.0, "max": 1.0, "count": 1.0}, train_items=40, eval_items=40)
    cfg = BootstrapConfig(corpus_items=400, teacher_shortcut_rates={"add": 0.6})
    mixed = build_corpus(world, cfg.model_copy(update={"solution_share": 0.3}), TEMPLATES, seed=3)
    solved = [e for e in mixed if e.mode == SOLUTION]
    assert 0.2 < len(solved) / len(mixed) < 0.4
    for e in solved:  # one user turn, no responses; the target is the task's own working with the right answer
        [turn] = e.messages
        assert turn["role"] == "user" and "Response" not in turn["content"] and e.correct
        query = turn["content"]
        if query.startswith("What is"):
            a, b = map(int, query[len("What is "):-1].split(" + "))
            assert e.judgment == f"{a} + {b} = {a + b}"
        elif "largest" in query:
            xs = query.split("of ", 1)[1].rstrip("?")
            assert e.judgment == f"largest of {xs} is {max(map(int, xs.split()))}"
    assert all(e.mode != SOLUTION for e in build_corpus(world, cfg, TEMPLATES, seed=3))
    assert build_corpus(world, cfg, TEMPLATES, seed=3) == build_corpus(world, cfg.model_copy(update={"solution_share": 0.0}), TEMPLATES, seed=3)


def test_comparison_share_practises_the_verdicts_alone_and_zero_leaves_the_corpus_as_it_was():
    """bootstrap.comparison_share: items whose shown responses are compared with the item's answer in the careful
    judge's verdict lines, every verdict right; 0 gives exactly the corpus without them."""
    from grm.miniworld.bootstrap import COMPARISON, build_corpus

    world = MiniWorldConfig(tasks={"add": 1.0, "max": 1.0, "count": 1.0}, train_items=40, eval_items=40)
    cfg = BootstrapConfig(corpus_items=400, teacher_shortcut_rates={"add": 0.6})
    mixed = build_corpus(world, cfg.model_copy(update={"comparison_share": 0.3}), TEMPLATES, seed=3)
    drills = [e for e in mixed if e.mode == COMPARISON]
    assert 0.2 < len(drills) / len(mixed) < 0.4
    matches = 0
    for e in drills:
        [turn] = e.messages
        head, *blocks = turn["content"].split("\n")
        answer = head.removeprefix("Compare with ").removesuffix(":")
        shown = [b.split(": ", 1)[1] for b in blocks]
        said = teacher.verdicts(e.judgment)
        assert [i for i, *_ in said] == list(range(1, len(shown) + 1)) and e.correct
        for i, value, restated, match in said:
            assert value == shown[i - 1] and restated == answer and match == (value == answer)
            matches += match
    assert 0 < matches < sum(len(teacher.verdicts(e.judgment)) for e in drills)  # both verdicts are practised
    assert all(e.mode != COMPARISON for e in build_corpus(world, cfg, TEMPLATES, seed=3))
    assert build_corpus(world, cfg, TEMPLATES, seed=3) == build_corpus(
        world, cfg.model_copy(update={"comparison_share": 0.0}), TEMPLATES, seed=3
    )


def test_a_teacher_that_finds_no_plausible_mistake_judges_carefully():
    # 'a a a' reversed: the only mistake is a random slip of the last letter, which is sometimes 'a' again.
    item = {"meta": json.dumps({"task": "reverse", "args": {"s": ["a", "a", "a"]}})}
    rng = random.Random(1)
    modes = Counter()
    for _ in range(200):
        j = teacher.judge(item, ["a a a"], rng, shortcut_rates={}, error_rate=1.0)
        modes[j.mode] += 1
        assert j.scores == ((0,) if j.mode == teacher.FOOLED else (1,))
    assert modes[teacher.CAREFUL] > 0 and modes[teacher.FOOLED] > 0


def test_bench_working_checker_reads_teacher_judgments_right(items):
    """bench/miniworld_metarm.py's step checker (the ceiling it reports for a meta RM) on judgments whose
    truth is known: careful ones flawless and right, fooled ones caught at their working, shortcuts apart;
    the shown order is recovered from the meta-RM text, so correctness matches the pipeline's rule."""
    from bench.miniworld_metarm import trajectory
    from grm.shuffling import permutation, shown, to_original
    from grm.training.examples import metarm_text

    rng = random.Random(1)
    seen = Counter()
    for r in items["train"]:
        if json.loads(r["meta"])["task"] not in ("add", "max", "count"):  # the checker reads the number families
            continue
        perm = permutation(len(r["responses"]), 5, r["item_id"])
        j = teacher.judge(r, shown(list(r["responses"]), perm), rng, shortcut_rates=RATES, error_rate=0.3)
        t = trajectory({"text": metarm_text(r, perm, j.text, TEMPLATES), "item_id": r["item_id"]}, r)
        n = len(r["responses"])
        p = parse_judgment(j.text, n, BINARY if n == 1 else GRADED)
        assert t["correct"] == is_correct(to_original(p.scores, perm), **item_truth(r["label_kind"], r["best"], r["ratings"]))
        seen[j.mode] += 1
        if j.mode == teacher.CAREFUL:
            assert t["careful"] and all(t["flags"].values()) and t["correct"], j.text
        elif j.mode == teacher.FOOLED:
            assert t["careful"] and not t["flags"]["working"] and not t["correct"], j.text
        else:
            assert not t["careful"]
    assert min(seen.values()) >= 10, seen
