"""The user's side in regtest tests: the launcher's `WalletUser`, joined at creation, plus the
calls the tests make by API version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contrib.devfed import wallet_ln
from contrib.regtest.users import WalletUser


class User(WalletUser):
    """A devfed wallet in one file, joined to the federation of `invite_code`."""

    def __init__(self, path: Path, invite_code: str) -> None:
        super().__init__(path)
        self.join(invite_code)

    def receive_v1(self, gateway_key: str, amount_msat: int) -> wallet_ln.Receive:
        return self.run(lambda w: wallet_ln.receive_v1(w, gateway_key, amount_msat, "regtest receive"))

    def receive_v2(self, api_url: str, amount_msat: int) -> wallet_ln.Receive:
        return self.run(lambda w: wallet_ln.receive_v2(w, api_url, amount_msat, "regtest receive"))

    def claim(self, receive: wallet_ln.Receive | str) -> int:  # type: ignore[override]
        claim = receive if isinstance(receive, str) else wallet_ln.claim_id(receive)
        return super().claim(claim)

    def routing_info(self, api_url: str) -> dict[str, Any]:
        return self.run(lambda w: wallet_ln.routing_info(w, api_url))
