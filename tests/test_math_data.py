"""The paper's math data: solutions judged against the ground truth, paired correct vs incorrect.

Offline from GSM8K's example_model_solutions (format gsm8k_solution_pairs), and through the math data step
(stage math_samples samples solutions, grm.math_answers judges them, curate pairs them); one pairing rule.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from flows.cli import main
from grm.config import ConfigError, load_config, parse_config
from grm.formats.base import ALL_CORRECT, ALL_INCORRECT, RowError
from grm.formats.solutions import Solution, solution_pairs
from grm.generation.base import Backend, Result, Sample
from grm.math_answers import equivalent, final_answer, grade
from storage import Store
from tasks.runner import run_stage
from tasks.stages import enabled_stages

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = "gsm8k/grade_school_math/data/example_model_solutions.jsonl"
SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


# ---- judging a final answer ---------------------------------------------------------------------------------
def test_the_final_answer_is_the_last_complete_box_else_gsm8ks_marker():
    assert final_answer("first \\boxed{1}, then \\boxed{\\frac{a}{b^{2}}} done") == "\\frac{a}{b^{2}}"
    assert final_answer("18 eggs\n#### 1,800") == "1,800"
    assert final_answer("the answer is \\boxed{") is None  # cut off: no final answer
    assert final_answer("I think it is 7.") is None


@pytest.mark.parametrize("answer, reference", [
    ("0.5", "\\frac{1}{2}"), ("\\dfrac12", "\\frac{1}{2}"), ("70,000", "70000"), ("x = 3", "3"),
    ("18\\text{ dollars}", "18"), ("1+x^2", "x^2+1"), ("90^\\circ", "90"), ("\\$18.00", "18"),
])
def test_equivalent_answers_match(answer, reference):
    assert equivalent(answer, reference)


@pytest.mark.parametrize("answer, reference", [("1.732", "\\sqrt{3}"), ("-3", "3"), ("6", "5"), ("2.0000001", "2")])
def test_different_answers_do_not_match(answer, reference):
    assert not equivalent(answer, reference)


def test_a_solution_without_a_final_answer_is_incorrect():
    assert grade("so it is 18", "18") == (None, False)
    assert grade("so \\boxed{18}", "18") == ("18", True)


# ---- the pairing rule -------------------------------------------------------------------------------------------
def test_each_solution_is_in_at_most_one_pair_and_one_sided_problems_are_quarantined():
    conv = [{"role": "user", "content": "q"}]
    sols = [Solution("a", True, 0), Solution("b", False, 1), Solution("c", True, 2), Solution("d", True, 3),
            Solution("e", False, 4)]
    pairs = solution_pairs(conv, sols, "s", answer="1")
    assert [(p.responses, p.best, p.meta["pair"]) for p in pairs] == [(["a", "b"], 0, [0, 1]), (["c", "e"], 0, [2, 4])]
    with pytest.raises(RowError) as e:
        solution_pairs(conv, [Solution("a", True, 0), Solution("  ", False, 1)], "s", answer="1")
    assert e.value.code == ALL_CORRECT and "1 blank left out" in e.value.reason
    with pytest.raises(RowError) as e:
        solution_pairs(conv, [Solution("a", False, 0), Solution("b", False, 1)], "s", answer="1")
    assert e.value.code == ALL_INCORRECT


# ---- offline: GSM8K's judged model solutions ---------------------------------------------------------------------
def test_gsm8k_pairs_are_curated_and_visible_with_grm_sql(shared_data, tmp_path, capsys):
    """The acceptance check: a pairwise item set built from gsm8k_solutions, queried with `grm sql`; the quarantine
    counts by reason and the problems paired add up to every problem read."""
    path = shared_data / SOLUTIONS
    correct = [sum(json.loads(line)[s]["is_correct"] for s in SOLVERS) for line in path.read_text().splitlines()]
    cfg = parse_config({"data": {"sources": [
        {"name": "gsm8k_pairs", "format": "gsm8k_solution_pairs", "paths": [str(path)], "split": "train"}]}})
    store = Store(tmp_path / "store")
    out = run_stage("curate", cfg, store)
    assert "| gsm8k_pairs | gsm8k_solution_pairs | train | 1319 |" in out.summary_md

    def sql(query):
        assert main(["sql", "--store", str(store.root), "--format", "json", query]) == 0
        return json.loads(capsys.readouterr().out)

    (items,) = sql("select count(*) as pairs, count(distinct conversation[1].content) as problems, "
                   "count(*) filter (where best = 0 and len(responses) = 2 and label_kind = 'best') as shaped "
                   "from items where source = 'gsm8k_pairs'")
    reasons = {r["code"]: r["n"] for r in sql(
        "select split_part(reason, ':', 1) as code, count(*) as n from quarantine group by all")}
    assert items["pairs"] == items["shaped"] == sum(min(c, 4 - c) for c in correct) == 967
    assert reasons == {"all_correct": correct.count(4), "all_incorrect": correct.count(0)} == {
        "all_correct": 156, "all_incorrect": 432}
    assert items["problems"] + sum(reasons.values()) == len(correct) == 1319
    # "A robe takes 2 bolts...": three solvers right, 175b_finetuning wrong -> one pair, the first right one on top
    (robe,) = sql("select responses, meta from items where conversation[1].content like 'A robe takes 2 bolts%'")
    assert json.loads(robe["meta"]) == {"answer": "3", "kind": "solution_pair", "pair": ["6b_finetuning", "175b_finetuning"]}
    assert robe["responses"][0].startswith("It takes 2*1/2=") and robe["responses"][1].endswith("A: 250")


# ---- the math data step ------------------------------------------------------------------------------------------
INSTRUCTION = "Put the final answer in \\boxed{}."


class ScriptedPolicy(Backend):
    """A policy whose solutions depend on the problem's marker: MIXED is right on even samples (in another form than
    the reference), wrong on sample 1 and unfinished on sample 3; EASY always right; HARD always wrong; LONG is over
    the context, as a real backend reports it."""

    name = "scripted-policy"
    asked: list[str] = []

    def generate(self, requests, params):
        out = []
        for req in requests:
            q = req.messages[-1]["content"]
            ScriptedPolicy.asked.append(q)
            if "LONG" in q:
                out.append(Result(req.prompt_id, [], skipped="prompt_too_long: 5000 > 256 tokens"))
                continue
            texts = []
            for j in range(req.n):
                if "EASY" in q:
                    texts.append("Half: \\boxed{0.5}")
                elif "HARD" in q:
                    texts.append("Surely \\boxed{7}")
                else:
                    texts.append(["So \\boxed{\\dfrac{1}{2}}", "So \\boxed{2}", "Thus \\boxed{\\tfrac{1}{2}}",
                                  "Let me think about"][j % 4])
            out.append(Result(req.prompt_id, [Sample(t, req.seed + j, finish_reason="length" if "think" in t else "stop")
                                              for j, t in enumerate(texts)]))
        return out


def _math_config(tmp_path, problems, sampler=None, n=4):
    f = tmp_path / "problems.jsonl"
    f.write_text("".join(json.dumps(p) + "\n" for p in problems))
    (tmp_path / "policy").mkdir(exist_ok=True)
    return parse_config({
        "models": {"dtype": "float32", "max_length": 256},
        "generation": {"backend": "hf", "device": "cpu", "max_new_tokens": 16, "shard_size": 2},
        "data": {"math_samples": {"sources": [{"name": "math", "format": "math", "paths": [str(f)], "split": "train"}],
                                  "sampler": str(sampler or tmp_path / "policy"), "n_samples": n,
                                  "instruction": INSTRUCTION}},
    })


def _problem(marker):
    return {"problem": f"{marker}: what is half of one?", "solution": "It is $\\boxed{\\frac{1}{2}}$.",
            "level": "Level 1", "type": "Algebra"}


def test_math_samples_judges_sampled_solutions_and_curate_pairs_them(tmp_path, monkeypatch):
    monkeypatch.setattr("tasks.sampling.make_backend", lambda *a, **k: ScriptedPolicy())
    ScriptedPolicy.asked = []
    unreadable = {"problem": "no answer given", "solution": "no box here", "level": "Level 1", "type": "Algebra"}
    cfg = _math_config(tmp_path, [_problem("MIXED"), _problem("EASY"), _problem("HARD"), _problem("LONG"), unreadable])
    store = Store(tmp_path / "store")
    out = run_stage("math_samples", cfg, store)
    table = store.read_rows(out.artifacts["math_samples"])
    assert len(table) == 5 and out.rows_in == 5
    (bad,) = [r for r in table if r["conversation"] is None]
    rows = {r["conversation"][-1]["content"].split(":")[0]: r for r in table if r["conversation"]}
    assert all(q.endswith("\n\n" + INSTRUCTION) for q in ScriptedPolicy.asked)  # the policy was asked for a box
    mixed = rows["MIXED"]
    assert mixed["conversation"] == [{"role": "user", "content": "MIXED: what is half of one?"}]  # no instruction
    assert mixed["reference_answer"] == "\\frac{1}{2}" and json.loads(mixed["meta"]) == {"level": "Level 1"}
    assert [(s["answer"], s["correct"]) for s in mixed["solutions"]] == [
        ("\\dfrac{1}{2}", True), ("2", False), ("\\tfrac{1}{2}", True), (None, False)]
    assert mixed["solutions"][3]["finish_reason"] == "length" and [s["sample_idx"] for s in mixed["solutions"]] == [0, 1, 2, 3]
    assert all(s["correct"] for s in rows["EASY"]["solutions"]) and not any(s["correct"] for s in rows["HARD"]["solutions"])
    assert rows["LONG"]["error"].startswith("too_long: prompt_too_long") and rows["LONG"]["solutions"] is None
    assert bad["error"].startswith("missing_field") and bad["row_ref"].endswith("problems.jsonl:5") and bad["raw"]
    assert "| math | 5 | 0 | 2 | 1 | 1 | 1 | 12 | 50.0 |" in out.summary_md  # 6 of 12 solutions right

    cur = run_stage("curate", cfg, store)  # math_samples from the store
    items = store.read_rows(cur.artifacts["items"])
    assert [(i["source"], i["format"], i["responses"], i["best"]) for i in items] == [
        ("math", "sampled_solutions", ["So \\boxed{\\dfrac{1}{2}}", "So \\boxed{2}"], 0),
        ("math", "sampled_solutions", ["Thus \\boxed{\\tfrac{1}{2}}", "Let me think about"], 0)]
    quarantine = store.read_rows(cur.artifacts["quarantine"])
    reasons = Counter(q["reason"].split(":")[0] for q in quarantine)
    assert reasons == {"all_correct": 1, "all_incorrect": 1, "too_long": 1, "missing_field": 1}
    assert 1 + sum(reasons.values()) == 5  # one problem paired + the quarantined = every problem read
    assert next(q for q in quarantine if q["reason"].startswith("missing_field"))["row_ref"].endswith("problems.jsonl:5")
    (source,) = store.manifest(cur.artifacts["items"])["extra"]["curation"]["sources"]
    assert (source["read"], source["imported"], source["quarantined"]) == (5, 1, 4)


def test_math_samples_on_a_real_backend(tmp_path, tiny_model_dir):
    """The same step with the hf backend and a tiny random model: every solution is judged (none is right)."""
    cfg = _math_config(tmp_path, [_problem("A"), _problem("B")], sampler=tiny_model_dir, n=2)
    store = Store(tmp_path / "store")
    rows = store.read_rows(run_stage("math_samples", cfg, store).artifacts["math_samples"])
    assert len(rows) == 2 and all(len(r["solutions"]) == 2 and r["error"] is None for r in rows)
    assert all(s["text"] is not None and s["correct"] is False for r in rows for s in r["solutions"])
    cur = run_stage("curate", cfg, store)
    assert Counter(q["reason"].split(":")[0] for q in store.read_rows(cur.artifacts["quarantine"])) == {"all_incorrect": 2}


# ---- configuration ------------------------------------------------------------------------------------------------
def test_without_math_sources_the_step_is_off_and_tiny_runs_as_before():
    tiny = load_config(ROOT / "configs" / "tiny.yaml")
    assert tiny.data.math_samples is None
    assert [s.name for s in enabled_stages(tiny)] == ["curate", "bootstrap", "rft_sample", "rft_train", "rl",
                                                       "metarm_data", "metarm_train", "judge", "evaluate"]


def test_math_data_config_errors_name_the_field(tmp_path):
    src = {"name": "m", "format": "math", "paths": ["x.jsonl"], "split": "train"}
    with pytest.raises(ConfigError, match="problem sources must have format math or gsm8k; not u \\(ultrafeedback\\)"):
        parse_config({"data": {"math_samples": {"sources": [{**src, "name": "u", "format": "ultrafeedback"}],
                                                "sampler": "m"}}})
    with pytest.raises(ConfigError, match="sampler 'grm' is trained after the math data is made"):
        parse_config({"data": {"math_samples": {"sources": [src], "sampler": "grm"}}})
    with pytest.raises(ConfigError, match="data.math_samples.sampler 'base' names models.base 'scratch'"):
        parse_config({"data": {"math_samples": {"sources": [src], "sampler": "base"}}})
    with pytest.raises(ConfigError, match="repeated: m"):
        parse_config({"data": {"sources": [src], "math_samples": {"sources": [src], "sampler": "x"}}})


def test_curate_without_the_math_table_says_which_stage_to_run(tmp_path):
    cfg = _math_config(tmp_path, [_problem("A")])
    with pytest.raises(ValueError, match="no math_samples table: run stage 'math_samples' first"):
        run_stage("curate", cfg, Store(tmp_path / "store"))
