"""`python -m hydrascope` runs the CLI."""

import sys

from hydrascope.cli import main

sys.exit(main())
