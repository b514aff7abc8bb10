"""Not written yet."""
import argparse


def register(subcommands: argparse._SubParsersAction) -> None:
    pass
