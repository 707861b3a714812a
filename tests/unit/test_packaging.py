"""What installers read: reckless's directory, requirements.txt, manifest.json, the changelog."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fedimint_gw import __version__

REPO = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib")


def _requirements(path: Path) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return sorted(line for line in lines if line)


def test_reckless_requirements_are_the_package_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert _requirements(REPO / "fedimint-gw" / "requirements.txt") == sorted(project["dependencies"])
    assert project["version"] == __version__


def test_the_reckless_directory_links_to_the_one_copy_of_the_code() -> None:
    plugin_dir = REPO / "fedimint-gw"
    entry = plugin_dir / "fedimint-gw.py"
    assert os.access(entry, os.X_OK) and entry.read_text().startswith("#!/usr/bin/env python3")
    for link, target in (("fedimint_gw", "../fedimint_gw"), ("plugin", "../plugin")):
        assert (plugin_dir / link).is_symlink() and os.readlink(plugin_dir / link) == target


def test_manifest_and_changelog() -> None:
    manifest = json.loads((REPO / "manifest.json").read_text())
    assert set(manifest) == {"short_description", "long_description"}
    assert 0 < len(manifest["short_description"]) <= 100
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## [{__version__}]" in changelog and "## [Unreleased]" in changelog
