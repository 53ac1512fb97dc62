"""`curator bench explorer`'s map step writes a run whose embeddings the explorer's map accepts (the map refuses
embeddings not recorded for the manifest's samples, so a bench that only saved the array measured nothing)."""
from curator.bench.explorer import write_map_run
from curator.explore.embedding_map import compute_map


def test_the_map_bench_run_is_one_the_map_reads(tmp_path):
    run = write_map_run(tmp_path / "map-run", 300, dim=16)
    points = compute_map(run, method="pca")
    assert len(points) == 300 and list(points.columns[:3]) == ["sample_id", "x", "y"]
