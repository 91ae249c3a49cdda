"""MCP collector: a transparent stdio proxy that records tool calls, results and tool-definition changes.

    aiwatch mcp-proxy [--name NAME] -- <server command> [args...]

See :mod:`collectors.mcp.proxy` (forwarding), :mod:`collectors.mcp.observer` (the events) and
:mod:`collectors.mcp.inventory` (tool poisoning / rug-pull detection across sessions).
"""

from collectors.mcp.proxy import McpProxy, ProxyOptions, add_arguments, main, run_proxy

__all__ = ["McpProxy", "ProxyOptions", "add_arguments", "main", "run_proxy"]
