"""Base FHIR R4 validation of incoming resources with fhir.resources (pydantic models).

The R4B models of fhir.resources are wire-compatible with 4.0.1 for every type we serve.
Errors are reported with a FHIRPath-like location such as `Slot.identifier[0].system`.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from app.fhir.errors import Issue, Unprocessable
from app.validation.json_types import json_type_issues

_ISSUE_CODES = {"missing": "required", "model_field_validation.missing": "required",
                "extra_forbidden": "structure"}


def fhirpath(resource_type: str, location: tuple[Any, ...]) -> str:
    path = resource_type
    for step in location:
        if isinstance(step, int):
            path += f"[{step}]"
        elif str(step) not in {"__root__"}:
            path += f".{step}"
    return path


def validate_structure(resource_type: str, resource: dict[str, Any]) -> None:
    """Raise 422 with one issue per problem when the resource breaks the base spec."""
    model = get_fhir_model_class(resource_type)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            location = fhirpath(resource_type, tuple(error.get("loc", ())))
            code = _ISSUE_CODES.get(error.get("type", ""), "value")
            issues.append(Issue(code, f"{location}: {error.get('msg')}", expression=[location]))
        raise Unprocessable(f"{resource_type} is not valid FHIR R4", issues=issues) from exc
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # Raised by some model validators directly, on input shapes they did not expect.
        raise Unprocessable(f"{resource_type} is not valid FHIR R4: {exc}",
                            expression=[resource_type]) from exc
    issues = json_type_issues(resource, resource_type)
    if issues:
        raise Unprocessable(f"{resource_type} is not valid FHIR R4 JSON", issues=issues)
