"""nbgrader settings for the kit's lessons: this folder is the nbgrader course root.

The lessons sit directly in this folder (``01_cost_matrix/01_cost_matrix.ipynb``) rather than
under nbgrader's usual ``source/``, so an instructor runs, from here::

    nbgrader generate_assignment 01_cost_matrix
    nbgrader autograde 01_cost_matrix     # submissions in submitted/<student>/01_cost_matrix/

``minilb release`` uses this same file (on a temporary copy of the lessons) to build the
student handout, so nbgrader and the kit stub the solutions identically.
"""

c = get_config()  # noqa: F821 (nbgrader provides get_config when it loads this file)

c.CourseDirectory.source_directory = "."
# Files nbgrader must not copy into a release: caches and the handout templates.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "handout"]

# The stub the student sees, the same as ``minilb release`` puts into the package.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Lesson 4 starts live servers in some cells; give them time, but never hang a grading run.
c.Execute.timeout = 120
c.Autograde.create_student = True
