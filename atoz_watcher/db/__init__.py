"""The database: Open Dental's tables, engines for SQLite and MariaDB, and the queries we run."""
