"""``minilb schedule``: placeholder until written (see cli.py for the register protocol)."""
import argparse


def register(subcommands: argparse._SubParsersAction) -> None:
    pass
