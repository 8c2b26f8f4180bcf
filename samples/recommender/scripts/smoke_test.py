#!/usr/bin/env python3
"""Smoke test of a deployed recommender release (python3, standard library only).

Checks that ROOT/current is the release of VERSION, that the bundle is whole
(model.json, reference.csv, card.json), and that the deployed model scores the
first N rows of the offline scored test set (SCORED, with a `score` column from
trainer.predict) the same way: the model is walked tree by tree here, so this
is an independent second implementation of XGBoost's inference for
binary:logistic models with numeric splits. Exits 1 with one line per failure.

usage: smoke_test.py --root ROOT --version N --scored SCORED.csv [--rows 200]
"""
import argparse
import csv
import json
import math
import os
import struct
import sys

TOLERANCE = 1e-5  # XGBoost sums in float32; this walk sums in double


def f32(x):
    """x rounded to float32, as XGBoost stores features and split values."""
    return struct.unpack("f", struct.pack("f", x))[0]


def find_bundle(current):
    """The folder holding model.json: the release itself or its only subfolder."""
    if os.path.isfile(os.path.join(current, "model.json")):
        return current
    subdirs = [d for d in sorted(os.listdir(current)) if os.path.isdir(os.path.join(current, d))]
    for d in subdirs:
        if os.path.isfile(os.path.join(current, d, "model.json")):
            return os.path.join(current, d)
    return None


class Model:
    """An XGBoost JSON model (1.x and 2.x layouts) for binary:logistic."""

    def __init__(self, doc):
        learner = doc["learner"]
        objective = learner["objective"]["name"]
        if objective != "binary:logistic":
            raise ValueError(f"objective is {objective}, not binary:logistic")
        self.features = learner.get("feature_names") or []
        base_score = float(learner["learner_model_param"]["base_score"])
        self.base_margin = math.log(base_score / (1 - base_score))
        booster = learner["gradient_booster"]
        if booster.get("name") != "gbtree":
            raise ValueError(f"booster is {booster.get('name')}, not gbtree")
        self.trees = booster["model"]["trees"]

    def margin(self, x):
        total = self.base_margin
        for t in self.trees:
            left, right = t["left_children"], t["right_children"]
            index, cond, default_left = t["split_indices"], t["split_conditions"], t["default_left"]
            node = 0
            while left[node] != -1:
                v = x[index[node]]
                if v is None or math.isnan(v):
                    node = left[node] if default_left[node] else right[node]
                else:
                    node = left[node] if v < f32(cond[node]) else right[node]
            total += cond[node]  # a leaf's split_condition is its value
        return total

    def predict(self, x):
        return 1 / (1 + math.exp(-self.margin(x)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--scored", required=True)
    ap.add_argument("--rows", type=int, default=200)
    a = ap.parse_args()

    failures = []
    current = os.path.join(a.root, "current")
    expected = os.path.realpath(os.path.join(a.root, "releases", a.version))
    if not os.path.islink(current):
        failures.append(f"{current} is not a symlink")
    elif os.path.realpath(current) != expected:
        failures.append(f"{current} points to {os.path.realpath(current)}, not {expected}")
    bundle = find_bundle(current) if os.path.isdir(current) else None
    if bundle is None:
        failures.append(f"no model.json under {current}")
    else:
        for name in ("model.json", "reference.csv", "card.json"):
            if not os.path.isfile(os.path.join(bundle, name)):
                failures.append(f"the release lacks {name}")
    if failures:
        return report(failures)

    with open(os.path.join(bundle, "model.json")) as f:
        model = Model(json.load(f))
    with open(os.path.join(bundle, "card.json")) as f:
        card = json.load(f)
    card_features = [s for s in str(card.get("features", "")).split(",") if s]
    if card_features and model.features and card_features != model.features:
        failures.append(f"card.json lists features {card_features}, the model {model.features}")
    if not model.features:
        failures.append("the model does not name its features")
        return report(failures)

    checked, worst = 0, 0.0
    with open(a.scored, newline="") as f:
        for row in csv.DictReader(f):
            if checked == a.rows:
                break
            x = [f32(float(row[name])) if row[name] != "" else None for name in model.features]
            got, offline = model.predict(x), float(row["score"])
            worst = max(worst, abs(got - offline))
            if abs(got - offline) > TOLERANCE and len(failures) < 5:
                failures.append(f"row {checked + 1}: deployed model scores {got:.7f}, offline {offline:.7f}")
            checked += 1
    if checked == 0:
        failures.append(f"{a.scored} has no rows")
    if failures:
        return report(failures)
    print(f"release {a.version}: {len(model.trees)} trees, {len(model.features)} features; "
          f"{checked} rows score as offline (largest difference {worst:.2g})")
    with open(os.environ.get("SLUICE_VALUES", os.devnull), "a") as f:
        f.write(f"rows_checked={checked}\nmax_difference={worst:.3g}\n")
    return 0


def report(failures):
    for line in failures:
        print("smoke test failed: " + line, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
