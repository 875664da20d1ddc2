"""Writing a run's results under ``artifacts/<notebook>/``: JSON that survives NaN, numpy scalars,
enums and paths; tables as CSV; figures as PNG."""

from __future__ import annotations

import enum
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def json_ready(value: Any) -> Any:
    """``value`` with every part JSON can hold: NaN/inf become None, numpy scalars Python
    numbers, enums their values, paths strings, tuples and sets lists."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_ready(v) for v in value]
    if isinstance(value, enum.Enum):
        return json_ready(value.value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        return json_ready(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(data: Any, path: str | Path) -> Path:
    """Write ``data`` as indented JSON (folders made as needed) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready(data), indent=2) + "\n", encoding="utf-8")
    return path


def write_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` as CSV without its index and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready rows."""
    return json_ready(table.to_dict("records"))


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG (folders made as needed) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
