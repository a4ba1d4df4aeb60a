"""Same seed and options give byte-identical files in separate processes; seeds give different variants."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import sheet_for


def _generate(folder: Path, seed: int, hash_seed: str) -> dict[str, bytes]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run(
        [sys.executable, "-m", "generator", "sheet", "--preset", "matrix-core", "--seed", str(seed),
         "--name", "s", "--sheet-dir", str(folder), "--key-dir", str(folder)],
        check=True, env=env, capture_output=True,
    )
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_across_processes(tmp_path):
    first = _generate(tmp_path / "one", 42, "1")
    second = _generate(tmp_path / "two", 42, "987")
    assert sorted(first) == ["s-key.json", "s-key.tex", "s.tex"]
    assert first == second


def test_different_seeds_differ(tmp_path):
    assert _generate(tmp_path / "one", 1, "0") != _generate(tmp_path / "two", 2, "0")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_variant_code_follows_the_numbers(seed):
    a = sheet_for(["matmul", "inverse"], seed)
    assert a.variant == sheet_for(["matmul", "inverse"], seed, title="Other title").variant
    assert a.variant != sheet_for(["matmul", "inverse"], seed + 100).variant
