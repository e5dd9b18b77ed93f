"""Exceptions raised by gcml.

Every error a user can cause (bad file, bad option, bad table) is a :class:`GcmlError` whose message
is one sentence naming the file or option, the field, and what was expected. The command-line layer
turns it into one red line and exit code 2; any other exception is a bug and shows a traceback.
"""


class GcmlError(Exception):
    """Base class of all user-facing gcml errors."""


class InputError(GcmlError):
    """An input file or value is malformed, out of range or inconsistent."""


class FormatError(InputError):
    """A file is not the gcml format (or version) that was expected."""


class ConfigError(InputError):
    """An option or configuration value is invalid."""


class OutputExistsError(GcmlError):
    """An output already exists and ``overwrite`` was not given."""


class OutputError(GcmlError):
    """An output could not be written: disk full, I/O error, or another run owns it."""


class OutputBusyError(OutputError):
    """Another gcml run is writing the same output (its lock is held)."""


class ResourceError(GcmlError):
    """A run would need more memory or disk than there is (estimated before work starts)."""


class DeviceError(GcmlError):
    """A requested compute device (GPU) is not available."""


class TrainingInterrupted(GcmlError):
    """A training run was interrupted (Ctrl-C); ``checkpoint`` holds the last completed epoch
    (``epoch``; 0 when none completed and there is nothing to resume)."""

    def __init__(self, message: str, *, run_dir, checkpoint, epoch: int) -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.epoch = epoch
