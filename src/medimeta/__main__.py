"""``python -m medimeta``: the command line."""

from medimeta.cli.app import main

main()
