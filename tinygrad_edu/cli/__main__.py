"""``python -m tinygrad_edu.cli``: the same as the ``tinygrad-edu`` console script."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
