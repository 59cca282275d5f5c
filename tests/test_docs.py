"""Docs that cannot drift: the README's examples run, the CLI reference is --help, every column
and every command is documented."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shlex
import shutil

import pytest

import natlens
from natlens.cli import build_parser
from natlens.schema import FLOWS_SCHEMA
from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()


def console_examples() -> list[tuple[str, str]]:
    """(command, expected output) for every `$ natlens ...` line in ```console blocks."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        command, output = None, []
        for line in block.splitlines():
            if line.startswith("$ natlens "):
                if command:
                    examples.append((command, "\n".join(output)))
                command, output = line[len("$ natlens ") :], []
            else:
                output.append(line)
        if command:
            examples.append((command, "\n".join(output)))
    return examples


def test_readme_opens_with_the_two_commands() -> None:
    head = "\n".join(README.splitlines()[:10])
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize(("command", "expected"), console_examples())
def test_readme_examples_are_real(command: str, expected: str, monkeypatch, tmp_path) -> None:
    # The README's relative paths, in a scratch directory: what the commands write (the demo's
    # .demo/) stays out of the repository.
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")  # a terminal as wide as the README's examples
    run = run_cli(*shlex.split(command))
    assert (run.err + run.out).rstrip("\n") == expected.rstrip("\n")


def test_cli_reference_is_current(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "cli.md").read_text() == module.render(), (
        "run: python scripts/gen_cli_docs.py"
    )


def test_every_command_is_documented() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    cli = (ROOT / "docs" / "cli.md").read_text()
    for name in commands:
        assert f"## natlens {name}" in cli


def test_every_column_is_documented() -> None:
    case_doc = (ROOT / "docs" / "case.md").read_text()
    for name in FLOWS_SCHEMA.names:
        assert f"`{name}`" in case_doc, name


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every command and sub-command the parser knows, as argument prefixes."""
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(build_parser()), ids=" ".join)
def test_help_works_for_every_command(command: tuple[str, ...]) -> None:
    run = run_cli(*command, "--help")
    assert run.code == 0, run.err
    assert run.out.startswith(f"usage: natlens {' '.join(command)}".rstrip())
    assert run.err == ""
    if command not in ((), ("context",)):  # every command's help ends with the exit codes
        assert "exit codes:" in run.out and "64  usage error" in run.out


def test_usage_errors_exit_64() -> None:
    assert run_cli("ingest").code == 64
    assert run_cli("records", "x", "--format", "xml").code == 64
    assert run_cli().code == 64


def test_python_dash_m_and_console_script() -> None:
    import subprocess
    import sys
    from pathlib import Path

    for command in ([sys.executable, "-m", "natlens", "--version"],
                    [str(Path(sys.executable).with_name("natlens")), "--version"]):  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        assert done.stdout.strip() == f"natlens {natlens.__version__}"
    # One version: the installed metadata reads natlens.__version__ (pyproject's dynamic version).
    assert importlib.metadata.version("natlens") == natlens.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", natlens.__version__)


def test_python_dash_m_cli() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "natlens.cli", "--version"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.startswith("natlens ")


# What starting the command line must not load (issue 15: start-up): the engines, Arrow, the
# simulator, the network model. Each comes in with the command that uses it.
HEAVY = ("duckdb", "pyarrow", "numpy", "sqlglot", "pyspark", "boto3", "natlens.simulate.run",
         "natlens.topology.checks", "natlens.render.registry", "natlens.engine")  # fmt: skip


def test_the_command_line_starts_without_the_heavy_modules() -> None:
    import subprocess
    import sys

    script = (
        "import sys, contextlib, io\n"
        "from natlens.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['topology', '--help'])\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['simulate', '--help'])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_every_check_in_the_catalog_has_its_code() -> None:
    from natlens.topology.catalog import CATALOG
    from natlens.topology.checks import CHECKS

    assert list(CHECKS) == list(CATALOG)
    assert all((c.severity, c.title) == CATALOG[c.id] for c in CHECKS.values())


def test_aws_facts_are_cited_from_the_project_docs() -> None:
    """The AWS behaviour natlens relies on is in docs/aws.md: every `docs/aws.md §N` cited in the
    code, tests and docs names a section there, and nothing cites a file users do not have."""
    aws = (ROOT / "docs" / "aws.md").read_text()
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", aws, re.M))
    sections |= {f"11.{n}" for n in re.findall(r"^(\d+)\. ", aws.split("## 11.")[1], re.M)}
    sections |= set(re.findall(r"^- §(3\.\d)", aws, re.M))  # the examples of §3
    cited: set[str] = set()
    files = [*ROOT.glob("natlens/**/*.py"), *ROOT.glob("natlens/**/*.sql"),
             *ROOT.glob("tests/*.py"), *ROOT.glob("docs/*.md"), ROOT / "README.md"]  # fmt: skip
    for path in files:
        text = path.read_text()
        assert ("aws" + "-facts") not in text, path
        for group in re.findall(r"docs/aws\.md (§[\d.]+(?:, §[\d.]+)*)", text):
            cited |= {s.strip("§").rstrip(".") for s in group.split(", ")}
    assert cited and cited <= sections, sorted(cited - sections)
