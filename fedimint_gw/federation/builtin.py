"""The adapters shipped with the gateway: one small list, imported by the composer only.

The registry never imports this module (an import contract in `make lint` checks it), so
adapter modules may import the seam (`adapter.py`) without a circle.
"""

from __future__ import annotations

from fedimint_gw.federation.adapter import AdapterFactory
from fedimint_gw.federation.devfed import v1, v2
from fedimint_gw.federation.fedimint import lnv1, lnv2_factory


def builtin_adapters() -> list[AdapterFactory]:
    """The adapters this package ships: devfed API v1 and v2, Fedimint's LNv1 (pseudo-major 101)
    and LNv2 (102)."""
    return [v1.FACTORY, v2.FACTORY, lnv1.FACTORY, lnv2_factory.FACTORY]
