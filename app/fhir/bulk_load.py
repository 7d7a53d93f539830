"""Bulk load of NDJSON (one resource per line): an agenda's first load, or a full resync.

A file is one unit of work: every line is written through the same interactions as a REST
PUT (resources with an id) or POST (without), so each is validated, versioned, indexed,
projected, audited and notified; and the file commits as a whole or not at all. A line that
is rejected does not stop the load: every line is tried, every rejection is reported with
its line number, and nothing is kept. A process killed midway leaves nothing either: the
database transaction never commits.

Memory stays bounded on files of millions of lines: every `CHECKPOINT_LINES` lines the
repository writes what it staged and forgets the resources it kept (`Repository.checkpoint`);
references to resources further in the file are checked once the whole file is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.fhir import transactions
from app.outcome import BadRequest, FhirError, Issue, information, operation_outcome
from app.state import AppState
from app.storage.repository import Repository

NDJSON_TYPES = ("application/fhir+ndjson", "application/x-ndjson", "application/ndjson")
CHECKPOINT_LINES = 2000
MAX_REPORTED = 1000  # rejections listed in an OperationOutcome; the count is always given


@dataclass(frozen=True)
class Rejection:
    line: int | None  # None: the file as a whole (e.g. a reference nothing in it resolves)
    error: FhirError

    @property
    def issues(self) -> list[Issue]:
        return self.error.issues

    def describe(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: " + "; ".join(issue.diagnostics for issue in self.issues)


@dataclass
class LoadReport:
    lines: int = 0  # non-empty lines read
    written: int = 0  # resources written (0 unless the file committed)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def committed(self) -> bool:
        return not self.rejections

    @property
    def status(self) -> int:
        """200 when loaded; else the rejections' status when they agree (e.g. 403 for a
        client that may write none of it), 422 when they differ."""
        statuses = {rejection.error.status for rejection in self.rejections}
        return 200 if not statuses else statuses.pop() if len(statuses) == 1 else 422

    def outcome(self) -> dict[str, Any]:
        """The report as an OperationOutcome: one issue per rejected line, or the count."""
        if self.committed:
            return information(f"{self.written} resources loaded from {self.lines} lines")
        issues = [Issue(i.code, f"{'line ' + str(r.line) if r.line else 'file'}: "
                        f"{i.diagnostics}", i.severity,
                        [f"line[{r.line}]"] if r.line else i.expression)
                  for r in self.rejections[:MAX_REPORTED] for i in r.issues]
        issues.append(Issue("processing", f"{len(self.rejections)} of {self.lines} lines "
                            "rejected; nothing was loaded", "error"))
        return operation_outcome(issues)


class _Rejected(Exception):
    """Some line was rejected: the unit of work rolls back."""


def load(state: AppState, lines: Iterable[bytes], author: str | None = None,
         address: str | None = None, *, progress: Callable[[int], None] | None = None
         ) -> LoadReport:
    """Load NDJSON lines in one transaction; `progress` gets each line's size in bytes."""
    report = LoadReport()
    try:
        with state.writing(author, address) as repo:
            _write_lines(repo, lines, report, progress)
            if report.rejections:
                raise _Rejected
    except _Rejected:
        report.written = 0
    except FhirError as error:  # raised as the unit finished: a rule over the whole file
        report.rejections.append(Rejection(None, error))
        report.written = 0
    return report


def _write_lines(repo: Repository, lines: Iterable[bytes], report: LoadReport,
                 progress: Callable[[int], None] | None) -> None:
    """Lines go by chunks, like a transaction Bundle's entries: the resources a chunk
    updates are read and locked in one statement, its rows written in one per table."""
    base = repo.settings.fhir_base_url
    chunk: list[tuple[int, transactions.Entry]] = []
    for number, line in enumerate(lines, start=1):
        if progress is not None:
            progress(len(line))
        if not line.strip():
            continue
        report.lines += 1
        try:
            chunk.append((number, _entry(number, line, base)))
        except FhirError as error:
            report.rejections.append(Rejection(number, error))
        if len(chunk) == CHECKPOINT_LINES:
            _write_chunk(repo, chunk, report)
            chunk = []
    _write_chunk(repo, chunk, report)


def _write_chunk(repo: Repository, chunk: list[tuple[int, transactions.Entry]],
                 report: LoadReport) -> None:
    base = repo.settings.fhir_base_url
    repo.prefetch(transactions.targets([entry for _, entry in chunk]))
    for number, entry in chunk:
        try:
            transactions.execute(repo, entry, base)
            report.written += 1
        except FhirError as error:
            report.rejections.append(Rejection(number, error))
    try:
        repo.checkpoint()
    except FhirError as error:
        report.rejections.append(Rejection(chunk[-1][0] if chunk else None, error))


def _entry(number: int, line: bytes, base: str) -> transactions.Entry:
    try:
        resource = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"not JSON: {exc}") from exc
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise BadRequest("a line must be one FHIR resource (a JSON object with resourceType)")
    return transactions.parse_entry(number, entry_for(resource), base, "minimal")


def entry_for(resource: dict[str, Any]) -> dict[str, Any]:
    """The Bundle entry that writes `resource`: PUT when it has an id (a reload updates
    what it loaded before), POST when the server chooses."""
    kind = resource["resourceType"]
    if resource.get("id"):
        request = {"method": "PUT", "url": f"{kind}/{resource['id']}"}
    else:
        request = {"method": "POST", "url": kind}
    return {"resource": resource, "request": request}
