"""``python -m lpgnet`` is the ``lpgnet`` command (also what ``torchrun -m lpgnet`` runs)."""

import sys

from .cli import main

sys.exit(main())
