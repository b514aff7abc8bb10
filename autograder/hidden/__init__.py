"""Hidden tests: one module per lesson, each with ``EXERCISES`` (see ``autograder.rubric``).

Expected answers are computed here, in the grader, from the reference package; the student's
functions are only ever called through a ``Student`` handle with plain data.
"""
