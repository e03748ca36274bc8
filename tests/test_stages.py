"""The stage graph is derived from each stage's declaration: the README's table, groups, inputs bound by name,
a new stage added with one registration line, and config reads limited to what a stage declares."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from grm.config import parse_config
from storage import Store
from tasks import stages
from tasks.config_view import ConfigView, UndeclaredConfig

ROOT = Path(__file__).resolve().parents[1]


def test_readme_dag_table_is_the_derived_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- dag:start -->\n(.*?)\n<!-- dag:end -->", readme, re.S)
    assert block, "README.md lacks the <!-- dag:start --> ... <!-- dag:end --> block"
    assert block.group(1) == stages.dag_table(), "README's DAG table is stale: paste `python -m tasks.stages`"


def test_the_graph_is_derived_from_the_declarations():
    g = stages.graph()
    assert [s.name for s in g.stages] == [m.rpartition(".")[2] for m in stages.STAGE_MODULES]
    assert g.groups == {"data": ("import_model", "math_samples", "curate"), "train": ("bootstrap", "warmup", "rft_sample", "rft_train", "rl"),
                        "metarm": ("metarm_data", "metarm_train"), "evaluation": ("judge", "evaluate")}
    assert {a: s.name for a, (s, _) in g.producers.items()}["metarm"] == "metarm_train"
    assert set(g.model_artifacts) == {"base", "warm", "rft", "grm", "metarm"}
    judge = stages.get_stage("judge")
    assert judge.inputs == ("items", "models", "voting", "metarm") and judge.optional == {"metarm"}
    assert "metarm.max_length" in judge.config  # judge scores with the meta RM at that length: part of its key
    assert stages.select(["evaluation", "curate"]) == {"judge", "evaluate", "curate"}
    with pytest.raises(ValueError, match="unknown stage or group 'nope'.*groups: data, train"):
        stages.select(["nope"])


def test_adding_a_stage_is_its_module_and_one_registration_line(tmp_path, monkeypatch):
    from tasks.runner import run_stage

    monkeypatch.setattr(stages, "STAGE_MODULES", [*stages.STAGE_MODULES, "tests.example_stage"])
    stages.graph.cache_clear()
    try:
        assert stages.graph().groups["example"] == ("example_stage",)
        assert "| `example_stage` | example | items | files/word_counts | `seed` |" in stages.dag_table()
        store = Store(tmp_path)
        store.write_table("items", [{"item_id": "a", "source": "s", "format": "f", "split": "eval", "subset": "x",
                                     "conversation": [{"role": "user", "content": "q"}],
                                     "responses": ["one two", "three"], "label_kind": "best", "best": 0}])
        out = run_stage("example_stage", parse_config({"seed": 3}), store)
        got = json.loads(Path(out.artifacts["word_counts"].path, "counts.json").read_text())
        assert got == {"seed": 3, "counts": {"a": 3}}
    finally:
        stages.graph.cache_clear()


def test_an_input_no_earlier_stage_produces_is_refused(monkeypatch):
    monkeypatch.setattr(stages, "STAGE_MODULES", ["tests.example_stage", *stages.STAGE_MODULES])
    stages.graph.cache_clear()
    try:
        with pytest.raises(TypeError, match="stage 'example_stage'.*input 'items' is no artifact of an earlier stage"):
            stages.graph()
    finally:
        stages.graph.cache_clear()


def test_a_stage_reads_only_the_config_it_declares():
    cfg = parse_config({"seed": 5, "judge": {"k_max": 4}})
    view = ConfigView(cfg, ("seed", "judge", "metarm.max_length", "models.base"), "judge")
    assert view.seed == 5 and view.judge.k_max == 4 and view.metarm.max_length == cfg.metarm.max_length
    assert view.resolve_path("x") == "x"  # methods stay callable
    with pytest.raises(UndeclaredConfig, match="stage 'judge' read config 'metarm.temperature'.*does not declare"):
        view.metarm.temperature
    with pytest.raises(UndeclaredConfig, match="'rl'"):
        view.rl
    with pytest.raises(UndeclaredConfig, match="'models.dtype'"):
        view.models.dtype
