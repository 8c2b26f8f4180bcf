#!/usr/bin/python3
"""Data and reference numbers for tests/plugins (the trainer and monitor plugins).

Computed independently of sluice with Debian's packages (apt-get install
python3-sklearn python3-xgboost python3-scipy; scikit-learn 1.2.1, xgboost
1.7.4, scipy 1.10.1, numpy 1.24.2 on Debian 12). The tests never run this
script: it writes tests/plugins/data/*.csv, data/model.json and
data/reference.json, which are committed. Rerun it to regenerate them:

    /usr/bin/python3 tests/plugins/make_reference.py

The data: customers with an age, an income (sometimes missing), a visit count
and a segment; the label (a purchase) follows a logistic model of them.
"""
import csv
import json
import os

import numpy as np
import xgboost as xgb
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import (accuracy_score, brier_score_loss, f1_score, log_loss, precision_score, recall_score,
                             roc_auc_score)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
FEATURES = ["age", "income", "visits"]
SEGMENTS = ["basic", "plus", "premium"]


def customers(rng, n, age_shift=0.0, segment_p=(0.5, 0.3, 0.2), first_id=1):
    age = np.round(rng.normal(40 + age_shift, 10, n), 1)
    income = np.round(rng.lognormal(10.5, 0.4, n), 0)
    visits = rng.poisson(4, n)
    segment = rng.choice(SEGMENTS, n, p=segment_p)
    seg_effect = np.select([segment == "basic", segment == "plus"], [-0.5, 0.3], 0.8)
    z = -4.6 + 0.05 * age + 0.5 * visits + 0.00001 * income + seg_effect
    label = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    income_text = [("" if rng.random() < 0.05 else f"{v:.0f}") for v in income]
    rows = []
    for i in range(n):
        rows.append({"id": first_id + i, "age": f"{age[i]:.1f}", "income": income_text[i], "visits": int(visits[i]),
                     "segment": segment[i], "label": int(label[i])})
    return rows


def write_csv(name, rows, columns):
    with open(os.path.join(DATA, name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: r[c] for c in columns})


def matrix(rows):
    def num(s):
        return float(s) if s != "" else np.nan
    return np.array([[num(str(r[c])) for c in FEATURES] for r in rows], dtype=np.float64)


def labels(rows):
    return np.array([int(r["label"]) for r in rows])


def psi(expected, actual, bins=10, eps=1e-4):
    """PSI with bin edges at expected's quantiles q = i/bins, outer bins open (as sluice.stats.psi)."""
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    edges = np.unique(np.quantile(expected, [i / bins for i in range(bins + 1)]))
    interior = edges[1:-1]
    e = np.bincount(np.digitize(expected, interior), minlength=len(interior) + 1) / len(expected)
    a = np.bincount(np.digitize(actual, interior), minlength=len(interior) + 1) / len(actual)
    e = np.where(e == 0, eps, e)
    a = np.where(a == 0, eps, a)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_reference(ref_rows, cur_rows):
    out = {}
    for f in ["age", "income", "visits"]:
        a = [float(r[f]) for r in ref_rows if str(r[f]) != ""]
        b = [float(r[f]) for r in cur_rows if str(r[f]) != ""]
        ks = stats.ks_2samp(a, b)
        out[f] = {"psi": psi(a, b), "statistic": float(ks.statistic), "p_value": float(ks.pvalue)}
    cats = sorted(set(r["segment"] for r in ref_rows) | set(r["segment"] for r in cur_rows))
    ca = [sum(1 for r in ref_rows if r["segment"] == c) for c in cats]
    cb = [sum(1 for r in cur_rows if r["segment"] == c) for c in cats]
    pa = np.array(ca) / len(ref_rows)
    pb = np.array(cb) / len(cur_rows)
    pa_e = np.where(pa == 0, 1e-4, pa)
    pb_e = np.where(pb == 0, 1e-4, pb)
    chi2, p, dof, _ = stats.chi2_contingency([ca, cb])
    out["segment"] = {"psi": float(np.sum((pb_e - pa_e) * np.log(pb_e / pa_e))), "statistic": float(chi2),
                      "p_value": float(p)}
    return out


def main():
    os.makedirs(DATA, exist_ok=True)
    rng = np.random.default_rng(20240611)
    train = customers(rng, 600)
    valid = customers(rng, 300, first_id=1001)
    batch = customers(rng, 300, first_id=2001)
    same = customers(rng, 400, first_id=3001)
    shifted = customers(rng, 400, age_shift=8, segment_p=(0.3, 0.3, 0.4), first_id=4001)
    columns = ["id", "age", "income", "visits", "segment", "label"]
    for name, rows in [("train.csv", train), ("valid.csv", valid), ("batch.csv", batch), ("current_same.csv", same),
                       ("current_shifted.csv", shifted)]:
        write_csv(name, rows, columns)

    # The same training trainer.xgboost does (see the test): 20 rounds, both
    # sets evaluated with logloss and auc every round.
    params = {"objective": "binary:logistic", "tree_method": "hist", "eta": 0.3, "max_depth": 3, "subsample": 0.8,
              "seed": 7, "nthread": 1, "eval_metric": ["logloss", "auc"]}
    dtrain = xgb.DMatrix(matrix(train), label=labels(train), feature_names=FEATURES, missing=np.nan)
    dvalid = xgb.DMatrix(matrix(valid), label=labels(valid), feature_names=FEATURES, missing=np.nan)
    history = {}
    booster = xgb.train(params, dtrain, num_boost_round=20, evals=[(dtrain, "train"), (dvalid, "valid")],
                        evals_result=history, verbose_eval=False)
    booster.save_model(os.path.join(DATA, "model.json"))
    dbatch = xgb.DMatrix(matrix(batch), feature_names=FEATURES, missing=np.nan)
    scores = booster.predict(dbatch)
    contrib = booster.predict(dbatch, pred_contribs=True)

    # A scored batch for trainer.evaluate and monitor.performance.
    with open(os.path.join(DATA, "scored.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "segment", "label", "score"])
        for r, s in zip(batch, scores):
            w.writerow([r["id"], r["segment"], r["label"], repr(float(s))])
    y = labels(batch)
    p = np.array([float(repr(float(s))) for s in scores])
    order = np.argsort(-p, kind="stable")
    k = 30
    hits = int(y[order[:k]].sum())
    # Grouped: precision@3 within each segment, averaged (recall over segments with a positive).
    gp, gr = [], []
    for seg in sorted(set(r["segment"] for r in batch)):
        idx = np.array([i for i, r in enumerate(batch) if r["segment"] == seg])
        o = idx[np.argsort(-p[idx], kind="stable")]
        kk = min(3, len(o))
        h = int(y[o[:kk]].sum())
        gp.append(h / kk)
        if y[idx].sum() > 0:
            gr.append(h / y[idx].sum())
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    binids = np.searchsorted(np.linspace(0, 1, 11)[1:-1], p)
    counts = np.bincount(binids, minlength=10)
    nonzero = counts[counts > 0]
    ece = float(np.sum(nonzero * np.abs(prob_true - prob_pred)) / len(p))
    pred = (p >= 0.5).astype(int)
    evaluate = {
        "auc": float(roc_auc_score(y, p)), "logloss": float(log_loss(y, p)), "brier": float(brier_score_loss(y, p)),
        "precision_at_k": hits / k, "recall_at_k": hits / int(y.sum()), "k": k,
        "grouped_precision_at_3": float(np.mean(gp)), "grouped_recall_at_3": float(np.mean(gr)),
        "accuracy": float(accuracy_score(y, pred)), "precision": float(precision_score(y, pred)),
        "recall": float(recall_score(y, pred)), "f1": float(f1_score(y, pred)),
        "n": len(y), "positives": int(y.sum()),
        "calibration_fraction_positive": [float(v) for v in prob_true],
        "calibration_mean_score": [float(v) for v in prob_pred],
        "calibration_counts": [int(c) for c in counts], "ece": ece,
    }

    ref = {
        "train": {"train_auc": history["train"]["auc"][-1], "valid_auc": history["valid"]["auc"][-1],
                  "train_logloss": history["train"]["logloss"][-1], "valid_logloss": history["valid"]["logloss"][-1],
                  "valid_auc_by_round": history["valid"]["auc"]},
        "predict": {"scores": [float(s) for s in scores], "contrib_first_row": [float(c) for c in contrib[0]]},
        "evaluate": evaluate,
        "drift_same": drift_reference(train, same),
        "drift_shifted": drift_reference(train, shifted),
    }
    for case in ("drift_same", "drift_shifted"):
        for f, r in ref[case].items():
            drifted = r["psi"] > 0.2 or r["p_value"] < 0.01
            assert drifted == (case == "drift_shifted" and f in ("age", "segment")), (case, f, r)
    with open(os.path.join(DATA, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
