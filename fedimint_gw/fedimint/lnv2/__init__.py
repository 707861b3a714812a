"""Fedimint's LNv2 module (kind ``lnv2``): contracts, inputs/outputs and the gateway API forms.

Pure protocol code (docs/fedimint-protocol.md, "LNv2"): it imports only the consensus codec,
the crypto package and the errors.
"""
