"""The flow page's MCP tab: the tool name a flow has on /api/v1/mcp/."""

from django import template

from flows import mcp_tools

register = template.Library()


@register.simple_tag
def mcp_tool_name(flow) -> str:
    """Return the name MCP clients see for ``flow`` (one query of its owner's flow names)."""
    return mcp_tools.tool_name(flow)
