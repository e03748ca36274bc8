"""Stage `curate`: import the configured sources and those registered by `grm data import`, curate them
(dedup, decontamination, caps), write `items` and `quarantine`. The one writer of `items`."""

from __future__ import annotations

from typing import Iterable, Mapping

from grm.config import Config, SourceConfig
from grm.curation import curate
from grm.formats.importer import import_source
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


@stage(group="data", outputs={"items": TABLE, "quarantine": TABLE}, config=("seed", "data"),
       external={"sources": source_files})
def run(ctx: StageContext, sources: Mapping[str, ArtifactRef]) -> StageOutput:
    data = ctx.config.data
    rows = ctx.store.read_rows(sources[IMPORTS]) if IMPORTS in sources else []
    clash = {r["name"] for r in rows} & {s.name for s in data.sources}
    if clash:
        raise ValueError(f"curate: source name(s) {sorted(clash)} are both in data.sources and registered by "
                         "`grm data import`: import under another --name")
    specs = [(s, data.max_chars) for s in data.sources] + [(registered(r), r["max_chars"] or data.max_chars) for r in rows]
    imports = [
        import_source(s.name, s.format, [ctx.config.resolve_path(p) for p in s.paths], s.split, max_chars=max_chars,
                      limit=s.limit, hf_split=s.hf_split)
        for s, max_chars in specs
    ]
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
