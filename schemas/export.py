"""Writes the JSON Schema of each contract to ``schemas/json`` (a test keeps the files in sync)."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.event import Event
from schemas.finding import Finding

JSON_DIR = Path(__file__).parent / "json"
EXPORTS = {"event-v1.schema.json": Event, "finding-v1.schema.json": Finding}


def render(model: type) -> str:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://aiwatch.dev/schemas/{model.__name__.lower()}-v1.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in EXPORTS.items():
        path = directory / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in export():
        print(p)
