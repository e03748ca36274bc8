"""Models named by the config beyond the pipeline's own: a teacher behind an OpenAI-compatible endpoint samples
the RFT trajectories (rft.sampler), the too-easy filter has a model of its own (rl.easy_filter_model), and the
RFT model draws samples for voting@k too (judge.voting_models).

The endpoint is a small local HTTP server speaking the chat-completions protocol; it judges like a competent
teacher (responses marked GOOD get 9, others 2; one response: 1 if GOOD) and records what it was sent.
"""

from __future__ import annotations

import logging
import re

import pytest

from grm.config import ConfigError, parse_config
from storage import Store
from tasks.base import StageContext
from tasks.config_view import ConfigView
from tasks.rl import filter_too_easy
from tasks.runner import execute, prepare
from tasks.stages import get_stage
from tests.fake_chat_server import ChatHandler, chat_server

KEY_VAR, KEY = "GRM_TEST_TEACHER_KEY", "sk-teacher-secret-0123456789"
RESPONSE = re.compile(r"\[Start of Response (\d+)\]\n(.*?)\n\[End of Response \1\]", re.S)


class Teacher(ChatHandler):
    def reply(self, body):
        shown = [r for _, r in RESPONSE.findall(body["messages"][-1]["content"])]
        if len(shown) == 1:
            box = "1" if "GOOD" in shown[0] else "0"
        else:
            box = ", ".join("9" if "GOOD" in r else "2" for r in shown)
        text = f"Specific Criteria: correctness.\nAnalysis: checked each response.\nScores: \\boxed{{{box}}}"
        return 200, [text] * body.get("n", 1)


@pytest.fixture
def teacher():
    with chat_server(Teacher) as (_, url):
        yield url


def _item(iid, responses, best=None, rating=None, split="train"):
    return {"item_id": iid, "source": "unit", "format": "test", "split": split, "subset": "s",
            "conversation": [{"role": "user", "content": f"question {iid}"}], "responses": responses,
            "label_kind": "best" if best is not None else "rating", "best": best,
            "ratings": [rating] if rating is not None else None, "meta": None}


ITEMS = [_item("easy", ["GOOD a", "bad b"], best=0), _item("mislabeled", ["GOOD a", "bad b"], best=1),
         _item("single", ["GOOD c"], rating=1.0)]


def _config(url, **sections):
    endpoint = {"base_url": url, "model": "deepseek-v2.5", "api_key_env": KEY_VAR}
    return parse_config({"models": {"base": "scratch"}, "generation": {"backend": "hf", "device": "cpu", "max_new_tokens": 32},
                         "rft": {"sampler": endpoint, "n_samples": 3, "hinted": True}, **sections})


def _files_text(root) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


def test_rft_sample_samples_with_a_teacher_endpoint_whose_key_stays_in_the_environment(teacher, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_VAR, KEY)
    cfg = _config(teacher)
    store = Store(tmp_path / "store")
    store.write_table("items", ITEMS)
    prepared = prepare(get_stage("rft_sample"), cfg, store, {})
    assert prepared.inputs["sampler"].kind == "endpoint"  # the teacher, not the base model
    with caplog.at_level(logging.DEBUG):
        out = execute(prepared, cfg, store)
    rows = store.read_rows(out.artifacts["rft_samples"])
    assert len(rows) == 3 * 3 + 2  # 3 samples per item, one hinted sample per item with a best response
    assert all(r["parse_status"] == "ok" for r in rows)
    by = {(r["item_id"], r["sample_idx"]): r for r in rows}
    assert all(by[("easy", j)]["correct"] and by[("easy", j)]["reject_reason"] == "too_easy" for j in range(3))
    assert not any(by[("mislabeled", j)]["correct"] for j in range(3))
    assert Teacher.calls and all(c["model"] == "deepseek-v2.5" and c["auth"] == f"Bearer {KEY}" for c in Teacher.calls)
    # the key is nowhere but in the environment: not in the config dump, the store (manifests, shards) or logs
    assert KEY not in cfg.model_dump_json() and KEY not in caplog.text
    assert KEY not in _files_text(tmp_path / "store") and KEY_VAR in cfg.model_dump_json()


def test_a_missing_key_variable_fails_the_sampling_naming_it(teacher, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_VAR, raising=False)
    cfg = _config(teacher)
    store = Store(tmp_path / "store")
    store.write_table("items", ITEMS)
    with pytest.raises(Exception, match=KEY_VAR):
        execute(prepare(get_stage("rft_sample"), cfg, store, {}), cfg, store)
    assert store.table("rft_samples") is None


def test_the_endpoint_is_part_of_the_cache_key_and_its_key_is_not(teacher, tmp_path, monkeypatch):
    store = Store(tmp_path / "store")
    store.write_table("items", ITEMS)
    key = lambda cfg: prepare(get_stage("rft_sample"), cfg, store, {}).cache_key
    monkeypatch.setenv(KEY_VAR, KEY)
    first = key(_config(teacher))
    monkeypatch.setenv(KEY_VAR, "another-key")
    assert key(_config(teacher)) == first
    other = parse_config({**_config(teacher).model_dump(mode="json", exclude={"source_path"}),
                          "rft": {"sampler": {"base_url": teacher, "model": "deepseek-v3", "api_key_env": KEY_VAR}}})
    assert key(other) != first


def test_endpoint_urls_that_would_store_a_secret_are_refused():
    for url in ("https://user:sk-123@api.example.com/v1", "https://api.example.com/v1?key=sk-123", "api.example.com"):
        with pytest.raises(ConfigError, match=r"rft\.sampler"):
            parse_config({"rft": {"sampler": {"base_url": url, "model": "m"}}})


def _store_model(store: Store, name: str) -> str:
    folder = store.staging_folder()
    (folder / "README.md").write_text(f"model {name}\n")
    return store.publish_folder("models", name, folder).path


def test_the_too_easy_filter_uses_its_configured_model(teacher, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    store = Store(tmp_path / "store")
    store.write_table("items", ITEMS)
    rft = _store_model(store, "rft")
    default = _config(teacher)
    assert prepare(get_stage("rl"), default, store, {}).inputs["easy_filter"].path == rft  # the RFT model by default
    small = {"base_url": teacher, "model": "deepseek-v2-lite-chat", "api_key_env": KEY_VAR}
    cfg = _config(teacher, rl={"easy_filter_model": small, "easy_filter_samples": 3})
    prepared = prepare(get_stage("rl"), cfg, store, {})
    assert prepared.inputs["easy_filter"].kind == "endpoint"
    assert prepared.cache_key != prepare(get_stage("rl"), default, store, {}).cache_key
    off = _config(teacher, rl={"easy_filter_samples": 0})
    assert prepare(get_stage("rl"), off, store, {}).inputs["easy_filter"] is None

    ctx = StageContext("rl", store, ConfigView(cfg, get_stage("rl").config, "rl"), cache_key="k")
    easy = filter_too_easy(ctx, prepared.inputs["easy_filter"], ITEMS, tmp_path / "too_easy.json")
    assert easy == {"easy", "single"}  # the filter model gets these right every time; 'mislabeled' never
    assert {c["model"] for c in Teacher.calls} == {"deepseek-v2-lite-chat"}


def test_judge_samples_the_rft_model_for_voting_and_evaluate_reports_it(teacher, tmp_path):
    store = Store(tmp_path / "store")
    eval_items = [_item(f"e{i}", ["GOOD x", "bad y"] if i % 2 else ["bad y", "GOOD x"], best=i % 2 ^ 1, split="eval")
                  for i in range(4)]
    store.write_table("items", eval_items)
    for name in ("rft", "grm"):
        _store_model(store, name)
    cfg = parse_config({"generation": {"backend": "openai", "openai": {"base_url": teacher}, "max_new_tokens": 32},
                        "judge": {"models": ["rft", "grm"], "voting_models": ["rft", "grm"], "k_max": 3, "meta_scores": False},
                        "evaluate": {"plot": False}})
    out = execute(prepare(get_stage("judge"), cfg, store, {}), cfg, store)
    rows = store.read_rows(out.artifacts["judgments"])
    sampled = {(r["model"], r["item_id"], r["sample_idx"]) for r in rows if r["decoding"] == "sample"}
    assert sampled == {(m, i["item_id"], j) for m in ("rft", "grm") for i in eval_items for j in range(3)}
    results = store.read_rows(execute(prepare(get_stage("evaluate"), cfg, store, {}), cfg, store).artifacts["results"])
    voting = {(r["model"], r["k"]) for r in results if r["method"] == "voting" and r["metric"] == "accuracy"}
    assert {("rft", 1), ("rft", 2), ("grm", 1), ("grm", 2)} <= voting


def test_default_judge_samples_only_the_grm():
    cfg = parse_config({})
    assert cfg.judge.voting_models == ["grm"] and cfg.rl.easy_filter_model == "rft"


def test_base_names_the_folder_models_base_names(tmp_path):
    """rft.sampler 'base' with models.base a folder binds that folder (not a model called 'base')."""
    folder = tmp_path / "my-base"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    store = Store(tmp_path / "store")
    store.write_table("items", ITEMS)
    cfg = parse_config({"models": {"base": str(folder)}, "rft": {"sampler": "base"}})
    sampler = prepare(get_stage("rft_sample"), cfg, store, {}).inputs["sampler"]
    assert (sampler.kind, sampler.path) == ("external", str(folder))
