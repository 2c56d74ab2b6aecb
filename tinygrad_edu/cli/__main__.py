"""``python -m tinygrad_edu.cli``: the same as the ``tinygrad-edu`` console script."""

import sys

from . import main

sys.exit(main())
