"""The real benchmark files of ../shared/data: every row accounted for, each set's label convention kept."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from flows.cli import main
from grm.config import parse_config
from storage import Store
from tasks.base import StageContext
from tests.conftest import REAL_SOURCES


def meta(item: dict) -> dict:
    return json.loads(item["meta"])


@pytest.mark.parametrize("source", REAL_SOURCES, ids=lambda s: s.name)
def test_every_row_is_imported_quarantined_or_a_duplicate(real_imports, source):
    result = real_imports[source.name]
    s = result.stats
    assert s.read == source.rows  # SOURCES.md's count
    assert s.imported + s.quarantined_total + s.duplicates == s.read
    assert len(result.quarantine) == s.quarantined_total
    assert len(result.items) == s.items
    assert len({i["item_id"] for i in result.items}) == len(result.items)
    for q in result.quarantine:
        assert q["reason"] and q["raw"] and q["row_ref"]


def test_quarantine_and_duplicate_counts_per_set(real_imports):
    counts = {name: (r.stats.imported, dict(r.stats.quarantined), r.stats.duplicates) for name, r in real_imports.items()}
    assert counts["rm_bench"] == (798, {}, 0)
    assert counts["realcritic"] == (1903, {}, 0)
    assert counts["gsm8k_train"] == (7473, {}, 0)
    # Auto-J: label 2 is a tie (373 in SOURCES.md), plus one pair of identical responses and one empty response.
    assert counts["autoj_pairwise"] == (1017, {"tie": 374, "empty_text": 1}, 0)
    # PandaLM: 105 majority ties; 59 rows with an empty or non-text (JSON boolean) response; 48 repeated rows.
    assert counts["pandalm"] == (787, {"tie": 105, "empty_text": 53, "non_text": 6}, 48)
    # FineGrainedRLHF: no preference cycles; 93 rankings leave no single best answer.
    assert counts["finegrained_qa"] == (407, {"no_single_best": 93}, 0)
    assert counts["hh_rlhf"] == (2308, {"empty_text": 4}, 0)  # 4 transcripts end with an empty reply


def test_rm_bench_gives_the_full_style_matrix(real_imports):
    items = real_imports["rm_bench"].items
    assert len(items) == 9 * 798
    cells = Counter((meta(i)["prompt_id"], i["subset"]) for i in items)
    assert set(cells.values()) == {9}
    styles = {(meta(i)["chosen_style"], meta(i)["rejected_style"]) for i in items}
    assert len(styles) == 9
    assert Counter(i["subset"] for i in items) == {"chat": 9 * 129, "code": 9 * 228, "safety": 9 * (284 + 157)}
    assert all(i["best"] == 0 and len(i["responses"]) == 2 for i in items)


def test_label_conventions(real_imports):
    jb = [i for i in real_imports["judgebench"].items if meta(i)["response_model"] == "gpt-4o-2024-05-13"]
    assert Counter(i["best"] for i in jb) == {0: 193, 1: 157}  # "A>B" / "B>A"
    natural = [i for i in real_imports["llmbar"].items if i["subset"] == "LLMBar/Natural"]
    assert Counter(i["best"] for i in natural) == {0: 42, 1: 58}  # label "1" / "2" (strings in the file)
    assert {i["subset"] for i in real_imports["llmbar"].items} >= {"Processed/LLMEval^2", "LLMBar/Adversarial/GPTOut"}
    ebb = real_imports["evalbiasbench"].items
    assert {i["best"] for i in ebb} == {0} and Counter(i["subset"] for i in ebb)["length bias"] == 17
    solvers = Counter(meta(i)["solver"] for i in real_imports["gsm8k_solutions"].items if i["ratings"] == [1.0])
    assert solvers == {"6b_finetuning": 286, "6b_verification": 515, "175b_finetuning": 458, "175b_verification": 742}
    math = [i for i in real_imports["realcritic"].items if i["subset"] == "math"]
    assert Counter(i["ratings"][0] for i in math) == {1.0: 134, 0.0: 134}
    bon = real_imports["qwen_math_bon"].items
    assert len(bon) == 800 and sum(i["ratings"][0] for i in bon) == 728
    assert all(i["label_kind"] == "rating" and len(i["responses"]) == 1 for i in bon)


def test_hh_rlhf_transcripts_become_turns(real_imports):
    for item in real_imports["hh_rlhf"].items:
        roles = [m["role"] for m in item["conversation"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"]
    first = real_imports["hh_rlhf"].items[0]  # SOURCES.md's example
    assert first["conversation"][0] == {"role": "user", "content": "what are some pranks with a pen i can do?"}
    assert first["conversation"][1]["role"] == "assistant" and first["best"] == 0


def test_curate_stage_writes_items_and_quarantine_queryable_by_sql(shared_data, tmp_path, capsys):
    sources = [{"name": s.name, "format": s.format, "paths": [str(shared_data / p) for p in s.paths], "split": s.split}
               for s in REAL_SOURCES if s.name in ("llmbar", "judgebench", "pandalm", "gsm8k_test", "realcritic")]
    sources.append({"name": "realcritic_train", "format": "realcritic", "split": "train",
                    "paths": [str(shared_data / "realcritic/data/mix_data")]})
    # the same items as the eval source, under another name: contaminated, so dropped by default
    config = parse_config({"data": {"sources": sources}})
    from tasks.runner import execute, prepare
    from tasks.stages import get_stage

    store = Store(tmp_path / "store")
    prepared = prepare(get_stage("curate"), config, store, {})
    out = execute(prepared, config, store)
    assert set(out.artifacts) == {"items", "quarantine"}
    assert "| pandalm | pandalm | eval | 999 |" in out.summary_md
    assert "| realcritic_train | realcritic | 1903 |" in out.summary_md  # every train row overlaps the eval copy
    assert main(["sql", "--store", str(store.root), "--format", "json",
                 "select source, split, count(*) as n from items group by all order by source"]) == 0
    counts = {(r["source"], r["split"]): r["n"] for r in json.loads(capsys.readouterr().out)}
    assert counts == {("gsm8k_test", "eval"): 1319, ("judgebench", "eval"): 619, ("llmbar", "eval"): 883,
                      ("pandalm", "eval"): 787, ("realcritic", "eval"): 1903}
    assert main(["sql", "--store", str(store.root), "--format", "json",
                 "select source, split_part(reason, ':', 1) as code, count(*) as n from quarantine group by all"]) == 0
    reasons = {(r["source"], r["code"]): r["n"] for r in json.loads(capsys.readouterr().out)}
    assert reasons[("realcritic_train", "contaminated")] == 1903
    assert reasons[("pandalm", "tie")] == 105
    manifest = store.manifest(out.artifacts["items"])
    assert manifest["config_hash"] == prepared.config_hash and manifest["extra"]["curation"]["items"] == sum(counts.values())
