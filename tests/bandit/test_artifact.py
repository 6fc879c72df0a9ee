from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from banditroute.bandit import POLICIES, ArtifactError, LinUCB, export, import_artifact, make_policy, to_bytes
from banditroute.env.features import Featurizer

PROMPTS = [f"prompt {i} about {t}" for i, t in enumerate(["math", "law", "code", "art", "bio"] * 12)]


@pytest.fixture
def trained() -> tuple[LinUCB, Featurizer]:
    f = Featurizer(dim=6, max_features=100).fit(PROMPTS)
    X = f.transform(PROMPTS)
    p = LinUCB(["a", "b", "c"], 6, alpha=0.7, seed=3)
    rng = np.random.default_rng(0)
    for x in X:
        d = p.select(x)
        p.update(x, d.model, float(rng.random()), 0.001)
    return p, f


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_round_trip_gives_the_same_decisions(trained, tmp_path: Path, suffix: str) -> None:
    p, f = trained
    path = export(p, tmp_path / f"art{suffix}", featurizer=f)
    art = import_artifact(path)
    q = art.policy
    assert q.name == "linucb" and q.models == p.models and q.hyperparameters() == p.hyperparameters()
    g = art.featurizer()
    X = g.transform(["a new prompt about law", "math again"])
    np.testing.assert_array_equal(X, f.transform(["a new prompt about law", "math again"]))
    np.testing.assert_array_equal(q.pmf_batch(X, 0.2), p.pmf_batch(X, 0.2))
    assert [q.select(x).model for x in X] == [p.select(x).model for x in X]
    assert art.manifest["format_version"] == 1 and art.manifest["not_saved"]


def test_manifest_is_inspectable(trained, tmp_path: Path) -> None:
    p, f = trained
    export(p, tmp_path / "a", featurizer=f)
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert m["policy"] == "linucb" and m["models"] == ["a", "b", "c"] and m["dim"] == 6
    assert m["featurizer"]["kind"] == "tfidf-svd"
    assert {"policy/A", "policy/A_inv", "policy/b", "policy/bc", "policy/n"} <= set(m["arrays"])
    assert {f"featurizer/{k}" for k in f.state()[1]} <= set(m["arrays"]) and f.state()[1]
    assert all(len(v["sha256"]) == 64 for v in m["arrays"].values())


@pytest.mark.parametrize("target", ["manifest.json", "arrays.npz"])
def test_every_changed_byte_is_refused(trained, tmp_path: Path, target: str) -> None:
    p, f = trained
    d = export(p, tmp_path / "a", featurizer=f)
    data = (d / target).read_bytes()
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(data), size=25, replace=False):
        changed = bytearray(data)
        changed[pos] ^= 0x01
        (d / target).write_bytes(bytes(changed))
        with pytest.raises(ArtifactError, match="sha256"):
            import_artifact(d)
    (d / target).write_bytes(data)
    import_artifact(d)  # intact again


def test_consistently_rewritten_but_invalid_artifacts_are_refused(trained, tmp_path: Path) -> None:
    p, _ = trained
    raw = to_bytes(p)
    with zipfile.ZipFile(__import__("io").BytesIO(raw)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    import hashlib

    def rezip(files: dict[str, bytes]) -> bytes:
        files = dict(files)
        files["SHA256SUMS"] = "".join(
            f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in ("manifest.json", "arrays.npz")
        ).encode()
        buf = __import__("io").BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, b in files.items():
                z.writestr(n, b)
        return buf.getvalue()

    m = json.loads(files["manifest.json"])
    for change, match in [
        ({"format_version": 2}, "format_version 2 is not supported"),
        ({"policy": "evil"}, "policy 'evil' is not registered"),
        ({"format": "other"}, "not a banditroute-policy artifact"),
        ({"models": ["a", "b"]}, "disagree with its state"),
        ({"state": {**m["state"], "n_updates": "many"}}, "does not fit policy"),
        ({"hyperparameters": {**m["hyperparameters"], "alpha": -1}}, "alpha must be in"),
    ]:
        with pytest.raises(ArtifactError, match=match):
            import_artifact(rezip({**files, "manifest.json": json.dumps({**m, **change}).encode()}))
    with pytest.raises(ArtifactError, match="exactly"):
        import_artifact(rezip({**files, "extra.pkl": b"\x80\x04"}))
    with pytest.raises(ArtifactError, match="readable zip"):
        import_artifact(b"PK\x03\x04 definitely not a zip")


def test_pickled_arrays_are_never_loaded(trained, tmp_path: Path) -> None:
    p, _ = trained
    import hashlib
    import io

    buf = io.BytesIO()
    np.savez(buf, **{"policy/A": np.array([{"boom": 1}], dtype=object)})
    files = {
        "manifest.json": json.dumps({"format": "banditroute-policy", "format_version": 1, "policy": "linucb"}).encode(),
        "arrays.npz": buf.getvalue(),
    }
    files["SHA256SUMS"] = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in files).encode()
    d = tmp_path / "evil"
    d.mkdir()
    for n, b in files.items():
        (d / n).write_bytes(b)
    with pytest.raises(ArtifactError, match="without pickle"):
        import_artifact(d)


@pytest.mark.parametrize("name", sorted(n for n, cls in POLICIES.items() if cls.from_hyperparameters))
def test_every_registered_policy_round_trips(name: str) -> None:
    p = make_policy(name, ["a", "b"], 3, seed=1)
    x = np.array([0.1, -0.2, 1.0])
    p.update(x, "a", 0.7, 0.01)
    q = import_artifact(to_bytes(p)).policy
    assert type(q) is type(p) and q.hyperparameters() == p.hyperparameters()
    a, b = p.state_dict(), q.state_dict()
    assert a["meta"] == b["meta"] and set(a["arrays"]) == set(b["arrays"]) and a["arrays"]
    for k, v in a["arrays"].items():
        np.testing.assert_array_equal(v, b["arrays"][k])
    qa, ca = p.estimates(x[None])
    qb, cb = q.estimates(x[None])
    np.testing.assert_array_equal(qa, qb)
    np.testing.assert_array_equal(ca, cb)


def test_featurizer_dim_must_match(trained) -> None:
    p, _ = trained
    f = Featurizer(dim=4, max_features=100).fit(PROMPTS)
    with pytest.raises(ArtifactError, match="featurizer dim 4 differs"):
        to_bytes(p, f)
