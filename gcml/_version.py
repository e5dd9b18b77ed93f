"""The gcml version (its own module, so that the package's modules can read it without importing ``gcml``)."""

__version__ = "0.1.0"
