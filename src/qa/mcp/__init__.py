"""The MCP adapter: qa's articles as tools and resources for AI assistants (`qa mcp` over stdio, `/mcp` over HTTP)."""
