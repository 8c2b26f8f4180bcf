#!/usr/bin/env python3
"""Converts docs/openapi.yaml to JSON at build time, for the end-to-end tests
that check real responses against it (python3-yaml; YAML merge keys and
anchors are expanded)."""
import json
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    doc = yaml.safe_load(f)
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=1, sort_keys=True)
