"""The pipeline configuration: YAML validated by pydantic.

Every section is strict: an unknown key or a wrong type fails before any work, with a message that names
the field and the file. Each stage's cache key includes the config sections it reads (``stage_sections``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A config file that cannot be read or does not validate."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(Strict):
    """One dataset to import: a local path (file or folder) in a published format, or an HF dataset id."""

    name: str
    format: str
    paths: list[str] = Field(min_length=1)
    split: Literal["train", "eval"]
    limit: int | None = Field(default=None, ge=1)
    hf_split: str | None = None  # which split of an HF dataset id to load

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        from grm.formats.registry import FORMATS  # the registry imports no config: no cycle

        if v not in FORMATS:
            raise ValueError(f"unknown format {v!r}; formats: {', '.join(sorted(FORMATS))}")
        return v


class MiniWorldConfig(Strict):
    """The offline miniature world: program-checkable judging tasks (see grm.miniworld)."""

    train_items: int = Field(default=600, ge=1)
    eval_items: int = Field(default=500, ge=1)
    seed: int | None = None  # None: the run's seed (so `--set seed=N` moves the world too)
    shapes: dict[str, float] = Field(default_factory=lambda: {"pairwise": 0.4, "listwise": 0.3, "single": 0.3})
    tasks: dict[str, float] = Field(
        default_factory=lambda: {"add": 1.0, "max": 1.0, "sort": 1.0, "reverse": 1.0, "count": 1.0}
    )
    difficulty: int = Field(default=1, ge=1, le=3)  # 1: one-digit sums, 3 numbers/letters; 3: two digits, 5
    eval_share: float = Field(default=0.3, gt=0, lt=1)  # share of all queries held out for eval (by hash)

    @field_validator("shapes", "tasks")
    @classmethod
    def _known(cls, v: dict[str, float], info) -> dict[str, float]:
        return _weights(v, MINIWORLD_SHAPES if info.field_name == "shapes" else MINIWORLD_TASKS)


MINIWORLD_SHAPES = ("pairwise", "listwise", "single")
MINIWORLD_TASKS = ("add", "max", "sort", "reverse", "count")


def _weights(v: dict[str, float], known: tuple[str, ...]) -> dict[str, float]:
    bad = sorted(set(v) - set(known))
    if bad or not v or any(w < 0 for w in v.values()) or not sum(v.values()) > 0:
        raise ValueError(f"needs positive weights over {list(known)}; got {v}")
    return v


class DecontaminationConfig(Strict):
    ngram: int = Field(default=8, ge=1)
    threshold: float = Field(default=0.5, gt=0, le=1)  # share of a train query's n-grams found in eval queries
    action: Literal["drop", "flag"] = "drop"


PROBLEM_FORMATS = ("math", "gsm8k")  # formats whose items carry a problem and its ground-truth answer (meta.answer)
PIPELINE_MODELS = ("scratch", "rft", "grm", "metarm")  # models the pipeline trains: none exists before curate


class MathSamplesConfig(Strict):
    """The paper's math data (stage math_samples, then curate): ``n_samples`` solutions to each problem of
    ``sources``, sampled by ``sampler`` on the configured generation backend, judged against the ground truth
    (grm.math_answers) and paired correct vs incorrect (grm.formats.solutions)."""

    sources: list[SourceConfig] = Field(min_length=1)  # problems: formats math | gsm8k
    sampler: ModelChoice  # the policy: a model folder, a hub id, 'base' when models.base names one, or an endpoint
    n_samples: int = Field(default=4, ge=2)  # solutions per problem
    temperature: float = Field(default=1.0, gt=0)
    max_new_tokens: int | None = Field(default=None, ge=1)  # None: generation.max_new_tokens
    instruction: str = "Please reason step by step, and put your final answer within \\boxed{}."  # after the problem
    check_timeout_s: int = Field(default=5, ge=1)  # math-verify's bound on each parse and comparison

    @field_validator("sources")
    @classmethod
    def _problems(cls, v: list[SourceConfig]) -> list[SourceConfig]:
        bad = [f"{s.name} ({s.format})" for s in v if s.format not in PROBLEM_FORMATS]
        if bad:
            raise ValueError(f"problem sources must have format {' or '.join(PROBLEM_FORMATS)}; not {', '.join(bad)}")
        return v

    @field_validator("sampler")
    @classmethod
    def _exists_before_training(cls, v):
        if isinstance(v, str) and v in PIPELINE_MODELS:
            raise ValueError(f"sampler {v!r} is trained after the math data is made: name a model folder or hub id")
        return v


class DataConfig(Strict):
    sources: list[SourceConfig] = Field(default_factory=list)
    math_samples: MathSamplesConfig | None = None  # None: no sampled math data (stage math_samples off)
    miniworld: MiniWorldConfig | None = None
    dedup: bool = True
    decontamination: DecontaminationConfig = DecontaminationConfig()
    max_chars: int = Field(default=200_000, ge=1)  # a row longer than this is quarantined
    cap_per_source: int | None = Field(default=None, ge=1)  # at most this many train items per source

    @model_validator(mode="after")
    def _unique_sources(self):
        names = [s.name for s in self.sources] + [s.name for s in (self.math_samples.sources if self.math_samples else [])]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"source names must be unique; repeated: {', '.join(repeated)}")
        return self


class PromptsConfig(Strict):
    """Template files replacing the built-in wording (e.g. the paper's exact text); 'default' keeps it."""

    grm: str = "default"
    single: str = "default"
    hint: str = "default"
    metarm: str = "default"
    pairwise_judge: str = "default"
    response: str = "default"  # one response block: {{i}} and {{response}}
    single_eval: Literal["binary", "graded"] = "graded"  # n=1 eval items: 0/1 or 1-10 scores


class ModelsConfig(Strict):
    base: str = "scratch"  # 'scratch' (bootstrap a small LM on the miniature world), a local folder or an HF id
    metarm_base: str | None = None  # the meta RM's initial model: None = the base model; 'rft' / 'grm'; a path / id
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_length: int = Field(default=2048, ge=16)  # prompt + completion tokens
    # CPU floating point: 'native' (each CPU's widest instructions) or 'pinned' (AVX2 paths and MKL's reproducible
    # mode: the same results on any AVX2 CPU; grm/cpu_numerics.py). In the cache key: it changes results.
    cpu_numerics: Literal["native", "pinned"] = "native"
    # Model files that run code when loaded (grm.model_loading): pickle weights (pytorch_model.bin) and a model
    # repository's own Python. Off: only safetensors and the library's code; turn on only for a model you trust.
    allow_pickle: bool = False
    trust_remote_code: bool = False


class ImportModelConfig(Strict):
    """A model to bring into the store before any stage uses it (stage import_model, grm.models_import): a GGUF
    file or a Hugging Face model folder, published as ``models/<name>``; the config then names it, e.g. in
    models.base. Skipped when the store already holds that file under that name."""

    name: str
    path: str  # a file or folder, or package:<module>/<file>: a file shipped inside an installed Python package

    @field_validator("name")
    @classmethod
    def _store_name(cls, v: str) -> str:
        from grm.models_import import check_name

        return check_name(v)


class VLLMConfig(Strict):
    python: str = ".venv-vllm/bin/python"  # the interpreter of the environment that has vllm
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    tensor_parallel_size: int = Field(default=1, ge=1)
    max_model_len: int | None = None
    enable_prefix_caching: bool = True
    # None: follow models.dtype, and for 'auto' float32 on CPU (grm.generation.server.vllm_dtype)
    dtype: str | None = None
    extra_args: dict[str, str | int | float | bool] = Field(default_factory=dict)


class OpenAIConfig(Strict):
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1; None with serve=True starts `vllm serve`
    model: str | None = None
    api_key_env: str | None = None  # name of the environment variable holding the key (never the key)
    concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=5, ge=0)
    timeout_s: float = Field(default=120.0, gt=0)
    supports_n: Literal["auto", "yes", "no"] = "auto"
    serve: bool = False  # start `vllm serve` from vllm.python, bound to 127.0.0.1, stopped at the end
    serve_args: list[str] = Field(default_factory=list)


class EndpointConfig(Strict):
    """A model behind an OpenAI-compatible chat endpoint, where the config names a model (rft.sampler,
    rl.easy_filter_model): e.g. a teacher served by its vendor. Sampled with the openai backend whatever
    generation.backend is (its concurrency, retries and timeout from generation.openai). The key is read from
    the environment variable ``api_key_env`` when sampling: configs, manifests and logs hold only its name."""

    base_url: str  # e.g. https://api.deepseek.com/v1
    model: str  # the served model's name
    api_key_env: str | None = None

    @field_validator("base_url")
    @classmethod
    def _url_without_secrets(cls, v: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("needs an http(s) URL such as http://127.0.0.1:8000/v1")
        if parts.username or parts.password or parts.query:
            raise ValueError("must not carry credentials or a query (they would be stored with the config): "
                             "put the key in an environment variable and name it in api_key_env")
        return v


def _model_kind(v) -> str:
    return "endpoint" if isinstance(v, (dict, EndpointConfig)) else "name"


# A model named in the config: a name (a store model, 'base', a folder or hub id) or an endpoint (a mapping)
ModelChoice = Annotated[Union[Annotated[str, Tag("name")], Annotated[EndpointConfig, Tag("endpoint")]],
                        Discriminator(_model_kind)]


class TaskRunnerConfig(Strict):
    kind: Literal["threads", "ray"] = "threads"
    workers: int = Field(default=1, ge=1)
    address: str | None = None  # a Ray cluster; None starts a local Ray
    gpus_per_task: float = Field(default=0, ge=0)


class GenerationConfig(Strict):
    backend: Literal["hf", "vllm", "openai"] = "hf"
    max_new_tokens: int = Field(default=512, ge=1)
    batch_size: int = Field(default=16, ge=1)  # prompts per forward batch (hf)
    shard_size: int = Field(default=256, ge=1)  # prompts per resumable shard
    top_p: float = Field(default=1.0, gt=0, le=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    vllm: VLLMConfig = VLLMConfig()
    openai: OpenAIConfig = OpenAIConfig()
    task_runner: TaskRunnerConfig = TaskRunnerConfig()


class TrainerConfig(Strict):
    learning_rate: float = Field(gt=0)
    batch_size: int = Field(ge=1)  # effective (global) batch
    per_device_batch_size: int = Field(default=1, ge=1)
    max_steps: int = Field(ge=1)
    warmup_ratio: float = Field(default=0.0, ge=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    save_steps: int = Field(default=50, ge=1)  # checkpoint every N steps; a rerun resumes from the last one
    accelerate_config: str | None = None  # run under `accelerate launch --config_file` (multi-GPU / DeepSpeed)
    bf16: bool | None = None  # None: on when a GPU supports it, never on CPU

    @model_validator(mode="after")
    def _batch_divides(self):
        if self.batch_size % self.per_device_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of per_device_batch_size {self.per_device_batch_size}"
            )
        return self


class BootstrapConfig(Strict):
    """Pre-training a small LM from scratch on the miniature world (only when models.base is 'scratch')."""

    vocab_size: int = Field(default=512, ge=64)
    hidden_size: int = Field(default=128, ge=16)
    layers: int = Field(default=4, ge=1)
    heads: int = Field(default=2, ge=1)
    intermediate_size: int = Field(default=512, ge=16)
    corpus_items: int = Field(default=4000, ge=1)
    # Task families of the pre-training corpus; None: those of data.miniworld. A broader corpus than the judging
    # tasks is what a pretrained LLM has; copy-heavy families (sort, reverse) teach a tiny model to copy.
    corpus_tasks: dict[str, float] | None = None
    teacher_error_rate: float = Field(default=0.3, ge=0, le=1)  # careful-looking judgments fooled by a mistake
    teacher_shortcut_rates: dict[str, float] = Field(default_factory=dict)  # per task: guess without working
    hint_share: float = Field(default=0.1, ge=0, le=1)  # corpus prompts that carry the hinted-sampling line
    # corpus items shown solved rather than judged (the query, then the task's working): what pretraining teaches a
    # real LLM about the tasks, and dense practice in copying operands and computing; 0 keeps the judgments only
    solution_share: float = Field(default=0.0, ge=0, le=1)
    # corpus items whose responses are only compared with the item's answer (`Response 1: 3 vs 7, a mismatch.`):
    # the comparison step practised on its own, the step a tiny model was slowest to learn; 0: none
    comparison_share: float = Field(default=0.0, ge=0, le=1)
    threads: int | None = Field(default=None, ge=1)  # torch threads; None: torch's default
    train: TrainerConfig = TrainerConfig(learning_rate=1e-3, batch_size=32, per_device_batch_size=32, max_steps=600)

    @field_validator("corpus_tasks")
    @classmethod
    def _known(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        return None if v is None else _weights(v, MINIWORLD_TASKS)


class WarmupConfig(Strict):
    """The format warm-up before RFT (stage warmup, grm/warmup.py): a short SFT of ``model`` on a strong judge's
    critiques turned into GRM outputs, published as models/warm. Name ``warm`` as models.base (RFT continues from
    it) and as rft.sampler."""

    model: str  # the model to warm up: a store model (the imported one), a folder; not 'warm' itself
    data: str  # Auto-J's single_traindata.jsonl: critiques of single responses ending in 'Rating: [[n]]'
    critique_chars: int = Field(default=300, ge=40)  # the analysis's length: the box stays within reach
    listwise_max: int = Field(default=4, ge=3)  # responses in a listwise example
    max_examples: int | None = Field(default=None, ge=1)  # a seeded choice of this many (None: all)
    train: TrainerConfig = TrainerConfig(learning_rate=5e-5, batch_size=8, per_device_batch_size=2, max_steps=60)


class RFTConfig(Strict):
    # which model samples the trajectories: 'base', a store model (rft, grm), a folder or hub id, or an endpoint
    # (the paper's teacher is DeepSeek-V2.5, a chat model, not the pretrained base)
    sampler: ModelChoice = "base"
    n_samples: int = Field(default=3, ge=1)  # N_RFT
    hinted: bool = True  # one extra hinted sample per item
    temperature: float = Field(default=1.0, ge=0)
    general_data: str | None = None  # a chat dataset (JSONL/Parquet with `messages`, or an HF id) mixed into SFT
    general_ratio: float = Field(default=0.0, ge=0, lt=1)  # share of general data in the SFT mix
    train: TrainerConfig = TrainerConfig(learning_rate=5e-6, batch_size=1024, max_steps=900)

    @model_validator(mode="after")
    def _general_data_for_ratio(self):
        if self.general_ratio > 0 and not self.general_data:
            raise ValueError(
                f"rft.general_ratio is {self.general_ratio:g} but rft.general_data is not set: name the general "
                "instruction dataset to mix in, or set rft.general_ratio to 0"
            )
        return self


class RLConfig(Strict):
    group_size: int = Field(default=4, ge=2)  # G
    beta: float = Field(default=0.08, ge=0)  # KL coefficient (TRL's default is 0: set explicitly)
    temperature: float = Field(default=1.0, gt=0)
    easy_filter_samples: int = Field(default=3, ge=0)  # N for too-easy filtering; 0 keeps every item
    # the model that filters out too-easy items: the RFT model by default; the paper used a separate small chat
    # model (DeepSeek-V2-Lite-Chat). A store model, a folder or hub id, or an endpoint, as rft.sampler.
    easy_filter_model: ModelChoice = "rft"
    loss_type: str = "grpo"
    use_vllm: bool = False  # generate rollouts with vLLM (TRL's colocate or server mode) instead of transformers
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_server_url: str | None = None  # server mode: a running `trl vllm-serve` (e.g. http://10.0.0.2:8000)
    vllm_gpu_memory_utilization: float = Field(default=0.3, gt=0, le=1)  # colocate: vLLM's share of the GPU
    max_completion_length: int | None = Field(default=None, ge=1)  # None: generation.max_new_tokens
    # The GRPO child's interpreter. TRL 1.16's vLLM integration wants vllm 0.22-0.31 (and an older transformers),
    # so use_vllm needs an environment of its own with trl + vllm; None: this interpreter.
    trainer_python: str | None = None
    # batch_size counts completions (rollouts) per optimizer step: batch_size / group_size prompts per step
    train: TrainerConfig = TrainerConfig(learning_rate=4e-7, batch_size=512, max_steps=900)

    @model_validator(mode="after")
    def _groups_fill_batch(self):
        if self.train.batch_size % self.group_size:
            raise ValueError(f"train.batch_size {self.train.batch_size} is not a multiple of group_size {self.group_size}")
        return self


class MetaRMConfig(Strict):
    fresh_samples: int = Field(default=3, ge=0)  # N new samples per item from models/grm
    temperature: float = Field(default=0.5, gt=0)  # of the fresh samples: the inference-time sampling temperature
    heldout_fraction: float = Field(default=0.1, ge=0, lt=1)
    max_length: int = Field(default=2048, ge=16)
    train: TrainerConfig = TrainerConfig(learning_rate=1e-5, batch_size=512, max_steps=100)


class JudgeConfig(Strict):
    # Models are named as everywhere in the config: the pipeline's (base, rft, grm), a folder, a hub id, or an
    # endpoint; judgments record the name as written here.
    models: list[str] = Field(default_factory=lambda: ["grm"])  # greedy for each
    # the models that also draw k_max samples at the temperature below, for voting@k (and metaRM@k for grm);
    # the paper reports voting@k for the RFT model too (Table 6)
    voting_models: list[str] = Field(default_factory=lambda: ["grm"], min_length=1)
    meta_rm: str = "metarm"  # the meta RM that scores samples (when meta_scores)
    meta_guides: str = "grm"  # the voting model whose samples it scores (the GRM it was trained for)
    k_max: int = Field(default=8, ge=1)  # samples per eval item from models/grm (temperature below)
    temperature: float = Field(default=0.5, gt=0)
    meta_scores: bool = True
    max_items: int | None = Field(default=None, ge=1)
    per_subset: int | None = Field(default=None, ge=1)  # at most this many eval items per (source, subset): quick looks


class EvaluateConfig(Strict):
    k_values: list[int] | None = None  # default: 1, 2, 4, ... up to judge.k_max
    k_meta_alternatives: list[int] = Field(default_factory=list)  # besides k/2
    tie_seed: int = 0
    interval_draws: int = Field(default=1000, ge=0)  # bootstrap draws for the 95% intervals (0: Wilson only)
    plot: bool = True


class Config(Strict):
    seed: int = 0
    models: ModelsConfig = ModelsConfig()
    prompts: PromptsConfig = PromptsConfig()
    data: DataConfig = DataConfig()
    generation: GenerationConfig = GenerationConfig()
    bootstrap: BootstrapConfig = BootstrapConfig()
    warmup: WarmupConfig | None = None  # None: no format warm-up (stage warmup off)
    rft: RFTConfig = RFTConfig()
    rl: RLConfig = RLConfig()
    metarm: MetaRMConfig = MetaRMConfig()
    judge: JudgeConfig = JudgeConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    import_model: ImportModelConfig | None = None  # None: nothing to import (stage import_model off)
    source_path: str | None = Field(default=None, exclude=True)  # where it was loaded from (not hashed)

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if v < 0:
            raise ValueError("seed must be >= 0")
        return v

    @model_validator(mode="after")
    def _world_follows_the_run_seed(self):
        """One seed moves the whole run: the world, the bootstrap, sampling and training."""
        world = self.data.miniworld
        if world is not None and world.seed is None:
            data = self.data.model_copy(update={"miniworld": world.model_copy(update={"seed": self.seed})})
            object.__setattr__(self, "data", data)
        return self

    @model_validator(mode="after")
    def _math_sampler_exists(self):
        math = self.data.math_samples
        if math is not None and math.sampler == "base" and self.models.base == "scratch":
            raise ValueError("data.math_samples.sampler 'base' names models.base 'scratch', which is trained after the "
                             "math data is made: name a model folder or hub id")
        return self

    @model_validator(mode="after")
    def _warmup_starts_elsewhere(self):
        w = self.warmup
        if w is not None and (w.model == "warm" or (w.model == "base" and self.models.base == "warm")):
            raise ValueError(f"warmup.model {w.model!r} names the warm-up's own output: name the model to warm up "
                             "(e.g. the imported one)")
        return self

    @property
    def base_dir(self) -> Path:
        """The config file's folder (relative paths try the working directory first, then this)."""
        return Path(self.source_path).resolve().parent if self.source_path else Path.cwd()

    def resolve_path(self, p: str) -> str:
        """A relative path in the config: against the working directory (the project root), else against
        the config file's folder; a path found in neither is returned as given (e.g. an HF hub id)."""
        q = Path(p)
        for cand in ((q,) if q.is_absolute() else (Path.cwd() / q, self.base_dir / q)):
            if cand.exists():
                return str(cand.resolve())
        return p

    def section_hash(self, *names: str) -> str:
        payload = {n: self.model_dump(mode="json").get(n) for n in names}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_errors(e: ValidationError, origin: str) -> str:
    """One line per error, each naming the file and the field."""
    lines = []
    for err in e.errors():
        # a name that is not a plain word (an unknown key such as "0.08 beta") is quoted, so the field stands out
        loc = ".".join(p if isinstance(p, str) and p.isidentifier() else repr(p) if isinstance(p, str) else str(p)
                       for p in err["loc"]) or "(top level)"
        msg = "unknown field (not allowed here)" if err["type"] == "extra_forbidden" else err["msg"]
        got = err["type"] != "missing" and not isinstance(err.get("input"), dict)
        lines.append(f"invalid config {origin}: {loc}: {_one_line(msg)}" + (f" (got {_one_line(repr(err['input']), 80)})" if got else ""))
    return "\n".join(lines)


def _yaml_error(e: yaml.YAMLError) -> str:
    """A YAML error in one line: where (line, column) and what."""
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = " ".join(x for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
    return where + _one_line(what)


def parse_config(data: dict | None, origin: str = "<dict>") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {origin}: (top level): must be a mapping of sections, got {type(data).__name__}")
    try:
        return Config.model_validate({**data, "source_path": origin if origin != "<dict>" else None})
    except ValidationError as e:
        raise ConfigError(_format_errors(e, origin)) from None


def apply_overrides(data: dict, overrides: list[str], origin: str) -> dict:
    """``section.field=value`` overrides (value parsed as YAML) applied to raw config data."""
    data = dict(data or {})
    for ov in overrides:
        key, sep, raw = ov.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"invalid override {ov!r} for config {origin}: expected section.field=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"invalid value in override {ov!r}: {_yaml_error(e)}") from None
        except RecursionError:
            raise ConfigError(f"invalid value in override {ov!r}: nested too deeply") from None
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = value
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {p}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {p} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML in config {p}, {_yaml_error(e)}") from None
    except RecursionError:
        raise ConfigError(f"invalid YAML in config {p}: nested too deeply") from None
    cfg = parse_config(data, str(p))
    if not overrides:
        return cfg
    # Overrides apply to the validated config with its defaults filled in, so `a.b.c=1` works even where
    # the file does not mention `a.b`.
    full = cfg.model_dump(mode="json", exclude={"source_path"})
    world = ((data or {}).get("data") or {}).get("miniworld")
    if full["data"].get("miniworld") is not None and not (isinstance(world, dict) and "seed" in world):
        full["data"]["miniworld"]["seed"] = None  # it follows the run's seed, which an override may change
    return parse_config(apply_overrides(full, overrides, str(p)), str(p))
