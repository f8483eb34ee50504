"""Tally's set-based writes: the shared JSON-rows statements (``shared.bulk``) on tally's tables, by name."""

from __future__ import annotations

from typing import Any

from shared import bulk
from shared.bulk import rows_param as rows_param
from tally.adapters import orm


def add_upsert(table_name: str, keys: tuple[str, ...], adds: tuple[str, ...]) -> Any:
    return bulk.add_upsert(orm.metadata.tables[table_name], keys, adds)


def replace_upsert(table_name: str, keys: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    return bulk.replace_upsert(orm.metadata.tables[table_name], keys, columns)


def insert_missing(table_name: str, keys: tuple[str, ...], columns: tuple[str, ...], returning: bool = False) -> Any:
    return bulk.insert_missing(orm.metadata.tables[table_name], keys, columns, returning)
