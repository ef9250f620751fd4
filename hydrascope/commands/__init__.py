"""CLI subcommands, one module each, registered by hydrascope.cli."""
