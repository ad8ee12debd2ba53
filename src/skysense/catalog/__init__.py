"""Pristine survey catalogues to a cross-matched HELP masterlist."""
