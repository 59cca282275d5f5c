"""The command line: parse arguments, call the library, render. Nothing else lives here.

parser (arguments and help) → commands (one function each) → inputs (what they share);
main runs one and turns failures into messages and exit codes.
"""

from natlens.cli.main import main
from natlens.cli.parser import build_parser

__all__ = ["build_parser", "main"]
