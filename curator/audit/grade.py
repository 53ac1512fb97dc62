"""How good is the audit's evidence? Measured without any truth, turned into a grade that sets how much noise the
audit may believe in (docs/audit.md, "Evidence grade").

Label noise and weak features look alike to an audit that learns from the noisy labels: in both cases the
image-only evidence disagrees with many given labels. Two label-free measurements pull them apart:

- **the noise the evidence can support** (`supported_noise_rate`): a mixture-proportion estimate. The evidence's
  likelihood of each sample's *given* label, s_i = L[i, ỹ_i], is drawn from (1 − ν)·f_clean + ν·f_wrong. The
  distribution of a *wrong* label's likelihood, f_wrong, is observed directly: the likelihood of a random other
  class, L[i, l], l ≠ ỹ_i (out-of-fold evidence never saw the label, so a wrong given label scores like any other
  class). Since f_clean ≥ 0, ν ≤ F(t) / F_wrong(t) for every t, and the tightest bound over the low quantiles
  t of f_wrong (`NOISE_QUANTILES`) is the estimate (an upper bound; Blanchard et al. 2010, Scott 2015 for
  mixture-proportion estimation). Weak features make f_clean broad but, after class balancing, rarely as low as a
  wrong label's likelihood, so on a clean dataset the estimate stays near 0 however weak the features are;
- **how separable the classes are to the evidence** (``separability``): how much more often than chance two
  different views of the image — the out-of-fold probe (or the user's model) and the kNN vote — name the same class
  (Cohen's κ = (p_o − p_e) / (1 − p_e): p_o their agreement, p_e what two views with the same class shares would
  agree by chance). Both learn from the given labels, but where the features separate the classes they agree on an
  image's class whether or not its label is wrong (planted blobs with 42 % of labels flipped: 0.79), and where they
  do not they disagree whatever the labels (patch k-means on 2,000 CIFAR-10 images: 0.36 with every label correct).
  Each view names its class under the class prior the audit estimated (argmax of view × prior, the class p(c | x)
  would name): the probe and the kNN vote are class-balanced likelihoods, and on long-tailed data their argmaxes
  both lean to the rare classes, each its own way, so they would disagree about the tail bias rather than the
  image; under the prior both name the head classes more often, which raises chance agreement too, hence κ
  (long-tailed CIFAR-10N with SimSiam embeddings, `worse`: raw agreement 0.54 without the prior, 0.79 with it,
  κ 0.71; docs/audit.md). Without a kNN graph (``--pred-probs`` alone) p_o is the model's mean top probability, its
  expected accuracy if calibrated, and p_e the sum of its predicted-class shares squared. The probe's and the kNN
  vote's agreement with the given labels are recorded beside it.

The grade (`GRADES`) follows the separability: ``strong`` ≥ 0.83, ``moderate`` ≥ 0.56, else ``weak`` — the raw
agreements 0.85 and 0.60 at which the grades were first set on ten even classes (chance 0.1). Measured
(docs/audit.md, "Evidence grade"): CIFAR-10N SimSiam embeddings κ 0.66–0.81 (moderate), CIFAR folders with a small
pretrained network 0.57–0.69 (moderate), with CPU patch k-means 0.33–0.39 on 2,000 images and 0.555 on 10,000
(weak).
With strong or moderate evidence the audit's Bayes decision stands. With weak evidence its posterior cannot
tell which labels are wrong, so the share it believes wrong (often a third of a clean dataset) is not trusted:
at most ``WEAK_REVIEW_FACTOR`` × max(ν̂, ``NOISE_PRIOR``) × N samples are flagged (the highest scores among those above the threshold),
a review list sized by the noise the evidence supports, which weak evidence cannot enlarge. The factor was
chosen from measurements on 2,000 CIFAR-10 training images (docs/audit.md): with weak evidence about one flag
in four is a real error at recall ~0.8, so a list three times the supported noise is what reaches that recall.

When ν̂ ≥ ``UNINFORMATIVE_NOISE`` (0.5) the given labels score like random classes — the evidence carries no
information about them (random embeddings on digits: ν̂ 0.85) — and weak evidence then flags nothing.

**The representation can cap the grade** (`REPRESENTATION_CEILING`). What the features were is one of the grade's
inputs, and one kind was weak wherever it was measured: patch k-means (the CPU rung with no training; kNN monitor
0.41–0.50 on CIFAR-10). On every CIFAR-10 folder with wrong labels it was measured on (2,000 and 10,000 images,
uniform and asymmetric noise) its flag precision was 0.16–0.32 (BENCHMARKS.md, "CPU image folder"; docs/audit.md),
yet its κ can reach moderate when the noise is structured: both views learn the same look-alike swaps from the same
labels and then agree on them (10,000 images, `asym` noise: 0.555 with the probe's old fixed weight decay, 0.595
with the weight decay chosen by held-out likelihood, uncapped 3,459 flags at precision 0.24). So patch k-means
features grade at most weak, and the measured grade is kept beside it (``grade_measured``).

ν̂ assumes a wrong label scores like a random other class, which holds for uniform noise; a model that learned
structured noise (cat ↔ dog) gives its flip targets more mass, and ν̂ then underestimates (CIFAR-10N ``aggre``:
0.002 for 9 % real noise). That is why ν̂ caps the flags only under weak evidence and never sets the grade.
"""
from __future__ import annotations

import numpy as np

NOISE_QUANTILES = (0.05, 0.1, 0.2, 0.3)   # low quantiles t of the wrong-label likelihood where F(t)/F_wrong(t) is read
STRONG, MODERATE = (0.85 - 0.1) / 0.9, (0.60 - 0.1) / 0.9  # separability (κ): raw 0.85 / 0.60 on ten even classes
WEAK_REVIEW_FACTOR = 3.0  # weak evidence: flag at most this many per supported wrong label (audit.weak_evidence_factor)
GRADES = ("strong", "moderate", "weak")
#: ν̂ at or above this: the given labels' likelihoods are distributed like random classes' (features that carry no
#: information, e.g. random embeddings give 0.85), so ν̂ bounds nothing; weak evidence then flags nothing at all
UNINFORMATIVE_NOISE = 0.5
#: the noise rate weak evidence always allows for: real datasets carry some label errors (Northcutt, Athalye &
#: Mueller 2021 estimate at least 3.3 % on average over ten widely used test sets), and ν̂ misses structured noise
NOISE_PRIOR = 0.03
#: the best grade evidence from a representation of this kind can have (module docstring)
REPRESENTATION_CEILING = {"patch_kmeans": "weak"}
EPS = 1e-12


def supported_noise_rate(L: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """ν̂ in [0, 1]: the share of wrong labels the evidence L (N, C, rows sum to 1) can support (module docstring).

    f_wrong is sampled with one random other class per row (O(N) memory at any C)."""
    L = np.asarray(L, np.float64)
    y = np.asarray(labels, np.int64)
    n, C = L.shape
    if n == 0 or C < 2:
        return 0.0
    rows = np.arange(n)
    rng = np.random.default_rng(seed)
    other = (y + rng.integers(1, C, size=n)) % C               # a uniformly random class ≠ the given one
    s, s_wrong = L[rows, y], L[rows, other]
    ratios = []
    for t in np.quantile(s_wrong, NOISE_QUANTILES):
        below = float(np.mean(s_wrong <= t))
        if below > 0:
            ratios.append(float(np.mean(s <= t)) / below)
    return float(min(1.0, min(ratios))) if ratios else 0.0


def grade_evidence(probe: np.ndarray, knn: np.ndarray | None, L: np.ndarray, labels: np.ndarray, *,
                   prior: np.ndarray | None = None, source: str = "probe", seed: int = 0,
                   factor: float = WEAK_REVIEW_FACTOR, ceiling: str | None = None) -> dict:
    """The evidence numbers and grade.

    probe (N, C): out-of-fold probe (or the user's) probabilities; knn (N, C) or None: the kNN vote;
    L (N, C): their combination the audit scores with (first round); labels (N,) given labels; prior (C,) or None
    (uniform): the class prior the audit's p(c | x) uses, under which each view names its class; factor: the
    weak-evidence review factor (``audit.weak_evidence_factor``; 0 = no cap); ceiling: the best grade allowed
    (`REPRESENTATION_CEILING` of the run's representation; None: any), the separability's own grade then kept as
    ``grade_measured``.
    """
    y = np.asarray(labels, np.int64)
    n = len(y)
    if n == 0:
        return {"grade": "weak", "n": 0}
    P = np.asarray(probe)
    a_probe = float(np.mean(P.argmax(1) == y))
    nu = supported_noise_rate(L, y, seed=seed)
    out = {"n": n, "source": source, "probe_label_agreement": a_probe, "supported_noise_rate": nu,
           "knn_label_agreement": None, "probe_knn_agreement": None,
           "chance_agreement": float(np.bincount(y).max() / n)}
    w = np.ones(P.shape[1]) if prior is None else np.asarray(prior, np.float64)
    named = (P * w).argmax(1)                   # the class each view names for the image (module docstring)
    if knn is not None:
        k = np.asarray(knn)
        out["knn_label_agreement"] = float(np.mean(k.argmax(1) == y))
        other = (k * w).argmax(1)
        raw = out["probe_knn_agreement"] = float(np.mean(other == named))
        chance = float(np.bincount(named, minlength=P.shape[1]) @ np.bincount(other, minlength=P.shape[1])) / n**2
        out["separability_measure"] = "probe_knn_agreement"
    else:
        raw = float(np.mean(P.max(1)))
        chance = float(np.sum((np.bincount(named, minlength=P.shape[1]) / n) ** 2))
        out["separability_measure"] = "mean_top_probability"
    out["separability_raw"], out["separability_chance"] = raw, chance
    out["separability"] = (raw - chance) / (1.0 - chance) if chance < 1.0 else 0.0
    sep = out["separability"]
    grade = "strong" if sep >= STRONG else "moderate" if sep >= MODERATE else "weak"
    if ceiling is not None and GRADES.index(grade) < GRADES.index(ceiling):
        out["grade_measured"], out["grade_ceiling"], grade = grade, ceiling, ceiling
    out["grade"] = grade
    out["informative"] = nu < UNINFORMATIVE_NOISE
    out["believed_noise_rate"] = max(nu, NOISE_PRIOR) if out["informative"] else 0.0
    out["flag_cap"] = int(np.ceil(factor * out["believed_noise_rate"] * n)) if grade == "weak" and factor > 0 else None
    return out


def temper_posterior(post: np.ndarray, labels: np.ndarray, believed: float) -> tuple[np.ndarray, float]:
    """Weak evidence: the label posterior (N, C) with its prior odds of a wrong label lowered to the believed noise.

    The posterior odds that ỹ_i is wrong are prior odds × likelihood ratio; under weak evidence the prior odds the
    audit estimated (from a transition matrix learned on features that cannot separate the classes) are not to be
    trusted, so every sample's odds are multiplied by one factor k ≤ 1 chosen so that the mean P(label wrong) equals
    `believed` (the noise rate the evidence supports, floored by ``NOISE_PRIOR``; 0 when uninformative). One factor
    for all samples keeps their order (the review list, AUROC and suggestions do not change); what changes is how
    much noise the audit claims: P(wrong) per sample, the per-class noise and the estimated class sizes, which
    weak evidence can no longer inflate. A posterior already at or below `believed` is returned as it is.

    Returns (posterior, k).
    """
    post = np.asarray(post, np.float64)
    y = np.asarray(labels, np.int64)
    rows = np.arange(len(y))
    if not len(y):
        return post, 1.0
    p_right = np.maximum(post[rows, y], EPS)
    q = np.clip(1.0 - p_right, 0.0, 1.0)
    if q.mean() <= believed:
        return post, 1.0

    def mean_wrong(k: float) -> float:
        return float(np.mean(k * q / (p_right + k * q)))

    lo, hi = -60.0, 0.0                     # log k: mean_wrong rises with k from ~0 to q.mean() > believed
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mean_wrong(np.exp(mid)) < believed else (lo, mid)
    k = float(np.exp(0.5 * (lo + hi)))
    out = post * k
    out[rows, y] = post[rows, y]
    return out / out.sum(1, keepdims=True), k


def cap_flags(flags: np.ndarray, score: np.ndarray, cap: int | None) -> np.ndarray:
    """Keep only the `cap` highest-scoring of `flags` (N,) bool (all of them when cap is None or not exceeded)."""
    flags = np.asarray(flags, bool)
    if cap is None or flags.sum() <= cap:
        return flags
    idx = np.flatnonzero(flags)
    keep = idx[np.argsort(-np.asarray(score)[idx], kind="stable")[:max(0, int(cap))]]
    out = np.zeros_like(flags)
    out[keep] = True
    return out
