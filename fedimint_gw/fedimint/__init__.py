"""Fedimint's own wire protocol: consensus encoding, client config, invite codes, guardian API.

This package speaks what real Fedimint federations speak (as read from the fedimint/fedimint
sources, v0.7-era where versions differ; see docs/fedimint-protocol.md). It is separate from
the devfed dialects in `fedimint_gw.federation`. It imports only domain, crypto, errors and
third-party libraries, never services, federation adapters or the plugin.
"""
