"""JSON shapes declared once: each declaration both checks a value and writes its JSON Schema.

The request bodies (adapters/http/shapes.py) are checked by the same objects that write their
schemas into the OpenAPI document, so the document cannot say one thing while the app checks
another. A check names every bad field, not the first only: a client fixes a request in one go.

Why not msgspec or pydantic (measured for issue 15, Python 3.12, manylinux x86_64): msgspec
0.23 adds 0.56 MB and 3 ms of import to a Lambda package and cold start that must not grow, keeps
the last of a repeated key silently (so adapters/http/body.py's parser stays anyway) and stops
at the first bad field; pydantic 2 adds 7.4 MB. What they would do here is a few dozen lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from core.errors import FieldError, InvalidRequest

REF = "#/components/schemas/"


class Shape:
    """A JSON value's shape. A named shape is a component of the document, referred to by $ref."""

    name: str | None = None

    def definition(self) -> dict[str, Any]:
        """The JSON Schema of the value itself."""
        raise NotImplementedError

    def problems(self, value: Any, field_name: str) -> list[FieldError]:
        """What is wrong with `value` at `field_name`; empty when it fits."""
        raise NotImplementedError

    def check(self, value: Any) -> None:
        """InvalidRequest naming every bad field of the request body `value`, if it has any."""
        errors = self.problems(value, "")
        if errors:
            raise InvalidRequest(errors)

    def parts(self) -> Iterator[Shape]:
        """The shapes this one is made of (to find the named ones)."""
        return iter(())

    def schema(self) -> dict[str, Any]:
        """The schema where the shape is used: a $ref to it when it is named."""
        return {"$ref": REF + self.name} if self.name else self.definition()


class Documented(Shape):
    """A value this layer passes on unchecked, documented by `json_schema`: the service checks
    ids, observations and outcomes itself (core.records, core.schema), with its own messages,
    and responses are made by the app."""

    def __init__(self, json_schema: dict[str, Any], name: str | None = None) -> None:
        self.json_schema, self.name = json_schema, name

    def definition(self) -> dict[str, Any]:
        return self.json_schema

    def problems(self, value: Any, field_name: str) -> list[FieldError]:
        return []


class Boolean(Shape):
    """true or false, and nothing that merely looks like one (`"yes"`, 1)."""

    def __init__(self, default: bool, description: str) -> None:
        self.default, self.description = default, description

    def definition(self) -> dict[str, Any]:
        return {"type": "boolean", "default": self.default, "description": self.description}

    def problems(self, value: Any, field_name: str) -> list[FieldError]:
        return [] if isinstance(value, bool) else [FieldError(field_name, "must be true or false")]


class Field:
    """A field of an Object: its shape, and whether it must be present."""

    def __init__(self, shape: Shape, required: bool = True) -> None:
        self.shape, self.required = shape, required


class Object(Shape):
    """A JSON object of named fields; with `closed`, no other key is allowed.

    `also` is added to the schema as it is: JSON Schema the checks here leave to the service
    (what `strict: true` means for the observation, say); `mentions` are the named shapes it
    refers to, so that the document has them too.
    """

    def __init__(self, fields: dict[str, Field], name: str | None = None, description: str | None = None,
                 closed: bool = True, also: dict[str, Any] | None = None, mentions: tuple[Shape, ...] = ()) -> None:
        self.fields, self.name, self.description, self.closed = fields, name, description, closed
        self.also, self.mentions = also or {}, mentions
        self.required = [key for key, declared in fields.items() if declared.required]

    def definition(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {key: declared.shape.schema() for key, declared in self.fields.items()},
            "required": self.required,
        }
        if self.closed:
            schema["additionalProperties"] = False
        if self.description:
            schema["description"] = self.description
        return {**schema, **self.also}

    def problems(self, value: Any, field_name: str) -> list[FieldError]:
        if not isinstance(value, dict):
            noun = f"an object with {' and '.join(self.required)}" if field_name else "a JSON object"
            return [FieldError(field_name or "body", f"must be {noun}")]
        prefix = f"{field_name}." if field_name else ""
        keys = value.keys()
        errors = [FieldError(prefix + key, "is required") for key in self.required if key not in keys]
        if self.closed and not keys <= self.fields.keys():
            expected = ", ".join(self.fields)
            errors += [FieldError(prefix + str(key), f"is not a field of this request (expected {expected})")
                       for key in keys if key not in self.fields]
        for key, declared in self.fields.items():
            if key in keys:
                errors += declared.shape.problems(value[key], prefix + key)
        return errors

    def parts(self) -> Iterator[Shape]:
        yield from (declared.shape for declared in self.fields.values())
        yield from self.mentions


class Array(Shape):
    """A JSON array of `min_items` to `max_items` (None: any number) items; item `i` is named
    `item_field(i)`, or `<array>[i]` when no naming is given."""

    def __init__(self, items: Shape, min_items: int = 0, max_items: int | None = None,
                 item_field: Callable[[int], str] | None = None, description: str | None = None) -> None:
        self.items, self.min_items, self.max_items = items, min_items, max_items
        self.item_field, self.description = item_field, description

    def definition(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": self.items.schema()}
        if self.min_items:
            schema["minItems"] = self.min_items
        if self.max_items is not None:
            schema["maxItems"] = self.max_items
        return {**schema, "description": self.description} if self.description else schema

    def problems(self, value: Any, field_name: str) -> list[FieldError]:
        if not isinstance(value, list):
            noun = self.items.required if isinstance(self.items, Object) else []
            return [FieldError(field_name, f"must be an array of {{{', '.join(noun)}}} objects")]
        count = len(value)
        if count < self.min_items or (self.max_items is not None and count > self.max_items):
            bounds = (f"at least {self.min_items}" if self.max_items is None
                      else f"from {self.min_items} to {self.max_items}")
            return [FieldError(field_name, f"must hold {bounds} items, not {count}")]
        errors: list[FieldError] = []
        for index, item in enumerate(value):
            name = self.item_field(index) if self.item_field else f"{field_name}[{index}]"
            errors += self.items.problems(item, name)
        return errors

    def parts(self) -> Iterator[Shape]:
        return iter((self.items,))


class Either(Shape):
    """One of two objects, told apart by whether `key` is in the value."""

    def __init__(self, key: str, with_key: Object, without_key: Object, name: str | None = None) -> None:
        self.key, self.with_key, self.without_key, self.name = key, with_key, without_key, name

    def definition(self) -> dict[str, Any]:
        return {"oneOf": [self.without_key.schema(), self.with_key.schema()]}

    def chosen(self, value: Any) -> Object:
        return self.with_key if isinstance(value, dict) and self.key in value else self.without_key

    def problems(self, value: Any, field_name: str) -> list[FieldError]:
        return self.chosen(value).problems(value, field_name)

    def parts(self) -> Iterator[Shape]:
        return iter((self.without_key, self.with_key))


class OneOf(Shape):
    """One of `options` (a response that is one record or a batch of them; their required
    fields tell them apart, as the document's oneOf needs)."""

    def __init__(self, options: tuple[Shape, ...]) -> None:
        self.options = options

    def definition(self) -> dict[str, Any]:
        return {"oneOf": [option.schema() for option in self.options]}

    def problems(self, value: Any, field_name: str) -> list[FieldError]:
        found = [option.problems(value, field_name) for option in self.options]
        return [] if [] in found else found[0]

    def parts(self) -> Iterator[Shape]:
        return iter(self.options)


def components(*shapes: Shape) -> dict[str, dict[str, Any]]:
    """The definitions of every named shape among `shapes` and their parts, by name, in the
    order first met (a name given to two different shapes is a mistake, refused)."""
    found: dict[str, dict[str, Any]] = {}
    pending = list(reversed(shapes))
    while pending:
        shape = pending.pop()
        if shape.name:
            definition = shape.definition()
            if shape.name in found:
                if found[shape.name] != definition:
                    raise ValueError(f"two different shapes are named {shape.name}")
                continue  # its parts are found already
            found[shape.name] = definition
        pending.extend(reversed(list(shape.parts())))
    return found
