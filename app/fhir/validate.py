"""The $validate operation (R4 operation-resource-validate), which never stores anything.

`POST [type]/$validate` and `POST [type]/[id]/$validate` take the resource itself, or a
Parameters resource with `resource`, `mode` (create | update | delete) and `profile`; `mode`
and `profile` may also be URL parameters. As R4 says, the answer is 200 with an
OperationOutcome whether or not the resource is valid; a 4xx means the validation could not
be run (an unknown profile or mode, no resource, a body that is not JSON).

What is checked: the base R4 structure, the form of every reference, the SAS profiles the
resource declares or the `profile` parameter names (profiles/), and whether local references
exist: errors when `mode` is create or update (the write would be refused), warnings
otherwise. A declared profile we do not hold is a warning: it was not checked, which does not
make the resource invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.fhir.interactions import FhirRequest, FhirResult, check_type
from app.outcome import BadRequest, Issue, NotFound, operation_outcome
from app.search.registry import READ_ONLY_TYPES, SUPPORTED_TYPES
from app.storage.hooks import ReadEvent
from app.storage.repository import Repository
from app.validation.profiles import BASE_PROFILE_PREFIX, ProfileSet, default_profiles
from app.validation.references import malformed_reference_issues, missing_reference_issues
from app.validation.structure import structure_issues

Json = dict[str, Any]
DEFINITION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
MODES = ("create", "update", "delete")  # R4 ResourceValidationMode
# Bundle is not stored here, but SAS answers are Bundles (BundleAgregateur): validate those too.
VALIDATABLE_TYPES = (*SUPPORTED_TYPES, "Bundle")


@dataclass
class ValidateCall:
    resource: Json | None
    mode: str | None
    profile: str | None


def check_validatable(resource_type: str) -> str:
    if resource_type not in VALIDATABLE_TYPES:
        check_type(resource_type)  # the usual 404 for a type this server does not know
    return resource_type


def validate(repo: Repository, req: FhirRequest) -> FhirResult:
    resource_type = check_validatable(str(req.resource_type))
    call = read_call(req)
    profiles = default_profiles()
    nominated = _nominated(profiles, call.profile, resource_type)
    issues = _mode_issues(repo, req, call)
    if call.resource is not None and call.mode != "delete":
        issues = _content_issues(repo, resource_type, call, profiles, nominated) + issues
    if not any(issue.severity == "error" for issue in issues):
        issues.append(Issue("informational", _success(call, profiles, nominated),
                            severity="information"))
    return FhirResult(200, operation_outcome(issues))


# -- the request -----------------------------------------------------------------------------

def read_call(req: FhirRequest) -> ValidateCall:
    body = req.body
    given: dict[str, list[Any]] = {"resource": [], "mode": [], "profile": []}
    if body is not None and body.get("resourceType") == "Parameters":
        _read_parameters(body, given)
    elif body is not None:
        given["resource"].append(body)
    for name, value in req.params:
        if name in ("mode", "profile"):
            given[name].append(value)
    call = ValidateCall(*(_at_most_one(name, given[name]) for name in ("resource", "mode",
                                                                        "profile")))
    if call.mode is not None and call.mode not in MODES:
        raise BadRequest(f"Unknown $validate mode '{call.mode}': expected one of "
                         f"{', '.join(MODES)}", code="value")
    if call.mode in ("update", "delete") and req.resource_id is None:
        raise BadRequest(f"mode={call.mode} validates against an existing resource: call "
                         f"[type]/[id]/$validate", code="invalid")
    if call.resource is None and call.mode != "delete":
        raise BadRequest("$validate needs the resource to check (the body, or the `resource` "
                         "parameter of a Parameters body)", code="required")
    if call.resource is not None and call.resource.get("resourceType") != req.resource_type:
        raise BadRequest(f"The resource is a {call.resource.get('resourceType')}, the URL "
                         f"expects a {req.resource_type}", expression=["resourceType"])
    return call


def _read_parameters(body: Json, given: dict[str, list[Any]]) -> None:
    parameters = body.get("parameter") or []
    if not isinstance(parameters, list):
        raise BadRequest("Parameters.parameter must be an array", code="structure",
                         expression=["Parameters.parameter"])
    for index, parameter in enumerate(parameters):
        where = f"Parameters.parameter[{index}]"
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name not in given:
            raise BadRequest(f"{where}: unknown $validate parameter {name!r}; expected "
                             "resource, mode or profile", code="not-supported",
                             expression=[where])
        value = (parameter.get("resource") if name == "resource" else
                 parameter.get("valueCode") or parameter.get("valueUri")
                 or parameter.get("valueCanonical") or parameter.get("valueString"))
        wanted = dict if name == "resource" else str
        if not isinstance(value, wanted):
            raise BadRequest(f"{where}: {name} needs a "
                             f"{'resource' if name == 'resource' else 'value'}",
                             code="required", expression=[where])
        given[name].append(value)


def _at_most_one(name: str, values: list[Any]) -> Any:
    if len(values) > 1:
        raise BadRequest(f"The $validate parameter '{name}' is given {len(values)} times",
                         code="invalid")
    return values[0] if values else None


def _nominated(profiles: ProfileSet, url: str | None, resource_type: str) -> list[str]:
    """The profile parameter as a list of profiles to check; R4: a server that cannot
    validate against it "SHALL return an error", and this one answers 400."""
    if url is None:
        return []
    canonical = url.split("|", 1)[0]
    if canonical in profiles:
        return [canonical]
    if canonical == BASE_PROFILE_PREFIX + resource_type:
        return []  # the base structure, checked anyway
    known = sorted(p.url for p in profiles.profiles.values() if p.type == resource_type)
    raise BadRequest(f"Cannot validate against the unknown profile '{url}'; known for "
                     f"{resource_type}: {', '.join([BASE_PROFILE_PREFIX + resource_type, *known])}",
                     code="not-supported")


# -- the checks ------------------------------------------------------------------------------

def _content_issues(repo: Repository, resource_type: str, call: ValidateCall,
                    profiles: ProfileSet, nominated: list[str]) -> list[Issue]:
    assert call.resource is not None
    resource = call.resource
    issues = structure_issues(resource_type, resource)
    issues += malformed_reference_issues(resource_type, resource, repo.settings.fhir_base_url)
    if not any(issue.severity == "error" for issue in issues):
        issues += profiles.validate(resource, nominated, unknown_profile="warning")
    elif nominated or _declared(resource):
        # Profiles constrain a valid resource, and the profile validator assumes one.
        issues.append(Issue("informational", "Profiles are checked once the resource is "
                            "valid FHIR R4", severity="information"))
    if resource_type in SUPPORTED_TYPES and resource_type not in READ_ONLY_TYPES:
        severity = "error" if call.mode in ("create", "update") else "warning"
        for issue in missing_reference_issues(repo, resource_type, resource):
            issue.severity = severity
            issues.append(issue)
    return issues


def _mode_issues(repo: Repository, req: FhirRequest, call: ValidateCall) -> list[Issue]:
    """Would the create, update or delete itself be accepted (beyond the content)?"""
    resource_type = str(req.resource_type)
    if call.mode is None:
        return []
    if resource_type in READ_ONLY_TYPES or resource_type not in SUPPORTED_TYPES:
        return [Issue("not-supported", f"{resource_type} resources cannot be written through "
                      "this API", expression=[resource_type])]
    if call.mode == "update":
        found = (call.resource or {}).get("id")
        if found != req.resource_id:
            return [Issue("invalid", f"{resource_type}.id: an update of "
                          f"{resource_type}/{req.resource_id} needs that id in the resource, "
                          f"found {found!r}", expression=[f"{resource_type}.id"])]
    if call.mode == "delete":
        assert req.resource_id is not None
        stored = repo.find(resource_type, req.resource_id)
        if stored is None:
            raise NotFound(f"{resource_type}/{req.resource_id} is not known")
        event = ReadEvent(resource_type, stored)
        for interceptor in repo.interceptors:  # the caller must be allowed to see it
            interceptor.before_read(repo, event)
    return []


def _success(call: ValidateCall, profiles: ProfileSet, nominated: list[str]) -> str:
    if call.mode == "delete":
        return "Validation successful: no errors; the delete would be accepted"
    assert call.resource is not None
    checked = [url for url in dict.fromkeys([*nominated, *_declared(call.resource)])
               if url in profiles]
    against = "the base R4 structure" + "".join(f", {url}" for url in checked)
    mode = f" (mode {call.mode})" if call.mode else ""
    return f"Validation successful{mode}: no errors against {against}"


def _declared(resource: Json) -> list[str]:
    meta = resource.get("meta")
    urls = meta.get("profile") if isinstance(meta, dict) else None
    return [url for url in urls if isinstance(url, str)] if isinstance(urls, list) else []
