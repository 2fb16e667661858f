"""``python -m bridgekit.demo``: what ``scripts/demo`` runs (see bridgekit/demo/run.py)."""

import sys

from bridgekit.demo.run import main

sys.exit(main())
