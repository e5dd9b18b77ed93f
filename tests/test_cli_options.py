"""CLI options are single-sourced: every default comes from the command's config dataclass.

For each command with a config dataclass, every option either sets a field (its own name, or the one its
module's ``FIELDS`` table names) and has that field's default, or is listed with a reason in
``gcml.cli.common.CLI_ONLY`` (where and how to write or run) or the module's own ``CLI_ONLY``.
"""

from __future__ import annotations

import importlib

import pytest
import typer

from gcml.cli.common import CLI_ONLY, _field_default, default
from gcml.cli.main import app
from gcml.config import parse_list, parse_range

COMMANDS = {
    # command -> (CLI module, config dataclass "module:Class")
    "simulate-maps": ("gcml.cli.simulate_maps", "gcml.simulate.maps_config:SimulateMapsConfig"),
    "mock-observe": ("gcml.cli.mock_observe", "gcml.observe.config:MockObserveConfig"),
    "simulate-clusters": ("gcml.cli.simulate_clusters", "gcml.simulate.clusters_config:SimulateClustersConfig"),
    "train": ("gcml.cli.train", "gcml.training.config:TrainConfig"),
}


def _command(name: str):
    group = typer.main.get_command(app)
    return group.commands[name]  # type: ignore[attr-defined]


def _config_class(spec: str) -> type:
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)


def _same(cli_default, field_default) -> bool:
    """The CLI's default (text for tuples, None for 'not given') means the field's default."""
    if field_default in ((), "") or field_default is None:
        return cli_default is None
    if isinstance(field_default, tuple):
        if not isinstance(cli_default, str):
            return False
        want = tuple(field_default)
        kind = str if isinstance(want[0], str) else float
        if len(want) == 2 and kind is float and parse_range(cli_default, name="x") == want:
            return True
        return tuple(parse_list(cli_default, name="x", kind=kind)) == want
    if isinstance(field_default, bool) or isinstance(cli_default, bool):
        return cli_default is field_default
    return cli_default == field_default


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_is_a_field_with_its_default(command):
    module_name, spec = COMMANDS[command]
    module = importlib.import_module(module_name)
    cls = _config_class(spec)
    fields, own = module.FIELDS, module.CLI_ONLY
    assert set(fields).isdisjoint(own) and set(fields).isdisjoint(CLI_ONLY)
    checked = []
    for p in _command(command).params:
        if p.name in CLI_ONLY or p.name in own:
            continue
        field = fields.get(p.name, p.name)
        try:
            if field.startswith("!"):
                want = not _field_default(cls, field[1:])
            else:
                want = _field_default(cls, field)
        except AttributeError:
            pytest.fail(f"{command}: option {p.opts} (parameter {p.name}) sets no field of {cls.__name__}; map it "
                        f"in {module_name}.FIELDS or list it with a reason in CLI_ONLY")
        assert _same(p.default, want), f"{command} {p.opts}: CLI default {p.default!r} != {cls.__name__}.{field} {want!r}"
        checked.append(p.name)
    assert checked, command
    # every FIELDS entry names a real option and a real field
    names = {p.name for p in _command(command).params}
    for param, field in fields.items():
        assert param in names, f"{module_name}.FIELDS names no option {param}"
        _field_default(cls, field.lstrip("!"))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_field_names_are_option_spellings(command):
    """Where an option's name differs from its field's, the field's name works as an option too."""
    module = importlib.import_module(COMMANDS[command][0])
    params = {p.name: p for p in _command(command).params}
    for param, field in module.FIELDS.items():
        if field.startswith("!") or "/" in " ".join(params[param].opts) or params[param].secondary_opts:
            continue  # negations and on/off flags keep their one spelling
        leaf = field.rsplit(".", 1)[-1]
        assert "--" + leaf.replace("_", "-") in params[param].opts, (command, param, params[param].opts)


def test_default_formats_tuples_as_the_cli_writes_them():
    from gcml.observe.config import MockObserveConfig
    from gcml.simulate.maps_config import SimulateMapsConfig

    assert default(SimulateMapsConfig, "extent_kpc") == 40.0
    assert default(SimulateMapsConfig, "log_m200", ":") == "11:13"
    assert default(SimulateMapsConfig, "subsample", ":") == "1"
    assert default(SimulateMapsConfig, "split_fractions", ",") == "0.8,0.1,0.1"
    assert default(MockObserveConfig, "distance_kpc", ",") == "10,25,50,75,100"
    assert default(MockObserveConfig, "noise.zeropoint") == 25.0
    assert default(MockObserveConfig, "!rotate") is False


def test_field_name_works_as_option_and_config_key(cli, tmp_path):
    """--extent-kpc is --extent; a config file may use the field's name (extent_kpc) as its key."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[simulate-maps]\nextent_kpc = -1.0\n")
    r = cli("simulate-maps", "--config", cfg, "-o", tmp_path / "a.h5", "--n-galaxies", "1", "--views", "1")
    assert r.exit_code == 2 and "extent" in r.output
    r = cli("simulate-maps", "--extent-kpc", "-1", "-o", tmp_path / "b.h5", "--n-galaxies", "1", "--views", "1")
    assert r.exit_code == 2 and "extent" in r.output
