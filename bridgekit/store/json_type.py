"""The type of the store's JSON columns, for both databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class JsonValue(TypeDecorator[Any]):
    """JSON; JSONB on PostgreSQL (what ``JSON().with_variant(JSONB(), "postgresql")`` said).

    Named by the dialect when a statement is compiled, so the PostgreSQL dialect (2 MB resident)
    is imported only by a bridge that uses PostgreSQL (issue 16: idle memory)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


__all__ = ["JsonValue"]
