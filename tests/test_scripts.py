"""The demo, the benchmark scripts (``--quick``) and the gallery examples run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skconvex.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


def _run(path, *args, timeout=300):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_demo_quick(capsys):
    assert main(["demo", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "ConvexGatedReLUClassifier" in out and "MLPClassifier" in out
    assert "certified rel. gap" in out


def test_demo_rows():
    from skconvex._demo import run_demo

    rows = run_demo(quick=True, out=lambda *a: None)
    convex = rows[0]
    assert convex["accuracy"] > 0.85
    assert convex["neurons"] > 0
    assert 0 <= convex["gap"] <= 1e-4 * (1 + 1e-9)


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_quick(script):
    out = _run(script, "--quick")
    assert out.strip()


@pytest.mark.skipif(
    bool(os.environ.get("SKCONVEX_GALLERY_IN_DOCS")),
    reason="the documentation build executes the gallery in this run (.ci/run sets SKCONVEX_GALLERY_IN_DOCS)",
)
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    pytest.importorskip("matplotlib")
    _run(script)


def test_readme_example_runs(capsys):
    """The README's Python example stays true."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip()
