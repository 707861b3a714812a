"""``devfed``: run a development federation, administer it, and use a wallet.

devfed run --name NAME --guardians 4 --threshold 3 --api 1,2 --data-dir DIR
           [--bitcoind-rpc URL] [--base-port P] [--admin-port P] [--tx-fee-msat F]
devfed run --api fedimint --data-dir DIR [--fedimint-fee-base-msat B] [--fedimint-fee-ppm P]
           [--fedimint-ln]     (also serve Fedimint's LNv1 module, instance 0; first start only)
           [--fedimint-lnv2]   (also serve Fedimint's LNv2 module, instance 3; first start only)
           (Fedimint's own protocol, its own guardians and invite; may be combined: --api 1,2,fedimint)
devfed gateways add URL --admin ADMIN_URL      (also: remove, list)
devfed admin fault PEER MODE [--delay-ms N] --admin ADMIN_URL
devfed admin advance BLOCKS --admin ADMIN_URL
devfed wallet --wallet FILE join INVITE | balance | faucet MSAT | send MSAT | receive ECASH
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiohttp

from contrib.devfed import wallet_ln
from contrib.devfed.client import http_json
from contrib.devfed.errors import DevfedError
from contrib.devfed.federation import FederationParams
from contrib.devfed.fedimint.keys import FedimintParams
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from contrib.devfed.server import start_federation
from contrib.devfed.wallet import Wallet

FEDIMINT_FAMILY = "fedimint"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="devfed", description="development federation")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run all guardians of a federation until SIGINT/SIGTERM")
    run.add_argument("--name", default="devfed")
    run.add_argument("--guardians", type=int, default=4)
    run.add_argument("--threshold", type=int, default=3)
    run.add_argument(
        "--api",
        default="1,2",
        help="comma-separated API majors to serve, and/or 'fedimint' (Fedimint's protocol)",
    )
    run.add_argument("--data-dir", type=Path, required=True)
    run.add_argument("--bitcoind-rpc", default=None, help="http://user:pass@host:port")
    run.add_argument("--base-port", type=int, default=0)
    run.add_argument("--admin-port", type=int, default=0)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--tx-fee-msat", type=int, default=0)
    run.add_argument(
        "--fedimint-fee-base-msat", type=int, default=0, help="mint fee per note (fedimint family)"
    )
    run.add_argument(
        "--fedimint-fee-ppm", type=int, default=0, help="mint fee ppm per note (fedimint family)"
    )
    run.add_argument(
        "--fedimint-lnv2", action="store_true", help="also serve the LNv2 module (fedimint family)"
    )
    run.add_argument(
        "--fedimint-ln",
        action="store_true",
        help="the fedimint family also serves the LNv1 module (ln) at instance 0 (first start only)",
    )
    gw = sub.add_parser("gateways", help="v2 gateway vetting (admin API)")
    gw.add_argument("action", choices=["add", "remove", "list"])
    gw.add_argument("url", nargs="?")
    gw.add_argument("--admin", required=True, help="admin URL (see status.json)")
    adm = sub.add_parser("admin", help="fault injection and block height")
    adm.add_argument("action", choices=["fault", "advance", "status"])
    adm.add_argument("args", nargs="*")
    adm.add_argument("--delay-ms", type=int, default=0)
    adm.add_argument("--admin", required=True)
    w = sub.add_parser("wallet", help="the user wallet")
    w.add_argument("--wallet", type=Path, required=True, help="wallet SQLite file")
    w.add_argument(
        "action",
        choices=["join", "balance", "faucet", "send", "receive", "info", "ln-invoice", "ln-claim", "ln-pay"],
        help="ln-invoice MSAT: an invoice into this wallet through the gateway; ln-claim CLAIM_ID: "
        "take the ecash of a paid invoice; ln-pay BOLT11: pay an invoice through the gateway",
    )
    w.add_argument("args", nargs="*")
    w.add_argument("--gateway-api", default="", help="the gateway's API URL (fedimint-info api_url)")
    w.add_argument("--gateway-node", default="", help="the gateway's Lightning node id")
    return p


async def _run(args: argparse.Namespace) -> int:
    families = [m.strip() for m in str(args.api).split(",") if m.strip()]
    majors = tuple(int(m) for m in families if m != FEDIMINT_FAMILY)
    # Handlers first: a signal during startup stops cleanly once started.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stoppers = []
    if FEDIMINT_FAMILY in families:
        fedimint = await _run_fedimint(args)
        stoppers.append(fedimint.stop)
    if majors:
        stoppers.append(await _run_devfed(args, majors))
    await stop.wait()
    for stopper in stoppers:
        await stopper()
    return 0


async def _run_fedimint(args: argparse.Namespace) -> RunningFedimint:
    """The Fedimint-family federation under ``<data-dir>/fedimint`` (its own guardians and invite)."""
    params = FedimintParams(
        name=args.name,
        guardians=args.guardians,
        fee_base_msat=args.fedimint_fee_base_msat,
        fee_ppm=args.fedimint_fee_ppm,
        lnv2=args.fedimint_lnv2,
        ln=args.fedimint_ln,
    )
    running = await start_fedimint(args.data_dir / FEDIMINT_FAMILY, params, host=args.host)
    print(running.invite_code, flush=True)
    print(f"fedimint admin: {running.admin_url}", file=sys.stderr, flush=True)
    return running


async def _run_devfed(args: argparse.Namespace, majors: tuple[int, ...]) -> Callable[[], Awaitable[None]]:
    params = FederationParams(
        name=args.name,
        guardians=args.guardians,
        threshold=args.threshold,
        majors=majors,
        tx_fee_msat=args.tx_fee_msat,
        bitcoind_rpc=args.bitcoind_rpc,
    )
    running = await start_federation(
        args.data_dir, params, host=args.host, base_port=args.base_port, admin_port=args.admin_port
    )
    print(running.invite_code, flush=True)
    print(f"admin: {running.admin_url}", file=sys.stderr, flush=True)
    return running.stop


async def _admin(args: argparse.Namespace) -> object:
    base = str(args.admin).rstrip("/")
    async with aiohttp.ClientSession() as session:
        if args.command == "gateways":
            if args.action == "list":
                return await http_json(session, "GET", f"{base}/admin/gateways")
            if not args.url:
                raise ValueError("gateways add/remove need a URL")
            method = "POST" if args.action == "add" else "DELETE"
            return await http_json(session, method, f"{base}/admin/gateways", {"url": args.url})
        if args.action == "status":
            return await http_json(session, "GET", f"{base}/admin/status")
        if args.action == "advance":
            return await http_json(
                session, "POST", f"{base}/admin/block_height", {"advance": int(args.args[0])}
            )
        peer, mode = args.args[0], args.args[1]
        body = {"mode": mode, "delay_ms": args.delay_ms}
        return await http_json(session, "POST", f"{base}/admin/guardians/{int(peer)}/fault", body)


async def _wallet(args: argparse.Namespace) -> object:
    async with aiohttp.ClientSession() as session:
        wallet = Wallet.open(args.wallet, session)
        try:
            action, rest = args.action, list(args.args)
            if action == "join":
                return {"federation_id": await wallet.join(rest[0])}
            if action == "faucet":
                await wallet.faucet(int(rest[0]))
            elif action == "send":
                return {"ecash": await wallet.send_ecash(int(rest[0])), "balance_msat": wallet.balance_msat()}
            elif action == "receive":
                return {
                    "received_msat": await wallet.receive_ecash(rest[0]),
                    "balance_msat": wallet.balance_msat(),
                }
            elif action == "ln-invoice":
                made = await wallet_ln.receive(
                    wallet, args.gateway_node, args.gateway_api, int(rest[0]), " ".join(rest[1:]) or "devfed"
                )
                return {
                    "bolt11": made.bolt11,
                    "payment_hash": made.payment_hash,
                    "claim_id": wallet_ln.claim_id(made),
                }
            elif action == "ln-claim":
                return {
                    "claimed_msat": await wallet_ln.claim_receive(wallet, rest[0]),
                    "balance_msat": wallet.balance_msat(),
                }
            elif action == "ln-pay":
                answer = await wallet_ln.pay_via(wallet, rest[0], args.gateway_node, args.gateway_api)
                return {**answer, "balance_msat": wallet.balance_msat()}
            elif action == "info":
                return {
                    "federation_id": wallet.federation_id,
                    "major": wallet.client.major,
                    "balance_msat": wallet.balance_msat(),
                }
            return {"balance_msat": wallet.balance_msat()}
        finally:
            wallet.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``devfed`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return asyncio.run(_run(args))
        coro = _wallet(args) if args.command == "wallet" else _admin(args)
        print(json.dumps(asyncio.run(coro), indent=2))
        return 0
    except DevfedError as exc:
        print(json.dumps({"error": exc.to_dict()}), file=sys.stderr)
        return 1
    except (IndexError, ValueError) as exc:
        print(f"devfed: bad arguments: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
