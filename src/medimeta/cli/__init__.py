"""The ``medimeta`` command line (typer)."""
