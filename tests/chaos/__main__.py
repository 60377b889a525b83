"""``python -m tests.chaos --jobs 20000 --workers 4 --kills 50``: one chaos round, JSON report."""

import sys

from tests.chaos.run import main

sys.exit(main())
