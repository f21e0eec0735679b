"""The machine we run on: file operations under the root, memory, systemd, logs and metrics."""
