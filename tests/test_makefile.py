"""The Makefile's set-up, run with `echo` in place of the venv's Python: `make serve`
installs what serving needs, `make test` the full set, and a PyTorch CPU index that does not
answer is said out loud."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def _make(target: str, venv: Path, *overrides: str) -> subprocess.CompletedProcess:
    venv.mkdir(exist_ok=True)
    return subprocess.run(["make", "-C", str(ROOT), target, f"VENV={venv}", "PY=echo",
                           "PYTHON=true", *overrides], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_serving_installs_only_what_it_needs_and_says_when_torch_falls_back(tmp_path):
    # 127.0.0.1:9 (discard) refuses at once: the CPU index "does not answer"
    run = _make("setup-serve", tmp_path / "v", "TORCH_CPU_INDEX=http://127.0.0.1:9")
    assert run.returncode == 0, run.stderr
    assert "install -q -e .[serve,onnx]\n" in run.stdout and "ray" not in run.stdout
    assert "PyTorch's CPU index (http://127.0.0.1:9) did not answer" in run.stderr
    assert "-m pip install -q torch==2.13.0\n" in run.stdout  # pip's own index


def test_tests_install_the_full_set_and_torch_index_can_be_chosen(tmp_path):
    run = _make("setup", tmp_path / "v", "TORCH_INDEX=http://example.invalid/whl")
    assert run.returncode == 0, run.stderr
    assert "install -q -e .[serve,onnx]" in run.stdout
    assert "install -q -e .[serve,evaluate,onnx,ray,qwen,dev]" in run.stdout
    assert "--extra-index-url http://example.invalid/whl" in run.stdout
    assert "did not answer" not in run.stderr  # a chosen index is not probed
    makefile = (ROOT / "Makefile").read_text()
    assert "serve: setup-serve" in makefile and "test: setup\n" in makefile
