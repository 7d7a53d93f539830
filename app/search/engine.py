"""Run a parsed search: count, fetch one page in a stable order, resolve includes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.config import Settings
from app.search.include import resolve_includes
from app.search.query import SearchQuery
from app.search.sql import SqlContext, order_by, resource_filter
from app.storage.repository import Repository, Stored, stored_from_row
from app.storage.schema import resources


@dataclass
class SearchResult:
    query: SearchQuery
    total: int
    count: int
    matches: list[Stored]
    included: list[Stored]


def page_size(query: SearchQuery, settings: Settings) -> int:
    if query.count is None:
        return settings.default_page_size
    return min(query.count, settings.max_page_size)


def run_search(repo: Repository, query: SearchQuery) -> SearchResult:
    settings = repo.settings
    ctx = SqlContext(settings.default_timezone, settings.fhir_base_url)
    table = resources
    where = resource_filter(table, query.resource_type, query.criteria, ctx)
    total = repo.conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()
    count = page_size(query, settings)
    if query.summary_count or count == 0:
        return SearchResult(query, total, count, [], [])
    rows = repo.conn.execute(
        select(table).where(where).order_by(*order_by(table, query.sort))
        .limit(count).offset(query.offset)).all()
    matches = [stored_from_row(r) for r in rows]
    included = (resolve_includes(repo.conn, query.includes, matches, settings.max_include_depth,
                                 ctx) if query.includes else [])
    return SearchResult(query, total, count, matches, included)
