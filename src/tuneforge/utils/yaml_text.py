"""YAML text that we ship (templates, the Web UI's strings) read through libyaml where PyYAML was built with it:
~8x faster than PyYAML's pure-Python parser (templates.yaml: 90 → 11 ms, read by every process that encodes a
conversation), with the same safe subset and the same result. Users' configs keep PyYAML's own parser
(config/loader.py): its error marks name the line of a mistake."""

from __future__ import annotations

import yaml

FastSafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_shipped_yaml(text: str):
    return yaml.load(text, Loader=FastSafeLoader)  # CSafeLoader or SafeLoader: the safe subset
