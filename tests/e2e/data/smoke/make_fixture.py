#!/usr/bin/python3
"""Writes the smoke-test fixture: a small XGBoost model (model.json) and the
rows it scored (scored.csv, `score` from XGBoost's own predict). Run with
Debian's python3-xgboost (1.7.4) when the fixture must change; the e2e test
only reads the files.
"""
import csv
import random

import numpy as np
import xgboost as xgb

rng = random.Random(3)
features = ["views", "avg_price", "mobile_share"]
rows = []
for _ in range(60):
    views = rng.randint(1, 30)
    price = round(rng.lognormvariate(3.5, 0.6), 2)
    mobile = round(rng.random(), 4)
    label = int(rng.random() < 1 / (1 + np.exp(-(0.15 * views - 0.02 * price + mobile - 1.5))))
    rows.append([views, price, mobile, label])
X = np.array([r[:3] for r in rows], dtype=np.float32)
y = np.array([r[3] for r in rows])
d = xgb.DMatrix(X, label=y, feature_names=features)
booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "seed": 0, "nthread": 1}, d, 4)
booster.save_model("model.json")
scores = booster.predict(d)
with open("scored.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(features + ["label", "score"])
    for r, s in zip(rows, scores):
        w.writerow(r + [repr(float(s))])
