"""The explorer's logic (docs/explorer.md): everything the Streamlit app in ``ui/`` shows comes from here.

- `curator.explore.run`: `load_run` reads a run directory once into an `ExplorerRun`.
- `curator.explore.filters`: `SampleFilter`, `filter_samples` (columnar filtering and sorting).
- `curator.explore.review`: review status of every sample, decisions (a log with undo, `curator.review`), export.
- The spot check's maths lives in `curator.audit.spot_check` (the report shows it too).
- `curator.explore.thumbnails`: thumbnails through the dataset's image accessor, cached.
- `curator.explore.embedding_map`: the cached 2-D UMAP of the embeddings (computed in another process, a PCA
  map meanwhile), region selection, the class palette.
- `curator.explore.duplicates`: the duplicate-group gallery (groups in order, the member kept, one decision per group).
- `curator.explore.gdw`: paper 003 fig. 4-5 measured on the run's GDW weight changes.
- `curator.explore.overview`: dataset summary, per-class table, signal distributions.
"""
from curator.explore.filters import SampleFilter, filter_samples
from curator.explore.run import ExplorerRun, load_run

__all__ = ["ExplorerRun", "SampleFilter", "filter_samples", "load_run"]
