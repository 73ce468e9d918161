"""`python -m tooling.orchestrator`: the deployment orchestrator's command line."""

from __future__ import annotations

import sys

from tooling.orchestrator.cli import main

if __name__ == "__main__":
    sys.exit(main())
