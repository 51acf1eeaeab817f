"""The providers' own request definitions, read from their official Python SDKs, as validators.

The stand-ins check each request body against the type the provider's SDK declares for that
operation (elevenlabs 2.78.0, vapi_server_sdk 3.0.0, retell-sdk 6.2.13; pinned in
requirements.txt): a field the type does not define, a missing required field or a value of the
wrong type is a violation. The SDKs' own models cannot do this on their own: Fern models (ElevenLabs,
Vapi) allow extra fields and coerce types, and Stainless params (Retell) are plain TypedDicts, so
`conform` walks the declared types itself.

What the types cannot say (which host a URI names, that a tool we do not own comes back unchanged)
stays in the stand-ins' own checks.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Any

import pydantic
import typing_extensions

# A stand-in for "the keyword arguments of this SDK method that go into the JSON body".
Body = dict[str, tuple[Any, bool]]  # name → (annotation, required)

_DISCRIMINANTS = ("type", "provider", "system_tool_type")


def conform(value: Any, annotation: Any, where: str = "body") -> list[str]:
    """Why `value` (decoded JSON) is not of `annotation`; [] when it is."""
    origin = typing_extensions.get_origin(annotation)
    args = typing_extensions.get_args(annotation)
    if annotation is Any or annotation is object:
        return []
    if origin is typing.Annotated:
        return conform(value, args[0], where)
    if isinstance(annotation, typing.ForwardRef | str):
        raise TypeError(f"{where}: unresolved forward reference {annotation!r}")
    if origin in (typing.Union, types.UnionType):
        return _union(value, args, where)
    if origin is typing.Literal:
        return (
            []
            if any(value == a and type(value) is type(a) for a in args)
            else [f"{where} must be one of {list(args)}, not {value!r}"]
        )
    if annotation is type(None):
        return [] if value is None else [f"{where} must be null, not {value!r}"]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return _fields(value, _model_fields(annotation), where)
    if typing_extensions.is_typeddict(annotation):
        return _fields(value, _typeddict_fields(annotation), where)
    if origin in (list, collections.abc.Sequence, collections.abc.Iterable, set, frozenset):
        if not isinstance(value, list):
            return [f"{where} must be a list, not {value!r}"]
        item = args[0] if args else Any
        return [error for index, v in enumerate(value) for error in conform(v, item, f"{where}.{index}")]
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            return [f"{where} must be an object, not {value!r}"]
        item = args[1] if len(args) == 2 else Any
        return [error for key, v in value.items() for error in conform(v, item, f"{where}.{key}")]
    return _scalar(value, annotation, where)


def conform_body(value: Any, body: Body, where: str = "body") -> list[str]:
    return _fields(value, body, where)


def sdk_body(method: Any, *, exclude: set[str] | frozenset[str] = frozenset()) -> Body:
    """The JSON body of a Fern SDK method taking keyword arguments: those that default to OMIT.

    (Fern gives query parameters a default of None and body fields the OMIT sentinel `...`.)
    """
    hints = typing.get_type_hints(method, include_extras=True)
    fields: Body = {}
    for name, parameter in inspect.signature(method).parameters.items():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY or name in exclude:
            continue
        if parameter.default is ... or parameter.default is inspect.Parameter.empty:
            fields[name] = (hints[name], parameter.default is inspect.Parameter.empty)
    return fields


def only(fields: Body, *names: str) -> Body:
    return {name: fields[name] for name in names}


def camel(fields: Body) -> Body:
    """Vapi's wire names for Fern's snake_case keyword arguments (`first_message` → `firstMessage`)."""
    return {_camel(name): value for name, value in fields.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# --- the walk ------------------------------------------------------------------------------


def _fields(value: Any, fields: Body, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where} must be an object, not {value!r}"]
    errors = [f"{where}.{name} is not a field the provider defines" for name in value if name not in fields]
    for name, (annotation, required) in fields.items():
        if name not in value:
            if required:
                errors.append(f"{where}.{name} is required")
            continue
        errors.extend(conform(value[name], annotation, f"{where}.{name}"))
    return errors


def _union(value: Any, members: tuple[Any, ...], where: str) -> list[str]:
    candidates = list(members)
    if isinstance(value, dict):
        # A discriminated union: judge by the member the discriminant names, for a readable error.
        for key in _DISCRIMINANTS:
            named = [
                m
                for m in members
                if _literal_of(m, key) is not None and value.get(key) in _literal_of(m, key)
            ]
            if named:
                candidates = named
                break
    failures: list[list[str]] = []
    for member in candidates:
        errors = conform(value, member, where)
        if not errors:
            return []
        failures.append(errors)
    return min(failures, key=len)


def _literal_of(member: Any, key: str) -> tuple[Any, ...] | None:
    if typing_extensions.get_origin(member) is typing.Annotated:
        member = typing_extensions.get_args(member)[0]
    fields: Body
    if isinstance(member, type) and issubclass(member, pydantic.BaseModel):
        fields = _model_fields(member)
    elif typing_extensions.is_typeddict(member):
        fields = _typeddict_fields(member)
    else:
        return None
    if key not in fields:
        return None
    annotation = fields[key][0]
    while typing_extensions.get_origin(annotation) is typing.Annotated:
        annotation = typing_extensions.get_args(annotation)[0]
    if typing_extensions.get_origin(annotation) is typing.Literal:
        return typing_extensions.get_args(annotation)
    return None


def _model_fields(model: type[pydantic.BaseModel]) -> Body:
    # Fern resolves its forward references once the package is imported; rebuild if one is left.
    if not model.__pydantic_complete__:
        model.model_rebuild()
    return {
        (info.alias or name): (info.annotation, info.is_required())
        for name, info in model.model_fields.items()
    }


def _typeddict_fields(typed: Any) -> Body:
    hints = typing.get_type_hints(typed, include_extras=True)
    fields: Body = {}
    for name, annotation in hints.items():
        # Stainless marks the wire name of a renamed field with PropertyInfo(alias=...).
        alias = name
        if typing_extensions.get_origin(annotation) is typing.Annotated:
            for meta in typing_extensions.get_args(annotation)[1:]:
                alias = getattr(meta, "alias", None) or alias
        while typing_extensions.get_origin(annotation) in (
            typing_extensions.Required,
            typing_extensions.NotRequired,
        ):
            annotation = typing_extensions.get_args(annotation)[0]
        fields[alias] = (annotation, name in typed.__required_keys__)
    return fields


def _scalar(value: Any, annotation: Any, where: str) -> list[str]:
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif annotation is str or (isinstance(annotation, type) and annotation.__module__ == "datetime"):
        ok = isinstance(value, str)
    else:
        raise TypeError(f"{where}: no rule for the SDK type {annotation!r}")
    name = getattr(annotation, "__name__", str(annotation))
    return [] if ok else [f"{where} must be of type {name}, not {value!r}"]
