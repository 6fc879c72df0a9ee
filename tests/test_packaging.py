"""The distribution: one top-level import package, every subpackage shipped, a serving core without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Heavy dependencies that only the extras may bring.
HEAVY = {"torch", "stable-baselines3", "onnx", "onnxruntime", "onnxscript", "nvidia-cublas-cu12"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("banditroute-*.whl")
    return whl


def _source_packages() -> set[str]:
    """Every folder with an ``__init__.py`` under the mapped roots, as its ``banditroute.*`` name."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    names = set()
    for pkg, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            names.add(".".join((pkg, *rel)))
    return names


def test_wheel_has_one_top_level_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
        assert top == {"banditroute"}
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")] or [None]
        if top_level:
            assert z.read(top_level).decode().split() == ["banditroute"]


def test_wheel_ships_every_subpackage_and_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    shipped = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert _source_packages() <= shipped, "a package folder is missing from [tool.setuptools] packages"
    assert "banditroute/py.typed" in names
    assert any(n.startswith("banditroute/simulations/configs/") and n.endswith(".toml") for n in names)
    assert not any(n.startswith(("banditroute/tests", "tests/")) for n in names)


def test_core_install_pulls_no_torch(wheel: Path, tmp_path: Path) -> None:
    """Resolve the wheel's dependencies (no extras) without installing them: no torch, SB3 or ONNX."""
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
            "--report", str(report), str(wheel),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if proc.returncode != 0 and ("Could not find" in proc.stderr or "NewConnectionError" in proc.stderr):
        pytest.skip(f"the package index is not reachable: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr
    resolved = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert "banditroute" in resolved and {"fastapi", "redis", "numpy"} <= resolved
    assert not resolved & HEAVY, f"the core install pulls {sorted(resolved & HEAVY)}"


def test_extras_carry_the_heavy_parts() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"])
    assert not any(h in core for h in ("torch", "stable-baselines3", "onnx"))
    extras = meta["optional-dependencies"]
    assert any(d.startswith("torch==") for d in extras["rl"])
    assert any(d.startswith("stable-baselines3") for d in extras["rl"])
    assert any(d.startswith("onnxruntime") for d in extras["onnx"])
