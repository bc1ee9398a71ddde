"""The `as4` library as an independent Peppol AS4 sender (runs inside the as4 peer venv, never in ours).

It wraps a business document in as4's own SBDH, then gzips, signs, encrypts and packs it with
`PeppolSendingExchange.build()`. The request is always written to --out (HTTP headers as JSON, the
body as bytes, the SBD as sent) so our core can parse it offline; with --url it is also POSTed and the
answer is judged by as4's `receive_signal()` (signature by the receiver's certificate, RefToMessageId,
non-repudiation digests). A JSON summary goes to stdout and to <out>/result.json.

Exit status: 0 when the run completed (whatever the verdict), 2 on bad arguments or a transport failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from uuid import uuid4

from as4 import AS4LocalPrivateKey, AS4References, ReceiptVerificationError
from as4.peppol import (
    BusdoxDocidQnsDocumentIdentifier,
    PeppolAS4MessageBuilderArgs,
    PeppolAS4Profile,
    PeppolSendingExchange,
    create_peppol_external_party,
    create_peppol_internal_party,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TIMEOUT_SECONDS = 60


def common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise SystemExit(f"certificate {certificate.subject.rfc4514_string()} has no CN to use as Peppol seat id")
    return str(names[0].value)


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SystemExit(f"{path} is not an RSA private key")
    return key


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receiver-cert", type=Path, required=True, help="PEM of the receiving AP (encrypt to it)")
    parser.add_argument("--receiver-id", help="eb:To PartyId (default: CN of --receiver-cert)")
    parser.add_argument("--key", type=Path, required=True, help="PEM private key of the sending AP")
    parser.add_argument("--cert", type=Path, required=True, help="PEM certificate of the sending AP")
    parser.add_argument("--sender-id", help="eb:From PartyId (default: CN of --cert)")
    parser.add_argument("--payload", type=Path, required=True, help="business document XML (as4 adds the SBDH)")
    parser.add_argument("--sender", required=True, help="C1 participant value, e.g. 0088:123")
    parser.add_argument("--recipient", required=True, help="C4 participant value, e.g. 0088:456")
    parser.add_argument("--doctype", required=True, help="busdox-docid-qns document type identifier value")
    parser.add_argument("--process", required=True, help="cenbii-procid-ubl process identifier value")
    parser.add_argument("--country", default="BE", help="COUNTRY_C1")
    parser.add_argument("--instance-id", help="SBDH InstanceIdentifier (default: a fresh UUID)")
    parser.add_argument("--digit-ids", action="store_true",
                        help="make the Body and receiver-BST wsu:Ids start with a digit (as4 does so at random)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the request, response and result")
    parser.add_argument("--url", help="POST the message here and judge the answer")
    return parser.parse_args(argv)


def build_exchange(args: argparse.Namespace) -> tuple[PeppolSendingExchange, dict[str, str], bytes]:
    receiver_certificate = load_certificate(args.receiver_cert)
    sender_certificate = load_certificate(args.cert)
    local_party = create_peppol_internal_party(
        party_id=args.sender_id or common_name(sender_certificate),
        certificate=sender_certificate,
        private_key=AS4LocalPrivateKey(load_key(args.key)),
    )
    remote_party = create_peppol_external_party(
        party_id=args.receiver_id or common_name(receiver_certificate),
        certificate=receiver_certificate,
    )
    builder_args = PeppolAS4MessageBuilderArgs(
        sender=args.sender,
        recipient=args.recipient,
        document_type_identifier=BusdoxDocidQnsDocumentIdentifier.from_identifier_value(args.doctype),
        document_identification_instance_identifier=args.instance_id or str(uuid4()),
        process_identifier=args.process,
        c1_country_id=args.country,
    )
    identifiers = AS4References()
    if args.digit_ids:
        # as4 uses bare UUIDs for these two ids, so 10 in 16 of its messages have ids that are not NCNames.
        identifiers = AS4References(body_id=f"0{uuid4()}", encrypted_key_bst_id=f"1{uuid4()}")
    exchange = PeppolSendingExchange(
        profile=PeppolAS4Profile, local_party=local_party, remote_party=remote_party, identifiers=identifiers
    )
    headers, body = exchange.build(args.payload.read_bytes(), builder_args)
    return exchange, headers, body


def post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as failure:
        # Oxalis answers ebMS errors with 500 and phase4 some failures with 400: keep the body.
        return failure.code, dict(failure.headers.items()), failure.read()


def judge(exchange: PeppolSendingExchange, response_body: bytes) -> dict[str, Any]:
    problem = None
    try:
        exchange.receive_signal(response_body)
    except ReceiptVerificationError as failure:
        problem = str(failure)
    error = exchange.error
    return {
        "state": str(exchange.state),
        "successful": exchange.successful,
        "problem": problem,
        "error": None
        if error is None
        else {
            "code": error.error_code,
            "short_description": error.short_description,
            "severity": error.severity,
            "description": error.description.value if error.description else None,
            "detail": error.error_detail.value if error.error_detail else None,
        },
    }


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    exchange, headers, body = build_exchange(args)
    assert exchange.message is not None
    sbd = next(iter(exchange.message.decrypted_data.values()))
    (args.out / "request-headers.json").write_text(json.dumps(headers, indent=2))
    (args.out / "request-body.bin").write_bytes(body)
    (args.out / "sbd.xml").write_bytes(sbd)
    result: dict[str, Any] = {
        "message_id": exchange.message_id,
        "conversation_id": exchange.conversation_id,
        "sent_references": [reference.model_dump() for reference in exchange.signed_references],
        "request": {
            "headers": str(args.out / "request-headers.json"),
            "body": str(args.out / "request-body.bin"),
            "sbd": str(args.out / "sbd.xml"),
        },
        "response": None,
        "verdict": None,
    }
    if args.url:
        try:
            status, response_headers, response_body = post(args.url, headers, body)
        except OSError as failure:
            print(f"POST to {args.url} failed: {failure}", file=sys.stderr)
            return 2
        exchange.mark_sent()
        (args.out / "response-body.bin").write_bytes(response_body)
        result["response"] = {
            "status": status,
            "headers": response_headers,
            "body": str(args.out / "response-body.bin"),
        }
        result["verdict"] = judge(exchange, response_body)
    text = json.dumps(result, indent=2)
    (args.out / "result.json").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
