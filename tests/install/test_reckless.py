"""`reckless install fedimint-gw` with the reckless that ships with lightningd (v26.06.6 here).

The real tool, against a local git source (offline but for pip, which fetches the
dependencies from the configured package index): it must find the plugin by name, build its
virtual environment, accept the entry, and enable it with a `plugin=` line. The installed
copy must then answer lightningd's `getmanifest` with every option, command and the hook,
from its own files (not from this checkout).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fedimint_gw.config import OPTIONS
from tests.support.reckless import NAME, Installed, reckless_install

pytestmark = pytest.mark.reckless


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return reckless_install(tmp_path_factory.mktemp("reckless"))


def test_reckless_installs_and_enables_the_plugin(installed: Installed) -> None:
    assert "plugin installed" in installed.output and "fedimint-gw enabled" in installed.output
    assert f"found {NAME} in source" in installed.output
    conf = (installed.reckless_dir / "regtest-reckless.conf").read_text().splitlines()
    assert f"plugin={installed.entry}" in conf
    network_conf = (installed.lightning_dir / "regtest" / "config").read_text().splitlines()
    assert f"include {installed.reckless_dir / 'regtest-reckless.conf'}" in network_conf
    assert os.access(installed.entry, os.X_OK)


def test_the_installed_copy_is_self_contained(installed: Installed) -> None:
    """The symlinks of fedimint-gw/ were followed: real files, and no link back to the source."""
    package = installed.source / "fedimint_gw"
    assert package.is_dir() and not package.is_symlink()
    assert (package / "store" / "migrations" / "0001_init.sql").is_file()
    assert (installed.source / "plugin" / "fedimint_gateway.py").is_file()
    assert not any(p.is_symlink() for p in installed.source.rglob("*"))
    venv_python = installed.reckless_dir / NAME / ".venv" / "bin" / "python"
    # The package is not installed in reckless's venv: the plugin runs from the copied tree.
    probe = subprocess.run([str(venv_python), "-c", "import fedimint_gw"], cwd="/", capture_output=True)
    assert probe.returncode != 0


def test_the_installed_entry_answers_getmanifest(installed: Installed, tmp_path: Path) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "getmanifest", "params": {"allow-deprecated-apis": False}}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["LIGHTNINGD_PLUGIN"] = "1"
    proc = subprocess.run(
        [str(installed.entry)],
        input=json.dumps(request) + "\n\n",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.JSONDecoder().raw_decode(proc.stdout.strip())[0]["result"]
    assert {o["name"] for o in manifest["options"]} >= {spec.name for spec in OPTIONS}
    methods = {m["name"] for m in manifest["rpcmethods"]}
    assert {"fedimint-info", "fedimint-connect", "fedimint-backup", "fedimint-help"} <= methods
    assert "htlc_accepted" in {h["name"] for h in manifest["hooks"]}
