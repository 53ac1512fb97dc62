"""What GDW's class-level weights show on a sample (paper 003, §4.1, fig. 4-5), measured on the run's records.

The paper's figures are about the *change* of each class-level weight ω_j in an update (ω' − ω), not its level:
on a mislabelled sample (a cat labelled "dog") the "not cat" gradient flow is harmful, so the weight of the true
class falls (fig. 5: fewer than 20 % of the true-class weights ω_tt rise), while about 65 % of the other
non-target weights rise. GDW's head records that change as ``omega_change`` (RUN/heads/gdw.npz: the mean of
ω' − ω over the last epochs, (N, C)) and suggests the non-label class whose weight fell most
(``gdw_suggested_label``). The level ω' after the update is clamped at 0, so on many samples the true class's
level is simply 0 and says nothing about its direction.
"""
from __future__ import annotations

import numpy as np


def fig45_summary(omega_change: np.ndarray, label: np.ndarray, true_label: np.ndarray) -> dict | None:
    """Shares that carry fig. 4-5 on samples with known truth (None without mislabelled samples):

    - ``true_fell``: mislabelled samples whose true-class weight fell (paper: > 80 %);
    - ``true_fell_most``: ... whose true class fell most among the non-label classes (GDW's suggestion is right);
    - ``others_rose_noisy`` / ``others_rose_clean``: share of the other non-target weights that rose on
      mislabelled / clean samples (paper: about 65 % on both).
    """
    d = np.asarray(omega_change, np.float64)
    y, t = np.asarray(label, np.int64), np.asarray(true_label, np.int64)
    known = t >= 0
    noisy = known & (t != y)
    clean = known & (t == y)
    if not noisy.any():
        return None
    n, c = d.shape
    rows = np.arange(n)
    others = np.ones((n, c), bool)
    others[rows, y] = False
    true_fell = d[noisy, t[noisy]] < 0
    masked = np.where(others, d, np.inf)
    fell_most = masked.argmin(1) == t
    rest = others.copy()
    rest[rows[known], t[known]] = False                                   # non-target: neither label nor true class
    rose = (d > 0) & rest
    share = lambda m: float(rose[m].sum() / max(rest[m].sum(), 1))       # noqa: E731
    return {"n_mislabelled": int(noisy.sum()), "true_fell": float(true_fell.mean()),
            "true_fell_most": float(fell_most[noisy].mean()), "others_rose_noisy": share(noisy),
            "others_rose_clean": share(clean) if clean.any() else None}
