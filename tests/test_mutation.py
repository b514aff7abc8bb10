"""Quick runs of both mutation tools on a handful of mutants (``make mutation`` runs them all)."""

import ast
import tomllib
from collections import Counter
from pathlib import Path

from autograder import mutation_mutmut
from autograder.mutation import (
    EQUIVALENT_MUTANTS,
    InProcessStudent,
    Mutant,
    grade_mutant,
    main,
    mutable_functions,
    mutants,
)
from autograder.mutation_mutmut import NO_MUTATE, mark_no_mutate, share_out

COSTS = mutation_mutmut.PACKAGE / "costs.py"


def test_every_mutant_is_valid_python_and_differs_from_the_reference():
    sources = {name: source for name, (_, source) in mutable_functions().items()}
    found = mutants()
    assert len(found) > 100
    for mutant in found:
        assert ast.dump(ast.parse(mutant.source)) != ast.dump(ast.parse(sources[mutant.function]))


def test_every_mutant_has_its_own_key_made_of_text_not_line_numbers():
    found = mutants()
    assert len({mutant.key for mutant in found}) == len(found)
    makespan = [mutant.key for mutant in found if mutant.function == "makespan"]
    assert "makespan: return float(max(finish_times, default=0.0)): max -> min" in makespan


def test_a_real_bug_is_killed_and_an_equivalent_change_survives():
    source = mutable_functions()["makespan"][1]
    as_sum = source.replace("max(finish_times, default=0.0)", "sum(finish_times)")
    assert grade_mutant(Mutant("makespan", "02_greedy_balancing", 1, "sum", as_sum)).killed
    harmless = source.replace("default=0.0", "default=0")
    verdict = grade_mutant(Mutant("makespan", "02_greedy_balancing", 1, "0", harmless))
    assert not verdict.killed and verdict.score == verdict.max_score == 10


def test_a_mutant_that_does_not_load_is_killed():
    assert grade_mutant(Mutant("makespan", "02_greedy_balancing", 1, "broken", "raise 1/0")).killed


def test_the_in_process_student_round_trips_plain_data():
    student = InProcessStudent()
    assert student.call("parse_request", {"__bytes__": "M5"}) == ["M", 5]
    assert student.call("cost_matrix", ["M"]) == {"V": [3], "P": [2], "M": [1]}


def test_a_small_report_of_the_ast_mutator(tmp_path, capsys):
    report = tmp_path / "MUTATION.md"
    assert main(["--tools", "ast", "--limit", "12", "--report", str(report)]) == 0
    text = report.read_text()
    assert "# Mutation report" in text and "| function |" in text and "killed" in text
    assert "ast: " in capsys.readouterr().out


def test_the_argued_equivalents_are_one_table_per_tool():
    table = tomllib.loads(EQUIVALENT_MUTANTS.read_text())
    assert set(table) <= {"ast", "mutmut"}
    for arguments in table.values():
        assert all(isinstance(why, str) and len(why) > 20 for why in arguments.values())


# --- mutmut -----------------------------------------------------------------------------------

SOURCE = '''\
"""Docstring: not code."""


def exercise(x: int) -> int:
    """More text
    over two lines."""
    ### BEGIN SOLUTION
    if x < 0:
        raise ValueError(
            f"x must be at least {0}"
        )
    return x + 1
    ### END SOLUTION
'''


def test_mutmut_may_mutate_solution_code_but_not_messages_docstrings_or_markers():
    marked = mark_no_mutate(SOURCE).splitlines()
    free = [line for line in marked if NO_MUTATE not in line]
    assert "    if x < 0:" in free and "    return x + 1" in free
    assert all(NO_MUTATE in line for line in marked if "raise" in line or "must be" in line)
    assert all(NO_MUTATE in line for line in marked if line.startswith("def "))
    assert "    over two lines.\"\"\"" + NO_MUTATE in marked  # a comment only after the text
    assert "    ### BEGIN SOLUTION" in marked and "    ### END SOLUTION" in marked
    only_return = mark_no_mutate(SOURCE, only={12}).splitlines()
    assert [line for line in only_return if NO_MUTATE not in line and "return" in line]
    assert NO_MUTATE in only_return[7]  # ``if x < 0``: not this worker's line


def test_the_workers_get_about_as_many_mutants():
    counts = Counter({(COSTS, line): 1 + line % 5 for line in range(40)})
    shares = share_out(counts, 2)
    loads = [sum(counts[line] for line in share) for share in shares]
    assert set().union(*shares) == set(counts) and abs(loads[0] - loads[1]) <= 5


def test_mutmut_mutants_go_through_the_real_grader():
    """mutmut, its runner and the sandboxed grader on one small module: each mutant of
    ``processing_time`` and ``cost_matrix`` is graded, and the bugs lose points."""
    results = mutation_mutmut.run([Path(COSTS)], workers=1)
    assert 2 <= len(results) <= 12
    assert {result.module for result in results} == {"costs"}
    assert {result.owner for result in results} <= {"processing_time", "cost_matrix"}
    assert sum(result.killed for result in results) >= 1
    assert all(result.diff for result in results if not result.killed)
