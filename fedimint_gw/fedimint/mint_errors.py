"""Errors of the mint client (codes 2198-2199 of the Fedimint protocol range, plus 2189)."""

from __future__ import annotations

from fedimint_gw.fedimint.errors import FedimintProtocolError


class SharesInsufficient(FedimintProtocolError):
    """Fewer than a threshold of guardians gave valid signature shares for a note."""

    code = 2198


class NoteInvalid(FedimintProtocolError):
    """A note (received out of band, or held) that the federation's keys do not sign."""

    code = 2199
    http_status = 400


class Unbalanceable(FedimintProtocolError):
    """No set of notes balances the transaction exactly (amount too small for the fees, or
    not made of the federation's tiers)."""

    code = 2189
    http_status = 400
