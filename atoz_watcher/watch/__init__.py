"""Hearing about new files: the observer, its event handler and the stability check."""
