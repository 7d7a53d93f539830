"""A cheap first pass of the base-structure check: resources of a shape already validated.

fhir.resources validates a resource in ~100–150 µs, most of it building pydantic models.
Whether a resource is valid depends on two things only: its *shape* — which elements it has
under which others, lists or not, null or not, JSON kinds of its values, the resourceType
of each (contained) resource — and whether each primitive value is valid for its element's
type (fhir.resources has no rule reading two values together). So a resource whose shape
pydantic has already accepted (lists as their distinct item shapes: the models check
each item alone), and whose every primitive value passes the very validator
pydantic uses for its element (`TypeAdapter` of the element's annotation, with the models'
configuration; verdicts memoised per value), is valid: no model needs to be built.

Anything else — a new shape, an element the models do not know, a value whose validator
says no, a JSON kind or code the strict checks of json_types.py refuse — goes to the full
validation (app/validation/structure.py), which reports the problems and, when there are
none, teaches this module the shape.
"""

from __future__ import annotations

import types
import typing
from functools import lru_cache
from typing import Any

import orjson
from pydantic import ConfigDict, TypeAdapter, ValidationError

from app.validation.json_types import classify, json_kind, model_named

Shape = tuple[Any, ...]
MAX_SHAPES = 20_000  # learned shapes kept (agendas send few: the same software, the same data)
MAX_VALUES = 200_000  # memoised primitive verdicts
MAX_NESTED = 20_000  # memoised shapes of nested elements (a few MB)
_CONFIG = ConfigDict(extra="forbid", populate_by_name=True)

_shapes: set[tuple[str, Shape]] = set()
_verdicts: dict[tuple[int, type, Any], bool] = {}
_nested: dict[tuple[Any, bytes], Shape | None] = {}


class _Primitive:
    """An element of a primitive type: the validator pydantic runs on it, the JSON kind
    json_types.py requires, and the codes of its required value set."""

    def __init__(self, annotation: Any, kind: str, codes: tuple[str, ...]) -> None:
        self.adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=_CONFIG)
        self.kind, self.codes = kind, codes

    def accepts(self, value: Any) -> bool:
        kind = json_kind(value)
        if kind != self.kind and not (self.kind == "number" and kind == "integer"):
            return False
        if self.codes and value not in self.codes:
            return False
        key = (id(self), type(value), value)
        verdict = _verdicts.get(key)
        if verdict is None:
            try:
                self.adapter.validate_python(value)
                verdict = True
            except (ValidationError, ValueError, TypeError):
                verdict = False
            if len(_verdicts) >= MAX_VALUES:
                _verdicts.clear()
            _verdicts[key] = verdict
        return verdict


RESOURCE = "Resource"  # an element holding any resource (contained, Bundle.entry.resource)


def known_valid(resource_type: str, resource: dict[str, Any]) -> bool:
    """True when the resource is certainly valid (False: the full validation decides)."""
    model = model_named(resource_type)
    if model is None:
        return False
    shape = _shape(resource, model)
    return shape is not None and (resource_type, shape) in _shapes


def learn(resource_type: str, resource: dict[str, Any]) -> None:
    """Remember the shape of a resource the full validation accepted."""
    model = model_named(resource_type)
    shape = _shape(resource, model) if model is not None else None
    if shape is None:
        return
    if len(_shapes) >= MAX_SHAPES:
        _shapes.clear()
    _shapes.add((resource_type, shape))


def _shape(node: dict[str, Any], model: Any) -> Shape | None:
    """The shape of `node` as an instance of `model`, or None when a value is not known
    valid for its element (or an element is unknown)."""
    fields = _elements(model)
    parts: list[Any] = []
    for key, value in node.items():
        element = fields.get(key)
        if element is None:
            if key == "resourceType" and isinstance(value, str):
                parts.append((key, value))  # it chooses the model: part of the shape
                continue
            return None
        if isinstance(value, list):
            items = []
            for item in value:
                part = _part(element, item)
                if part is None:
                    return None
                items.append(part)
            # Each item is validated alone: the distinct item shapes are what matters (an
            # AuditEvent of a thousand entities has the shape of one with two).
            parts.append((key, "list", tuple(dict.fromkeys(items))))
        else:
            part = _part(element, value)
            if part is None:
                return None
            parts.append((key, part))
    return tuple(parts)


def _part(element: Any, value: Any) -> Any:
    if value is None:
        return "null"
    if isinstance(element, _Primitive):
        return element.kind if element.accepts(value) else None
    if not isinstance(value, dict):
        return None
    if element == RESOURCE:
        model = model_named(value.get("resourceType", ""))
        return _shape(value, model) if model is not None else None
    return _nested_shape(value, element)


def _nested_shape(value: dict[str, Any], model: Any) -> Shape | None:
    """The shape of a nested element, memoised by its JSON text: codings, periods and
    references repeat from one resource to the next (every Slot of an agenda carries the
    same security labels and service types), and orjson spells a value in far less time
    than walking it. The text fixes every key, value and JSON kind, so the same text has
    the same shape."""
    try:
        key = (model, orjson.dumps(value))
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: walk it
        return _shape(value, model)
    if key in _nested:
        return _nested[key]
    shape = _shape(value, model)
    if len(_nested) >= MAX_NESTED:
        _nested.clear()
    _nested[key] = shape
    return shape


@lru_cache(maxsize=1024)
def _elements(model: Any) -> dict[str, Any]:
    """JSON name → a `_Primitive`, a nested model, or RESOURCE; elements of other
    annotations are left out (a resource using them goes to the full validation)."""
    found: dict[str, Any] = {}
    for field in model.model_fields.values():
        alias = field.alias
        if not alias or alias == "fhir_comments":
            continue
        annotation = _item(field.annotation)
        if annotation is None:
            continue
        kind, nested = classify(annotation)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if kind is not None:
            codes = tuple(extra.get("enum_values") or ())  # type: ignore[arg-type]
            found[alias] = _Primitive(annotation, kind, codes)
        elif nested == RESOURCE:
            found[alias] = RESOURCE
        elif nested is not None and (sub := model_named(nested)) is not None:
            found[alias] = sub
    return found


def _item(annotation: Any) -> Any:
    """The annotation of one value: Optional and List taken off; None when it is a union of
    several types."""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType, list, typing.List):  # noqa: UP006
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        else:
            return annotation
