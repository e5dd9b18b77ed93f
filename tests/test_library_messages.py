"""Library errors speak in library terms; the CLI names its options (issue 14).

A message raised by code under ``gcml/`` outside ``gcml/cli/`` names a parameter in backquotes, as the
library spells it (```sky_mag```, ```extent_kpc```); ``gcml.cli.common.user_errors`` shows it as the option
of the running command (``--sky-mag``, ``--extent``). This test walks the package (ast) and fails on a
``--flag`` in the string constants of a ``raise``, save the few listed below with their reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from gcml.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[1] / "gcml"
#: a command-line flag: two dashes and a letter, not inside a longer run of dashes (FITS 'RA---TAN')
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")

#: (file, flag) -> why the message may name it: a shell command the user is told to run, or another
#: program's option, not a parameter of the function that raises
ALLOWED = {
    ("config.py", "--array"): "sbatch's option (a SLURM job array without gaps), not gcml's",
    ("device.py", "--gpus-per-task"): "srun's option, in the srun command the user is told to use",
    ("io/catalogues.py", "--no-catalogues"): "names how a file was made with 'gcml simulate-maps'",
    ("io/mapset.py", "--virtual"): "names how the file was made ('gcml merge --virtual'), a shell command",
    ("prediction/catalogue.py", "--install"): "an option of scripts/train_default_mass_model.py, to run",
    ("training/loop.py", "--split-by"): "the shell command to run ('gcml mock-observe --split-by snapshot')",
}


def _text(node: ast.AST) -> str:
    """A string constant, or an f-string with each ``{...}`` as ``X`` (so ``f"--{name}"`` is seen)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
    return ""


def flags_in_raises() -> list[tuple[str, int, str, str]]:
    """(file, line, flag, text) of every flag in a string of a ``raise`` under gcml/ but gcml/cli/."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.Raise) and node.exc is not None):
                continue
            for sub in ast.walk(node.exc):
                text = _text(sub)
                for m in FLAG.finditer(text):
                    found.append((rel, sub.lineno, m.group(0), text))
    return found


def test_library_messages_name_parameters_not_flags():
    bad = [f"gcml/{f}:{line}: {flag} in {text!r}" for f, line, flag, text in flags_in_raises()
           if (f, flag) not in ALLOWED]
    assert not bad, ("library messages name parameters in backquotes (`sky_mag`), not command-line flags; the CLI "
                     "translates them (gcml.cli.common.user_errors):\n" + "\n".join(bad))


def test_allow_list_is_used():
    """Every allowed (file, flag) still occurs: the list does not outlive the messages it excuses."""
    seen = {(f, flag) for f, _, flag, _ in flags_in_raises()}
    assert set(ALLOWED) <= seen, sorted(set(ALLOWED) - seen)


def test_the_walk_sees_flags():
    """The walk finds flags in plain strings and in f-strings (so an empty result means something)."""
    tree = ast.parse('raise E(f"--{want} {x}: bad")\nraise E("option --fov: bad " + s)')
    texts = [_text(s) for n in ast.walk(tree) if isinstance(n, ast.Raise) for s in ast.walk(n.exc)]
    assert [m.group(0) for t in texts for m in FLAG.finditer(t)] == ["--X", "--fov"]
    assert not FLAG.search("CTYPE1 = RA---TAN")


def test_library_names_fields_cli_names_options(cli, tmp_path):
    """MockObserveConfig says `fov_arcsec`; gcml mock-observe says --fov (its FIELDS table)."""
    from gcml.observe.config import MockObserveConfig, NoiseConfig

    with pytest.raises(ConfigError, match="option `fov_arcsec`: expected a finite number"):
        MockObserveConfig(fov_arcsec=float("nan"))
    with pytest.raises(ConfigError, match="option `field_density`: expected a finite number"):
        NoiseConfig(field_density=float("inf"))
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--field-stars", "inf")
    assert r.exit_code == 2 and "option --field-stars: expected a finite number" in r.output
    assert "`" not in r.output
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--ra", "400")
    assert r.exit_code == 2 and "option --ra: expected a right ascension" in r.output


def test_library_parameter_becomes_option(cli, tmp_path):
    """A message naming a library function's parameter shows the command's flag: `fits_dir` is --fits
    (gcml.cli.common.PARAMETERS), `kind` --kind, and a parameter the command lacks still reads as a flag."""
    from gcml.cli.common import cli_message
    from gcml.observe.config import MockObserveConfig
    from gcml.observe.mock import mock_observe

    assert cli_message("pass `overwrite` to replace it") == "pass --overwrite to replace it"
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    with pytest.raises(ConfigError, match="option `fits_dir`: FITS images are written for `kind` photometry only"):
        mock_observe(snaps, tmp_path / "i.h5", MockObserveConfig(kind="kinematics"), fits_dir=tmp_path / "f")
    r = cli("mock-observe", snaps, "-o", tmp_path / "i.h5", "--kind", "kinematics", "--fits", tmp_path / "f")
    assert r.exit_code == 2
    assert "option --fits: FITS images are written for --kind photometry only" in r.output
