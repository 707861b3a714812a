"""Fedimint's LNv1 module (`ln`): contracts, inputs, outputs, outcomes, config, gateway announcements.

Pure protocol (`modules/fedimint-ln-common`, v0.5-v0.7 layout); docs/fedimint-protocol.md.
"""
