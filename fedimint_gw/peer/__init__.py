"""The inter-gateway peer protocol (docs/peer-protocol.md): wire format, signatures, ledger math, client.

Pure or transport-only code; the flows that use it live in fedimint_gw.services.peer*.
"""
