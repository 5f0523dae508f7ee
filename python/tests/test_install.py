"""After scripts/setup.sh, a fresh interpreter imports strata with no extra
environment: the python3 first on PATH and Debian's /usr/bin/python3."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, STORIES

SMOKE = r"""
import sys, strata
m = strata.AutoModel.from_pretrained(sys.argv[1])
enc = m.tokenizer(["Once upon a time"], return_attention_mask=False)
out = m.generate(enc["input_ids"], max_new_tokens=8, return_dict_in_generate=True)
print(m.tokenizer.decode(out.sequences[0], skip_special_tokens=True))
try:
    import numpy
except ImportError:
    try:
        m.tokenizer(["x"], return_tensors="np")
    except ImportError as e:
        print("no numpy:", e)
"""


def interpreters():
    found = []
    for p in (shutil.which("python3"), "/usr/bin/python3"):
        if p and os.access(p, os.X_OK):
            real = subprocess.run([p, "-c", "import sys; print(sys.executable)"], capture_output=True,
                                  text=True, env=_clean_env()).stdout.strip()
            if real and real not in found:
                found.append(real)
    return found


def _clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


@pytest.mark.parametrize("python", interpreters())
def test_fresh_interpreter_runs_the_package(python):
    """The built package works in each interpreter (numpy optional)."""
    env = _clean_env()
    env["PYTHONPATH"] = os.path.dirname(os.environ.get("STRATA_PYTHON_PACKAGE") or
                                        os.path.join(ROOT, "build", "python", "strata"))
    p = subprocess.run([python, "-c", SMOKE, STORIES], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("Once upon a time") and len(lines[0]) > len("Once upon a time")
    if len(lines) > 1:
        assert "needs numpy" in lines[1]


@pytest.mark.parametrize("python", interpreters())
def test_installed_for_new_shells(python):
    """`import strata` with no PYTHONPATH: what scripts/install_python.sh (run by setup.sh) set up."""
    p = subprocess.run([python, "-c", "import strata, os; print(os.path.dirname(strata.__file__))"],
                       capture_output=True, text=True, env=_clean_env(), cwd="/")
    assert p.returncode == 0, f"{python}: run scripts/setup.sh (or scripts/install_python.sh): {p.stderr}"
    built = os.environ.get("STRATA_PYTHON_PACKAGE")
    if built and os.path.realpath(p.stdout.strip()) != os.path.realpath(built):
        pytest.skip(f"{python} imports strata from another checkout ({p.stdout.strip()})")
