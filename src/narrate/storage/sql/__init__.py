"""The metadata database: tables, engine, unit of work and migrations."""
