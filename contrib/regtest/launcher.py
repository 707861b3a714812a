"""``python -m contrib.regtest.launcher start|stop|status|demo|wallet``: the local regtest network.

``start`` brings up bitcoind, three lightningd (payer, gateway A, gateway B with the plugin),
channels, three devfed federations (v1-only, v1+v2, v2-only), connects and funds the gateways,
creates user wallets, starts a fourth devfed speaking Fedimint's own protocol (mint + LNv1) that
gateway A joins and holds ecash in, runs the demo (its last rows use the official Fedimint
client when node and ``make interop-deps`` are there) and leaves everything running.
``stop`` tears it all down.
Everything lives in ``--dir`` (default ``<repo>/.regtest``); the state is ``network.json``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from contrib.regtest import bitcoin, federations, fedimint_family, lightning
from contrib.regtest.demo import SKIPPED, run_demo, table
from contrib.regtest.demo_fedimint import fedimint_rows
from contrib.regtest.handbook import dump, how_to, wallet_command, write_env
from contrib.regtest.procs import Daemon, LaunchError, is_ours, terminate
from contrib.regtest.state import NetworkState, default_dir

BINARIES = ("bitcoind", "bitcoin-cli", "lightningd", "lightning-cli")
MISSING_HELP = """\
`make regtest` runs a real Bitcoin Core and Core Lightning on this machine, and needs on PATH:
  bitcoind, bitcoin-cli    Bitcoin Core (v29.x; built with the wallet)
  lightningd, lightning-cli  Core Lightning v26.06 (built --disable-rust is fine)
docs/development.md says how to build both; then run `make regtest` again."""


def say(message: str) -> None:
    """A progress line."""
    print(message, flush=True)


def check_binaries() -> list[str]:
    """The required programs missing from PATH."""
    return [b for b in BINARIES if shutil.which(b) is None]


def running(state: NetworkState) -> bool:
    """Whether every daemon of a finished start is alive and still ours."""
    return state.status == "ready" and bool(state.daemons) and all(is_ours(d) for d in state.daemons)


def _graceful(state: NetworkState, daemon: Daemon) -> Callable[[], None] | None:
    if daemon.name.startswith("lightningd-"):
        name = daemon.name.removeprefix("lightningd-")
        cmd = [*lightning.lightning_cli(state, name), "stop"]

        def cli_stop() -> None:
            subprocess.run(cmd, capture_output=True, timeout=30, check=False)

        return cli_stop
    if daemon.name == "bitcoind":
        return lambda: bitcoin.BitcoinRpc(int(state.bitcoind["rpcport"])).call("stop")
    return None


def stop_network(state: NetworkState) -> bool:
    """Stop every recorded daemon (devfeds, lightningd, then bitcoind); True if none is left."""
    clean = True
    for daemon in reversed(state.daemons):
        outcome = terminate(daemon, _graceful(state, daemon))
        say(f"  {daemon.name:<18} pid {daemon.pid:<8} {outcome}")
        clean = clean and outcome in (
            "stopped",
            "terminated",
            "killed",
            "not running",
            "cleaned up leftovers",
        )
    state.status = "stopped"
    state.save()
    return clean


def _prepare(base: Path) -> NetworkState | None:
    """Make ``base`` ready for a new network; returns the running one instead, if there is one."""
    old = NetworkState.load(base)
    if old is not None:
        if running(old):
            return old
        say(f"Found a network in {base} that is not running completely ({old.status}): cleaning it up.")
        stop_network(old)
        shutil.rmtree(base)
    elif base.exists() and any(base.iterdir()):
        raise LaunchError(f"{base} is not empty and holds no {base / 'network.json'}: choose another --dir")
    base.mkdir(parents=True, exist_ok=True)
    return None


class Builder:
    """The steps of ``start``, in order; they share the bitcoind wallet and the node clients."""

    def __init__(self, state: NetworkState) -> None:
        self.state = state
        self._wallet: bitcoin.BitcoinRpc | None = None
        self._nodes: dict[str, lightning.Node] = {}

    @property
    def wallet(self) -> bitcoin.BitcoinRpc:
        """bitcoind's wallet (after the first step)."""
        if self._wallet is None:
            raise LaunchError("bitcoind is not started")
        return self._wallet

    def steps(self) -> list[tuple[str, Callable[[], object]]]:
        """``(progress line, action)`` pairs."""
        st = self.state
        return [
            ("start bitcoind, create its wallet, mine 101 blocks", self._bitcoind),
            ("start lightningd: payer, gateway A, gateway B (plugin)", self._lightningd),
            ("fund the nodes on-chain", lambda: lightning.fund_nodes(self._nodes, self.wallet)),
            (
                "open channels payer→A, payer→B, A→B; confirm; wait for gossip",
                lambda: lightning.open_channels(st, self._nodes, self.wallet),
            ),
            ("start federations: v1-only, v1+v2, v2-only", lambda: federations.start_federations(st)),
            ("vet the gateways on the federations serving v2", lambda: federations.vet_gateways(st)),
            (
                "connect gateway A to v1 and v1+v2, gateway B to v2 (and to v1, v1+v2 for migrations)",
                lambda: federations.connect_gateways(st, self._nodes),
            ),
            ("peer gateways A and B", lambda: federations.peer_gateways(st, self._nodes)),
            (
                "fund the gateways with ecash (treasurer wallets)",
                lambda: federations.fund_gateways(st, self._nodes),
            ),
            ("create user wallets, funded from the faucets", lambda: federations.create_users(st)),
            (
                "start the Fedimint-family federation (mint + ln) for the official client",
                lambda: fedimint_family.start_federation(st),
            ),
            (
                "connect gateway A to it, fund A's ecash there (faucet notes)",
                lambda: fedimint_family.connect_and_fund(st, self._nodes),
            ),
        ]

    def _bitcoind(self) -> None:
        self._wallet = bitcoin.start_bitcoind(self.state)

    def _lightningd(self) -> None:
        self._nodes = lightning.start_nodes(self.state)


def _interrupted(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def start(base: Path, demo: bool) -> int:
    """``start``: see the module docstring. Exit code 0 when the network is up (and the demo passed)."""
    missing = check_binaries()
    if missing:
        print(f"Missing from PATH: {', '.join(missing)}\n{MISSING_HELP}", file=sys.stderr)
        return 2
    base = base.resolve()
    existing = _prepare(base)
    if existing is not None:
        say(f"A regtest network is already running in {base}; leaving it as it is.")
        say(
            "(`python -m contrib.regtest.launcher demo` runs the demo again; `make regtest-stop` stops it.)\n"
        )
        say(how_to(existing))
        return 0
    state = NetworkState(base=base, python=sys.executable)
    state.save()
    say(f"Starting a regtest network in {base}")
    began = time.monotonic()
    steps = Builder(state).steps()
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        for i, (title, action) in enumerate(steps, 1):
            say(f"[{i}/{len(steps)}] {title} ...")
            t0 = time.monotonic()
            note = action()
            say(f"      {note}" if isinstance(note, str) else f"      done in {time.monotonic() - t0:.1f} s")
    except BaseException as exc:  # includes Ctrl-C and SIGTERM: never leave half a network behind
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        print(f"Logs: {base}/logs, {base}/lightning-*/log. Tearing down:", file=sys.stderr, flush=True)
        stop_network(state)
        if not isinstance(exc, Exception):
            raise
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    state.status = "ready"
    state.save()
    env = write_env(state)
    say(f"Network ready in {time.monotonic() - began:.0f} s; env file: {env}\n")
    code = run_and_print_demo(state) if demo else 0
    say("\n" + how_to(state))
    return code


def run_and_print_demo(state: NetworkState) -> int:
    """Run the demo, print its table; 0 if every row ended as expected."""
    say("Demo: one payment of each kind")
    rows, path = run_demo(state, fedimint_rows)
    say(table(rows))
    ok = all(r.ok for r in rows)
    skipped = [r for r in rows if r.result == SKIPPED]
    if skipped:
        say(f"\n!!! {len(skipped)} row(s) SKIPPED, not run: {skipped[0].detail.removeprefix('SKIPPED: ')}")
        say("!!! `make interop-deps` installs the official Fedimint client (needs node >= 20 and npm).")
    say(f"\nDemo {'passed' if ok else 'FAILED'} (machine-readable: {path}).")
    return 0 if ok else 1


def _loaded(base: Path) -> NetworkState:
    state = NetworkState.load(base.resolve())
    if state is None or not running(state):
        raise LaunchError(f"no running network in {base} (start one with `make regtest`)")
    return state


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir", type=Path, default=default_dir(), help="network directory (default .regtest)"
    )
    p = argparse.ArgumentParser(prog="python -m contrib.regtest.launcher", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("start", parents=[common], help="start the network and run the demo")
    st.add_argument("--no-demo", action="store_true", help="start the network only")
    sub.add_parser("stop", parents=[common], help="stop every process of the network")
    sub.add_parser("status", parents=[common], help="is it running; what is where")
    sub.add_parser("demo", parents=[common], help="run the demo again on the running network")
    w = sub.add_parser("wallet", parents=[common], help="a user wallet over Lightning (invoice/claim/pay)")
    w.add_argument("name", help="user-v1, user-v12 or user-v2")
    w.add_argument("action", choices=["invoice", "claim", "pay", "balance"])
    w.add_argument("args", nargs="*")
    args = p.parse_args(argv)
    base: Path = args.dir
    try:
        if args.command == "start":
            return start(base, demo=not args.no_demo)
        if args.command == "stop":
            state = NetworkState.load(base.resolve())
            if state is None:
                say(f"No network in {base}.")
                return 0
            say(f"Stopping the regtest network in {state.base}")
            return 0 if stop_network(state) else 1
        if args.command == "status":
            state = NetworkState.load(base.resolve())
            if state is None:
                say(f"No network in {base}.")
                return 3
            alive = {d.name: is_ours(d) for d in state.daemons}
            say(f"{state.base}: {'running' if running(state) else state.status}")
            for d in state.daemons:
                say(f"  {d.name:<18} pid {d.pid:<8} {'up' if alive[d.name] else 'down'}")
            return 0 if running(state) else 3
        state = _loaded(base)
        if args.command == "demo":
            return run_and_print_demo(state)
        say(dump(wallet_command(state, args.name, args.action, list(args.args))))
        return 0
    except (LaunchError, ValueError, LookupError, IndexError) as exc:
        print(f"regtest: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
