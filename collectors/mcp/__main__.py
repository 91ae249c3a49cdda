"""``python -m collectors.mcp [options] -- <server command>``: the MCP proxy without the aiwatch CLI."""

import sys

from collectors.mcp.proxy import main

sys.exit(main())
