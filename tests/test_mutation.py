"""A quick run of the mutation report on a handful of mutants (``make mutation`` runs all)."""

import ast

from autograder.mutation import (
    InProcessStudent,
    Mutant,
    grade_mutant,
    main,
    mutable_functions,
    mutants,
)


def test_every_mutant_is_valid_python_and_differs_from_the_reference():
    sources = {name: source for name, (_, source) in mutable_functions().items()}
    found = mutants()
    assert len(found) > 100
    for mutant in found:
        assert ast.dump(ast.parse(mutant.source)) != ast.dump(ast.parse(sources[mutant.function]))


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


def test_a_small_report(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--limit", "12"]) == 0
    report = (tmp_path / "mutation_report.md").read_text()
    assert "# Mutation report" in report and "| function |" in report
    assert "killed" in capsys.readouterr().out
