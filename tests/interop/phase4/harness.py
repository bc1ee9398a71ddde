"""Python side of the phase4 interop peer: build it with Maven, start one JVM, talk to its HTTP control endpoints.

The peer (this directory's pom.xml and src/) is one long-lived JVM on 127.0.0.1 that is a phase4 Peppol AS4
receiver at ``/as4`` and a phase4 sender triggered by ``POST /send``. It is started once per test session:
a cold JVM costs seconds, a warm send a fraction of one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import requests

from certs.devpki import DEFAULT_PASSWORD

PEER_DIR = Path(__file__).resolve().parent
TARGET = PEER_DIR / "target"
CLASSPATH_FILE = TARGET / "classpath.txt"
MAIN_CLASS = "peppolap.interop.Peer"

# BIS Billing 3.0 identifiers, as phase4 expects them (the default schemes are added by phase4).
BIS3_INVOICE = (
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice"
    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)
BIS3_CREDIT_NOTE = (
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote"
    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)
BIS3_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


class PeerError(RuntimeError):
    """The Java peer could not be built, started or asked something; the message says what to look at."""


def _newest_source_mtime() -> float:
    sources = [PEER_DIR / "pom.xml", *(PEER_DIR / "src").rglob("*")]
    return max(p.stat().st_mtime for p in sources if p.is_file())


def _build_is_current() -> bool:
    """Compiled after the last source change, and every jar it names is still in the Maven repository."""
    if not CLASSPATH_FILE.is_file() or CLASSPATH_FILE.stat().st_mtime < _newest_source_mtime():
        return False
    return all(Path(jar).is_file() for jar in CLASSPATH_FILE.read_text().strip().split(os.pathsep))


def build_peer(maven: str = "mvn", timeout: float = 900) -> str:
    """Compile the peer (Maven caches downloads in ~/.m2) unless it is up to date; return its runtime classpath.

    ``mvn compile`` also writes target/classpath.txt (maven-dependency-plugin): the peer then runs as a plain
    ``java -cp`` process, which starts faster than ``mvn exec:java`` and needs no shaded jar.
    """
    if not _build_is_current():
        if shutil.which(maven) is None:
            raise PeerError(f"Maven ('{maven}') is not on PATH; the phase4 interop peer needs Maven 3.8+ and Java 17+")
        done = subprocess.run(
            [maven, "-q", "-B", "compile"], cwd=PEER_DIR, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise PeerError(f"building the phase4 peer failed (mvn compile in {PEER_DIR}):\n{done.stdout}{done.stderr}")
        CLASSPATH_FILE.touch()
    return os.pathsep.join([str(TARGET / "classes"), CLASSPATH_FILE.read_text().strip()])


@dataclass(frozen=True)
class PeerIdentity:
    """What the peer needs from a PKI: its own AP key and the test CAs it may trust (never the real Peppol CAs)."""

    keystore: Path
    ap_cas: tuple[Path, ...]  # issuers the peer accepts for AP certificates (its own and its partners')
    roots: tuple[Path, ...]  # roots above them, for WSS4J's chain check
    smp_ca: Path | None = None
    password: str = DEFAULT_PASSWORD
    alias: str = ""  # empty: the only private key in the keystore


@dataclass(frozen=True)
class SendResult:
    """phase4's own verdict on one send (see SendServlet.java); ``result`` PEER_ERROR: sending raised."""

    result: str
    message_id: str | None
    signal_received: bool
    signature_checked: bool
    signing_cert_subject: str | None
    receipt: bool
    ref_to_message_id: str | None
    nrr: str
    nrr_text: str | None
    ebms_errors: list[dict[str, Any]]
    http_status: int | None
    response_path: str | None
    exception: str | None
    duration_ms: int
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> SendResult:
        return cls(
            result=j["result"],
            message_id=j.get("messageId"),
            signal_received=bool(j.get("signalReceived")),
            signature_checked=bool(j.get("signatureChecked")),
            signing_cert_subject=j.get("signingCertSubject"),
            receipt=bool(j.get("receipt")),
            ref_to_message_id=j.get("refToMessageId"),
            nrr=j.get("nrr", "none"),
            nrr_text=j.get("nrrText"),
            ebms_errors=list(j.get("ebmsErrors") or []),
            http_status=j.get("httpStatus"),
            response_path=j.get("responsePath"),
            exception=j.get("exception"),
            duration_ms=int(j.get("durationMs", 0)),
            raw=j,
        )

    @property
    def error_codes(self) -> list[str]:
        return [e["code"] for e in self.ebms_errors]

    @property
    def accepted(self) -> bool:
        """A receipt phase4 fully trusts: SUCCESS, signed receipt verified, NRR references matched."""
        return self.result == "SUCCESS" and self.signature_checked and self.nrr == "onSuccess"


class Phase4Peer:
    """A running peer JVM. Use :meth:`start`; always :meth:`stop` (the session fixture does)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, workdir: Path, log: BinaryIO) -> None:
        self._process = process
        self._log = log
        # Keep draining stdout so the JVM can never block on a full pipe.
        self._drain = threading.Thread(target=_copy_stream, args=(process.stdout, log), daemon=True)
        self._drain.start()
        self.port = port
        self.workdir = workdir
        self.base_url = f"http://127.0.0.1:{port}"
        self.as4_url = f"{self.base_url}/as4"
        self.log_path = workdir / "peer.log"

    @classmethod
    def start(cls, workdir: Path, identity: PeerIdentity, java: str = "java", timeout: float = 120) -> Phase4Peer:
        classpath = build_peer()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "peer.properties"
        settings = {
            "host": "127.0.0.1",
            "port": "0",
            "keystore.path": identity.keystore,
            "keystore.password": identity.password,
            "keystore.alias": identity.alias,
            "ap.ca.pem": ",".join(map(str, identity.ap_cas)),
            "trust.pem": ",".join(map(str, identity.roots)),
            "smp.ca.pem": identity.smp_ca or "",
            "inbox.dir": workdir / "inbox",
            "data.dir": workdir / "data",
        }
        # java.util.Properties reads a backslash as an escape character.
        config.write_text("".join(f"{k}={str(v).replace(chr(92), chr(92) * 2)}\n" for k, v in settings.items()))
        log = (workdir / "peer.log").open("ab")
        process = subprocess.Popen(
            [java, "-cp", classpath, MAIN_CLASS, str(config)],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        try:
            port = _wait_ready(process, timeout, workdir / "peer.log")
        except BaseException:
            process.kill()
            process.wait()
            log.close()
            raise
        peer = cls(process, port, workdir, log)
        peer.status()  # readiness of the HTTP side, not only of the log line
        return peer

    def stop(self, timeout: float = 20) -> None:
        if self._process.poll() is None:
            self._process.terminate()  # SIGTERM: Jetty's shutdown hook stops the server cleanly
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._drain.join(timeout)  # stdout is at EOF once the JVM is gone
        self._log.close()

    # --- control endpoints -------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def inbox(self) -> list[dict[str, Any]]:
        return self._call("GET", "/inbox")

    def configure_receiver(
        self, *, handler_failure: str | None = None, smp_url: str | None = None, own_endpoint_url: str | None = None
    ) -> dict[str, Any]:
        """Switch the receiver: make its business handler fail, or enable phase4's SMP receiver check."""
        own_url = own_endpoint_url or self.as4_url
        body = {"handlerFailure": handler_failure, "smpUrl": smp_url, "ownEndpointUrl": own_url}
        return self._call("POST", "/receiver", body)

    def send(
        self,
        *,
        sender: str,
        receiver: str,
        document_type: str,
        process: str,
        country_c1: str,
        payload_path: Path | None = None,
        payload_xml: str | None = None,
        endpoint_url: str | None = None,
        receiver_cert_pem: str | None = None,
        smp_url: str | None = None,
        message_id: str | None = None,
        sbdh_instance_identifier: str | None = None,
        timeout: float = 300,
    ) -> SendResult:
        """Make phase4 send one document, either to an explicit endpoint (URL + certificate) or via an SMP.

        ``message_id`` reuses an AS4 MessageId (duplicate scenarios); ``sbdh_instance_identifier`` fixes the SBDH
        InstanceIdentifier (phase4 draws a random one otherwise).
        """
        if (payload_path is None) == (payload_xml is None):
            raise ValueError("give exactly one of payload_path and payload_xml")
        if (endpoint_url is None) == (smp_url is None):
            raise ValueError("give exactly one of endpoint_url (with receiver_cert_pem) and smp_url")
        if endpoint_url is not None and not receiver_cert_pem:
            raise ValueError("endpoint_url needs receiver_cert_pem (the certificate phase4 encrypts for)")
        body = {
            "sender": sender,
            "receiver": receiver,
            "documentType": document_type,
            "process": process,
            "countryC1": country_c1,
            "payloadPath": str(payload_path) if payload_path else None,
            "payloadXml": payload_xml,
            "endpointUrl": endpoint_url,
            "receiverCertPem": receiver_cert_pem,
            "smpUrl": smp_url,
            "messageId": message_id,
            "sbdhInstanceIdentifier": sbdh_instance_identifier,
        }
        return SendResult.from_json(self._call("POST", "/send", body, timeout=timeout))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        if self._process.poll() is not None:
            raise PeerError(f"the phase4 peer exited with code {self._process.returncode}; see {self.log_path}")
        resp = requests.request(method, self.base_url + path, json=body, timeout=timeout)
        if resp.status_code != 200:
            raise PeerError(f"{method} {path} answered HTTP {resp.status_code}: {resp.text[:2000]}")
        return resp.json()


def _wait_ready(process: subprocess.Popen[bytes], timeout: float, log_path: Path) -> int:
    """Read the peer's first stdout line, ``READY port=NNNN``, within ``timeout`` seconds."""
    assert process.stdout is not None
    found: list[bytes] = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    line = found[0].decode(errors="replace").strip() if found else ""
    if not line.startswith("READY port="):
        if found:  # stdout closed: the JVM is exiting, let it finish so the log is complete
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        tail = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
        state = "exited" if process.poll() is not None else f"not ready after {timeout:.0f} s"
        raise PeerError(f"phase4 peer {state} (first stdout line: {line!r}); end of {log_path}:\n{tail}")
    return int(line.split("=", 1)[1])


def _copy_stream(src: BinaryIO, dst: BinaryIO) -> None:
    for chunk in iter(lambda: src.read1(65536), b""):
        dst.write(chunk)
        dst.flush()

