"""``python -m benchmarks [NAME ...]`` (what ``make bench`` runs)."""

import sys

from benchmarks import main

sys.exit(main())
