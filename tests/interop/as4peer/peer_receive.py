"""The `as4` library as an independent Peppol AS4 receiver (runs inside the as4 peer venv, never in ours).

An http.server on 127.0.0.1 (port 0 unless --port is given) that prints its port as the first line of
stdout, then accepts POSTs: each request runs through as4's `parse_peppol_message` with its own key for
decryption and the pinned --trust certificates for the signer, plus the Peppol rule that the signing
certificate's CN equals eb:From/PartyId. It answers with as4's signal (signed receipt or ebMS error, HTTP
200 like phase4) and, before answering, records the request, the decrypted SBD and a JSON verdict as
<out>/<n>-*.{json,bin,xml} so a test can read them as soon as its POST returns.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from as4 import (
    AS4LocalPrivateKey,
    ParticipantNotServicedError,
    SecurityPolicy,
    UntrustedSignerError,
    pinned_certificates,
)
from as4.peppol import PeppolReceivingExchange, create_peppol_internal_party, parse_peppol_message
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# Hop-by-hop framing is undone before as4 sees the body, so these headers would only mislead its MIME parser.
FRAMING_HEADERS = {"transfer-encoding", "content-length", "connection"}
MAX_REQUEST_BYTES = 200 * 1024 * 1024


def common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise SystemExit(f"certificate {certificate.subject.rfc4514_string()} has no CN to use as Peppol seat id")
    return str(names[0].value)


def signer_named_by_from(resolver: Any) -> Any:
    """as4's pinned_certificates only pins; Peppol also requires CN == eb:From/PartyId (CEF 1.5.3.3)."""

    def resolve(party_from: Any, embedded: x509.Certificate | None) -> x509.Certificate:
        certificate = resolver(party_from, embedded)
        claimed = party_from.party_id.value
        if common_name(certificate) != claimed:
            raise UntrustedSignerError(f"the signing certificate names {common_name(certificate)!r}, not {claimed!r}")
        return certificate

    return resolve


def read_chunked(stream: Any) -> bytes:
    """Peppol receivers MUST accept chunked requests; http.server does not undo the framing itself."""
    body = bytearray()
    while True:
        size_line = stream.readline(1024)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                continue
            return bytes(body)
        body += stream.read(size)
        stream.readline(1024)
        if len(body) > MAX_REQUEST_BYTES:
            raise ValueError(f"request body exceeds {MAX_REQUEST_BYTES} bytes")


class Receiver:
    def __init__(self, args: argparse.Namespace) -> None:
        certificate = x509.load_pem_x509_certificate(args.cert.read_bytes())
        key = serialization.load_pem_private_key(args.key.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SystemExit(f"{args.key} is not an RSA private key")
        self.local_party = create_peppol_internal_party(
            party_id=args.party_id or common_name(certificate),
            certificate=certificate,
            private_key=AS4LocalPrivateKey(key),
        )
        trusted = [x509.load_pem_x509_certificate(path.read_bytes()) for path in args.trust]
        self.policy = SecurityPolicy(signer_resolver=signer_named_by_from(pinned_certificates(*trusted)))
        self.not_serviced = {participant.lower() for participant in args.not_serviced}
        self.out: Path = args.out
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def accept_participant(self, participant: str) -> None:
        if participant.lower() in self.not_serviced:
            raise ParticipantNotServicedError(participant)

    def next_number(self) -> int:
        with self._lock:
            return next(self._numbers)

    def handle(self, received_headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        """`received_headers` as on the wire (recorded so tests can see the framing); `body` already de-chunked."""
        number = self.next_number()
        prefix = self.out / f"{number:03d}"
        (prefix.parent / f"{prefix.name}-request-headers.json").write_text(json.dumps(received_headers, indent=2))
        (prefix.parent / f"{prefix.name}-request-body.bin").write_bytes(body)
        headers = {name: value for name, value in received_headers.items() if name.lower() not in FRAMING_HEADERS}
        exchange = parse_peppol_message(
            request_headers=headers,
            request_body=body,
            local_party=self.local_party,
            accept_participant=self.accept_participant,
            security_policy=self.policy,
        )
        signal_headers, signal = exchange.build_signal()
        (prefix.parent / f"{prefix.name}-response.xml").write_bytes(signal)
        verdict = self.verdict(number, exchange)
        (prefix.parent / f"{prefix.name}-verdict.json").write_text(json.dumps(verdict, indent=2))
        return signal_headers, signal

    def verdict(self, number: int, exchange: PeppolReceivingExchange) -> dict[str, Any]:
        message = exchange.message
        assert message is not None
        error = message.parse_error
        payload_path = None
        payload_sha256 = None
        if exchange.successful and message.decrypted_data:
            payload = next(iter(message.decrypted_data.values()))
            payload_path = self.out / f"{number:03d}-payload.xml"
            payload_path.write_bytes(payload)
            payload_sha256 = hashlib.sha256(payload).hexdigest()
        return {
            "number": number,
            "message_id": exchange.message_id,
            "successful": exchange.successful,
            "state": str(exchange.state),
            "error": None
            if error is None
            else {
                "code": error.error_code,
                "short_description": error.short_description,
                "description": error.description,
                "detail": error.detail,
            },
            "signer": message.signer_certificate.subject.rfc4514_string() if message.signer_certificate else None,
            "sender": getattr(message, "sender", None),
            "recipient": getattr(message, "recipient", None),
            "document_type": getattr(message, "document_type_identifier_value", None),
            "process": getattr(message, "process_identifier", None),
            "signed_references": [reference.model_dump() for reference in message.signed_references],
            "payload": str(payload_path) if payload_path else None,
            "payload_sha256": payload_sha256,
            "response": str(self.out / f"{number:03d}-response.xml"),
        }


def make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            try:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = read_chunked(self.rfile)
                else:
                    length = int(self.headers.get("Content-Length", "0"))
                    if length > MAX_REQUEST_BYTES:
                        raise ValueError(f"request body exceeds {MAX_REQUEST_BYTES} bytes")
                    body = self.rfile.read(length)
            except ValueError as failure:
                self.answer(400, {"Content-Type": "text/plain"}, f"unreadable request body: {failure}".encode())
                return
            signal_headers, signal = receiver.handle(dict(self.headers.items()), body)
            self.answer(200, signal_headers, signal)

        def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"peer_receive: {format % args}\n")

    return Handler


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", type=Path, required=True, help="PEM private key of this AP (decryption, receipts)")
    parser.add_argument("--cert", type=Path, required=True, help="PEM certificate of this AP")
    parser.add_argument("--party-id", help="our Peppol seat id (default: CN of --cert)")
    parser.add_argument("--trust", type=Path, action="append", required=True, help="pinned sender certificate PEM")
    parser.add_argument("--not-serviced", action="append", default=[], help="answer PEPPOL:NOT_SERVICED for this C4")
    parser.add_argument("--out", type=Path, required=True, help="directory for the records")
    parser.add_argument("--port", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    receiver = Receiver(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(receiver))
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
