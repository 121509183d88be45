"""``python -m seqgan_kit ...`` is the ``seqgan-kit`` command (what ``torchrun -m seqgan_kit`` launches)."""

import sys

from .cli import main

sys.exit(main())
