"""Read-only DuckDB over the store: one view per table over its newest published artifact."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Sequence

import duckdb

from storage.schemas import TABLES
from storage.store import NoArtifact, Store, StoreError

READ_ONLY_TYPES = {"SELECT", "EXPLAIN"}


class QueryError(StoreError):
    pass


class NoTable(NoArtifact):
    """A query names a table that has no artifact yet (``table`` says which; its writer is the pipeline's
    business, named by the command line)."""

    def __init__(self, table: str, store: Store):
        super().__init__(f"table '{table}' has no artifact yet in store {store.root}")
        self.table = table


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def connect(store: Store, views: Sequence[str] | None = None, refs: dict | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per table that has an artifact (``refs`` pins given artifacts)."""
    con = duckdb.connect(":memory:")
    for name in views or TABLES:
        ref = (refs or {}).get(name) or store.table(name)
        if ref is None:
            continue
        files = store.parquet_files(ref)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{', '.join(map(_quote, files))}])")
    return con


def _check_read_only(sql: str) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise QueryError(f"cannot parse the query: {e}") from None
    if not statements:
        raise QueryError("empty query")
    for st in statements:
        kind = str(st.type).rsplit(".", 1)[-1].upper()
        if kind not in READ_ONLY_TYPES:
            raise QueryError(f"the store is read-only: {kind} statements are not allowed (only SELECT / EXPLAIN)")


_MISSING = re.compile(r"Table with name (\w+) does not exist", re.IGNORECASE)


def run_query(store: Store, sql: str) -> tuple[list[str], list[tuple]]:
    _check_read_only(sql)
    con = connect(store)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, cur.fetchall()
    except duckdb.CatalogException as e:
        m = _MISSING.search(str(e))
        if m and m.group(1).lower() in TABLES:
            t = m.group(1).lower()
            raise NoTable(t, store) from None
        raise QueryError(str(e).splitlines()[0]) from None
    except duckdb.Error as e:
        raise QueryError(str(e).splitlines()[0]) from None
    finally:
        con.close()


def _cell(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e6 else f"{v:.4f}".rstrip("0").rstrip(".")
    s = str(v)
    return s if len(s) <= 80 else s[:77] + "..."


def format_result(cols: list[str], rows: list[tuple], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps([dict(zip(cols, r)) for r in rows], default=str, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rows)
        return buf.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [" | ".join(c.ljust(w) for c, w in zip(cols, widths)), line]
    out += [" | ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)
