"""The case: a directory of Parquet tables and a JSON manifest that any engine can read.

    CASE/
      manifest.json          sources read, formats seen, time range, accounting
      flows/part-*.parquet   canonical flow records (schema.FLOWS_SCHEMA)
      firewall_events/part-*.parquet   Network Firewall log events (schema.FIREWALL_EVENTS_SCHEMA)

Each ingest writes new part files; a source read before with the same fingerprint is not read
again, and a source whose content changed replaces its earlier rows.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb

from natlens import __version__
from natlens.errors import CaseError
from natlens.schema import FIREWALL_EVENTS_SCHEMA, FLOWS_SCHEMA

MANIFEST = "manifest.json"
CASE_FORMAT = 1
TABLES = {"flows": FLOWS_SCHEMA, "firewall_events": FIREWALL_EVENTS_SCHEMA}
ROW_GROUP_ROWS = 1 << 20


def is_case(path: str | os.PathLike[str]) -> bool:
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        return "natlens_case" in json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False


class Case:
    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Case:
        root = Path(path)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise CaseError(
                f"{root}: not a natlens case (no {MANIFEST})",
                hint="create one with: natlens ingest SOURCE... --case DIR",
            )
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise CaseError(f"{manifest_path}: cannot be read ({exc})") from None
        if manifest.get("natlens_case", 0) > CASE_FORMAT:
            raise CaseError(
                f"{root}: written by a newer natlens (case format {manifest['natlens_case']})",
                hint="upgrade natlens",
            )
        return cls(root, manifest)

    @classmethod
    def create_or_open(cls, path: str | os.PathLike[str]) -> Case:
        root = Path(path)
        if is_case(root):
            return cls.open(root)
        if root.exists() and any(root.iterdir()):
            raise CaseError(
                f"{root}: exists and is not a natlens case",
                hint="give an empty or new directory to --case",
            )
        root.mkdir(parents=True, exist_ok=True)
        now = _now()
        case = cls(
            root,
            {
                "natlens_case": CASE_FORMAT,
                "natlens_version": __version__,
                "created": now,
                "updated": now,
                "tables": {name: {"parts": [], "records": 0} for name in TABLES},
                "sources": {},
                "cloudwatch_coverage": {},
                "formats": [],
                "time_range": None,
                "coverage_gaps": [],
                "ingests": [],
            },
        )
        case.save()
        return case

    # -- tables --------------------------------------------------------------------------------

    def _table(self, table: str) -> dict[str, Any]:
        # Cases written before a table existed have no entry for it.
        entry: dict[str, Any] = self.manifest["tables"].setdefault(
            table, {"parts": [], "records": 0}
        )
        return entry

    def parts(self, table: str = "flows") -> list[Path]:
        return [self.path / part for part in self._table(table)["parts"]]

    def new_part_path(self, table: str = "flows") -> Path:
        folder = self.path / table
        folder.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return folder / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"

    def add_part(self, path: Path, records: int, table: str = "flows") -> None:
        entry = self._table(table)
        entry["parts"].append(str(path.relative_to(self.path)))
        entry["records"] += records

    def remove_sources(self, source_ids: set[str], table: str = "flows") -> int:
        """Rewrite the parts that hold rows of these sources without them; returns rows removed.

        DuckDB streams each part through, so memory does not grow with the part's size.
        """
        removed = 0
        entry = self._table(table)
        kept_parts = []
        con = duckdb.connect()
        con.execute("SET memory_limit = '1GB'")
        con.execute("SET enable_progress_bar = false")
        con.execute("CREATE TEMP TABLE gone (source VARCHAR)")
        con.executemany("INSERT INTO gone VALUES (?)", [[s] for s in sorted(source_ids)])
        for rel in entry["parts"]:
            part = self.path / rel
            path = str(part).replace("'", "''")
            rows = f"read_parquet('{path}')"
            gone = "source IN (SELECT source FROM gone)"
            count = int(con.execute(f"SELECT count(*) FROM {rows} WHERE {gone}").fetchone()[0])  # type: ignore[index]
            if count == 0:
                kept_parts.append(rel)
                continue
            total = int(con.execute(f"SELECT count(*) FROM {rows}").fetchone()[0])  # type: ignore[index]
            removed += count
            if count < total:
                new = self.new_part_path(table)
                target = str(new).replace("'", "''")
                con.execute(
                    f"COPY (SELECT * FROM {rows} WHERE NOT {gone}) "
                    f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
                )
                kept_parts.append(str(new.relative_to(self.path)))
            part.unlink()
        con.close()
        entry["parts"] = kept_parts
        entry["records"] -= removed
        return removed

    def save(self) -> None:
        self.manifest["updated"] = _now()
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, self.path / MANIFEST)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
