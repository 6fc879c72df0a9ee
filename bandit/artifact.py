"""Exported policies: a versioned, inspectable artifact, never a pickle.

An artifact is three files, in a directory or a zip archive (the service's wire form):

- ``manifest.json``: ``format``, ``format_version``, ``policy`` (registry name), ``hyperparameters``, ``models``,
  ``dim``, ``state`` (the policy's JSON state: counters, generator state), ``featurizer`` (its spec, or null),
  ``arrays`` (name -> sha256, shape, dtype), ``not_saved`` and ``created_by``;
- ``arrays.npz``: the policy's arrays (``policy/...``) and the featurizer's (``featurizer/...``), read with
  ``allow_pickle=False``;
- ``SHA256SUMS``: the sha256 of the two files above, so that any changed byte is refused.

Import checks everything (sums, format version, registry name, array checksums, shapes via the policy's own
``load_state_dict``) before it returns anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from banditroute.bandit.base import Policy
from banditroute.bandit.errors import ArtifactError, BanditError
from banditroute.bandit.registry import POLICIES, policy_from_state

FORMAT = "banditroute-policy"
FORMAT_VERSION = 1
FILES = ("manifest.json", "arrays.npz", "SHA256SUMS")
MAX_ARTIFACT_BYTES = 512 * 2**20
#: What an artifact deliberately leaves out (as SB3's ``_excluded_save_params``).
NOT_SAVED = [
    "derived estimates (theta, theta_c): recomputed from A_inv, b and bc on load",
    "the oracle's revealed truth (simulation only)",
    "budget pacer state and the service's decision log (they live in Redis)",
]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _array_sha(a: np.ndarray) -> str:
    return _sha(np.ascontiguousarray(a).tobytes())


@dataclass(frozen=True)
class Artifact:
    """An imported artifact: the policy, the featurizer's (spec, arrays) if any, and the manifest."""

    policy: Policy
    featurizer_state: tuple[dict[str, Any], dict[str, np.ndarray]] | None
    manifest: dict[str, Any]

    def featurizer(self) -> Any:
        """The featurizer as an :class:`env.features.Featurizer` (None when the artifact has none)."""
        if self.featurizer_state is None:
            return None
        from banditroute.env.features import Featurizer, FeaturizerError

        try:
            return Featurizer.from_state(*self.featurizer_state)
        except FeaturizerError as exc:
            raise ArtifactError(f"artifact featurizer: {exc}") from exc


def _featurizer_dim(spec: dict[str, Any], arrays: dict[str, Any]) -> int:
    """The width of the vectors a saved featurizer computes (its spec's ``dim`` is only the SVD width)."""
    from banditroute.env.features import Featurizer, FeaturizerError

    try:
        return Featurizer.from_state(dict(spec), dict(arrays)).dim
    except FeaturizerError as exc:
        raise ArtifactError(f"artifact featurizer: {exc}") from exc


def _files(policy: Policy, featurizer: Any = None) -> dict[str, bytes]:
    state = policy.state_dict()
    arrays = {f"policy/{k}": v for k, v in state["arrays"].items()}
    fz_spec = None
    if featurizer is not None:
        fz_spec, fz_arrays = featurizer.state() if hasattr(featurizer, "state") else featurizer
        fz_dim = _featurizer_dim(fz_spec, fz_arrays)
        if fz_dim != policy.dim:
            raise ArtifactError(f"featurizer dim {fz_dim} differs from the policy's dim {policy.dim}")
        arrays.update({f"featurizer/{k}": np.asarray(v) for k, v in fz_arrays.items()})
    from importlib.metadata import PackageNotFoundError, version

    try:
        created_by = f"banditroute {version('banditroute')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        created_by = "banditroute (source)"
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "policy": policy.name,
        "hyperparameters": policy.hyperparameters(),
        "models": list(policy.models),
        "dim": policy.dim,
        "state": state["meta"],
        "featurizer": fz_spec,
        "arrays": {
            k: {"sha256": _array_sha(v), "shape": list(v.shape), "dtype": str(v.dtype)}
            for k, v in sorted(arrays.items())
        },
        "not_saved": NOT_SAVED,
        "created_by": created_by,
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files = {"manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode(), "arrays.npz": buf.getvalue()}
    files["SHA256SUMS"] = "".join(f"{_sha(files[n])}  {n}\n" for n in ("manifest.json", "arrays.npz")).encode()
    return files


def to_bytes(policy: Policy, featurizer: Any = None) -> bytes:
    """The artifact as a zip archive (what the service's export endpoint returns)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in _files(policy, featurizer).items():
            z.writestr(name, data)
    return out.getvalue()


def export(policy: Policy, path: str | Path, featurizer: Any = None) -> Path:
    """Write the artifact to ``path``: a zip archive if it ends in ``.zip``, else a directory of three files."""
    path = Path(path)
    if path.suffix == ".zip":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_bytes(policy, featurizer))
        return path
    path.mkdir(parents=True, exist_ok=True)
    for name, data in _files(policy, featurizer).items():
        (path / name).write_bytes(data)
    return path


def _read_zip(data: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = sorted(z.namelist())
            if names != sorted(FILES):
                raise ArtifactError(f"artifact must hold exactly {list(FILES)}, holds {names}")
            if sum(i.file_size for i in z.infolist()) > MAX_ARTIFACT_BYTES:
                raise ArtifactError(f"artifact unpacks to more than {MAX_ARTIFACT_BYTES} bytes")
            return {n: z.read(n) for n in FILES}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"artifact is not a readable zip archive: {exc}") from exc


def _read(source: str | Path | bytes) -> dict[str, bytes]:
    if isinstance(source, bytes | bytearray):
        return _read_zip(bytes(source))
    path = Path(source)
    if path.is_dir():
        missing = [n for n in FILES if not (path / n).is_file()]
        if missing:
            raise ArtifactError(f"{path}: artifact directory lacks {missing}")
        return {n: (path / n).read_bytes() for n in FILES}
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact")
    if path.stat().st_size > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"{path}: larger than {MAX_ARTIFACT_BYTES} bytes")
    return _read_zip(path.read_bytes())


def load(source: str | Path | bytes) -> Artifact:
    """Verify and import an artifact (directory, zip path or zip bytes).

    Raises:
        ArtifactError: tampered (a checksum differs), unreadable, of another format version, of an unknown
            policy, or not fitting the policy's shapes. Nothing is returned half-built.
    """
    files = _read(source)
    sums: dict[str, str] = {}
    for line in files["SHA256SUMS"].decode("utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1]] = parts[0]
    for name in ("manifest.json", "arrays.npz"):
        if sums.get(name) != _sha(files[name]):
            raise ArtifactError(f"artifact {name} does not match its sha256 in SHA256SUMS: changed or corrupted")
    try:
        manifest = json.loads(files["manifest.json"])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"artifact manifest.json is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"not a {FORMAT} artifact")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"artifact format_version {manifest.get('format_version')!r} is not supported (this is {FORMAT_VERSION})"
        )
    policy_name = manifest.get("policy")
    if not isinstance(policy_name, str) or policy_name not in POLICIES:
        raise ArtifactError(f"artifact policy {policy_name!r} is not registered; known: {sorted(POLICIES)}")
    try:
        with np.load(io.BytesIO(files["arrays.npz"]), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"artifact arrays.npz cannot be read without pickle: {exc}") from exc
    listed = manifest.get("arrays")
    if not isinstance(listed, dict) or set(listed) != set(arrays):
        raise ArtifactError("artifact arrays.npz does not hold exactly the arrays its manifest lists")
    for k, a in arrays.items():
        if not isinstance(listed[k], dict) or listed[k].get("sha256") != _array_sha(a):
            raise ArtifactError(f"artifact array {k!r} does not match its sha256")
    hyper = manifest.get("hyperparameters")
    models, dim = manifest.get("models"), manifest.get("dim")
    if not isinstance(hyper, dict) or not isinstance(models, list) or not isinstance(dim, int):
        raise ArtifactError("artifact manifest lacks hyperparameters, models or dim")
    state_meta = manifest.get("state")
    if not isinstance(state_meta, dict) or state_meta.get("models") != models or state_meta.get("dim") != dim:
        raise ArtifactError("artifact manifest's models and dim disagree with its state")
    try:
        policy_arrays = {k[7:]: v for k, v in arrays.items() if k.startswith("policy/")}
        policy = policy_from_state(policy_name, models, dim, hyper, {"meta": state_meta, "arrays": policy_arrays})
    except BanditError as exc:
        raise ArtifactError(f"artifact does not fit policy {policy_name!r}: {exc}") from exc
    fz = None
    if manifest.get("featurizer") is not None:
        fz = (dict(manifest["featurizer"]), {k[11:]: v for k, v in arrays.items() if k.startswith("featurizer/")})
    return Artifact(policy, fz, manifest)
