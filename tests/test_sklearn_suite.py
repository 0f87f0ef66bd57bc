"""scikit-learn's own MLP tests, run on deltaprop's estimators.

The file ``sklearn/neural_network/tests/test_mlp.py`` of the installed scikit-learn is copied at test
time (never vendored) with one change, its import line: ``from sklearn.neural_network import
MLPClassifier, MLPRegressor`` becomes ``from deltaprop import MLPClassifier, MLPRegressor``. It runs
in a child pytest with ``-p sklearn.conftest`` (for its fixtures, ``global_random_seed`` among them),
so that the estimators meet scikit-learn's expectations exactly as a user who swaps the import would.
The test extra pins scikit-learn's minor version: a new release is a deliberate bump.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")

IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"


def _swapped_copy(tmp_path: Path) -> Path:
    source = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
    text = source.read_text(encoding="utf-8")
    assert text.count(IMPORT) == 1, f"the import line of {source} changed: update this test"
    target = tmp_path / "test_mlp_on_deltaprop.py"
    target.write_text(text.replace(IMPORT, "from deltaprop import MLPClassifier, MLPRegressor"), encoding="utf-8")
    return target


def test_sklearn_mlp_suite_passes_on_deltaprop(tmp_path):
    target = _swapped_copy(tmp_path)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "sklearn.conftest", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), "-W", "ignore::DeprecationWarning", str(target)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 59 and "failed" not in summary and "error" not in summary, summary
