"""fedimint-backup inside lightningd: pay, back up, pay more, wipe, restore.

After the restore, balances and history are what the backup holds; the notes the gateway spent
after the backup are still in the file but refused by the federation, and each refusal retires
the note it names: the operator sees a clear error, nothing crashes, and the gateway then
serves payments again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pyln.client import RpcError
from pyln.testing.utils import wait_for

from tests.regtest.test_payments import _ecash, settled
from tests.regtest.user import User

pytestmark = pytest.mark.regtest


def _history(node: Any) -> list[tuple[str, str, str, int]]:
    return [
        (p["payment_id"], p["kind"], p["state"], p["amount_msat"])
        for p in node.rpc.call("fedimint-payments", {"limit": 1000})["payments"]
    ]


def _receive(l1: Any, user: User, gw_key: str, amount: int) -> None:
    receive = user.receive_v1(gw_key, amount)
    l1.rpc.call("xpay", {"invstring": receive.bolt11})
    assert user.claim(receive) == amount


def _setup(node_factory: Any, gw_opts: Any, devfeds: Any, directory: str) -> tuple[Any, Any, Any, User]:
    """test_payments' setup (payer l1 -> gateway l2, a v1 federation, 2,000 sat of gateway ecash,
    a user), with nodes that may reconnect: l2 is stopped and started."""
    l1, l2 = node_factory.line_graph(
        2,
        opts=[{"may_reconnect": True}, gw_opts(may_reconnect=True)],
        wait_for_announce=True,
        fundamount=10**7,
    )
    fed = devfeds("fedbackup", "1")
    assert l2.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})["status"] == "connected"
    treasurer = User(Path(directory) / "treasurer.wallet", fed.invite_code)
    treasurer.faucet(2_000_000)
    notes = treasurer.send_ecash(2_000_000)
    l2.rpc.call("fedimint-ecash-receive", {"federation_id": fed.federation_id, "notes": notes})
    return l1, l2, fed, User(Path(directory) / "user.wallet", fed.invite_code)


def test_backup_pay_more_wipe_restore(node_factory: Any, gw_opts: Any, devfeds: Any, directory: str) -> None:
    l1, l2, fed, user = _setup(node_factory, gw_opts, devfeds, directory)
    fid = fed.federation_id
    gw_key = user.gateway_key_v1(l2.info["id"])

    _receive(l1, user, gw_key, 100_000)
    settled(l2)
    backup = Path(directory) / "backups" / "gw.sqlite3"
    backup.parent.mkdir()
    made = l2.rpc.call("fedimint-backup", {"path": str(backup)})
    ecash_at_backup = _ecash(l2, fid)
    history_at_backup = _history(l2)
    assert made["ecash_msat"] == ecash_at_backup == 2_000_000 - 100_000
    assert made["payments"] == len(history_at_backup) and made["federations"] == 1
    with pytest.raises(RpcError, match="never overwrites"):
        l2.rpc.call("fedimint-backup", {"path": str(backup)})
    with pytest.raises(RpcError, match="must be absolute"):
        l2.rpc.call("fedimint-backup", {"path": "relative.sqlite3"})

    _receive(l1, user, gw_key, 300_000)  # spends notes the backup still holds
    settled(l2)
    assert _ecash(l2, fid) == ecash_at_backup - 300_000

    # The disk is lost: stop, wipe the database, restore the backup, start.
    db = Path(l2.rpc.call("fedimint-info")["database"])
    l2.stop()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, db)
    l2.start()
    wait_for(lambda: l2.daemon.is_in_log(f"restored from a backup taken at {made['created_at']}"))
    wait_for(lambda: all(f["status"] == "connected" for f in l2.rpc.call("fedimint-info")["federations"]))
    l1.rpc.connect(l2.info["id"], "localhost", l2.port)
    wait_for(
        lambda: all(
            c["peer_connected"] and c["state"] == "CHANNELD_NORMAL"
            for c in l1.rpc.listpeerchannels()["channels"]
        )
    )
    assert _ecash(l2, fid) == ecash_at_backup
    assert _history(l2) == history_at_backup

    # Take all the ecash out: the stale notes are refused one by one and retired.
    retired = 0
    while True:
        balance = _ecash(l2, fid)
        try:
            out = l2.rpc.call("fedimint-ecash-send", {"federation_id": fid, "amount_msat": balance})
            break
        except RpcError as exc:
            assert exc.error["code"] == 2111 and "already spent" in exc.error["message"], exc.error
            assert _ecash(l2, fid) < balance  # the note the federation named is out of the pool
            retired += 1
            assert retired <= 20, "stale notes are not being retired"
    assert retired >= 1
    assert ecash_at_backup - out["amount_msat"] >= 300_000  # at least what was spent since the backup

    # The good notes are good: put them back, and the gateway serves a receive again.
    back = l2.rpc.call("fedimint-ecash-receive", {"federation_id": fid, "notes": out["notes"]})
    assert back["received_msat"] == out["amount_msat"]
    _receive(l1, user, gw_key, 50_000)
    settled(l2)
    assert _ecash(l2, fid) == out["amount_msat"] - 50_000
    assert [p for p in _history(l2) if p in history_at_backup] == history_at_backup
