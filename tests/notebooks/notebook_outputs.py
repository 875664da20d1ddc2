"""Reading what an executed notebook showed."""

from __future__ import annotations

import nbformat


def cell_text(cell: nbformat.NotebookNode) -> str:
    """Every output of one cell as one string (streams, text and HTML data, tracebacks)."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(str(output.get("text", "")))
        for key, value in output.get("data", {}).items():
            if key.startswith("text/") or key == "application/javascript":
                parts.append(str(value))
        parts.extend(output.get("traceback", []))
    return "\n".join(parts)


def output_text(notebook: nbformat.NotebookNode) -> str:
    """Every output of every cell."""
    return "\n".join(cell_text(cell) for cell in notebook.cells)


def cell_calling(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The first code cell whose source mentions ``name``."""
    return next(c for c in notebook.cells if c.cell_type == "code" and name in c.source)
