"""Outbound connections, each with a guard and a total deadline: downloads and SFTP."""
