"""The edge: the only room that sees Settings. Wiring, the daemon, the commands."""
