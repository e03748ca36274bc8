"""Stage `curate`: import the configured sources, those registered by `grm data import` and the math data step's
judged solutions (table math_samples, paired correct vs incorrect), curate them (dedup, decontamination, caps),
write `items` and `quarantine`. The one writer of `items`."""

from __future__ import annotations

from typing import Iterable, Mapping

from grm.config import Config, SourceConfig
from grm.curation import curate
from grm.formats.importer import ImportResult, import_records, import_source
from grm.formats.readers import row_records
from grm.formats.registry import get_format
from storage import ArtifactRef, Store
from tasks.base import StageContext, StageOutput
from tasks.cache_keys import external_data
from tasks.stage import TABLE, stage

IMPORTS = "imports"  # the table `grm data import` writes (tasks/stages.COMMAND_TABLES)


def registered(row: Mapping) -> SourceConfig:
    """A source `grm data import` registered, as a config source."""
    return SourceConfig(name=row["name"], format=row["format"], paths=row["paths"], split=row["split"],
                        hf_split=row["hf_split"])


def source_files(cfg: Config, store: Store) -> dict[str, ArtifactRef]:
    """files of data.sources and of `grm data import`"""
    out: dict[str, ArtifactRef] = {}
    imports = store.table(IMPORTS)
    if imports is not None:
        out[IMPORTS] = imports  # the registrations themselves: curate reads the version its key was made with
    imported = [registered(r) for r in store.read_rows(imports)] if imports is not None else []
    for src in [*cfg.data.sources, *imported]:
        for i, p in enumerate(src.paths):
            out[f"{src.name}:{i}"] = external_data(src.name, cfg.resolve_path(p))
    return out


def generated_items(cfg: Config) -> Iterable[Mapping]:
    """Item rows made by generators rather than read from files, in the ``items`` schema (``item_id`` may be
    left out). This is the one place where generated data joins the sources: the miniature world
    (grm.miniworld), when configured."""
    world = cfg.data.miniworld
    if world is None:
        return ()
    from grm.miniworld.world import generate_items

    return [*generate_items(world, "train"), *generate_items(world, "eval")]


def sampled_math(store: Store, math_samples: ArtifactRef, cfg: Config) -> list[ImportResult]:
    """The math_samples table's problems, one source per data.math_samples source, read by the format
    sampled_solutions: correct-vs-incorrect pairs, or the problem quarantined with its reason."""
    rows = store.read_rows(math_samples)
    fmt = get_format("sampled_solutions")
    return [import_records(row_records([r for r in rows if r["source"] == s.name], f"math_samples/{s.name}"), s.name,
                           fmt, s.split, max_chars=cfg.data.max_chars)
            for s in cfg.data.math_samples.sources]


@stage(group="data", outputs={"items": TABLE, "quarantine": TABLE}, config=("seed", "data"),
       external={"sources": source_files}, when={"math_samples": lambda cfg: cfg.data.math_samples is not None})
def run(ctx: StageContext, sources: Mapping[str, ArtifactRef], math_samples: ArtifactRef | None = None) -> StageOutput:
    data = ctx.config.data
    if data.math_samples is not None and math_samples is None:
        raise ValueError(f"curate: data.math_samples is set, but store {ctx.store.root} has no math_samples table: "
                         "run stage 'math_samples' first (or the data group)")
    rows = ctx.store.read_rows(sources[IMPORTS]) if IMPORTS in sources else []
    configured = [s.name for s in data.sources] + [s.name for s in (data.math_samples.sources if data.math_samples else [])]
    clash = {r["name"] for r in rows} & set(configured)
    if clash:
        raise ValueError(f"curate: source name(s) {sorted(clash)} are both in the config's data and registered by "
                         "`grm data import`: import under another --name")
    specs = [(s, data.max_chars) for s in data.sources] + [(registered(r), r["max_chars"] or data.max_chars) for r in rows]
    imports = [
        import_source(s.name, s.format, [ctx.config.resolve_path(p) for p in s.paths], s.split, max_chars=max_chars,
                      limit=s.limit, hf_split=s.hf_split)
        for s, max_chars in specs
    ]
    if math_samples is not None:
        imports += sampled_math(ctx.store, math_samples, ctx.config)
    result = curate(
        imports,
        extra_items=generated_items(ctx.config),
        dedup=data.dedup,
        decontamination=data.decontamination.model_dump(),
        cap=data.cap_per_source,
        max_chars=data.max_chars,
    )
    report = result.report.as_dict()
    items = ctx.store.write_table("items", result.items, **ctx.manifest(curation=report))
    quarantine = ctx.store.write_table("quarantine", result.quarantine, **ctx.manifest())
    rows_in = sum(s["read"] for s in report["sources"]) + sum(report["generated"].values())
    return StageOutput(
        artifacts={"items": items, "quarantine": quarantine},
        rows_in=rows_in,
        rows_out=len(result.items),
        summary_md=result.report.markdown(),
        metrics={"items": len(result.items), "quarantined": len(result.quarantine)},
    )
