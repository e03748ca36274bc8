"""A stage added outside tasks/, to show (and test) what adding a stage takes: this module and one
registration line (tests/test_stages.py appends it to tasks.stages.STAGE_MODULES)."""

from __future__ import annotations

import json

from storage import ArtifactRef
from tasks.base import StageContext, StageOutput
from tasks.stage import FILES, stage


@stage(group="example", outputs={"word_counts": FILES}, config=("seed",))
def run(ctx: StageContext, items: ArtifactRef) -> StageOutput:
    rows = ctx.store.read_rows(items)
    counts = {r["item_id"]: sum(len(x.split()) for x in r["responses"]) for r in rows}
    folder = ctx.store.staging_folder()
    (folder / "counts.json").write_text(json.dumps({"seed": ctx.config.seed, "counts": counts}))
    ref = ctx.store.publish_folder("files", "word_counts", folder, **ctx.manifest())
    return StageOutput({"word_counts": ref}, rows_in=len(rows), rows_out=len(counts))
