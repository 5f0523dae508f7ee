"""Shared fixtures: the stories260K model, the CLI binary, a CLI runner."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTDATA = os.environ.get("STRATA_TESTDATA_DIR") or os.path.join(ROOT, "..", "shared", "testdata")
STORIES = os.path.join(TESTDATA, "stories260K")
STRATA_BIN = os.environ.get("STRATA_BIN") or os.path.join(ROOT, "build", "strata")

# Run from a source checkout without CTest: use the build tree's package.
if "STRATA_PYTHON_PACKAGE" not in os.environ:
    sys.path.insert(0, os.path.join(ROOT, "build", "python"))


@pytest.fixture(scope="session")
def stories():
    if not os.path.isdir(STORIES):
        pytest.fail(f"test data missing: {STORIES}")
    return STORIES


@pytest.fixture(scope="session")
def reference(stories):
    with open(os.path.join(stories, "reference.json")) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def model(stories):
    from strata import AutoModel
    return AutoModel.from_pretrained(stories)


def run_cli(*args):
    """`strata ARGS --format json` as a dict."""
    p = subprocess.run([STRATA_BIN, *map(str, args), "--format", "json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="session")
def cli():
    if not os.access(STRATA_BIN, os.X_OK):
        pytest.fail(f"strata binary missing: {STRATA_BIN}")
    return run_cli
