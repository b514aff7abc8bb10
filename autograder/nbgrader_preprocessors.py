"""nbgrader preprocessors for the kit, registered in ``lessons/nbgrader_config.py``.

``SkipStudentCells`` (below) makes ``nbgrader autograde`` run only the autograder cells.

``RestoreStudentOutputs`` (after nbgrader's ``Execute``) puts back on the student's cells what
they showed in the sandbox (printed text, results, errors, figures), so the graded notebook
reads as usual.

``LatePenaltiesFromPolicy`` (at the end) takes nbgrader's late penalties from the kit's late
policy file, so that nbgrader, ``minilb grade`` and Gradescope charge lateness alike.

``ClearSolutionsKeepingCellsRunnable`` is nbgrader's ``ClearSolutions`` with one difference: a
solution region at column 0 (it holds whole top-level definitions, a solver's private helpers)
becomes a one-line comment instead of a bare ``raise NotImplementedError()``, which would stop
the cell before it defines the exercise function. So ``nbgrader generate_assignment`` itself
produces the handout's notebooks, and ``minilb release`` ships them as they are.
"""

import json
from datetime import UTC
from pathlib import Path

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import AssignLatePenalties, ClearSolutions, NbGraderPreprocessor
from traitlets import Bool, Unicode

from autograder.cell_outputs import checked
from autograder.grade import lesson_of
from autograder.late import LatePolicy, assess, read_policy
from autograder.nbgrader_bridge import outputs_file
from minilb.notebook_cells import is_student_code

TOP_LEVEL_HINT = "# YOUR CODE HERE (helper functions, if you want some)"


class ClearSolutionsKeepingCellsRunnable(ClearSolutions):
    def _replace_solution_region(self, cell: NotebookNode, language: str) -> bool:
        kept, in_top_region, found = [], False, False
        for line in cell.source.split("\n"):
            if in_top_region:
                in_top_region = self.end_solution_delimeter not in line
            elif self.begin_solution_delimeter in line and not line[:1].isspace():
                in_top_region = found = True
                kept.append(TOP_LEVEL_HINT)
            else:
                kept.append(line)
        if in_top_region:
            raise RuntimeError("no end solution statement found")
        cell.source = "\n".join(kept)
        # nbgrader stubs the indented regions (function bodies) as usual.
        return super()._replace_solution_region(cell, language) or found


SKIP_TAG = "skip-execution"  # the tag nbclient (nbgrader's executor) skips by default
BRIDGE = "autograder.nbgrader_bridge"


class SkipStudentCells(NbGraderPreprocessor):
    """Before ``nbgrader autograde`` runs a submission, tag every code cell but the autograder
    cells so that the kernel skips it.

    The autograder cells grade the notebook file in the kit's sandbox, so the kernel never has
    to run student code: nothing a student wrote runs outside the sandbox, a demo cell (live
    servers, an endless loop) costs no time, and a notebook cannot tamper with the kernel that
    computes its points. With ``run_student_cells`` the kernel runs the student's cells as
    nbgrader usually does (their outputs then appear in the feedback), skipping demo cells only.
    """

    run_student_cells = Bool(
        False, help="Run the student's cells (not the demos) in the kernel before grading."
    ).tag(config=True)

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        tags = cell.metadata.get("tags", [])
        is_demo = "demo" in tags
        is_autograder = BRIDGE in cell.source and cell.metadata.get("nbgrader", {}).get("grade")
        skip = is_demo or not (is_autograder or self.run_student_cells)
        if cell.cell_type == "code" and skip and SKIP_TAG not in tags:
            cell.metadata["tags"] = [*tags, SKIP_TAG]
        return cell, resources


class RestoreStudentOutputs(NbGraderPreprocessor):
    """After the autograder cells ran (nbgrader's ``Execute``), give each student code cell
    (the cells ``minilb.notebook_cells`` sends to the sandbox, in order) the outputs it made in
    the sandbox (``autograder.cell_outputs``), as the bridge wrote them beside the notebook, in
    place of whatever outputs the handed-in file claimed. If the file is missing or its count
    differs from the cells', nothing is restored; a cell whose outputs are malformed gets none;
    the log says why.
    """

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict
                   ) -> tuple[NotebookNode, ResourcesDict]:
        folder = Path(resources.get("metadata", {}).get("path") or ".")
        path = outputs_file(folder / f"{resources.get('unique_key', '')}.ipynb")
        try:
            outputs = json.loads(path.read_text())
            path.unlink()
        except (OSError, ValueError, RecursionError) as error:
            self.log.warning("no sandbox outputs to restore from %s: %s", path, error)
            return nb, resources
        cells = [cell for cell in nb.cells if is_student_code(cell)]
        if not isinstance(outputs, list) or len(outputs) != len(cells):
            count = len(outputs) if isinstance(outputs, list) else "no list of"
            self.log.warning("not restoring sandbox outputs: %s outputs for %d student cells",
                             count, len(cells))
            return nb, resources
        for number, (cell, output) in enumerate(zip(cells, outputs, strict=True), start=1):
            cell.outputs, cell.execution_count = [], number  # what the file held is dropped
            try:
                cell.outputs = notebook_outputs(checked(output), number)
            except Exception as error:  # noqa: BLE001  (Malformed; outputs never cost a grade)
                reason = output["dropped"] if isinstance(output, dict) and isinstance(
                    output.get("dropped"), str) else str(error) or type(error).__name__
                self.log.warning("not restoring the sandbox outputs of student cell %d: %s",
                                 number, reason)
        return nb, resources


def notebook_outputs(output: dict, execution_count: int) -> list[NotebookNode]:
    """The nbformat outputs of one checked ``cell_output``, in the order Jupyter shows them
    (the inline backend shows a cell's figures after it finished)."""
    made = [nbformat.v4.new_output("stream", name=name, text=output[name])
            for name in ("stdout", "stderr") if output[name]]
    if output["result"] is not None:
        made.append(nbformat.v4.new_output("execute_result", execution_count=execution_count,
                                           data={"text/plain": output["result"]}))
    if output["error"]:
        made.append(nbformat.v4.new_output("error", **output["error"]))
    made += [nbformat.v4.new_output("display_data", data={"image/png": figure})
             for figure in output["figures"]]
    return made


class LatePenaltiesFromPolicy(AssignLatePenalties):
    """nbgrader's ``AssignLatePenalties`` step, with the penalty from the kit's late policy.

    nbgrader's own step needs due dates in its database and a plugin that only sees seconds
    late; this one reads the same ``late_policy.toml`` as ``minilb grade --late-policy`` and
    Gradescope, takes the submission time nbgrader recorded from ``timestamp.txt`` and charges
    what ``autograder.late.assess`` says, so the three paths agree to the point.
    """

    policy_file = Unicode("", help="The kit's late policy (TOML); empty: nothing is late.").tag(
        config=True)

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict
                   ) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        path = Path(self.policy_file) if self.policy_file else None
        policy = read_policy(path) if path and path.is_file() else LatePolicy()
        with Gradebook(info["db_url"]) as gradebook:
            submission = gradebook.find_submission(info["assignment"], info["student"])
            notebook = gradebook.find_submission_notebook(
                info["notebook"], info["assignment"], info["student"])
            stamp = submission.timestamp  # naive UTC, as nbgrader stores it
            late = assess(policy, lesson_of(info["assignment"]) or info["assignment"],
                          stamp.replace(tzinfo=UTC) if stamp else None,
                          notebook.score, notebook.max_score)
            notebook.late_submission_penalty = late.penalty or None
            if late.note:
                self.log.warning("%s: %s", info["student"], late.note)
            gradebook.db.commit()
        return nb, resources
