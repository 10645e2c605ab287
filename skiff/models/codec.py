"""Dataclasses to JSON-ready dicts and back, driven by type hints.

Objects cross three borders (etcd, HTTP, CLI output) as JSON; one codec keeps the
three in step. Classes that set ``JSON_CAMEL = True`` use camelCase keys (API objects,
Kubernetes-like); the others keep their field names (the compose-shaped spec).

Each type gets a decoder built once from its hints and cached: informers decode every
stored change, so the per-object cost matters at ten thousand tasks.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")
Decoder = Callable[[Any], Any]


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


_PLAIN = (str, int, float, bool, type(None))


def encode(obj: Any) -> Any:
    """Turn a model value into JSON-ready data; None-valued fields are left out."""
    cls = type(obj)
    if cls in _PLAIN:
        return obj
    names = _encoded_fields(cls) if hasattr(cls, "__dataclass_fields__") else None
    if names is not None:
        out: dict[str, Any] = {}
        for name, key in names:
            value = getattr(obj, name)
            if value is not None:
                out[key] = value if type(value) in _PLAIN else encode(value)
        return out
    if isinstance(obj, Mapping):
        return {str(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [encode(v) for v in obj]
    return obj


@functools.cache
def _encoded_fields(cls: type) -> tuple[tuple[str, str], ...]:
    return tuple((name, key) for name, key, _t, _f in _fields(cls))


def decode(cls: type[T], data: Any, path: str = "") -> T:
    """Build a model from JSON data, checking types on the way."""
    try:
        return typing.cast(T, _decoder(cls)(data))
    except DecodeError as exc:
        if not path:
            raise
        raise DecodeError(_join(path, exc.path) if exc.path else path, exc.message) from None


def _join(path: str, key: str) -> str:
    if key.startswith("["):
        return path + key
    return f"{path}.{key}" if path else key


def _within(key: str, exc: DecodeError) -> DecodeError:
    """The same error, one level further out (paths are built only when decoding fails)."""
    return DecodeError(_join(key, exc.path) if exc.path else key, exc.message)


@functools.cache
def _decoder(tp: Any) -> Decoder:
    if tp is Any:
        return lambda data: data
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _union(tp)
    if origin is typing.Literal:
        allowed = get_args(tp)
        choices = ", ".join(repr(a) for a in allowed)

        def literal(data: Any) -> Any:
            if data not in allowed or isinstance(data, bool):
                raise DecodeError("", f"{data!r} is not one of {choices}")
            return data
        return literal
    if origin in (list, tuple):
        item = _decoder((get_args(tp) or (Any,))[0])
        as_tuple = origin is tuple

        def sequence(data: Any) -> Any:
            if not isinstance(data, list | tuple):
                raise DecodeError("", f"expected a list, got {type(data).__name__}")
            items = []
            for i, v in enumerate(data):
                try:
                    items.append(item(v))
                except DecodeError as exc:
                    raise _within(f"[{i}]", exc) from None
            return tuple(items) if as_tuple else items
        return sequence
    if origin is dict:
        value = _decoder((get_args(tp) or (str, Any))[1])

        def mapping(data: Any) -> Any:
            if not isinstance(data, Mapping):
                raise DecodeError("", f"expected a mapping, got {type(data).__name__}")
            out = {}
            for k, v in data.items():
                try:
                    out[str(k)] = value(v)
                except DecodeError as exc:
                    raise _within(str(k), exc) from None
            return out
        return mapping
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    return _scalar(tp)


def _union(tp: Any) -> Decoder:
    args = get_args(tp)
    optional = type(None) in args
    options = [_decoder(a) for a in args if a is not type(None)]

    def union(data: Any) -> Any:
        if data is None and optional:
            return None
        errors = []
        for option in options:
            try:
                return option(data)
            except DecodeError as exc:
                if exc.path:  # the value had the right shape: its inside is wrong
                    raise
                errors.append(exc.message)
        raise DecodeError("", "; ".join(errors) or "unexpected null")
    return union


def _dataclass(tp: type) -> Decoder:
    known = {key for _n, key, _t, _f in _fields(tp)}
    # Field decoders are looked up on first use, not here: a type may contain itself.
    plan: list[tuple[str, str, Decoder, bool]] = []

    def prepare() -> None:
        for name, key, ftp, f in _fields(tp):
            required = f.default is dataclasses.MISSING and \
                f.default_factory is dataclasses.MISSING
            plan.append((name, key, _decoder(ftp), required))

    def dataclass_(data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise DecodeError("", f"expected an object, got {type(data).__name__}")
        if not plan:
            prepare()
        kwargs = {}
        for name, key, dec, required in plan:
            value = data.get(key)
            try:
                if value is not None:
                    kwargs[name] = dec(value)
                elif required:
                    if key not in data:
                        raise DecodeError("", "is required")
                    kwargs[name] = dec(None)
            except DecodeError as exc:
                raise _within(key, exc) from None
        if len(data) > len(kwargs) and not known.issuperset(data):
            unknown = sorted(set(data) - known)
            raise DecodeError("", f"unknown field(s): {', '.join(unknown)}")
        return tp(**kwargs)
    return dataclass_


def _scalar(tp: Any) -> Decoder:
    if tp is float:
        def number(data: Any) -> float:
            if isinstance(data, bool) or not isinstance(data, int | float):
                raise DecodeError("", f"expected a number, got {data!r}")
            return float(data)
        return number
    if tp is int:
        def integer(data: Any) -> int:
            if isinstance(data, bool) or not isinstance(data, int):
                raise DecodeError("", f"expected an integer, got {data!r}")
            return data
        return integer
    if tp in (str, bool):
        def exact(data: Any) -> Any:
            if not isinstance(data, tp):
                raise DecodeError("", f"expected {tp.__name__}, got {data!r}")
            return data
        return exact
    if tp is type(None):
        def null(data: Any) -> None:
            if data is not None:
                raise DecodeError("", f"expected null, got {data!r}")
        return null
    raise TypeError(f"codec cannot decode type {tp!r}")
