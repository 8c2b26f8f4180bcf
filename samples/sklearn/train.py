#!/usr/bin/env python3
"""Trains a breast-cancer classifier with scikit-learn: ordinary Python, as a
team would write it. It knows nothing of sluice except two optional files:
when $SLUICE_METRICS / $SLUICE_VALUES are set it appends its metrics
("name value" lines) and a few values ("key=value" lines) to them.

usage: train.py --model OUT.pkl --report OUT.json [--seed N] [--C C]
"""
import argparse
import json
import os
import pickle

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--C", type=float, default=1.0)
    a = ap.parse_args()

    data = load_breast_cancer()  # shipped inside scikit-learn: no download
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.25, stratify=data.target, random_state=a.seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=a.C, max_iter=1000))
    cv_auc = cross_val_score(model, X_train, y_train, cv=5, scoring="roc_auc").mean()
    model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)[:, 1]
    pred = (proba >= 0.5).astype(int)
    metrics = {
        "auc": roc_auc_score(y_test, proba),
        "accuracy": accuracy_score(y_test, pred),
        "f1": f1_score(y_test, pred),
        "logloss": log_loss(y_test, proba),
        "cv_auc": cv_auc,
    }

    with open(a.model, "wb") as f:
        pickle.dump(model, f)
    report = {"dataset": "sklearn.datasets.load_breast_cancer", "rows": int(len(data.target)),
              "features": int(data.data.shape[1]), "test_rows": int(len(y_test)),
              "params": {"C": a.C, "seed": a.seed}, "metrics": metrics}
    with open(a.report, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    for name, value in metrics.items():
        print(f"{name} {value:.4f}")
    if os.environ.get("SLUICE_METRICS"):
        with open(os.environ["SLUICE_METRICS"], "a") as f:
            f.writelines(f"{name} {value!r}\n" for name, value in metrics.items())
    if os.environ.get("SLUICE_VALUES"):
        with open(os.environ["SLUICE_VALUES"], "a") as f:
            f.write(f"auc={metrics['auc']!r}\naccuracy={metrics['accuracy']!r}\ntest_rows={len(y_test)}\n")


if __name__ == "__main__":
    main()
