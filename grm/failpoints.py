"""Named points where a fault-injection campaign stops the process, so that a kill lands exactly there
(bench/kill_campaign.py; docs/design.md, "Storage": crash safety).

Off unless ``GRM_FAILPOINT`` is set, as ``POINT[/DETAIL][#N]``: the N-th time (default 1) this process reaches
POINT (with that DETAIL, e.g. a table or trainer name), it writes ``POINT/DETAIL PID`` to the file named by
``GRM_FAILPOINT_MARKER`` and then blocks, for the campaign to SIGKILL it there. ``GRM_FAILPOINT=trace`` appends
every point reached (``TIME POINT/DETAIL PID``) to that file instead, without stopping: the campaign's map of
where it can stop a run. A random moment rarely lands
inside a millisecond-long Parquet write or rename; a failpoint always does. The points:

- ``store.write/<table>``: a Parquet part is open and half written (no footer yet), before publishing
- ``store.publish/<name>``: the staged artifact and its manifest are complete, not yet renamed into place
- ``store.published/<name>``: renamed into place, before the stage records its cache entry
- ``sampling.shard/<name>``: a shard's file is complete, before its line in the shard log
- ``train.checkpoint/<trainer>``: a checkpoint's weights are written, not yet its optimizer or trainer state

Standard library only (trainer children and the store use it).
"""

from __future__ import annotations

import os
import signal
import threading
import time

SPEC_ENV = "GRM_FAILPOINT"
MARKER_ENV = "GRM_FAILPOINT_MARKER"

_spec = os.environ.get(SPEC_ENV, "")
_hits = 0
_lock = threading.Lock()


def _parse(spec: str) -> tuple[str, str | None, int]:
    where, _, nth = spec.partition("#")
    point, _, detail = where.partition("/")
    if nth and not nth.isdigit():
        raise ValueError(f"{SPEC_ENV}={spec!r}: expected POINT[/DETAIL][#N] with N a whole number, or 'trace'")
    return point, detail or None, int(nth) if nth else 1


def reached(point: str, detail: str = "") -> None:
    """Mark that this process is at ``point``; a no-op unless a campaign armed this point."""
    global _hits
    if not _spec:
        return
    if _spec == "trace":
        if not os.environ.get(MARKER_ENV):  # nowhere to write the trace: nothing to do
            return
        with _lock, open(os.environ[MARKER_ENV], "a") as f:
            f.write(f"{time.time():.3f} {point}/{detail} {os.getpid()}\n")
        return
    want, want_detail, nth = _parse(_spec)
    if point != want or (want_detail is not None and detail != want_detail):
        return
    with _lock:
        _hits += 1
        if _hits != nth:
            return
    marker = os.environ.get(MARKER_ENV)
    if marker:
        tmp = f"{marker}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{point}/{detail} {os.getpid()}\n")
        os.replace(tmp, marker)
    while True:  # wait here for the kill; without a campaign watching, stop as a crash would
        if not marker:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(1.0)


def before(obj: object, method: str, point: str, detail: str = "") -> None:
    """Make ``obj.method`` reach ``point`` first (armed campaigns only; a missing method is left alone)."""
    if not _spec or (_spec != "trace" and _parse(_spec)[0] != point) or not hasattr(obj, method):
        return
    original = getattr(obj, method)

    def wrapped(*args, **kwargs):
        reached(point, detail)
        return original(*args, **kwargs)

    setattr(obj, method, wrapped)
