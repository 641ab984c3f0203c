"""Runs MiniVox's command line: ``python -m speechbrain_ssps.minivox``."""

import sys

from speechbrain_ssps.minivox.cli import main

if __name__ == "__main__":
    sys.exit(main())
