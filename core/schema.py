"""The observation schema recorded in a model's manifest, and validation against it.

Validation is plain Python on purpose: it runs on every request, before any library is touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import FieldError, InvalidObservation

NUMBER_KINDS = ("integer", "number")
# Beyond this a number is not a measurement but an accident, and its products overflow floats.
MAX_ABS_NUMBER = 1e15
# Most characters of a client's text that a warning repeats.
WARNING_QUOTE = 64
KINDS = (*NUMBER_KINDS, "category")


@dataclass(frozen=True)
class Feature:
    """One input feature: how it is checked, and what training saw of it.

    `kind` is "integer", "number" or "category". `minimum`/`maximum` bound what validation
    accepts (None: unbounded); `seen_min`/`seen_max` are the training range, reported as a
    warning when exceeded. `categories` are the values seen in training (categories only).
    """

    name: str
    kind: str
    dtype: str
    nullable: bool
    categories: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    seen_min: float | None = None
    seen_max: float | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "dtype": self.dtype, "nullable": self.nullable}
        if self.kind == "category":
            d["categories"] = list(self.categories)
        else:
            d.update(minimum=self.minimum, maximum=self.maximum, seen_min=self.seen_min, seen_max=self.seen_max)
        if self.stats:
            d["stats"] = dict(self.stats)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Feature:
        if d["kind"] not in KINDS:
            raise ValueError(f"feature {d['name']!r}: unknown kind {d['kind']!r}")
        return cls(
            name=d["name"],
            kind=d["kind"],
            dtype=d["dtype"],
            nullable=bool(d["nullable"]),
            categories=tuple(d.get("categories", ())),
            minimum=d.get("minimum"),
            maximum=d.get("maximum"),
            seen_min=d.get("seen_min"),
            seen_max=d.get("seen_max"),
            stats=d.get("stats", {}),
        )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@dataclass(frozen=True)
class Schema:
    """The ordered features a model takes."""

    features: tuple[Feature, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def as_list(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.features]

    @classmethod
    def from_list(cls, items: list[Mapping[str, Any]]) -> Schema:
        return cls(tuple(Feature.from_dict(d) for d in items))

    def validate(self, observation: Any, strict: bool = False, field_prefix: str = "") -> tuple[list[Any], list[str]]:
        """Check one observation; return its values in feature order and the warnings.

        Raises InvalidObservation listing every problem. Extra keys are warnings (errors when
        `strict`); unseen categories and values outside the training range are warnings.
        """
        if not isinstance(observation, dict):
            raise InvalidObservation(
                [
                    FieldError(
                        field_prefix.rstrip(".") or "observation", f"must be an object, got {_type_name(observation)}"
                    )
                ]
            )
        errors: list[FieldError] = []
        warnings: list[str] = []
        values: list[Any] = []
        for feature in self.features:
            if feature.name not in observation:
                errors.append(FieldError(field_prefix + feature.name, "is required"))
                values.append(None)
                continue
            value = observation[feature.name]
            values.append(value)
            if value is None:
                if not feature.nullable:
                    errors.append(FieldError(field_prefix + feature.name, "must not be null"))
                continue
            if feature.kind == "category":
                if not isinstance(value, str):
                    errors.append(FieldError(field_prefix + feature.name, f"must be a string, got {_type_name(value)}"))
                elif value not in feature.categories:
                    warnings.append(f"{feature.name}: category {quoted(value)} was not seen in training")
                continue
            problem = _number_problem(feature, value)
            if problem:
                errors.append(FieldError(field_prefix + feature.name, problem))
            elif (feature.seen_min is not None and value < feature.seen_min) or (
                feature.seen_max is not None and value > feature.seen_max
            ):
                warnings.append(
                    f"{feature.name}: {value!r} is outside the training range [{feature.seen_min}, {feature.seen_max}]"
                )
        if len(observation) > len(values):
            known = set(self.names)
            for key in observation:
                if key not in known:
                    if strict:
                        errors.append(FieldError(field_prefix + str(key), "is not a feature of this model"))
                    else:
                        warnings.append(f"{shortened(str(key))}: not a feature of this model, ignored")
        if errors:
            raise InvalidObservation(errors)
        return values, warnings


def shortened(text: str) -> str:
    """`text` cut to WARNING_QUOTE characters: a warning stays short whatever the client sent."""
    return text if len(text) <= WARNING_QUOTE else text[:WARNING_QUOTE] + "…"


def quoted(text: str) -> str:
    return repr(shortened(text))


def _number_problem(feature: Feature, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, got {_type_name(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if abs(value) > MAX_ABS_NUMBER:
        return f"must be between -{MAX_ABS_NUMBER:g} and {MAX_ABS_NUMBER:g}"
    if feature.kind == "integer" and value != int(value):
        return "must be a whole number"
    if feature.minimum is not None and value < feature.minimum:
        return f"must be at least {feature.minimum}"
    if feature.maximum is not None and value > feature.maximum:
        return f"must be at most {feature.maximum}"
    return None
