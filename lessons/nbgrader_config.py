"""nbgrader settings for the kit's lessons: this folder is the nbgrader course root.

The lessons sit directly in this folder (``01_cost_matrix/01_cost_matrix.ipynb``) rather than
under nbgrader's usual ``source/``, so an instructor runs, from here (or ``make nbgrader
ARGS="..."`` from the kit's root, which puts the kit's venv on PATH)::

    nbgrader generate_assignment 01_cost_matrix
    nbgrader autograde 01_cost_matrix     # submissions in submitted/<student>/01_cost_matrix/

``minilb release`` uses this same file (on a temporary copy of the lessons) to build the
student handout, so nbgrader and the kit release exactly the same notebooks. Each exercise's
points come from the kit's rubric: its autograder cell calls ``autograder.nbgrader_bridge``.
"""

from pathlib import Path

from nbgrader.converters import Autograde, GenerateAssignment
from nbgrader.preprocessors import AssignLatePenalties, ClearSolutions, Execute

from autograder.late import POLICY_FILE
from autograder.nbgrader_preprocessors import (
    ClearSolutionsKeepingCellsRunnable,
    LatePenaltiesFromPolicy,
    RestoreStudentOutputs,
    SkipStudentCells,
)

c = get_config()  # noqa: F821 (nbgrader provides get_config when it loads this file)

c.CourseDirectory.source_directory = "."
# Files nbgrader must not copy into a release: caches and the handout templates.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "handout"]

# The stub the student sees, the same as ``minilb release`` puts into the package; a column-0
# region (a solver's helper functions) becomes a comment, so the cell still runs.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.GenerateAssignment.preprocessors = [
    ClearSolutionsKeepingCellsRunnable if step is ClearSolutions else step
    for step in GenerateAssignment.class_traits()["preprocessors"].default()
]

# Autograde runs only the autograder cells: they grade the notebook in the kit's sandbox, so no
# student code runs in nbgrader's own kernel, and demo cells (live servers, heavy plots) cost
# nothing. To also run the student's cells (not the demos) for their outputs in the feedback:
# c.SkipStudentCells.run_student_cells = True
c.Autograde.sanitize_preprocessors = [
    *Autograde.class_traits()["sanitize_preprocessors"].default(),
    SkipStudentCells,
]
# The first autograder cell grades the whole lesson in the sandbox (seconds; the sandbox caps a
# notebook at about two and a half minutes). A cell still running after this scores 0.
c.Execute.timeout = 300
# A student who deletes a locked autograder cell (or hands in a notebook from an older handout
# without them) must lose nothing: nbgrader puts every missing grade cell back from its master
# copy, as ``minilb grade`` and Gradescope, which grade the code and never the cells, already do.
# Edited locked cells are restored from their checksummed master copies by ``OverwriteCells``.
c.OverwriteCells.add_missing_cells = True
c.Autograde.create_student = True
# Late work costs the same on every path: the penalty comes from this folder's late_policy.toml,
# the file `minilb grade --late-policy` and `minilb gradescope-package --late-policy` read too.
# After Execute, the student's cells get back what they showed in the sandbox (stdout, stderr,
# the last expression's value, the error, figures; the kernel never ran them), so the graded
# notebook reads as usual.
c.Autograde.autograde_preprocessors = [
    replaced
    for step in Autograde.class_traits()["autograde_preprocessors"].default()
    for replaced in ([LatePenaltiesFromPolicy] if step is AssignLatePenalties else
                     [step, RestoreStudentOutputs] if step is Execute else [step])
]
c.LatePenaltiesFromPolicy.policy_file = str(Path(__file__).resolve().parent / POLICY_FILE)
