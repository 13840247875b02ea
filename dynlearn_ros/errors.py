"""Errors that mean "the user's input is wrong" (a file, an argument), not "the code is wrong".

The ``dynlearn-ros`` command line (:func:`dynlearn_ros.cli.main`) prints them as one line naming
the file and the problem and exits with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from pathlib import Path


class UserInputError(ValueError):
    """Bad user input; ``str()`` is the whole message. A ValueError, so callers that caught the
    ValueError these cases raised before still do."""


class DataFileError(UserInputError):
    """A data file that cannot be used: ``path`` and what is wrong with it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
