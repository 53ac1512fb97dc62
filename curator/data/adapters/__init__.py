"""Dataset adapters: each module exposes `load(options, report) -> Dataset`."""
