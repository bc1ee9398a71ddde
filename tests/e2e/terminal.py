"""What the README tests need to type the README's commands as a newcomer would: its shell blocks, a terminal that
shows a long-running command's output as it comes, and a fresh copy of the checkout."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from tests.e2e.gateway_process import ROOT, free_port

_FENCE = re.compile(r"^\s*```sh\n(.*?)^\s*```", re.S | re.M)


def readme_blocks(marker: str) -> list[str]:
    """The ```sh blocks that follow the README comment `<!-- {marker}: ... -->`, up to the next list item or
    heading, dedented."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"<!-- {marker}:")
    end = min((i for i in (text.find("\n- **", start), text.find("\n#", start)) if i != -1), default=len(text))
    blocks = _FENCE.findall(text[start:end])
    assert blocks, f"no shell block after the README marker {marker!r}"
    return [re.sub(r"^ {2}", "", block, flags=re.M) for block in blocks]


def with_ports(script: str, ports: dict[int, int]) -> str:
    """The script with each documented port replaced by the test's free one."""
    for documented, free in ports.items():
        script = re.sub(rf"\b{documented}\b", str(free), script)
    return script


def local_sml_ports() -> dict[str, str]:
    """Free ports for the local SML, as the variables that stand for the [local_sml] defaults the README keeps: in
    every terminal of a test, so that commands typed there find the SML that `run` started."""
    return {"PEPPOL_AP_LOCAL_SML__PORT": str(free_port()), "PEPPOL_AP_LOCAL_SML__DNS_PORT": str(free_port())}


def copy_checkout(target: Path) -> None:
    """The files a clone would have (tracked and new, minus what .gitignore excludes), nothing built."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


class Console:
    """A terminal running one command: its output, read as it comes."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.lines: list[str] = []
        assert process.stdout is not None
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if match := re.search(pattern, line):
                    return match
            seen = len(self.lines)
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}; the output ends:\n" + "\n".join(self.lines[-40:]))
