"""Entry point: ``gcml`` and ``python -m gcml``."""

from __future__ import annotations

from typing import Annotated

import typer

from gcml._version import __version__
from gcml.cli.common import state

app = typer.Typer(
    name="gcml",
    help="Deep learning for masses, ages and distances of star clusters and galaxies.\n\n"
    "Each command reads and writes self-describing files (HDF5 MapSets, snapshots, FITS, model bundles), "
    "so stages compose in shell pipelines. Run 'gcml COMMAND --help' for details.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # help texts use [unit] brackets; rich markup would swallow them
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gcml {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and results.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print more detail.")] = False,
) -> None:
    """gcml command-line suite."""
    state.quiet = quiet
    state.verbose = verbose


# One module per command, each exposing a plain function; heavy imports stay inside the command
# functions so that `gcml --help` is fast. Only commands that work are listed here.
COMMANDS: list[tuple[str, str, str]] = [
    # (command name, module, function)
    ("info", "gcml.cli.info", "info_cmd"),
    ("merge", "gcml.cli.merge", "merge_cmd"),
    ("simulate-maps", "gcml.cli.simulate_maps", "simulate_maps_cmd"),
    ("train", "gcml.cli.train", "train_cmd"),
    ("evaluate", "gcml.cli.evaluate", "evaluate_cmd"),
    ("mock-observe", "gcml.cli.mock_observe", "mock_observe_cmd"),
    ("predict", "gcml.cli.predict", "predict_cmd"),
    ("simulate-clusters", "gcml.cli.simulate_clusters", "simulate_clusters_cmd"),
]


# Command groups (typer sub-apps): (group name, module, typer app attribute).
SUBAPPS: list[tuple[str, str, str]] = [
    ("models", "gcml.cli.models", "models_app"),
]


def _register() -> None:
    import importlib

    for name, module, func in COMMANDS:
        app.command(name)(getattr(importlib.import_module(module), func))
    for name, module, attr in SUBAPPS:
        app.add_typer(getattr(importlib.import_module(module), attr), name=name)


_register()


#: options that take a value but may also be given bare (``--resume`` alone means ``--resume yes``)
BARE_VALUES = {"--resume": ("yes", ("yes", "no", "auto", "true", "false"))}


def normalise_argv(argv: list[str]) -> list[str]:
    """Give a bare ``--resume`` its value ``yes``, so that ``--resume`` and ``--resume auto`` both work."""
    out: list[str] = []
    for i, a in enumerate(argv):
        out.append(a)
        if a in BARE_VALUES:
            value, allowed = BARE_VALUES[a]
            if i + 1 >= len(argv) or argv[i + 1].lower() not in allowed:
                out.append(value)
    return out


def _terminate(signum, frame) -> None:  # noqa: ARG001
    # SIGTERM (kill, SLURM time limit) unwinds like Ctrl-C, so temporary files are removed
    raise KeyboardInterrupt


def _unraisable(hook):  # noqa: ANN001, ANN202
    def handle(u) -> None:  # noqa: ANN001
        # An interrupt that lands in a weakref callback, a __del__ or an at-fork handler is printed as
        # "Exception ignored" and lost, and the command runs on (seen: SIGTERM 20-30 ms into a
        # `simulate-maps --workers 2`, 3 times in 40). Deliver it again: the handler runs at the next bytecode
        # of the main program once this hook has returned, where the KeyboardInterrupt unwinds as it should.
        if u.exc_type is not None and issubclass(u.exc_type, KeyboardInterrupt):
            import _thread
            import signal
            import threading

            # SIGTERM: its handler is always gcml's (SIGINT may be ignored, e.g. in a background job)
            again = threading.Timer(0.02, _thread.interrupt_main, args=(signal.SIGTERM,))
            again.daemon = True
            again.start()
            return
        hook(u)

    return handle


#: OpenMP settings a user may have chosen; when none is set, the ``gcml`` command sets its own wait policy
OPENMP_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def openmp_wait_policy(environ: dict[str, str]) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` unless the user chose a wait policy; return what was set.

    torch's OpenMP threads otherwise spin while they wait for each other, and when another process takes a
    core the spinning threads of a 2-thread run wait for a descheduled partner: on the shared 2-core
    development machine `gcml train mass-cnn` with two threads fell from ~8,000 to ~2,500 maps/s beside one
    busy process, while with passive waiting it kept ~5,500 and lost 0-20 % on the idle machine
    (docs/benchmarks.md, "training defaults"). It must be in the environment before torch loads its OpenMP
    runtime, so the command sets it for itself (and for the processes it starts) before anything imports
    torch; ``import gcml`` in a notebook leaves the environment alone.
    """
    if any(k in environ for k in OPENMP_WAIT_VARIABLES):
        return None
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"


def main() -> None:
    import os
    import signal
    import sys

    openmp_wait_policy(os.environ)  # before torch is imported (no command imports it at module level)
    signal.signal(signal.SIGTERM, _terminate)
    sys.unraisablehook = _unraisable(sys.unraisablehook)
    app(args=normalise_argv(sys.argv[1:]))


if __name__ == "__main__":
    main()
