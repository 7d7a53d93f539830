"""An OpenAPI 3.0 description of the FHIR API, generated from the CapabilityStatement (the
routes that exist, per resource type, and how to authenticate) and the search-parameter
registry (each parameter's type, targets and documentation): nothing written by hand per
resource, so the description cannot drift from the server."""

from __future__ import annotations

from typing import Any

from app.search.registry import params_for

FHIR_JSON = "application/fhir+json"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
# Value shapes per search parameter type (FHIR R4 §3.1.1.5); prefixes and modifiers are
# the server's to check, so the schema stays a string.
SEARCH_FORMATS = {
    "token": "`[system]|[code]`, `[code]` or `[system]|`",
    "date": "a date or instant, optionally prefixed (eq, ne, gt, lt, ge, le, sa, eb, ap)",
    "reference": "`[type]/[id]`, `[id]` or an absolute URL",
    "string": "text matched from the start, case and accents ignored (`:exact`, "
              "`:contains`)",
    "uri": "an absolute URI",
    "special": "a logical id",
}
ID_PATTERN = "^[A-Za-z0-9\\-.]{1,64}$"


def _resource_schema(resource_type: str) -> dict[str, Any]:
    return {"type": "object", "required": ["resourceType"],
            "properties": {"resourceType": {"type": "string", "enum": [resource_type]},
                           "id": {"type": "string"}},
            "additionalProperties": True}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {FHIR_JSON: {"schema": schema}, "application/json": {"schema": schema}}


def _answer(description: str, resource_type: str) -> dict[str, Any]:
    return {"description": description, "content": _content(_resource_schema(resource_type))}


def _responses(ok: str, resource_type: str, *statuses: str) -> dict[str, Any]:
    # Any refusal is an OperationOutcome (4xx: the client's mistake; 5xx: ours).
    return {**{status: _answer(ok, resource_type) for status in statuses or ("200",)},
            "default": _answer("Refusal or error, explained", "OperationOutcome")}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "pattern": ID_PATTERN}}


def _search_parameters(resource_type: str, declared: list[dict[str, Any]],
                       includes: list[str], revincludes: list[str]) -> list[dict[str, Any]]:
    registry = params_for(resource_type)
    parameters = []
    for entry in declared:
        param = registry.get(entry["name"])
        kind = param.type if param else entry.get("type", "string")
        text = entry.get("documentation") or (param.description if param else "")
        detail = SEARCH_FORMATS.get(kind, "")
        if param and param.targets:
            detail += f"; targets: {', '.join(param.targets)}"
        parameters.append({
            "name": entry["name"], "in": "query", "required": False,
            "description": f"{text} ({entry.get('type', kind)}: {detail})".strip(),
            "schema": {"type": "string"}})
    parameters.append({"name": "_count", "in": "query", "required": False,
                       "description": "Page size", "schema": {"type": "integer",
                                                              "minimum": 0}})
    parameters.append({"name": "_sort", "in": "query", "required": False,
                       "description": "Sort keys, comma-separated, `-` for descending",
                       "schema": {"type": "string"}})
    if includes:
        parameters.append({"name": "_include", "in": "query", "required": False,
                           "description": "Referenced resources to add to the page",
                           "schema": {"type": "string", "enum": includes}})
    if revincludes:
        parameters.append({"name": "_revinclude", "in": "query", "required": False,
                           "description": "Referring resources to add to the page",
                           "schema": {"type": "string", "enum": revincludes}})
    return parameters


def _type_paths(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    kind = entry["type"]
    codes = {item["code"] for item in entry.get("interaction", [])}
    tag = [kind]
    resource = {"required": True, "content": _content(_resource_schema(kind))}
    type_path: dict[str, Any] = {}
    instance: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    if "search-type" in codes:
        type_path["get"] = {
            "tags": tag, "summary": f"Search {kind}", "operationId": f"search{kind}",
            "parameters": _search_parameters(kind, entry.get("searchParam", []),
                                             entry.get("searchInclude", []),
                                             entry.get("searchRevInclude", [])),
            "responses": _responses("A searchset Bundle", "Bundle")}
        paths[f"/{kind}/_search"] = {"post": {
            "tags": tag, "summary": f"Search {kind} with a form body",
            "operationId": f"searchPost{kind}",
            "requestBody": {"required": False, "content": {
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "additionalProperties": {"type": "string"}}}}},
            "responses": _responses("A searchset Bundle", "Bundle")}}
    if "create" in codes:
        type_path["post"] = {
            "tags": tag, "summary": f"Create a {kind} (conditional with If-None-Exist)",
            "operationId": f"create{kind}", "requestBody": resource,
            "parameters": [{"name": "If-None-Exist", "in": "header", "required": False,
                            "schema": {"type": "string"}}],
            "responses": _responses("Created (201), or the match of If-None-Exist (200)",
                                    kind, "201", "200")}
    if entry.get("conditionalUpdate"):
        type_path["put"] = {
            "tags": tag, "summary": f"Conditional update of a {kind} (search criteria in "
                                    "the query)",
            "operationId": f"conditionalUpdate{kind}", "requestBody": resource,
            "responses": _responses("Updated (200) or created (201)", kind, "200", "201")}
    if entry.get("conditionalDelete") not in (None, "not-supported"):
        type_path["delete"] = {
            "tags": tag, "summary": f"Conditional delete of a {kind}",
            "operationId": f"conditionalDelete{kind}",
            "responses": _responses("Deleted", "OperationOutcome")}
    if "read" in codes:
        instance["get"] = {"tags": tag, "summary": f"Read a {kind}",
                           "operationId": f"read{kind}",
                           "responses": _responses("The current version", kind)}
    if "update" in codes:
        instance["put"] = {"tags": tag, "summary": f"Update (or create with this id) a "
                                                   f"{kind}",
                           "operationId": f"update{kind}", "requestBody": resource,
                           "parameters": [{"name": "If-Match", "in": "header",
                                           "required": False, "schema": {"type": "string"}}],
                           "responses": _responses("Updated (200) or created (201)", kind,
                                                   "200", "201")}
    if "delete" in codes:
        instance["delete"] = {"tags": tag, "summary": f"Delete a {kind}",
                              "operationId": f"delete{kind}",
                              "responses": _responses("Deleted", "OperationOutcome")}
    if type_path:
        paths[f"/{kind}"] = type_path
    if instance:
        paths[f"/{kind}/{{id}}"] = {"parameters": [_path_param("id", "Logical id")],
                                    **instance}
    if "history-type" in codes:
        paths[f"/{kind}/_history"] = {"get": {
            "tags": tag, "summary": f"History of every {kind}",
            "operationId": f"historyType{kind}",
            "responses": _responses("A history Bundle", "Bundle")}}
    if "history-instance" in codes:
        paths[f"/{kind}/{{id}}/_history"] = {
            "parameters": [_path_param("id", "Logical id")],
            "get": {"tags": tag, "summary": f"History of one {kind}",
                    "operationId": f"historyInstance{kind}",
                    "responses": _responses("A history Bundle", "Bundle")}}
    if "vread" in codes:
        paths[f"/{kind}/{{id}}/_history/{{vid}}"] = {
            "parameters": [_path_param("id", "Logical id"),
                           {"name": "vid", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}}],
            "get": {"tags": tag, "summary": f"Read one version of a {kind}",
                    "operationId": f"vread{kind}", "responses": _responses("That version",
                                                                           kind)}}
    for operation in entry.get("operation", []):
        name = operation["name"]
        paths[f"/{kind}/${name}"] = {"post": {
            "tags": tag, "summary": f"${name} a {kind}", "operationId": f"{name}{kind}",
            "description": operation.get("definition", ""),
            "requestBody": {"required": False, "content": _content(
                {"type": "object", "additionalProperties": True})},
            "responses": _responses("An OperationOutcome", "OperationOutcome")}}
    return paths


def _security(rest: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, list[str]]]]:
    security = rest.get("security")
    if not security:
        return {}, []
    token = next((item.get("valueUri") for extension in security.get("extension", [])
                  if extension.get("url") == OAUTH_URIS
                  for item in extension.get("extension", []) if item.get("url") == "token"),
                 None)
    schemes: dict[str, Any] = {}
    if token:
        schemes["oauth2"] = {"type": "oauth2", "description": security.get("description", ""),
                             "flows": {"clientCredentials": {
                                 "tokenUrl": token, "scopes": {
                                     "system/*.rs": "read and search everything granted",
                                     "system/*.cruds": "every interaction granted"}}}}
    return schemes, [{name: []} for name in schemes]


def openapi_document(capability: dict[str, Any], base_url: str) -> dict[str, Any]:
    rest = capability["rest"][0]
    paths: dict[str, Any] = {"/metadata": {"get": {
        "tags": ["System"], "summary": "The CapabilityStatement (public)",
        "operationId": "capabilities", "security": [],
        "responses": _responses("The CapabilityStatement", "CapabilityStatement")}}}
    system = {item["code"] for item in rest.get("interaction", [])}
    if system & {"transaction", "batch"}:
        ndjson = {"schema": {"type": "string", "description": "One FHIR resource per line"}}
        paths["/"] = {"post": {
            "tags": ["System"], "summary": "A transaction or batch Bundle, or NDJSON",
            "description": (
                "NDJSON (application/fhir+ndjson) is a bulk load, all or nothing; with "
                "`Prefer: respond-async` the answer is 202 and Content-Location names the "
                "status URL (/_async/{id})."),
            "operationId": "transaction", "requestBody": {
                "required": True, "content": {**_content(_resource_schema("Bundle")),
                                              "application/fhir+ndjson": ndjson}},
            "responses": {**_responses("The response Bundle, or the load's OperationOutcome",
                                       "Bundle"),
                          "202": _answer("Accepted for an asynchronous load",
                                         "OperationOutcome")}}}
        job = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                "description": "The job id of Content-Location"}]
        paths["/_async/{id}"] = {
            "get": {"tags": ["System"], "summary": "Status of an asynchronous bulk load",
                    "operationId": "asyncStatus", "parameters": job,
                    "responses": {**_responses("Done: a batch-response Bundle holding the "
                                               "load's status and OperationOutcome", "Bundle"),
                                  "202": _answer("Queued or running (X-Progress)",
                                                 "OperationOutcome")}},
            "delete": {"tags": ["System"], "summary": "Cancel it, or forget its answer",
                       "operationId": "asyncCancel", "parameters": job,
                       "responses": _responses("Cancelled", "OperationOutcome", "202")}}
    if "history-system" in system:
        paths["/_history"] = {"get": {
            "tags": ["System"], "summary": "History of every resource",
            "operationId": "historySystem",
            "responses": _responses("A history Bundle", "Bundle")}}
    for entry in rest.get("resource", []):
        paths.update(_type_paths(entry))
    schemes, requirement = _security(rest)
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "fhir-agenda FHIR R4 API",
                 "version": capability.get("software", {}).get("version", "0"),
                 "description": (
                     f"FHIR {capability.get('fhirVersion', '4.0.1')} agenda server, "
                     "generated from its CapabilityStatement (GET /metadata) and search "
                     "parameter registry. " + (rest.get("security", {}).get(
                         "description", "Development profile: no authentication.")))},
        "servers": [{"url": base_url}],
        "tags": [{"name": "System"}] + [{"name": e["type"]} for e in rest.get("resource", [])],
        "paths": paths,
    }
    if schemes:
        document["components"] = {"securitySchemes": schemes}
        document["security"] = requirement
    return document
