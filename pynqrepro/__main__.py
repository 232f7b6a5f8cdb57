"""``python -m pynqrepro``: the same command line as the ``pynqrepro`` console script."""

import sys

from pynqrepro.cli import main

sys.exit(main())
