"""One markdown table writer and the JSON + markdown output helper."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table: ``| h1 | h2 |``, ``|---|---|``, then one line per row (cells
    converted with ``str``; format numbers before). No trailing newline.

    Raises ValueError when a row has a different number of cells than the header (a table
    whose columns do not line up renders wrongly without any error in the viewer)."""
    n = len(header)
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|---" * n + "|"]
    for i, row in enumerate(rows):
        if len(row) != n:
            raise ValueError(f"row {i} has {len(row)} cells, the header {n}: {list(row)!r}")
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def write_outputs(res: dict, md: str | None, json_path: str | None, md_path: str | None,
                  echo: bool = True) -> None:
    """Write ``res`` as indented JSON to ``json_path`` and ``md`` to ``md_path`` where given
    (parent directories created); print ``md`` when ``echo``."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=1) + "\n")
    if md is not None:
        if md_path:
            Path(md_path).parent.mkdir(parents=True, exist_ok=True)
            Path(md_path).write_text(md)
        if echo:
            print(md)
