"""Base FHIR R4 validation of incoming resources with fhir.resources (pydantic models).

The R4B models of fhir.resources are wire-compatible with 4.0.1 for every type we serve.
Errors are reported with a FHIRPath-like location such as `Slot.identifier[0].system`.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from app.outcome import Issue, Unprocessable
from app.validation import shapes
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


def structure_issues(resource_type: str, resource: dict[str, Any]) -> list[Issue]:
    """One issue per way the resource breaks the base R4 spec (empty when it is valid).
    A resource of a shape already accepted, with values its elements' validators accept,
    is valid without building the models (app/validation/shapes.py)."""
    if shapes.known_valid(resource_type, resource):
        return []
    issues = model_issues(resource_type, resource)
    if not issues:
        shapes.learn(resource_type, resource)
    return issues


def model_issues(resource_type: str, resource: dict[str, Any]) -> list[Issue]:
    """The full validation: fhir.resources' models, then the strict JSON checks."""
    model = get_fhir_model_class(resource_type)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            location = fhirpath(resource_type, tuple(error.get("loc", ())))
            code = _ISSUE_CODES.get(error.get("type", ""), "value")
            issues.append(Issue(code, f"{location}: {error.get('msg')}", expression=[location]))
        return issues
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # Raised by some model validators directly, on input shapes they did not expect.
        return [Issue("processing", f"{resource_type} is not valid FHIR R4: {exc}",
                      expression=[resource_type])]
    return json_type_issues(resource, resource_type)


def validate_structure(resource_type: str, resource: dict[str, Any]) -> None:
    """Raise 422 with one issue per problem when the resource breaks the base spec."""
    issues = structure_issues(resource_type, resource)
    if issues:
        raise Unprocessable(f"{resource_type} is not valid FHIR R4", issues=issues)
