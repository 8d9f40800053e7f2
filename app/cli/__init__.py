"""The command line: `sdxs-live` / `python main.py`, the window's options and every subcommand."""
