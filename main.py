"""SDXS Live from a checkout: `python main.py [window options]` or `python main.py SUBCOMMAND ...`.

The command line itself is app/cli/main.py (installed as the `sdxs-live` command).
"""

from app.cli.main import entry, main  # main: the same in-process, for tests and scripts

__all__ = ["entry", "main"]

if __name__ == "__main__":
    entry()
