"""The gcml command line: typer commands that parse options and talk to the user; no science here."""
