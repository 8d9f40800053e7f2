"""`python -m training.demo`: rebuild the built-in demo model (training/demo/build.py)."""

import sys

from training.demo.build import main

if __name__ == "__main__":
    sys.exit(main())
