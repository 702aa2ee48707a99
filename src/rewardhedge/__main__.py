"""``python -m rewardhedge``."""

from __future__ import annotations

import sys

from rewardhedge.cli import main

sys.exit(main())
