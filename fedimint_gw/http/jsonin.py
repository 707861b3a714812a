"""Decoding request bodies from strangers: JSON that cannot hurt what reads it.

Python's `json` module accepts nesting until the interpreter's recursion limit (then raises
RecursionError), integers of any size (SQLite then overflows), `NaN`/`Infinity`, and lone
UTF-16 surrogates (`"\\ud800"`, which no UTF-8 encoder takes). A body with any of these is
refused here, as `InvalidInput`, before any service sees it.
"""

from __future__ import annotations

import json
from typing import Any

from fedimint_gw.errors import InvalidInput

MAX_DEPTH = 16  # objects and arrays inside each other; real requests need about 5
MAX_INTEGER = 2**63 - 1  # the largest integer SQLite and lightningd store


class _Refused(Exception):
    pass


def _integer(text: str) -> int:
    if len(text) > 20:
        raise _Refused(f"the integer {text[:24]}... is too large")
    value = int(text)
    if not -MAX_INTEGER - 1 <= value <= MAX_INTEGER:
        raise _Refused(f"the integer {value} is out of range (at most {MAX_INTEGER})")
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not valid JSON")


def decode(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `raw` as UTF-8 JSON within the bounds above; InvalidInput otherwise."""
    try:
        value = json.loads(raw, parse_int=_integer, parse_constant=_constant)
    except _Refused as exc:
        raise InvalidInput(f"the request body is refused: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"the request body nests deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the request body is not valid JSON") from None
    _check_tree(value, max_depth)
    return value


def decode_object(raw: bytes) -> dict[str, Any]:
    """`decode`, and the body must be a JSON object."""
    body = decode(raw)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def _check_tree(value: Any, max_depth: int) -> None:
    """Depth and strings, without recursion (the tree may be as deep as json allowed)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise InvalidInput(f"the request body nests deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("the request body holds a lone UTF-16 surrogate (invalid Unicode)") from None
