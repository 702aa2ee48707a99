"""Two ways to fit a linear Bradley-Terry head on precomputed features, with
validation-only hyperparameter selection (k-fold CV inside the training split).

- ``sk_*``: scikit-learn LogisticRegression on standardised difference
  features x_c - x_r (symmetrised, no intercept) -- the fast probe.
- ``lib_*``: the library's own EnsembleRewardModel (fit_head_stack, K members,
  bootstrap, early stopping, standardisation), fed by ``ArrayEncoder`` so the
  features come from an array instead of a backbone.
"""

from __future__ import annotations

import numpy as np
from common import acc_ci

from rewardhedge.config import EncoderConfig, EnsembleConfig, HeadConfig, TrainConfig
from rewardhedge.encoders import item_key
from rewardhedge.estimators.ensemble import EnsembleRewardModel

C_GRID = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
L2_GRID = [0.03, 0.1, 0.3, 1.0, 3.0, 10.0]


def folds(n, k=5, seed=123):
    order = np.random.default_rng(seed).permutation(n)
    return np.array_split(order, k)


# ------------------------------------------------------------------ sklearn probe
def _sk_fit(d_train, C):
    from sklearn.linear_model import LogisticRegression

    mu = np.zeros(d_train.shape[1])  # differences are antisymmetric: centre at 0
    sd = d_train.std(0).clip(1e-6)
    X = np.vstack([d_train / sd, -d_train / sd])
    y = np.r_[np.ones(len(d_train)), np.zeros(len(d_train))]
    clf = LogisticRegression(C=C, fit_intercept=False, max_iter=2000).fit(X, y)
    w = clf.coef_[0] / sd
    return lambda d: (d - mu) @ w


def sk_cv(d_train, grid=C_GRID, k=5):
    """Mean CV accuracy per C on the training differences only."""
    scores = {}
    fs = folds(len(d_train), k)
    for C in grid:
        acc = []
        for i in range(k):
            va = fs[i]
            tr = np.concatenate([fs[j] for j in range(k) if j != i])
            s = _sk_fit(d_train[tr], C)(d_train[va])
            acc.append(np.mean((s > 0) + 0.5 * (s == 0)))
        scores[C] = float(np.mean(acc))
    return scores


def sk_select_and_test(xc, xr, train, test, grid=C_GRID):
    d = (xc - xr).astype(np.float64)
    scores = sk_cv(d[train], grid)
    C = max(scores, key=scores.get)
    s = _sk_fit(d[train], C)(d[test])
    acc, lo, hi = acc_ci((s > 0) + 0.5 * (s == 0))
    return {"C": C, "val": scores[C], "test": acc, "ci": [lo, hi], "cv": scores}


# ------------------------------------------------------------------ library path
class ArrayEncoder:
    """An Encoder over precomputed rows: (prompt, response) -> its feature row."""

    def __init__(self, pairs, xc, xr, name="array"):
        self.dim = int(xc.shape[1])
        self.id = f"{name}:{self.dim}"
        self.rows = {}
        for p, a, b in zip(pairs, xc, xr, strict=True):
            self.rows[item_key(p.prompt, p.chosen)] = a
            self.rows[item_key(p.prompt, p.rejected)] = b

    def encode(self, prompts, responses, *, progress=False):
        return np.stack(
            [self.rows[item_key(p, r)] for p, r in zip(prompts, responses, strict=True)]
        ).astype(np.float32)


def lib_model(enc, k=5, l2=None, seed=0):
    cfg = EnsembleConfig(
        n_members=k,
        head=HeadConfig(kind="linear"),
        encoder=EncoderConfig(kind="hashing", dim=enc.dim),  # unused: encoder passed in
        train=TrainConfig(seed=seed, l2=l2),
    )
    return EnsembleRewardModel(cfg, encoder=enc)


def lib_cv(enc, pairs, train, grid=L2_GRID, k=5, n_members=5):
    scores = {}
    fs = folds(len(train), k)
    for l2 in grid:
        acc = []
        for i in range(k):
            va = train[fs[i]]
            tr = train[np.concatenate([fs[j] for j in range(k) if j != i])]
            m = lib_model(enc, n_members, l2).fit([pairs[j] for j in tr])
            m_metrics = m.evaluate([pairs[j] for j in va], reps=20)
            acc.append(m_metrics["pairwise_accuracy"])
        scores[l2] = float(np.mean(acc))
    return scores


def lib_select_and_test(enc, pairs, train, test, grid=L2_GRID, n_members=5):
    scores = lib_cv(enc, pairs, train, grid, n_members=n_members)
    l2 = max(scores, key=scores.get)
    m = lib_model(enc, n_members, l2).fit([pairs[j] for j in train])
    met = m.evaluate([pairs[j] for j in test])
    return {
        "l2": l2,
        "val": scores[l2],
        "test": met["pairwise_accuracy"],
        "ci": [met["accuracy_ci_low"], met["accuracy_ci_high"]],
        "log_loss": met["log_loss"],
        "cv": scores,
    }


def lib_fixed(enc, pairs, train, test, l2=None, n_members=5):
    m = lib_model(enc, n_members, l2).fit([pairs[j] for j in train])
    met = m.evaluate([pairs[j] for j in test])
    return {
        "test": met["pairwise_accuracy"],
        "ci": [met["accuracy_ci_low"], met["accuracy_ci_high"]],
    }
