"""Driving the as4 peer scripts (tests/interop/as4peer/) from our interpreter.

The scripts run in the as4 venv, so everything crosses the process boundary as files and JSON:
peer_send.py prints its result, peer_receive.py prints its port and writes one verdict per request.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.interop.keys import PeerParty

SCRIPTS = Path(__file__).resolve().parent / "as4peer"
SEND_TIMEOUT_SECONDS = 120
START_TIMEOUT_SECONDS = 60

BILLING_DOCTYPE = (
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice"
    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)
BILLING_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


class PeerError(RuntimeError):
    """A peer script failed to run; the message carries its stderr."""


@dataclass(frozen=True)
class Parties:
    """Who a message is from and to, at both levels (access points and participants)."""

    sender_ap: PeerParty
    receiver_ap: PeerParty
    sender: str = "0088:9482348239847239874"
    recipient: str = "0002:FR23342"
    doctype: str = BILLING_DOCTYPE
    process: str = BILLING_PROCESS
    country: str = "GB"


def peer_send(
    python: Path,
    parties: Parties,
    payload: Path,
    out: Path,
    *,
    url: str | None = None,
    instance_id: str | None = None,
    digit_ids: bool = False,
) -> dict[str, Any]:
    """Build (and with `url`, POST and judge) one as4 message; returns peer_send.py's JSON result."""
    args = [
        str(python), str(SCRIPTS / "peer_send.py"),
        "--receiver-cert", str(parties.receiver_ap.cert_pem),
        "--key", str(parties.sender_ap.key_pem),
        "--cert", str(parties.sender_ap.cert_pem),
        "--payload", str(payload),
        "--sender", parties.sender,
        "--recipient", parties.recipient,
        "--doctype", parties.doctype,
        "--process", parties.process,
        "--country", parties.country,
        "--out", str(out),
    ]  # fmt: skip
    if url:
        args += ["--url", url]
    if instance_id:
        args += ["--instance-id", instance_id]
    if digit_ids:
        args.append("--digit-ids")
    done = subprocess.run(args, capture_output=True, text=True, timeout=SEND_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise PeerError(f"peer_send.py exited {done.returncode}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def read_request(result: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """The HTTP headers and body peer_send.py wrote for a message."""
    headers = json.loads(Path(result["request"]["headers"]).read_text())
    return headers, Path(result["request"]["body"]).read_bytes()


@dataclass
class As4Receiver:
    """A running peer_receive.py; `verdicts()` reads what it recorded, oldest first."""

    process: subprocess.Popen[str]
    port: int
    out: Path
    stderr_path: Path
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/as4"

    def verdicts(self) -> list[dict[str, Any]]:
        return [json.loads(path.read_text()) for path in sorted(self.out.glob("*-verdict.json"))]

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


def start_receiver(
    python: Path,
    own: PeerParty,
    trusted: list[PeerParty],
    out: Path,
    *,
    not_serviced: tuple[str, ...] = (),
) -> As4Receiver:
    out.mkdir(parents=True, exist_ok=True)
    args = [
        str(python), str(SCRIPTS / "peer_receive.py"),
        "--key", str(own.key_pem),
        "--cert", str(own.cert_pem),
        "--out", str(out),
    ]  # fmt: skip
    for party in trusted:
        args += ["--trust", str(party.cert_pem)]
    for participant in not_serviced:
        args += ["--not-serviced", participant]
    stderr_path = out / "peer_receive.stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True)
    first_line: list[str] = []
    reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(START_TIMEOUT_SECONDS)
    if not first_line or not first_line[0].strip().isdigit():
        process.kill()
        process.wait(timeout=10)
        raise PeerError(f"peer_receive.py did not report a port:\n{stderr_path.read_text()[-4000:]}")
    return As4Receiver(process, int(first_line[0]), out, stderr_path)
