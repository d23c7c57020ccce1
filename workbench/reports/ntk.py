"""Report placeholder: replaced by the real report module below once the study lands."""

from __future__ import annotations

import argparse

from workbench.reports import Report

DESCRIPTION = "not available yet: the study module has not landed"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def build(args: argparse.Namespace) -> Report:
    raise ValueError("this study's report is not available yet")
