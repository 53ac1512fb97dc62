"""A small synthetic but contract-complete run directory for explorer (and other) tests.

`write_fixture_run(path)` builds, from scikit-learn's digits (images through the real `digits`
adapter, so thumbnails go through the image accessor), a long-tailed subset (class c keeps about
150·(150/8)^(−c/9) images: classes 0–3 "many", 4–8 "medium", 9 "few") with ~12% planted flipped
labels (truth kept in ``true_label``), and writes every file of the run-directory contract:
config.json, manifest.parquet, problems.parquet, provenance.json, embeddings.npy, knn.npz,
heads/{lasl,gdw,fsr}.npz (GDW with ``omega``) and history/{lasl,gdw,fsr}.npz (curator.heads.store), signals.parquet,
audit.parquet, classes.parquet, metrics.json and report.html. Signals are derived from a real
kNN on PCA features of the pixels, so flagged samples are mostly the planted ones.

Hygiene (curator.hygiene): image_properties.parquet (measured from the digits), hygiene.parquet, hygiene.json and
leakage.parquet come from the real checks, on top of which a few issues are planted by hand (digits have none) and
fused into audit.parquet with `curator.hygiene.fuse.fuse_audit`: two duplicate pairs (one with two labels), one
leak (its test copy is not in the manifest), two quality issues (one on a flagged label issue) and one outlier.
fixture.json lists, under ``hygiene``, the sample ids of every kind (planted, plus what the checks found in the
digits: one nearly empty digit) and of the planted ones.

With ``with_umap=True`` it also writes RUN/umap.parquet (a PCA projection, so tests that open the
map page need not wait for UMAP's JIT compilation).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from curator.data.cache import ids_digest
from curator.data.stats import shot_group
from curator.evidence import KnnGraph
from curator.heads.base import HeadResult
from curator.heads.store import write_head
from curator.hygiene.fuse import fuse_audit
from curator.signals.hygiene import hygiene_columns

N_CLASSES = 10


def _long_tail_indices(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    keep = []
    for c in range(N_CLASSES):
        n_c = int(round(150 * (150 / 8) ** (-c / (N_CLASSES - 1))))
        pool = np.flatnonzero(labels == c)
        keep.append(np.sort(rng.choice(pool, size=min(n_c, len(pool)), replace=False)))
    return np.concatenate(keep)


def _omega_change(seed: int, label: np.ndarray, knn_pred: np.ndarray) -> np.ndarray:
    """GDW's ω' − ω (paper 003 fig. 4-5): most weights rise a little, the label's and the neighbours' class fall.
    Its own generator, so the rest of the fixture draws the same numbers as before."""
    rng = np.random.default_rng(seed + 1)
    change = rng.normal(0.02, 0.02, (len(label), N_CLASSES)).astype(np.float32)
    change[np.arange(len(label)), label] -= 0.05
    change[np.arange(len(label)), knn_pred] -= 0.1
    return change


def write_fixture_run(path: str | Path, *, noise_rate: float = 0.12, seed: int = 0, with_umap: bool = False) -> Path:
    """Write the fixture run into `path` (created) and return it."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    from curator.data.manifest import make_manifest
    from curator.data.options import DatasetOptions
    from curator.rundir import RunDir

    rng = np.random.default_rng(seed)
    run = RunDir(path)
    digits = load_digits()
    refs = _long_tail_indices(digits.target, rng)                       # (N,) indices into the digits images
    true = digits.target[refs].astype(np.int64)
    n = len(refs)
    noisy = rng.random(n) < noise_rate
    label = true.copy()
    label[noisy] = (true[noisy] + rng.integers(1, N_CLASSES, noisy.sum())) % N_CLASSES
    ids = [f"digits/{r:04d}" for r in refs]
    manifest = make_manifest(ids, label, source=[f"sklearn.datasets.load_digits[{r}]" for r in refs],
                             image_ref=refs, true_label=true, split="train")
    options = DatasetOptions(dataset="digits")
    class_names = [f"digit {c}" for c in range(N_CLASSES)]
    run.write_json("config.json", {"dataset": options.to_dict(), "recipe": {}, "class_names": class_names,
                                   "dataset_info": {"fixture": True}})
    run.write_parquet("manifest.parquet", manifest)
    run.write_parquet("problems.parquet", pd.DataFrame({"sample_id": pd.Series([], dtype=str),
                                                        "kind": pd.Series([], dtype=str),
                                                        "reason": pd.Series([], dtype=str)}))
    run.write_provenance(seed=seed, data_fingerprint="fixture")

    # embeddings: PCA of pixels, L2-normalised                           (N, 16)
    x = PCA(16, random_state=seed).fit_transform(digits.data[refs])
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    run.run_stage("embed", lambda: run.write_npy("embeddings.npy", x.astype(np.float16)), inputs={"fixture": seed},
                  outputs=["embeddings.npy"], ids=ids_digest(ids))   # the rows' samples, as the embed stage records

    # kNN graph (cosine), self excluded                                   (N, k)
    k = 10
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(x)
    dist, idx = nn.kneighbors(x)
    idx, sim = idx[:, 1:].astype(np.int64), (1.0 - dist[:, 1:]).astype(np.float32)
    digest = ids_digest(ids)   # knn.npz and heads/*.npz name the samples their rows hold
    np.savez(run / "knn.npz", indices=idx, similarities=sim, ids=np.array(digest))
    w = np.clip(sim, 0, None)
    votes = np.zeros((n, N_CLASSES))
    np.add.at(votes, (np.repeat(np.arange(n), k), label[idx].ravel()), w.ravel())
    votes /= votes.sum(1, keepdims=True) + 1e-12                          # (N, C) neighbour vote shares
    agreement = votes[np.arange(n), label]
    knn_pred = votes.argmax(1)

    # heads: probabilities as a softened neighbour vote; GDW ω: true-class weight drops for noisy
    probs = (0.8 * votes + 0.2 / N_CLASSES).astype(np.float32)
    omega = np.ones((n, N_CLASSES), np.float32) + rng.normal(0, 0.05, (n, N_CLASSES)).astype(np.float32)
    omega[np.arange(n), label] -= (1 - agreement).astype(np.float32)
    omega[np.arange(n), knn_pred] += 0.5
    epochs = 8
    t = np.linspace(0, 1, epochs)[:, None]                               # (E, 1)
    loss = (np.log(N_CLASSES) * (1 - t) - np.log(probs[np.arange(n), label] + 1e-6) * t).astype(np.float32)
    sigma = np.exp(-(loss - np.log(N_CLASSES)) / 2).astype(np.float32)
    margin = (np.log(probs[np.arange(n), label]) - np.log(np.partition(probs, -2, 1)[:, -2] + 1e-6)) * t
    write_head(run.path, HeadResult("lasl", probs, history={"loss": loss, "sigma": sigma, "margin": margin.astype(np.float32)}),
               ids=digest)
    write_head(run.path, HeadResult("gdw", probs, history={"omega_t": (1 - t * (1 - agreement)).astype(np.float32)},
                               extras={"omega": omega, "omega_change": _omega_change(seed, label, knn_pred)}), ids=digest)
    write_head(run.path, HeadResult("fsr", probs, history={"meta_margin": (margin * 0.5).astype(np.float32)}), ids=digest)

    prob_label = probs[np.arange(n), label]
    signals = pd.DataFrame({
        "sample_id": ids, "label": label, "true_label": true,
        "lasl_prob_label": prob_label, "lasl_pred": probs.argmax(1).astype(np.int64),
        "lasl_margin": margin[-1].astype(np.float32), "lasl_loss": loss[-3:].mean(0),
        "lasl_sigma": sigma[-3:].mean(0),
        "gdw_weight": (1 - (1 - agreement)).astype(np.float32), "gdw_suggested_label": omega.argmax(1).astype(np.int64),
        "fsr_meta_margin": (margin[-1] * 0.5).astype(np.float32), "fsr_in_dictionary": agreement > 0.95,
        "knn_agreement": agreement.astype(np.float32), "knn_suggested_label": knn_pred.astype(np.int64),
        "knn_suggested_share": votes.max(1).astype(np.float32), "knn_kth_distance": (1 - sim[:, -1]).astype(np.float32),
    })

    score = np.clip(1 - agreement + rng.normal(0, 0.03, n), 0, 1).astype(np.float32)
    flagged = score > 0.5
    counts = np.bincount(label, minlength=N_CLASSES)
    shot = shot_group(counts)[label]
    order = np.argsort(-score, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(1, n + 1)
    audit = pd.DataFrame({"sample_id": ids, "label": label, "label_issue_score": score, "is_label_issue": flagged,
                          "suggested_label": knn_pred.astype(np.int64),
                          "suggested_label_confidence": votes.max(1).astype(np.float32),
                          "rank": rank, "shot_group": shot})
    hyg = _hygiene(run, manifest, digits, refs, KnnGraph(idx, sim), audit, probs)
    signals = pd.concat([signals, pd.DataFrame(hygiene_columns(hyg["table"], signals["sample_id"].to_numpy()))], axis=1)
    run.write_parquet("signals.parquet", signals)
    audit = fuse_audit(audit, hyg["table"], probs, probs)
    flagged = audit["is_label_issue"].to_numpy(bool)
    run.write_parquet("audit.parquet", audit)
    est_clean = np.bincount(label[~flagged], minlength=N_CLASSES) + np.bincount(knn_pred[flagged], minlength=N_CLASSES)
    run.write_parquet("classes.parquet", pd.DataFrame({
        "class": np.arange(N_CLASSES), "name": class_names, "count": counts, "shot_group": shot_group(counts),
        "n_flagged": np.bincount(label[flagged], minlength=N_CLASSES), "estimated_true_count": est_clean,
    }))
    tp = int((flagged & noisy).sum())
    run.write_json("metrics.json", {"precision": tp / max(flagged.sum(), 1), "recall": tp / max(noisy.sum(), 1),
                                    "n_flagged": int(flagged.sum()), "n_noisy": int(noisy.sum())})
    (run / "report.html").write_text("<html><body><h1>fixture report</h1></body></html>")
    if with_umap:
        from curator.explore.embedding_map import embedding_map

        embedding_map(run.path, method="pca")  # recorded like the UMAP stage, so the app reuses it
    (run / "fixture.json").write_text(json.dumps({"n": n, "n_noisy": int(noisy.sum()), "hygiene": hyg["planted"]}))
    return run.path


def _hygiene(run, manifest: pd.DataFrame, digits, refs: np.ndarray, graph, audit: pd.DataFrame,
             probs: np.ndarray) -> dict:
    """Run the real hygiene checks on the fixture, plant a few issues by hand, write the hygiene files."""
    from curator import runfiles
    from curator.hygiene.checks import run_checks
    from curator.hygiene.config import HygieneConfig
    from curator.data.properties import measure_array

    pixels = np.repeat(np.clip(np.rint(digits.images * 255 / 16), 0, 255).astype(np.uint8)[..., None], 3, 3)
    props = measure_array(pixels, refs, manifest["sample_id"].to_numpy())
    run.write_parquet(runfiles.IMAGE_PROPERTIES, props)
    res = run_checks(manifest, manifest.iloc[:0], props, graph, HygieneConfig())
    h = res.table.copy()
    label, flag, ids = manifest["label"].to_numpy(), audit["is_label_issue"].to_numpy(bool), manifest["sample_id"].to_numpy()
    clean = np.flatnonzero(~flag & (h["dup_group"].to_numpy() < 0))
    same = next((a, b) for a in clean[:50] for b in clean[50:] if label[a] == label[b])
    other = next((a, b) for a in clean[60:110] for b in clean[110:] if label[a] != label[b] and a not in same and b not in same)
    g0 = int(h["dup_group"].max()) + 1
    for g, (a, b) in enumerate((same, other), start=g0):
        h.loc[[a, b], ["dup_group", "duplicate_type", "duplicate_similarity", "is_duplicate_issue"]] = [g, "exact", 1.0, True]
    h.loc[list(other), "dup_conflict"] = True
    leak, dark, blur_on_flagged, outlier = int(clean[150]), int(clean[151]), int(np.flatnonzero(flag)[0]), int(clean[152])
    h.loc[leak, ["leak_similarity", "is_leak_issue"]] = [1.0, True]
    h.loc[dark, ["is_quality_issue", "quality_issues"]] = [True, "dark"]
    h.loc[blur_on_flagged, ["is_quality_issue", "quality_issues"]] = [True, "blurry,low_information"]
    h.loc[outlier, "is_outlier_issue"] = True
    pairs = pd.DataFrame({"sample_id": [str(ids[leak])], "other_id": ["test/digits-copy-0001"], "other_split": ["test"],
                          "match": ["exact"], "similarity": np.array([1.0], np.float32)})
    summary = dict(res.summary)
    summary["counts"] = {"duplicate": int(h["is_duplicate_issue"].sum()), "leak": int(h["is_leak_issue"].sum()),
                         "quality": int(h["is_quality_issue"].sum()), "outlier": int(h["is_outlier_issue"].sum())}
    run.write_parquet(runfiles.HYGIENE, h)
    run.write_parquet(runfiles.LEAKAGE, pairs)
    run.write_json(runfiles.HYGIENE_SUMMARY, summary)
    planted = {kind: [str(x) for x in ids[h[f"is_{kind}_issue"].to_numpy(bool)]]       # planted + found in the digits
               for kind in ("duplicate", "leak", "quality", "outlier")}
    planted.update({"conflict": [str(ids[i]) for i in other], "label_and_quality": [str(ids[blur_on_flagged])],
                    "planted_quality": [str(ids[dark]), str(ids[blur_on_flagged])]})
    return {"table": h, "planted": planted}


def csv_with_embeddings(folder: Path, n: int = 90) -> dict:
    """A CSV manifest of `n` samples in three classes with separable embeddings (no images): the dataset options
    of a `curator audit --dataset csv --root labels.csv --embeddings emb.npy` run, for stage-reuse tests."""
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, n)
    pd.DataFrame({"path": [f"imgs/{i:03d}.jpg" for i in range(n)], "label": np.array(["a", "b", "c"])[t]}).to_csv(
        folder / "labels.csv", index=False)
    np.save(folder / "emb.npy", (rng.normal(size=(3, 8))[t] * 3 + rng.normal(size=(n, 8))).astype(np.float32))
    return {"dataset": "csv", "root": str(folder / "labels.csv"), "embeddings": str(folder / "emb.npy")}


def count_calls(monkeypatch, module, name: str) -> list:
    """Wrap `module.name` so that every call appends to the returned list (how often a stage really ran)."""
    calls, real = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls
