"""`python -m swarm` is the same as the `swarm` console script."""

import sys

from swarm.cli import main

sys.exit(main())
