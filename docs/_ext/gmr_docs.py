"""Directives of gmr's own documentation.

``.. gmr-help::`` (or ``.. gmr-help:: collect``, ``.. gmr-help:: diff``)
inserts the ``--help`` text of the ``gmr`` command or of one of its
subcommands, made by gmr.cli itself while the documentation is built: the
usage shown is always that of the code it documents. The text is made 79
columns wide and without colour (Python 3.14's argparse colours a
terminal's help), whatever the terminal that builds the documentation.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive

#: The environment argparse reads for its width and colours.
HELP_ENVIRONMENT = {"COLUMNS": "81", "PYTHON_COLORS": "0", "NO_COLOR": "1"}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def help_text(command: list[str]) -> str:
    """What ``gmr COMMAND... --help`` prints."""
    from gmr import cli

    out = io.StringIO()
    with _environment(HELP_ENVIRONMENT), contextlib.redirect_stdout(out):
        try:
            cli.main([*command, "--help"])
        except SystemExit as end:
            if end.code not in (0, None):
                raise RuntimeError(f"gmr {' '.join(command)} --help exited {end.code}") from end
    return out.getvalue()


class GmrHelp(Directive):
    """The --help text of gmr, or of the subcommand given, as a literal block."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        text = help_text(self.arguments)
        block = nodes.literal_block(text, text)
        block["language"] = "none"
        return [block]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("gmr-help", GmrHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
