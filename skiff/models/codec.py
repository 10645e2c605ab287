"""Dataclasses to JSON-ready dicts and back, driven by type hints.

Objects cross three borders (etcd, HTTP, CLI output) as JSON; one codec keeps the
three in step. Classes that set ``JSON_CAMEL = True`` use camelCase keys (API objects,
Kubernetes-like); the others keep their field names (the compose-shaped spec).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class DecodeError(ValueError):
    """Stored or received JSON does not fit the model it should decode into."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or '<root>'}: {message}")
        self.path = path
        self.message = message


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, str, Any, dataclasses.Field[Any]], ...]:
    """(attribute, json key, resolved type, field) for each field of a dataclass."""
    hints = get_type_hints(cls)
    camel = bool(getattr(cls, "JSON_CAMEL", False))
    out = []
    for f in dataclasses.fields(cls):
        key = f.metadata.get("json") or (_camel(f.name) if camel else f.name)
        out.append((f.name, key, hints[f.name], f))
    return tuple(out)


def encode(obj: Any) -> Any:
    """Turn a model value into JSON-ready data; None-valued fields are left out."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for name, key, _tp, _f in _fields(type(obj)):
            value = getattr(obj, name)
            if value is None:
                continue
            out[key] = encode(value)
        return out
    if isinstance(obj, Mapping):
        return {str(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [encode(v) for v in obj]
    return obj


def decode(cls: type[T], data: Any, path: str = "") -> T:
    """Build a model from JSON data, checking types on the way."""
    return typing.cast(T, _decode(cls, data, path))


def _decode(tp: Any, data: Any, path: str) -> Any:
    if tp is Any:
        return data
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, data, path)
            except DecodeError as exc:
                errors.append(exc.message)
        raise DecodeError(path, "; ".join(errors) or "unexpected null")
    if origin is typing.Literal:
        if data not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise DecodeError(path, f"{data!r} is not one of {choices}")
        return data
    if origin in (list, tuple):
        if not isinstance(data, list | tuple):
            raise DecodeError(path, f"expected a list, got {type(data).__name__}")
        (item_tp, *_rest) = get_args(tp) or (Any,)
        items = [_decode(item_tp, v, f"{path}[{i}]") for i, v in enumerate(data)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(data, Mapping):
            raise DecodeError(path, f"expected a mapping, got {type(data).__name__}")
        _key_tp, val_tp = get_args(tp) or (str, Any)
        return {str(k): _decode(val_tp, v, f"{path}.{k}" if path else str(k))
                for k, v in data.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, Mapping):
            raise DecodeError(path, f"expected an object, got {type(data).__name__}")
        kwargs = {}
        known = set()
        for name, key, ftp, f in _fields(tp):
            known.add(key)
            sub = f"{path}.{key}" if path else key
            if key in data and data[key] is not None:
                kwargs[name] = _decode(ftp, data[key], sub)
            elif (f.default is dataclasses.MISSING
                  and f.default_factory is dataclasses.MISSING):
                if key in data:
                    kwargs[name] = _decode(ftp, None, sub)
                else:
                    raise DecodeError(sub, "is required")
        unknown = sorted(set(data) - known)
        if unknown:
            raise DecodeError(path, f"unknown field(s): {', '.join(unknown)}")
        return tp(**kwargs)
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise DecodeError(path, f"expected a number, got {data!r}")
        return float(data)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(path, f"expected an integer, got {data!r}")
        return data
    if tp in (str, bool):
        if not isinstance(data, tp):
            raise DecodeError(path, f"expected {tp.__name__}, got {data!r}")
        return data
    if tp is type(None):
        if data is not None:
            raise DecodeError(path, f"expected null, got {data!r}")
        return None
    raise TypeError(f"codec cannot decode type {tp!r}")
