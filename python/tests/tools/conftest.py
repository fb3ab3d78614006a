"""Shared by the tools' tests: `etok-tools` run as a user runs it, in a child process
(`python3 -m etok.tools`, importing the same etok package as this process)."""
import os
import subprocess
import sys

import pytest

import etok

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(etok.__file__)))


def _etok_tools(*args, env=None, check=False):
    """`python3 -m etok.tools ARGS` in a child that imports this very etok package."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "etok.tools", *map(str, args)], capture_output=True,
                          text=True, env=env, check=check)


@pytest.fixture()
def tool():
    """tool(*ARGS, env=None, check=False): `etok-tools ARGS` as a CompletedProcess (text)."""
    return _etok_tools
