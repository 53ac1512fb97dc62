"""The hygiene checks, one module each (listed by `curator.hygiene.registry`)."""
