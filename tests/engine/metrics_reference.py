#!/usr/bin/python3
"""Reference values for tests/engine/lua_stdlib_modules_test.cc (sluice.metrics).

Computed independently of sluice with Debian's scikit-learn and numpy
(apt-get install python3-sklearn; scikit-learn 1.2.1, numpy 1.24.2 on
Debian 12). The tests never run this script: its output was pasted into the
test as constants. Rerun it to check them:

    /usr/bin/python3 tests/engine/metrics_reference.py

The data is built the same way in Lua by the test: the Park-Miller
generator (exact integer arithmetic, so Lua and Python get bit-identical
numbers); scores are multiples of 1/50, so there are ties.
"""
import math

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, f1_score, log_loss,
                             mean_absolute_error, mean_squared_error, precision_score, recall_score, roc_auc_score)


def uniforms(seed, n):
    s, out = seed, []
    for _ in range(n):
        s = s * 16807 % 2147483647
        out.append(s / 2147483647)
    return out


def dataset(n):
    u = uniforms(12345, 2 * n)
    scores = [math.floor(u[2 * i] * 50) / 50 for i in range(n)]
    labels = [1 if u[2 * i + 1] < 0.2 + 0.6 * scores[i] else 0 for i in range(n)]
    return np.array(labels), np.array(scores)


def ece(y, p, n_bins, strategy):
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    if strategy == "uniform":
        bins = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        bins = np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)
    ids = np.searchsorted(bins[1:-1], p)
    counts = np.bincount(ids, minlength=len(bins))
    counts = counts[counts != 0]
    return prob_true, prob_pred, counts, float(np.sum(counts / len(p) * np.abs(prob_true - prob_pred)))


def at_k(y, s, k):
    order = np.argsort(-s, kind="stable")
    top = y[order[:k]]
    return top.mean(), top.sum() / y.sum()


y, s = dataset(500)
print("n = 500, positives =", int(y.sum()))
print("auc =", repr(roc_auc_score(y, s)))
print("logloss =", repr(log_loss(y, s)))
print("brier =", repr(brier_score_loss(y, s)))
print("average_precision =", repr(average_precision_score(y, s)))
pred = (s >= 0.5).astype(int)
print("threshold 0.5: precision =", repr(precision_score(y, pred)), "recall =", repr(recall_score(y, pred)),
      "f1 =", repr(f1_score(y, pred)), "accuracy =", repr(accuracy_score(y, pred)))
for k in (1, 10, 50, 499):
    p, r = at_k(y, s, k)
    print(f"at k={k}: precision =", repr(float(p)), "recall =", repr(float(r)))
for strategy in ("uniform", "quantile"):
    pt, pp, counts, e = ece(y, s, 10, strategy)
    print(strategy, "bins: fraction_positive =", [repr(float(x)) for x in pt])
    print(strategy, "bins: mean_predicted =", [repr(float(x)) for x in pp])
    print(strategy, "bins: counts =", [int(c) for c in counts], "ece =", repr(e))
# Regression on the same numbers: actual = scores, predicted = labels * 0.9 + 0.05.
pr = y * 0.9 + 0.05
print("rmse =", repr(math.sqrt(mean_squared_error(s, pr))), "mae =", repr(mean_absolute_error(s, pr)))
# Small hand cases: every score tied (AUC 0.5), and a perfect ranking.
print("tied auc =", repr(roc_auc_score([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3])))
print("clipped logloss =", repr(log_loss([1, 0], [0.0, 0.0], labels=[0, 1])))
