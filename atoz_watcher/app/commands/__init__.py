"""The commands' bodies, one module each; ``app.cli`` parses, dispatches and picks exit codes."""
