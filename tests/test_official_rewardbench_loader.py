"""The loader of the official RewardBench scoring code (tests/official_rewardbench.py): it hands back the
installed release's own functions, they score as the harness does, and it leaves ``sys.modules`` as it was."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import types

import pytest

from tests.official_rewardbench import PACKAGE, load_official_rewardbench, official_rewardbench


def snapshot() -> dict:
    return {name: mod for name, mod in sys.modules.items() if name == PACKAGE or name.startswith(PACKAGE + ".")}


def test_the_loader_returns_the_installed_releases_scoring_functions():
    utils, constants = official_rewardbench()
    folder = os.path.dirname(utils.__file__)
    assert os.path.samefile(folder, importlib.util.find_spec(PACKAGE).submodule_search_locations[0])
    for name in ("calculate_scores_per_section", "reroll_and_score_dataset", "sample_stats", "process_single_model"):
        fn = getattr(utils, name)
        assert fn.__module__ == "rewardbench.utils" and os.path.dirname(fn.__code__.co_filename) == folder
    assert os.path.dirname(constants.__file__) == folder
    assert set(constants.SUBSET_MAPPING) == {"Chat", "Chat Hard", "Safety", "Reasoning"}
    assert constants.EXAMPLE_COUNTS["math-prm"] == 984
    assert all(s in constants.EXAMPLE_COUNTS for subsets in constants.SUBSET_MAPPING.values() for s in subsets)
    assert utils.REWARD_MODEL_CONFIG == {}  # the stub for rewardbench.models, which scoring never reads


def test_sys_modules_is_restored_including_entries_that_were_there_before(monkeypatch):
    before = snapshot()
    load_official_rewardbench()
    after = snapshot()
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    # an entry someone else put there comes back, and the loader used its own stub meanwhile
    sentinel = types.ModuleType(f"{PACKAGE}.models")
    monkeypatch.setitem(sys.modules, sentinel.__name__, sentinel)
    utils, _ = load_official_rewardbench()
    assert sys.modules[sentinel.__name__] is sentinel and utils.REWARD_MODEL_CONFIG == {}
    assert PACKAGE not in sys.modules or PACKAGE in before


def test_section_scores_are_the_example_count_weighted_means():
    utils, constants = official_rewardbench()
    counts, mapping = constants.EXAMPLE_COUNTS, constants.SUBSET_MAPPING
    metrics = {s: (i % 7) / 7 for i, s in enumerate(counts)}
    sections = utils.calculate_scores_per_section(counts, mapping, metrics)
    for section, subsets in mapping.items():
        expected = sum(metrics[s] * counts[s] for s in subsets) / sum(counts[s] for s in subsets)
        assert sections[section] == pytest.approx(expected, abs=1e-12)


def test_ratings_mode_splits_credit_among_completions_tied_at_the_top():
    from datasets import Dataset

    utils, _ = official_rewardbench()
    # three prompts unrolled one row per completion, the first of each group the correct one
    groups = [("a", [3.0, 3.0, 1.0]), ("b", [1.0, 2.0]), ("c", [5.0, 1.0, 1.0, 1.0])]
    rows = [{"id": pid, "text": f"{pid}{i}", "scores": s, "subset": "Math"}
            for pid, scores in groups for i, s in enumerate(scores)]
    out = utils.reroll_and_score_dataset(Dataset.from_list(rows), [len(s) for _, s in groups])
    assert list(out["id"]) == ["a", "b", "c"] and list(out["results"]) == [0.5, 0.0, 1.0]


def test_ties_formula_on_a_ref_and_tied_pair():
    from datasets import Dataset

    utils, _ = official_rewardbench()
    rows = [  # scores in the unrolled order: the first num_correct are correct
        {"id": "ref:1", "scores": [9.0, 5.0, 3.0], "num_correct": 1},  # accurate, margin 4
        {"id": "tied:1", "scores": [9.0, 7.0, 6.0, 2.0], "num_correct": 2},  # accurate, margin 1, spread 2
        {"id": "ref:2", "scores": [4.0, 6.0], "num_correct": 1},  # wrong, margin -2
        {"id": "tied:2", "scores": [5.0, 5.0, 1.0], "num_correct": 2},  # accurate, margin 4, spread 0
    ]
    _, overall = utils.process_single_model(Dataset.from_list(rows))
    # 0.3 tied acc (2/2) + 0.3 ref acc (1/2) + 0.2 margin > spread (pid 2 only) + 0.2 min margin > spread (none)
    # + 0.01 tanh(min margin / spread - 1) over spreads > 0 (pid 1: 1/2)
    expected = 0.3 * 1.0 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.0 + 0.01 * math.tanh(1 / 2 - 1)
    assert overall == pytest.approx(expected, abs=1e-12)
    # a plain list of dicts with the same keys works too (it is only iterated, then rebuilt with from_dict)
    assert utils.process_single_model(rows)[1] == pytest.approx(expected, abs=1e-12)


def test_without_the_package_the_parity_tests_skip_with_the_install_line(monkeypatch):
    import tests.official_rewardbench as loader

    monkeypatch.setattr(loader.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match=r"rewardbench is not installed .*--no-deps rewardbench==0.1.4"):
        load_official_rewardbench()
