"""SDXS Live from a checkout: `python main.py [window options]` or `python main.py SUBCOMMAND ...`.

The command line itself is app/cli/main.py (installed as the `sdxs-live` command).
"""

import sys

from app.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
