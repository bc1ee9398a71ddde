"""The README's "two local gateways" recipe, its three terminals typed as written (on free ports): gateway A's
`peppol-ap run` with the local SML, gateway B's certificates from A's dev CAs and its own `run` joining A's SML,
then an organisation and a network token on each side and an invoice from B's customer that B's worker finds
through the SML and A's SMP, sends over AS4, and A's customer finds in its inbox."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from accesspoint.adapters.rules import install
from tests.e2e.gateway_process import ROOT, free_port
from tests.e2e.terminal import Console, local_sml_ports, readme_blocks, with_ports

pytestmark = pytest.mark.integration

START_SECONDS = 120


@pytest.fixture
def workdir(tmp_path: Path, bis_rules: Path) -> Path:
    """A checkout's working directory after `make run`'s install: the .venv, conf/ (with the free ports) and the
    validation rules in var/rules."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    install(tmp_path / "var" / "rules", bis_rules)
    return tmp_path


@pytest.fixture
def terminals() -> Iterator[list[Console]]:
    opened: list[Console] = []
    yield opened
    for console in opened:
        if console.process.poll() is None:
            os.killpg(console.process.pid, signal.SIGINT)
    for console in opened:
        try:
            console.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(console.process.pid, signal.SIGKILL)


def test_the_two_gateway_recipe_works_as_written(workdir: Path, terminals: list[Console]) -> None:
    sml = local_sml_ports()
    ports = {8080: free_port(), 8081: free_port(), 8700: int(sml["PEPPOL_AP_LOCAL_SML__PORT"]),
             8553: int(sml["PEPPOL_AP_LOCAL_SML__DNS_PORT"])}
    gateway_b = workdir / "conf" / "gateway-b.toml"
    gateway_b.write_text(with_ports(gateway_b.read_text(), ports))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPOL_AP_") and k != "VIRTUAL_ENV"}
    # gateway A's local SML takes its ports from [local_sml], which the README leaves at their defaults: these
    # variables stand for them in A's terminal and in the third (where A's commands find A's SML by them)
    env_a = {**env, **sml}
    first, second, third = (with_ports(block, ports) for block in readme_blocks("two-gateways"))

    def terminal(script: str, environ: dict[str, str]) -> Console:
        console = Console(subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=workdir, env=environ,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True))
        terminals.append(console)
        return console

    a = terminal(first, env_a)
    a.wait_for(rf"environment running: web http://127\.0\.0\.1:{ports[8080]} .*local SML http://127\.0\.0\.1:"
               rf"{ports[8700]}", START_SECONDS)
    b = terminal(second, env)
    b.wait_for(rf"environment running: web http://127\.0\.0\.1:{ports[8081]} .*local SML http://127\.0\.0\.1:"
               rf"{ports[8700]}", START_SECONDS)
    assert any("our SMP POP000002 is registered in the local SML" in line for line in b.lines), b.lines[-20:]

    typed = subprocess.run(["bash", "-euo", "pipefail", "-c", third], cwd=workdir, env=env_a, capture_output=True,
                           text=True, timeout=180)
    assert typed.returncode == 0, typed.stdout + typed.stderr
    *_, submitted, inbox = typed.stdout.strip().splitlines()
    assert json.loads(submitted)["state"] == "queued"
    items = json.loads(inbox)["items"]
    assert len(items) == 1, typed.stdout + typed.stderr + "\n".join(b.lines[-20:])
    [received] = items
    assert received["sender"].endswith("0088:7300010000001") and received["receiver"].endswith("0007:5567321707")
    # each command said which gateway's database it changed
    assert f"database sqlite:///{workdir / 'var' / 'gateway.db'}" in typed.stderr
    assert f"database sqlite:///{workdir / 'var-b' / 'gateway.db'}" in typed.stderr

    for console in (b, a):  # Ctrl-C in each terminal stops that gateway cleanly
        os.killpg(console.process.pid, signal.SIGINT)
        assert console.process.wait(60) in (0, -signal.SIGINT, 130), console.lines[-20:]
