"""The `.env` file beside a manifest, read as compose reads it."""

from __future__ import annotations

import re

from skiff.manifest.errors import Problem

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")


def parse_dotenv(text: str, source: str) -> tuple[dict[str, str], list[Problem]]:
    """KEY=VALUE lines; ``#`` comments; single quotes literal, double quotes with
    escapes; an unquoted value ends at `` #``. Bad lines are problems, not crashes."""
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            problems.append(Problem(source, number, 1, "", f"not KEY=VALUE: {raw.strip()!r}"))
            continue
        key, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = (value[1:-1].replace("\\n", "\n").replace('\\"', '"')
                     .replace("\\\\", "\\"))
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        values[key] = value
    return values, problems
