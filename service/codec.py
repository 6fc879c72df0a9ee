"""Policy and featurizer state <-> Redis hash fields. Arrays travel as .npy bytes, read with allow_pickle=False."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

ARR = "arr:"


def encode_array(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def decode_array(b: bytes) -> np.ndarray:
    a: np.ndarray = np.load(io.BytesIO(b), allow_pickle=False)
    return a


def encode_state(state: Mapping[str, Any]) -> dict[str, bytes]:
    """A policy's ``state_dict()`` as hash fields: ``meta`` (JSON) and ``arr:NAME`` (npy)."""
    fields = {"meta": json.dumps(state["meta"]).encode()}
    fields.update({ARR + k: encode_array(v) for k, v in state["arrays"].items()})
    return fields


def decode_state(fields: Mapping[bytes, bytes]) -> dict[str, Any]:
    arrays = {k.decode()[len(ARR) :]: decode_array(v) for k, v in fields.items() if k.startswith(ARR.encode())}
    return {"meta": json.loads(fields[b"meta"]), "arrays": arrays}


def encode_featurizer(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, bytes]:
    fields = {"spec": json.dumps(dict(spec)).encode()}
    fields.update({ARR + k: encode_array(v) for k, v in arrays.items()})
    return fields


def decode_featurizer(fields: Mapping[bytes, bytes]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays = {k.decode()[len(ARR) :]: decode_array(v) for k, v in fields.items() if k.startswith(ARR.encode())}
    return json.loads(fields[b"spec"]), arrays
