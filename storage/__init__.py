"""Storage: artifact folders of Parquet + manifest.json, published atomically, queried with DuckDB."""

from storage.store import (ArtifactProblem, ArtifactRef, CorruptArtifact, NoArtifact, Store, StoreBusy, StoreError,
                           StoreReport, TableWriter, write_parquet_atomic)

__all__ = ["ArtifactProblem", "ArtifactRef", "CorruptArtifact", "NoArtifact", "Store", "StoreBusy", "StoreError",
           "StoreReport", "TableWriter", "write_parquet_atomic"]
