"""The Gradescope package: run_autograder grades a submission in a simulated /autograder."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from notebook_fixtures import solved_notebook

from minilb.cli import main


def test_run_autograder_in_a_simulated_autograder_root(tmp_path):
    package = tmp_path / "autograder.zip"
    assert main(["gradescope-package", str(package)]) == 0
    root = tmp_path / "autograder"
    with zipfile.ZipFile(package) as archive:
        assert {"setup.sh", "run_autograder", "requirements.txt"} <= set(archive.namelist())
        assert "kit/autograder/rubric.py" in archive.namelist()
        archive.extractall(root / "source")
    run_autograder = root / "source" / "run_autograder"
    run_autograder.chmod(0o755)
    solved_notebook("01_cost_matrix", root / "submission" / "01_cost_matrix.ipynb")
    (root / "submission" / "notes.txt").write_text("not a notebook")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run([str(run_autograder)], env=env, check=True, timeout=120,
                   capture_output=True)
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 10
    assert sum(test["max_score"] for test in results["tests"]) == 10


def test_package_name_must_be_a_zip(tmp_path, capsys):
    assert main(["gradescope-package", str(tmp_path / "out.tar")]) == 2
    assert ".zip" in capsys.readouterr().err
