"""JSON from a peer that may not be kind: parsed with bounds, refused with one error type.

Python's parser recurses once per level of nesting (``RecursionError`` near a thousand levels,
sooner deep in a server's stack), and whatever walks the result afterwards (pydantic, ``repr``,
``json.dumps``) recurses again. ``NaN``, ``Infinity`` and numbers too large for a float are not
JSON (RFC 8259) but Python reads them, and ``int(float("inf"))`` raises later, far from the
input. :func:`loads` refuses all of these at the door with :class:`JsonRefused`, and
:func:`nested_deeper_than` measures nesting without recursion. localpod reads submissions with
it, the endpoint client reads every answer with it.
"""

from __future__ import annotations

import json
import math
from typing import Any


class JsonRefused(ValueError):
    """A body that is not JSON, or JSON this reader refuses: nested deeper than its limit, or
    holding ``NaN``, ``Infinity`` or a number no float can hold. The message says which."""


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests arrays and objects more than ``limit`` levels deep,
    ``value`` itself counting as one. Iterative: no recursion limit to hit."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused(f"the number {text[:40]} does not fit a float")
    return value


def loads(data: bytes | str, *, max_depth: int) -> Any:
    """``data`` parsed, or :class:`JsonRefused` (not JSON, nested more than ``max_depth``
    levels, a non-finite number)."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise JsonRefused(f"nested more than {max_depth} levels deep") from None
    except JsonRefused:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int of 5 000 digits
        raise JsonRefused(f"not JSON: {exc}") from None
    if nested_deeper_than(value, max_depth):
        raise JsonRefused(f"nested more than {max_depth} levels deep")
    return value
