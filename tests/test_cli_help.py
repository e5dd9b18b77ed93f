"""Every registered command answers --help; help texts keep their [unit] brackets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gcml.cli.main import COMMANDS, SUBAPPS


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS] + [s[0] for s in SUBAPPS])
def test_help(cli, name):
    r = cli(name, "--help")
    assert r.exit_code == 0 and "Usage" in r.output


def test_units_survive_in_help(cli):
    out = cli("simulate-maps", "--help").output
    assert "[kpc]" in out
    assert "[arcsec]" in cli("mock-observe", "--help").output


def test_python_m_gcml():
    r = subprocess.run([sys.executable, "-m", "gcml", "--version"], capture_output=True, text=True, check=True)
    assert r.stdout.startswith("gcml ")
