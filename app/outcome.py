"""The error vocabulary of every layer: exceptions that carry an HTTP status and
OperationOutcome issues, and OperationOutcome builders. Lowest layer: imports nothing of
the application, so storage, search and validation can raise the errors clients see."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Issue:
    code: str  # IssueType: invalid, structure, required, value, not-found, conflict…
    diagnostics: str
    severity: str = "error"
    expression: list[str] = field(default_factory=list)

    def as_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code,
                                 "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = self.expression
        return issue


class FhirError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, diagnostics: str, *, issues: list[Issue] | None = None,
                 status: int | None = None, code: str | None = None,
                 expression: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(diagnostics)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.issues = issues or [Issue(self.code, diagnostics, expression=expression or [])]
        self.headers = headers or {}

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class BadRequest(FhirError):
    status, code = 400, "invalid"


class Unauthorized(FhirError):
    status, code = 401, "login"


class Forbidden(FhirError):
    status, code = 403, "forbidden"


class NotFound(FhirError):
    status, code = 404, "not-found"


class MethodNotAllowed(FhirError):
    status, code = 405, "not-supported"


class NotAcceptable(FhirError):
    status, code = 406, "not-supported"


class Conflict(FhirError):
    status, code = 409, "conflict"


class Gone(FhirError):
    status, code = 410, "deleted"


class PreconditionFailed(FhirError):
    status, code = 412, "conflict"


class UnsupportedMediaType(FhirError):
    status, code = 415, "not-supported"


class Unprocessable(FhirError):
    status, code = 422, "processing"


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.as_fhir() for i in issues]}


def information(*diagnostics: str) -> dict[str, Any]:
    return operation_outcome([Issue("informational", text, severity="information")
                              for text in diagnostics])
