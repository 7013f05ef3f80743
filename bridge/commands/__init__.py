"""What the `bridge` program runs: one module per command (bridge/cli.py reads the arguments)."""

# The exit status for a problem the operator fixes in the config (or the checkout, for bench).
EXIT_CONFIG = 2
