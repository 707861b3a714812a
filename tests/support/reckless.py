"""Install this checkout with Core Lightning's own `reckless`, as an operator would.

The checkout's files are committed to a throw-away git repository (the "plugin source"), which
is added as reckless's only source; then `reckless install fedimint-gw` finds the plugin by name,
clones the source, copies the `fedimint-gw/` directory, builds its virtual environment from
`requirements.txt` with pip and tests the entry. Nothing touches ~/.lightning: reckless gets
its own lightning and reckless directories.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the source repository holds: the reckless directory, the code it links to, the metadata.
SOURCE_ITEMS = ("fedimint-gw", "fedimint_gw", "plugin", "pyproject.toml", "README.md", "manifest.json")
NAME = "fedimint-gw"


@dataclass(frozen=True)
class Installed:
    """Where reckless put the plugin, and what it said."""

    lightning_dir: Path
    reckless_dir: Path
    entry: Path
    output: str

    @property
    def source(self) -> Path:
        return self.reckless_dir / NAME / "source" / NAME


def make_source_repo(where: Path) -> Path:
    """A git repository with this checkout's files (as a fresh clone of the project would be)."""
    repo = where / "fedimint-gw-src"
    repo.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for item in SOURCE_ITEMS:
        src = REPO / item
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, repo / item, symlinks=True, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, repo / item)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "master"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "source"], check=True)
    return repo


def reckless_install(where: Path, network: str = "regtest") -> Installed:
    """Run `reckless source add`, drop the default remote source, `reckless install fedimint-gw`."""
    repo = make_source_repo(where)
    lightning_dir = where / "lightning"
    (lightning_dir / network).mkdir(parents=True)
    (lightning_dir / network / "config").touch()  # reckless asks before creating it
    reckless_dir = where / "reckless"
    base = ["reckless", "-l", str(lightning_dir), "--network", network, "-d", str(reckless_dir)]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    outputs = []
    for args in (
        ["source", "add", str(repo)],
        ["source", "rm", "https://github.com/lightningd/plugins"],  # offline: only our source
        ["-v", "install", NAME],
    ):
        proc = subprocess.run(
            [*base, *args], cwd=where, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        outputs.append(f"$ reckless {' '.join(args)}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            raise AssertionError(f"reckless {args} failed ({proc.returncode}):\n" + "\n".join(outputs))
    return Installed(lightning_dir, reckless_dir, reckless_dir / NAME / f"{NAME}.py", "\n".join(outputs))
