"""The `etok-tools` command: one entry point that lists every tool, runs each as a module of the
package, and keeps `import etok` and `--help` free of the tools' heavy dependencies."""
import ast
import importlib
import pathlib
import subprocess
import sys

import pytest

from etok.tools import cli

PACKAGE = pathlib.Path(cli.__file__).resolve().parents[1]


def test_help_lists_every_command_with_one_line(tool):
    r = tool("--help", check=True)
    lines = r.stdout.splitlines()
    for name, (_, line) in cli.COMMANDS.items():
        assert any(l.split() and l.split()[0] == name and l.endswith(line) for l in lines), name
    for group, (_, table, _) in cli.GROUPS.items():
        for name, (_, line) in table.items():
            assert any(l.strip().startswith(f"{group} {name} ") and l.endswith(line) for l in lines), name


def test_every_command_module_has_a_main_that_takes_argv():
    pytest.importorskip("torch")
    grouped = [f"{package}.{m}" for package, table, _ in cli.GROUPS.values() for m, _ in table.values()]
    for module in [m for m, _ in cli.COMMANDS.values()] + grouped:
        main = importlib.import_module(f"etok.tools.{module}").main
        assert "argv" in main.__code__.co_varnames[:main.__code__.co_argcount], module


def test_subcommand_help_names_the_subcommand(tool):
    pytest.importorskip("torch")
    r = tool("convert", "--help", check=True)
    assert r.stdout.startswith("usage: etok-tools convert")
    r = tool("bench", "rate", "--help", check=True)
    assert r.stdout.startswith("usage: etok-tools bench rate")


def test_unknown_commands_are_one_line_errors(tool):
    for args in (["nope"], ["bench", "nope"], ["official", "nope"]):
        r = tool(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "nope" in r.stderr, args
    assert tool().returncode == 2  # no command: the usage, and a failure


def test_import_etok_and_the_dispatcher_do_not_load_torch():
    code = "import sys, etok, etok.tools.cli; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=PACKAGE.parent)
    assert r.stdout.strip() == "False"


def test_no_module_edits_sys_path():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "path" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                pytest.fail(f"{path}: uses sys.path")
