"""The front-desk page in a real browser (Debian's chromium through Selenium)."""
