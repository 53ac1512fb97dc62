"""`curator bench decode` on a tiny generated folder: cache builds and the three ways of reading an epoch."""
from curator.bench import decode


def test_decode_bench_tiny_folder(bench_args, tmp_path):
    res = decode.run(bench_args(decode, n=24, src_size=48, size=16, workers=2, stream_workers=0, batch=8,
                                device="cpu"))
    builds = [r for r in res["rows"] if r["what"] == "cache build"]
    epochs = {r["decoder"]: r for r in res["rows"] if r["what"] == "epoch"}
    assert [b["workers"] for b in builds] == [1, 2] and all(b["images_per_s"] > 0 for b in builds)
    assert abs(builds[1]["images_per_s_per_core"] - builds[1]["images_per_s"] / 2) <= 0.1   # both rounded to 0.1
    assert set(epochs) == {"streaming", "cached", "resident"} and all(e["images_per_s"] > 0 for e in epochs.values())
    assert res["n_images"] == 24 and res["size"] == 16


def test_generated_folder_is_jpeg(tmp_path):
    names = decode.generate_folder(tmp_path / "g", 3, 32)
    assert names == ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert (tmp_path / "g" / names[0]).read_bytes()[:2] == b"\xff\xd8"
