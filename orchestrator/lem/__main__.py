"""``python -m lem`` runs the same command line as the ``lem`` console script."""

from lem.cli import main

if __name__ == "__main__":
    main(prog_name="lem")
