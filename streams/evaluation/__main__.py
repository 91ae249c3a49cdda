"""``python -m streams.evaluation`` — see ``streams.evaluation.run``."""

import sys

from streams.evaluation.run import main

sys.exit(main())
