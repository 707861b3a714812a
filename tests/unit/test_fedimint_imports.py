"""fedimint_gw.fedimint imports only domain, crypto, errors, clock and third-party libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import fedimint_gw.fedimint

ALLOWED = (
    "fedimint_gw.fedimint",
    "fedimint_gw.domain",
    "fedimint_gw.crypto",
    "fedimint_gw.errors",
    "fedimint_gw.clock",
)


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_package_imports_stay_inside_its_layer() -> None:
    package = Path(fedimint_gw.fedimint.__file__).parent
    offending = [
        f"{path.name}: {name}"
        for path in sorted(package.glob("*.py"))
        for name in _imports(path)
        if name.startswith("fedimint_gw") and not name.startswith(ALLOWED)
    ]
    assert offending == []
    assert len(list(package.glob("*.py"))) >= 10
