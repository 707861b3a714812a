#!/usr/bin/env python3
"""fedimint-gw: Core Lightning plugin entry point. Wiring only.

lightningd runs this file (`plugin=` or `important-plugin=`). It registers the
`fedimint-gw-*` options, the `fedimint-*` commands and the `htlc_accepted` hook, and hands
every call to the gateway services in the `fedimint_gw` package, running on one asyncio
loop in a background thread. Nothing here does I/O on lightningd's stdin thread except
answering unrelated HTLCs with `continue`, which is a lookup in memory.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

from pyln.client import Plugin, RpcException

# Run from a checkout: make the fedimint_gw package next to this folder importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fedimint_gw.clock import SystemClock
from fedimint_gw.config import OPTIONS, build_config
from fedimint_gw.domain.htlc import (
    TEMPORARY_NODE_FAILURE,
    HtlcEvent,
    answer_continue,
    answer_fail,
)
from fedimint_gw.errors import NotFound, NotReady
from fedimint_gw.lightning.cln import ClnNode
from fedimint_gw.runtime import Bridge, Runtime
from fedimint_gw.services.events import TOPICS
from fedimint_gw.services.gateway import Gateway
from fedimint_gw.services.htlc_router import HtlcOwner


class GatewayPlugin:
    """Holds the plugin's runtime objects; built in `main`, filled in at `init`."""

    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin
        self.runtime = Runtime()
        self.bridge = Bridge(self.runtime, self.log, lambda code, msg: RpcException(msg, code))
        self.gateway: Gateway | None = None

    def log(self, message: str, level: str = "info") -> None:
        self.plugin.log(message, level=level)

    def require(self) -> Gateway:
        if self.gateway is None:
            raise NotReady("fedimint-gw has not finished starting")
        return self.gateway


class PluginEvents:
    """The gateway's events as CLN custom notifications (topics declared in `_register`)."""

    def __init__(self, gw: GatewayPlugin) -> None:
        self._gw = gw

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            self._gw.plugin.notify(topic, payload)
        except Exception as exc:  # an undeliverable event is dropped, never raised into a flow
            self._gw.log(f"could not send notification {topic}: {exc!r}", "warn")


def _init(gw: GatewayPlugin, options: dict[str, Any], configuration: dict[str, Any]) -> None:
    config = build_config(options, configuration)
    gw.runtime.start()
    gateway = Gateway(config, ClnNode(config.rpc_path), SystemClock(), gw.log, events=PluginEvents(gw))
    gw.runtime.run(gateway.start(), timeout=60)
    gw.gateway = gateway


def _register(gw: GatewayPlugin) -> None:
    plugin = gw.plugin

    for spec in OPTIONS:
        plugin.add_option(spec.name, spec.default, spec.description, opt_type=spec.opt_type)
    for topic in TOPICS:  # custom notifications: docs/operator-guide.md, "Monitoring and controls"
        plugin.add_notification_topic(topic)

    @plugin.init()
    def init(options: dict[str, Any], configuration: dict[str, Any], plugin: Plugin, **kwargs: Any) -> Any:
        try:
            _init(gw, options, configuration)
        except Exception as exc:  # refuse to start with a clear reason, never half-started
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            gw.log(f"fedimint-gw cannot start: {message}", "warn")
            return {"disable": f"fedimint-gw cannot start: {message}"}
        return None

    @plugin.subscribe("shutdown")
    def on_shutdown(plugin: Plugin, **kwargs: Any) -> None:
        if gw.gateway is not None:
            try:
                gw.runtime.run(gw.gateway.stop(), timeout=20)
            finally:
                gw.runtime.stop()
        sys.exit(0)

    def on_htlc_accepted(onion: dict[str, Any], htlc: dict[str, Any], request: Any, **kwargs: Any) -> None:
        gateway = gw.gateway
        try:
            event = HtlcEvent.from_hook(onion, htlc)
        except (KeyError, ValueError, TypeError):
            request.set_result(answer_continue())  # not a shape we could own
            return
        if gateway is None or gateway.router.classify(event).owner is HtlcOwner.UNRELATED:
            request.set_result(answer_continue())
            return
        gw.bridge.answer_hook(
            request, lambda: gateway.handle_htlc(event), answer_fail(TEMPORARY_NODE_FAILURE)
        )

    plugin.add_hook("htlc_accepted", on_htlc_accepted, background=True)

    def command(name: str):  # type: ignore[no-untyped-def]
        def register(func):  # type: ignore[no-untyped-def]
            plugin.add_method(name, func, background=True, description=inspect.getdoc(func))
            HELP[name] = inspect.getdoc(func) or ""
            return func

        return register

    HELP: dict[str, str] = {}

    @command("fedimint-info")
    def fedimint_info(request: Any) -> None:
        """Show the gateway: version, node, public API URL, database, default fees, federations."""
        gw.bridge.answer(request, lambda: gw.require().info())

    @command("fedimint-connect")
    def fedimint_connect(request: Any, invite_code: str) -> None:
        """Join the federation of `invite_code` (fed1...): check its config, negotiate the API
        version, assign its short channel id and register the gateway. Joining again is harmless."""
        gw.bridge.answer(request, lambda: gw.require().federations.connect(invite_code))

    @command("fedimint-leave")
    def fedimint_leave(request: Any, federation_id: str, force: Any = False) -> None:
        """Stop serving federation `federation_id`. Refused while it holds the gateway's ecash or
        payments in flight, unless `force` is true (users' unpaid invoices do not count: they
        are dropped, and the answer says how many). The payment history is kept."""
        gw.bridge.answer(request, lambda: gw.require().leave(federation_id, force))

    @command("fedimint-balances")
    def fedimint_balances(request: Any) -> None:
        """Lightning spendable and receivable amounts, on-chain funds, and ecash per federation."""
        gw.bridge.answer(request, lambda: gw.require().balances())

    @command("fedimint-setfees")
    def fedimint_setfees(
        request: Any, federation_id: str, base_msat: Any, ppm: Any, to_federation: str = ""
    ) -> None:
        """Set the fees of federation `federation_id`: `base_msat` (at most 1000000000) per
        payment plus `ppm` (at most 1000000) parts per million of the amount; persisted and
        announced to the federation. With
        `to_federation`, set instead the fee of swaps from `federation_id` to `to_federation`
        (default for swaps: the target federation's fees; 0 0 lets users move between them for
        free, and is also what a peer pays for `fedimint-migrate` through this gateway). The
        answer carries a `warning` when a 100 sat receive's fee would be below what the
        federation takes for funding it (the fees are set anyway)."""
        gw.bridge.answer(request, lambda: gw.require().set_fees(federation_id, base_msat, ppm, to_federation))

    @command("fedimint-setlimits")
    def fedimint_setlimits(
        request: Any,
        federation_id: str,
        max_ecash_msat: Any = None,
        low_water_msat: Any = None,
        receives: Any = None,
        sends: Any = None,
        swaps_in: Any = None,
        swaps_out: Any = None,
        drain: Any = None,
    ) -> None:
        """Set the controls of federation `federation_id` (persisted; shown in fedimint-info).
        `max_ecash_msat`: cap on the gateway's ecash there (sends and swaps out of it that would
        pass it are refused and the user refunded at once), or "off". `low_water_msat`: alert
        level (metrics and a notification when the balance falls below it), or "off".
        `receives`, `sends`, `swaps_in`, `swaps_out`: true or false. `drain`: true winds the
        federation down (no new receives or swaps in; sends still allowed). Parameters left
        out keep their value; one bad value refuses the whole call and changes nothing."""
        changes = {
            "max_ecash_msat": max_ecash_msat,
            "low_water_msat": low_water_msat,
            "receives": receives,
            "sends": sends,
            "swaps_in": swaps_in,
            "swaps_out": swaps_out,
            "drain": drain,
        }
        gw.bridge.answer(request, lambda: gw.require().set_limits(federation_id, changes))

    @command("fedimint-ecash-send")
    def fedimint_ecash_send(
        request: Any, federation_id: str, amount_msat: Any, request_id: Any = None
    ) -> None:
        """Take `amount_msat` of the gateway's ecash out of federation `federation_id` as a
        notes string (for rebalancing by hand). Whoever holds the string holds the money.
        Give a `request_id` (letters, digits, - or _) to make a retry safe: the same id again
        returns the same notes and spends nothing more."""
        gw.bridge.answer(request, lambda: gw.require().ecash_send(federation_id, amount_msat, request_id))

    @command("fedimint-ecash-receive")
    def fedimint_ecash_receive(request: Any, federation_id: str, notes: str) -> None:
        """Reissue the ecash `notes` of federation `federation_id` into the gateway's own notes
        (liquidity for receives). Notes already spent, or received before, are refused and
        nothing changes."""
        gw.bridge.answer(request, lambda: gw.require().ecash_receive(federation_id, notes))

    @command("fedimint-migrate")
    def fedimint_migrate(
        request: Any,
        from_federation: str,
        to_federation: str,
        amount_msat: Any,
        peer: str = "",
        max_fee_msat: Any = None,
    ) -> None:
        """Move `amount_msat` of the gateway's own ecash from `from_federation` to `to_federation`
        by exchanging it with a peer gateway that serves both (`peer`, default: the cheapest).
        Runs in chunks no larger than the credit granted to the peer; refused if the quoted fees
        exceed `max_fee_msat` (default 1% of the amount, at least 10 sat). Answers when done,
        or after 2 minutes with its progress; `fedimint-payments` shows it as kind `migrate`.
        Crash-safe: an interrupted migration resumes when the plugin starts."""
        gw.bridge.answer(
            request,
            lambda: gw.require().migrations.migrate(
                from_federation, to_federation, amount_msat, peer, max_fee_msat
            ),
        )

    @command("fedimint-payments")
    def fedimint_payments(
        request: Any, federation_id: str = "", state: str = "", limit: Any = 50, before: Any = None
    ) -> None:
        """List payments, newest first: kind, state, amounts, fee, what the federation took
        (`federation_fee_msat`) and the margin, timings and error. Filter by
        `federation_id` and `state`; page with `before` (the `next_before` of the previous page)."""
        gw.bridge.answer(request, lambda: gw.require().payments(federation_id, state, limit, before))

    @command("fedimint-summary")
    def fedimint_summary(request: Any, start: Any = None, end: Any = None) -> None:
        """Counts, success rate, volume, fees earned, federation fees, margin and latency p50/p90
        per payment kind,
        for payments created between `start` and `end` (unix seconds; default: all time)."""
        gw.bridge.answer(request, lambda: gw.require().summary(start, end))

    @command("fedimint-export")
    def fedimint_export(request: Any, start: Any = None, end: Any = None, format: str = "json") -> None:
        """Every payment created between `start` and `end` (unix seconds; default: all time),
        oldest first, with kind, state, federation, amounts, fee (earned or paid), what the
        federation took, losses and
        times, plus per-kind totals equal to fedimint-summary's. `format`: json (rows in
        `payments`) or csv (the file's text in `csv`, e.g. `lightning-cli fedimint-export
        format=csv | jq -r .csv > payments.csv`)."""
        gw.bridge.answer(request, lambda: gw.require().export(start, end, format))

    @command("fedimint-peer-add")
    def fedimint_peer_add(request: Any, node_id: str, url: str, credit_limit_msat: Any = None) -> None:
        """Add (or update) peer gateway `node_id` at `url` (its public gateway API), granting it
        `credit_limit_msat` of credit (default 10000000). Says hello at once: the link is `active`
        when the peer's operator has added this gateway too, else `pending`."""
        gw.bridge.answer(request, lambda: gw.require().peer_add(node_id, url, credit_limit_msat))

    @command("fedimint-peer-list")
    def fedimint_peer_list(request: Any) -> None:
        """List peer gateways: status, credit granted and used each way, ledger balance (positive:
        the peer owes this gateway), ledger agreement, announced federations, last seen."""
        gw.bridge.answer(request, lambda: gw.require().peer_list())

    @command("fedimint-peer-remove")
    def fedimint_peer_remove(request: Any, node_id: str) -> None:
        """Stop forwarding to and accepting forwards from peer `node_id` (refused while forwards
        are in flight). Its ledger is kept and can still be settled."""
        gw.bridge.answer(request, lambda: gw.require().peer_remove(node_id))

    @command("fedimint-peer-settle")
    def fedimint_peer_settle(request: Any, node_id: str, amount_msat: Any = None) -> None:
        """Pay peer `node_id` what this gateway owes it (or `amount_msat` of it) over Lightning:
        an invoice of the peer's node paid with xpay. Crash-safe; both ledgers record it."""
        gw.bridge.answer(request, lambda: gw.require().peer_settle(node_id, amount_msat))

    @command("fedimint-backup")
    def fedimint_backup(request: Any, path: str) -> None:
        """Write a consistent copy of the gateway's database to the new file `path` (absolute;
        an existing file is never overwritten), while the gateway runs. The file holds what the
        node's hsm_secret cannot give back: ecash notes, payments, federations joined, peers and
        their ledgers. Restoring: docs/operator-guide.md, "Backup and restore"."""
        gw.bridge.answer(request, lambda: gw.require().backup(path))

    @command("fedimint-dev-crash")
    def fedimint_dev_crash(request: Any, point: str) -> None:
        """Developer-only (lightningd --developer): kill this plugin with SIGKILL right after the
        step `point` is next committed, e.g. receive:funded, send:paying, swap:claiming,
        settlement:debtor:paying, ecash:<kind>:<state>. For crash tests; fires once, not kept."""
        gw.bridge.answer(request, lambda: gw.require().dev_crash(point))

    @command("fedimint-help")
    def fedimint_help(request: Any, command: str = "") -> None:
        """Describe every fedimint-* command, or only `command` when given."""

        async def run() -> dict[str, Any]:
            if command:
                if command not in HELP:
                    raise NotFound(f"no command {command!r}; known: {', '.join(sorted(HELP))}")
                return {"help": [{"command": command, "description": HELP[command]}]}
            return {"help": [{"command": n, "description": d} for n, d in sorted(HELP.items())]}

        gw.bridge.answer(request, run)


def main() -> None:
    """Build the plugin and run pyln's stdin loop."""
    plugin = Plugin(dynamic=False)  # `plugin stop` must never kill it while it holds HTLCs
    gw = GatewayPlugin(plugin)
    _register(gw)
    plugin.run()


if __name__ == "__main__":
    main()
