"""Gradescope on its own image (issue 15.2): Python 3.10, no CAP_SYS_ADMIN, no user namespaces.

The zip ``minilb gradescope-package`` builds is unpacked as Gradescope would, its
requirements are installed into a Python 3.10 venv (Gradescope's Ubuntu 22.04 has 3.10), and
its ``run_autograder`` runs as root in a container-like process: ``capsh`` drops CAP_SYS_ADMIN,
a seccomp filter (``no_namespaces.py``) refuses new namespaces, and ``/sys/fs/cgroup`` is
hidden (Docker shows it read-only). Neither bubblewrap nor the jail can run there, so the uid
sandbox must: the solved notebook gets full marks, results.json names the sandbox, and a
notebook that tries to read the hidden tests and the reference reads nothing, and what it
leaves in /tmp or as a daemon outside its session is gone afterwards. The positive
control: before ``run_autograder`` takes other users' access away, the same throwaway uid can
read those files.

(``/root`` is not enterable by other users on this machine, and pyenv's Python lives there; in
the test's private mount namespace ``/root`` is replaced by a directory holding only
``.pyenv``, as Gradescope's ``/usr/bin/python3`` is reachable by every user.)
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from notebook_fixtures import solved_notebook, write_notebook

from autograder import gradescope, uid_sandbox
from autograder.rubric import RUBRIC

LESSON = "01_cost_matrix"
PYTHON310 = sorted(Path("/root/.pyenv/versions").glob("3.10.*"))
TESTS = Path(__file__).resolve().parent
LEFTOVER_SECONDS = "307.25"  # a daemon's unusual argument, to find it again
MARKERS = ["EXERCISES = [", "def grade_exercise", "length * FACTORS[kind][request_type]"]
STEAL = """
import glob
def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except Exception:
        return ""
FOUND = [_read(path) for pattern in ("{kit}/autograder/**/*.py",
         "{kit}/reference_solution/**/*.py", "/tmp/minilb-gradescope-*/**/*.py")
         for path in glob.glob(pattern, recursive=True)]
import os
with open("/tmp/{leftover}", "w") as handle:  # the uid sandbox shares the machine's /tmp
    handle.write("left behind")
if os.fork() == 0:  # a daemon that leaves the session
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{leftover_seconds}"])
    os._exit(0)
def processing_time(kind, request_type, length):
    return "".join(FOUND) or "nothing"
def cost_matrix(fleet=None):
    raise ValueError("".join(FOUND)[:300] or "nothing")
"""

pytestmark = [
    pytest.mark.skipif(os.getuid() != 0, reason="the uid sandbox needs root"),
    pytest.mark.skipif(not PYTHON310, reason="no Python 3.10 here (pyenv install 3.10)"),
    pytest.mark.skipif(not (shutil.which("capsh") and shutil.which("unshare")),
                       reason="needs capsh (libcap2-bin) and unshare (util-linux)"),
]


def _unpack(archive: Path, target: Path) -> None:
    """As Gradescope does: the zip's files, with their modes."""
    with zipfile.ZipFile(archive) as package:
        for info in package.infolist():
            path = target / info.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(package.read(info))
            path.chmod((info.external_attr >> 16) & 0o777)


@pytest.fixture(scope="module")
def gradescope_root():
    root = Path(tempfile.mkdtemp(prefix="minilb-gradescope-"))
    root.chmod(0o755)  # like /autograder: other users may enter it
    gradescope.build_package(root / "autograder.zip", LESSON)
    _unpack(root / "autograder.zip", root / "source")
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def venv310(gradescope_root: Path) -> Path:
    """A Python 3.10 venv with only the zip's requirements.txt (kept between runs)."""
    requirements = gradescope_root / "source" / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"minilb-gradescope-py310-{digest}"
    # Two xdist workers may want it at once (this module and test_three_paths): one builds it
    # while the other waits on the lock, or pip's files collide.
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "ready").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([str(PYTHON310[-1] / "bin" / "python3.10"), "-m", "venv",
                            str(venv)], check=True)
            done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r",
                                   str(requirements)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"pip could not install the zip's requirements: {done.stderr[-300:]}")
            (venv / "ready").touch()
    venv.chmod(0o755)
    return venv


def _run_autograder_in_container(root: Path, venv: Path) -> subprocess.CompletedProcess:
    hold = tempfile.mkdtemp(prefix="minilb-pyenv-hold-")
    container = (f"exec capsh --drop=cap_sys_admin -- -c 'exec {venv}/bin/python "
                 f"{TESTS}/no_namespaces.py {root}/source/run_autograder'")
    script = f"""set -e
mount --bind /root/.pyenv {hold}
mount -t tmpfs -o mode=0755 tmpfs /root
mkdir /root/.pyenv
mount --bind {hold} /root/.pyenv
mount -t tmpfs -o ro tmpfs /sys/fs/cgroup
{container}
"""
    env = {"PATH": f"{venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "AUTOGRADER_ROOT": str(root),
           "LANG": "C.UTF-8", "HOME": str(root)}
    try:
        return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                              capture_output=True, text=True, env=env, timeout=600)
    finally:
        os.rmdir(hold)


def _submit(root: Path, cells: list[str] | None) -> None:
    shutil.rmtree(root / "submission", ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    notebook = root / "submission" / f"{LESSON}.ipynb"
    if cells is None:
        solved_notebook(LESSON, notebook)
    else:
        write_notebook(notebook, cells)


def test_the_python310_venv_imports_the_grader(gradescope_root: Path, venv310: Path) -> None:
    kit = gradescope_root / "source" / "kit"
    done = subprocess.run([str(venv310 / "bin" / "python"), "-c",
                           "import sys, autograder.gradescope, autograder.late; "
                           "print(sys.version_info[:2])"],
                          capture_output=True, text=True, cwd=kit,
                          env={"PYTHONPATH": f"{kit}:{kit}/reference_solution"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(3, 10)"


def test_run_autograder_on_python310_without_cap_sys_admin_uses_the_uid_sandbox(
        gradescope_root: Path, venv310: Path) -> None:
    root, kit = gradescope_root, gradescope_root / "source" / "kit"
    secrets = [str(path) for path in sorted((kit / "autograder" / "hidden").glob("*.py"))]
    # Positive control: as unpacked, the throwaway uid could read the hidden tests.
    runs, readable = uid_sandbox.readable_by_others("/usr/bin/python3", secrets)
    assert runs and readable, "the control cannot show the uid sandbox reading anything"

    _submit(root, None)
    done = _run_autograder_in_container(root, venv310)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 10, results
    assert results["extra_data"]["sandbox"] == "uid"

    leftover = f"{root.name}-leftover"
    _submit(root, [STEAL.format(kit=kit, leftover=leftover, leftover_seconds=LEFTOVER_SECONDS)])
    done = _run_autograder_in_container(root, venv310)
    text = (root / "results" / "results.json").read_text()
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(text)["score"] == 0
    assert not any(marker in text for marker in MARKERS)
    assert uid_sandbox.readable_by_others("/usr/bin/python3", secrets) == (True, [])
    assert not (Path("/tmp") / leftover).exists(), "the uid sandbox left a file in /tmp"
    deadline = time.monotonic() + 10  # a killed daemon lingers until its new parent reaps it
    while _processes_running(["sleep", LEFTOVER_SECONDS]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_running(["sleep", LEFTOVER_SECONDS]), "a daemon outlived the sandbox"


def _processes_running(argv: list[str]) -> list[int]:
    wanted, found = ("\0".join(argv) + "\0").encode(), []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == wanted:
                found.append(int(entry.name))
        except OSError:
            pass
    return found
    assert sys.version_info >= (3, 11)  # the kit's own tests run on 3.11; the zip on 3.10


def test_speed_is_cpu_time_in_the_uid_sandbox_too(venv310: Path) -> None:
    """Lesson 3's budgets, where no cgroup exists: CPU time of the uid's processes (/proc)."""
    from test_cpu_budget import SLOWER  # a correct solver spending 0.5 s of CPU per large batch

    lesson = "03_optimal_makespan"
    root = Path(tempfile.mkdtemp(prefix="minilb-gradescope-"))
    try:
        root.chmod(0o755)
        gradescope.build_package(root / "autograder.zip", lesson)
        _unpack(root / "autograder.zip", root / "source")
        scores = {}
        for name, extra in (("slower", SLOWER), ("too slow", SLOWER.replace("< 0.5", "< 1.5"))):
            notebook = solved_notebook(lesson, root / "submission" / f"{lesson}.ipynb")
            cells = nbformat.read(notebook, as_version=4)
            cells.cells.append(nbformat.v4.new_code_cell(extra))
            nbformat.write(cells, notebook)
            done = _run_autograder_in_container(root, venv310)
            assert done.returncode == 0, done.stderr[-2000:]
            results = json.loads((root / "results" / "results.json").read_text())
            assert results["extra_data"]["sandbox"] == "uid"
            scores[name] = results["score"]
            shutil.rmtree(root / "submission")
    finally:
        shutil.rmtree(root)
    full = sum(exercise.points for exercise in RUBRIC[lesson])
    assert scores == {"slower": full, "too slow": full - 1.0}, scores  # both speed groups lost
