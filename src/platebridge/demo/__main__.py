"""``python -m platebridge.demo``."""

from __future__ import annotations

import sys

from platebridge.demo.orchestrator import main

sys.exit(main())
