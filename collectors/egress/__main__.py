"""``python -m collectors.egress FILE|-``: the egress collector without the aiwatch CLI."""

import sys

from collectors.egress.publish import main

sys.exit(main())
