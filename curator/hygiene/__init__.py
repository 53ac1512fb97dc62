"""Data hygiene beyond label noise (docs/hygiene.md)."""
