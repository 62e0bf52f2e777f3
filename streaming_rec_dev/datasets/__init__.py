"""Public data sets installed from PyPI at run time (never committed: their licences forbid it)."""
