"""The entry point: main (the typer-free parser of everyday command lines) and typer_app (the
typer app built from the same command table, for help, completion and usage errors).

May import: everything.
"""
