"""curator: audit image-classification datasets with noisy labels and long-tailed classes."""

__version__ = "0.1.0"
