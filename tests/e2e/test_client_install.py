"""The Python client is its own distribution: installed into a fresh virtualenv (pinned by
requirements/constraints.txt) it brings none of the server's dependencies, imports with the
server absent and talks to a running service."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server import app_settings, running_app

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "asyncpg", "redis", "alembic"}
SCRIPT = """
import sys
from decimal import Decimal
try:
    import tokenpulse
except ImportError:
    pass
else:
    sys.exit("the server package is importable: " + tokenpulse.__file__)
from tokenpulse_client import TokenpulseClient
with TokenpulseClient(sys.argv[1]) as tp:
    assert tp.health().status == "healthy"
    pairs = [p.pair for p in tp.pairs()]
    assert "BTC/USD" in pairs, pairs
print("ok", len(pairs))
"""


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only clients/python installed (from a copy: no build litter)."""
    folder = tmp_path_factory.mktemp("client-venv")
    source = folder / "tokenpulse-client"
    shutil.copytree(
        ROOT / "clients" / "python",
        source,
        ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"),
    )
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    constraints = ROOT / "requirements" / "constraints.txt"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            str(constraints),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if install.returncode != 0:
        offline = "NewConnectionError" in install.stderr or "No matching distribution" in (
            install.stderr
        )
        if offline and os.environ.get("REQUIRE_SERVICES") != "1":
            pytest.skip(f"no package index reachable to install httpx: {install.stderr[-300:]}")
        raise AssertionError(install.stdout + install.stderr)
    return python


def test_the_install_brings_none_of_the_servers_dependencies(client_venv: Path) -> None:
    listed = subprocess.run(
        [str(client_venv), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    installed = {line.split("==")[0].lower() for line in listed.splitlines() if "==" in line}
    assert "tokenpulse-client" in installed
    assert "httpx" in installed
    assert "tokenpulse" not in installed
    assert not installed & SERVER_ONLY, installed & SERVER_ONLY


async def test_the_installed_client_talks_to_the_service(client_venv: Path) -> None:
    settings = app_settings(
        kraken_ws_url="ws://127.0.0.1:1/v2", kraken_rest_url="http://127.0.0.1:1"
    )
    async with running_app(settings) as app:
        process = await asyncio.create_subprocess_exec(
            str(client_venv),
            "-c",
            SCRIPT,
            app.base_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=client_venv.parent,  # not the repository: nothing of it on sys.path
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out.decode() + err.decode()
    assert out.decode().startswith("ok 4")
