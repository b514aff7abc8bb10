"""nbgrader preprocessors for the kit, registered in ``lessons/nbgrader_config.py``.

``ClearSolutionsKeepingCellsRunnable`` is nbgrader's ``ClearSolutions`` with one difference: a
solution region at column 0 (it holds whole top-level definitions, a solver's private helpers)
becomes a one-line comment instead of a bare ``raise NotImplementedError()``, which would stop
the cell before it defines the exercise function. So ``nbgrader generate_assignment`` itself
produces the handout's notebooks, and ``minilb release`` ships them as they are.
"""

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearSolutions

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
