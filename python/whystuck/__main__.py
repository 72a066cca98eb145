"""``python -m whystuck ARGS`` runs the binary installed with this package."""

from __future__ import annotations

import os
import sys

from ._binary import find_whystuck_bin
from ._errors import WhystuckError


def main() -> None:
    try:
        binary = find_whystuck_bin()
    except WhystuckError as e:
        print(f"whystuck: {e}", file=sys.stderr)
        sys.exit(2)
    os.execv(binary, [binary, *sys.argv[1:]])


if __name__ == "__main__":
    main()
