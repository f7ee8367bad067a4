"""Sphinx configuration of gmr's documentation.

Built by scripts/test (warnings are errors, every reference must resolve):

    python -m sphinx -W --keep-going -n -E -b html docs .venv/docs/html
"""

import os
import sys

# The directives of docs/_ext (the CLI's --help, made by gmr itself).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

project = "gmr"
copyright = "gmr's authors, Apache License 2.0"
author = "gmr's authors"

extensions = [
    # ``.. show-options:: gmr``: the [oslo_reports] options, read from the
    # entry point oslo.config.opts (gmr = gmr.opts:list_opts).
    "oslo_config.sphinxext",
    "gmr_docs",
]

root_doc = "index"
exclude_patterns = ["_build"]
# Literal blocks are reports, shell commands and JSON: no smart quotes anywhere.
smartquotes = False
highlight_language = "none"

html_theme = "alabaster"
html_title = "gmr"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Guru Meditation Reports for Python services",
    "fixed_sidebar": True,
}
