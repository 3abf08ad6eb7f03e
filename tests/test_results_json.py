"""results.json is strict JSON: undefined figures are null, numpy scalars plain numbers."""

from __future__ import annotations

import json

import numpy as np

from vtlm.eval.report import results_json


def _reject_constants(name):
    raise ValueError(f"non-standard JSON constant {name}")


def test_results_json_writes_null_for_non_finite_and_plain_numbers():
    results = {
        "a": float("nan"),
        "b": [1.5, float("inf"), np.float32(2.5), np.int64(3)],
        "c": {"mean": np.float64("nan"), "n": 4, "ok": True, "name": "gpt"},
        "d": (0.25, -float("inf")),
    }
    text = results_json(results)
    parsed = json.loads(text, parse_constant=_reject_constants)  # Python's reader accepts NaN unless told
    assert parsed == {
        "a": None,
        "b": [1.5, None, 2.5, 3],
        "c": {"mean": None, "n": 4, "ok": True, "name": "gpt"},
        "d": [0.25, None],
    }
