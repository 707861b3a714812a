"""The crash matrix's harness: kill the plugin (SIGKILL, under `important-plugin`) right after a
chosen step is committed, then start lightningd again.

The plugin kills itself at the step armed with `fedimint-dev-crash` (developer-only; see
fedimint_gw/store/crash_points.py), or the test kills it by pid between two steps
(`kill_plugin`). An important plugin dying takes lightningd down; pyln's node is then started
again, cleanly, with nothing armed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psutil
from pyln.testing.utils import wait_for

T = TypeVar("T")

# lightningd logs the important plugin's death as broken; the tests expect it.
CRASH_BROKEN_LOG = r"fedimint-gw|plugin-fedimint|important plugin|Plugin|plugin"


def crashing_opts(gw_opts: Callable[..., dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Options for a gateway node the matrix kills: important plugin, failures expected."""
    opts = gw_opts(important=True, may_reconnect=True, **extra)
    opts.update(may_fail=True, broken_log=CRASH_BROKEN_LOG)
    return opts


def crash_at(node: Any, point: str, trigger: Callable[[], T], timeout: float = 180) -> T:
    """Arm `point`, run `trigger` (which starts the flow, without waiting for its end), wait
    until the plugin killed itself and lightningd exited, start lightningd again, and return
    what `trigger` returned."""
    node.rpc.call("fedimint-dev-crash", {"point": point})
    started = trigger()
    node.daemon.proc.wait(timeout=timeout)
    assert node.daemon.is_in_log(f"developer crash point {point} reached"), f"{point}: died elsewhere"
    _start_again(node)
    return started


def kill_plugin(node: Any, timeout: float = 60) -> None:
    """SIGKILL the gateway plugin's process now, wherever its flows are (what `kill -9` does),
    wait until lightningd exited with it, and start lightningd again."""
    plugins = [
        p
        for p in psutil.Process(node.daemon.proc.pid).children()
        if any(arg.endswith("fedimint_gateway.py") for arg in p.cmdline())
    ]
    assert len(plugins) == 1, plugins
    plugins[0].kill()
    node.daemon.proc.wait(timeout=timeout)
    _start_again(node)


def _start_again(node: Any) -> None:
    node.start()
    wait_for(lambda: node.rpc.call("fedimint-info").get("federations") is not None)
