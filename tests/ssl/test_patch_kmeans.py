"""Patch k-means features: the convolutional forward equals the textbook computation on explicit patches, the
fit is seeded, and the CPU default picks them (fitted, no epochs) for an image folder."""
import json

import numpy as np
import torch

from curator.ssl.patch_kmeans import PatchKMeans


def _images(n=40, side=12, seed=0):
    rng = np.random.default_rng(seed)
    low = rng.random((n, 3, 3, 3))
    up = np.kron(low, np.ones((1, 4, 4, 1)))                    # blocky content, so patches have structure
    return ((up + 0.1 * rng.random((n, side, side, 3))).clip(0, 1) * 255).astype(np.uint8)


def _explicit(m: PatchKMeans, img: np.ndarray) -> np.ndarray:
    """Coates et al.'s features of one (S, S, 3) uint8 image, patch by patch in numpy (pooled, unstandardised)."""
    p, st = m.patch, m.stride
    x = img.astype(np.float64) / 255
    w = m.whiten.double().view(m.whiten.shape[0], -1).numpy().T        # columns = filters: W
    mean_w = m.whiten_mean.double().numpy()
    c = m.centroids.double().numpy()
    pos = range(0, img.shape[0] - p + 1, st)
    grid = np.zeros((len(pos), len(pos), m.k))
    for a, i in enumerate(pos):
        for b, j in enumerate(pos):
            v = x[i:i + p, j:j + p, :].transpose(2, 0, 1).reshape(-1)
            u = (v - v.mean()) / np.sqrt(v.var() + m.eps_norm)
            z = u @ w - mean_w                                           # (u - mu) W
            d = np.sqrt(((z[None] - c) ** 2).sum(1))
            grid[a, b] = np.maximum(0, d.mean() - d)
    g = torch.from_numpy(grid).permute(2, 0, 1)[None]
    return torch.nn.functional.adaptive_avg_pool2d(g, m.pool).flatten(1)[0].numpy()


def test_forward_matches_explicit_patches_and_fit_is_seeded():
    px = _images()
    m = PatchKMeans(8, patch=4, stride=2).fit(px, np.arange(len(px)), seed=3, n_patches=3000, stats_images=40)
    x = torch.from_numpy(px[:3]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        got = m.pooled(x).double().numpy()
        out = m(x)
    for i in range(3):
        assert np.allclose(got[i], _explicit(m, px[i]), rtol=1e-3, atol=1e-4)
    assert out.shape == (3, 8 * 4) and torch.isfinite(out).all()
    again = PatchKMeans(8, patch=4, stride=2).fit(px, np.arange(len(px)), seed=3, n_patches=3000, stats_images=40)
    assert torch.allclose(again.centroids, m.centroids) and torch.allclose(again.feat_std, m.feat_std)


def test_cpu_default_for_an_image_folder_is_fitted(tmp_path, monkeypatch):
    """No GPU, images larger than digits, default budget: the SSL rungs are measured (faked here as 0.05 images/s, far too slow for the budget) and
    patch k-means features are fitted instead; the plan and its reason are recorded; embeddings come out."""
    import curator.ssl.budget as budget
    from PIL import Image

    from curator.cli import main

    monkeypatch.setattr(budget, "measure", lambda cfg, cand, device, **kw: {
        "train_images_per_s": 0.05, "embed_images_per_s": 500.0, "probe_batch": 8, "probe_steps": 2})
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(30):
            arr = (rng.random((24, 24, 3)) * (80 if c == "a" else 255)).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / "imgs" / c / f"{i}.png")
    run = tmp_path / "run"
    assert main(["embed", "--dataset", "imagefolder", "--root", str(tmp_path / "imgs"), "--out", str(run),
                 "--device", "cpu"]) == 0
    hist = json.loads((run / "checkpoints" / "history.json").read_text())
    assert hist["backbone"] == "patch_kmeans" and hist["epochs"] == 0 and hist["image_size"] == 24
    assert "fitting patch_kmeans@24/w128" in hist["budget"]["reason"]
    assert hist["history"][0]["knn_acc"] is not None
    emb = np.load(run / "embeddings.npy")
    assert emb.shape == (60, 512) and np.isfinite(emb).all()
    assert (run / "image_cache.json").exists()
