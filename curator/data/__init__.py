"""Datasets: adapters produce one manifest schema plus an image accessor."""
from curator.data.manifest import Dataset, MANIFEST_COLUMNS
from curator.data.options import DatasetOptions
from curator.data.problems import DataError, Problem, ProblemReport

__all__ = ["Dataset", "DatasetOptions", "DataError", "MANIFEST_COLUMNS", "Problem", "ProblemReport"]
