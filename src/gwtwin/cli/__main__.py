"""``python -m gwtwin.cli``: the ``gwtwin`` command."""

import sys

from gwtwin.cli import main

sys.exit(main())
