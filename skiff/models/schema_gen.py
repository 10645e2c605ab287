"""JSON Schemas of the API objects, derived from the dataclasses that define them.

``python -m skiff.models.schema_gen`` rewrites schemas/objects/; a unit test fails when
the committed files drift from the models, so the published schemas stay true.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from skiff.models.codec import _fields
from skiff.models.kinds import KINDS

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def schema_of(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        options = [schema_of(a, defs) for a in get_args(tp) if a is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is typing.Literal:
        return {"enum": list(get_args(tp))}
    if origin in (list, tuple):
        return {"type": "array", "items": schema_of(get_args(tp)[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": schema_of(get_args(tp)[1], defs)}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            props, required = {}, []
            for _attr, key, ftp, f in _fields(tp):
                props[key] = schema_of(ftp, defs)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    required.append(key)
            defs[name] = {"type": "object", "properties": props,
                          "additionalProperties": False,
                          **({"required": required} if required else {})}
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no schema for {tp!r}")


def object_schema(cls: type) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    root = schema_of(cls, defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://skiff.dev/schemas/objects/{cls.__name__.lower()}.json",
            "title": cls.__name__, **root, "$defs": defs}


def render_all() -> dict[str, str]:
    return {f"{k.name.lower()}.schema.json": json.dumps(object_schema(k.cls), indent=2) + "\n"
            for k in KINDS}


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / name).write_text(text)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "schemas/objects")
