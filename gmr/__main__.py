"""python -m gmr PID: see gmr.cli."""

import sys

from gmr.cli import main

sys.exit(main())
