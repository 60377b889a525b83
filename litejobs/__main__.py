"""``python -m litejobs``: the same command as the ``litejobs`` console script.

Detached workers (``litejobs start``) re-run themselves this way, so it must stay a thin door
to :func:`litejobs.cli.main`.
"""

from __future__ import annotations

import sys

from litejobs.cli import main

if __name__ == "__main__":
    sys.exit(main())
