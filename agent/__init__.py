"""Everything cypherloop needs at question time: settings, graph access, models, the agent graph."""
