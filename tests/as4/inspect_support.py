"""What every AS4 vector must give through `inspect` (vectors/as4/INDEX.md and expected-signatures.json), and a
message we build for a dev-PKI key. Shared by the unit tests of accesspoint.core.peppol.inspection and the CLI tests.

Certificate verdicts are for the shipped G3 test anchors at AT, a time when the G3 signers are inside their validity
(INDEX.md: "pass a fixed time").
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree

from accesspoint.core.as4 import messaging, mime, wssec
from accesspoint.core.as4.compression import gzip_bytes
from accesspoint.core.peppol.outbound import GZIP_MIME_TYPE, user_message_for
from accesspoint.core.sbdh import parse_sbdh
from bench.as4_roundtrip import write_message
from certs.devpki import DevPki, init_pki
from certs.keystore import KeyMaterial, load_pkcs12

AT = datetime(2026, 6, 1, tzinfo=UTC)

EXPECTED: dict[str, dict[str, Any]] = {
    "um-phase4-peppol-signed-encrypted.mime": {
        "kind": "user-message", "ebms_error": "EBMS:0102", "decrypted": False, "value_valid": True,
        "certificate": (True, None), "errors": [],
    },
    "receipt-phase4-4.0.1-PDE000576.xml": {
        "kind": "receipt", "ebms_error": None, "decrypted": None, "value_valid": True,
        "certificate": (True, None), "errors": [], "valid": True,
    },
    "receipt-phase4-2022-POP000306.as4in": {
        "kind": "receipt", "ebms_error": "EBMS:0302", "decrypted": None, "value_valid": True,
        "certificate": (False, "unsupported-issuer"), "errors": [],
    },
    "receipt-soap11-legacy-ph-as4.xml": {
        "kind": "receipt", "ebms_error": "EBMS:0302", "decrypted": None, "value_valid": True,
        "certificate": (False, "unsupported-issuer"), "errors": [],
    },
    "um-unknown-signature-algorithm.xml": {
        "kind": "user-message", "ebms_error": "EBMS:0101", "decrypted": None, "value_valid": False,
        "certificate": (False, "unsupported-issuer"), "errors": [],
    },
    "um-unsupported-compressiontype.mime": {
        "kind": "user-message", "message_id": "c42e883b-aab1-47bf-b2f4-4e89ce309591@ph-as4", "ebms_error": "EBMS:0003",
        "decrypted": None, "value_valid": None, "certificate": (None, None), "errors": [],
    },
    "error-EBMS0001-unsigned.xml": {
        "kind": "error", "ebms_error": None, "decrypted": None, "value_valid": None, "certificate": (None, None),
        "errors": ["EBMS:0001"],
    },
    "error-EBMS0103-with-soap-fault.xml": {
        "kind": "error", "ebms_error": None, "decrypted": None, "value_valid": None, "certificate": (None, None),
        "errors": ["EBMS:0103"], "ref_to_message_id": "1234",
    },
    "error-no-RefToMessageId.xml": {
        "kind": "error", "ebms_error": None, "decrypted": None, "value_valid": None, "certificate": (None, None),
        "errors": ["EBMS:0001"], "ref_to_message_id": None,
    },
    "nri-fragment.xml": {
        "kind": None, "ebms_error": "EBMS:0009", "decrypted": None, "value_valid": None, "certificate": (None, None),
        "errors": [],
    },
}

# expected-signatures.json states a digest verdict per reference; these we can only check after decryption
# ("SKIPPED") or not at all, because the SignatureMethod is rejected before any crypto (INDEX.md).
NOT_CHECKED = {"um-unknown-signature-algorithm.xml"}


def oracle(vectors: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((vectors / "as4" / "expected-signatures.json").read_text())
    return {key.removeprefix("messages/"): value for key, value in data.items()}


def check(name: str, result: dict[str, Any], vectors: Path) -> None:
    """Assert the `to_dict()` / `--json` object of one vector against INDEX.md and expected-signatures.json."""
    want = EXPECTED[name]
    assert result["kind"] == want["kind"]
    assert result["ebms_error"] == want["ebms_error"]
    assert result["decrypted"] is want["decrypted"]
    assert result["signature"]["value_valid"] is want["value_valid"]
    assert (result["certificate"]["valid"], result["certificate"]["reason"]) == want["certificate"]
    assert [e["code"] for e in result["errors"]] == want["errors"]
    assert result["valid"] is want.get("valid", False)
    for key in ("message_id", "ref_to_message_id"):
        if key in want:
            assert result[key] == want[key]
    expected = oracle(vectors).get(name)
    if expected is None:
        return
    assert result["message_id"] == expected["ebms_MessageId"]
    if "ebms_RefToMessageId" in expected:
        assert result["ref_to_message_id"] == expected["ebms_RefToMessageId"]
    assert result["signature"]["signer_subject"] == expected["signer_subject"]
    assert result["signature"]["value_valid"] is expected["signature_value_valid_rsa_sha256"]
    got = {r["uri"]: r["digest_valid"] for r in result["signature"]["references"]}
    assert list(got) == list(expected["references"])
    for uri, verdict in expected["references"].items():
        if name in NOT_CHECKED:
            assert got[uri] is None
        elif verdict == "OK":
            assert got[uri] is True, uri
        else:
            assert verdict.startswith("SKIPPED") and got[uri] is None, uri


# --------------------------------------------------------------------------- round trip with a dev PKI

SBD_TEMPLATE = "as4/sbdh/good/phase4-base-sbdh.xml"


@dataclass(frozen=True)
class RoundTrip:
    """A message we built for our dev-PKI AP key: the MIME body on disk, its Content-Type and the SBD."""

    pki: DevPki
    key: KeyMaterial
    message: Path
    content_type: str
    message_id: str
    sbd: Path

    def tampered(self, target: Path, *, offset_from_end: int) -> Path:
        """A copy with one byte flipped `offset_from_end` bytes before the end (inside the attachment)."""
        data = bytearray(self.message.read_bytes())
        data[-offset_from_end] ^= 0x01
        target.write_bytes(bytes(data))
        return target

    def with_soap_change(self, target: Path, old: bytes, new: bytes) -> Path:
        data = self.message.read_bytes()
        assert data.count(old) == 1
        target.write_bytes(data.replace(old, new))
        return target


def write_unencrypted_message(sbd: Path, key: KeyMaterial, out: BinaryIO) -> str:
    """A signed message whose gzip attachment travels in the clear, which Peppol forbids (so `outbound` cannot build
    it): the MIME body goes to `out`; returns its Content-Type."""
    with sbd.open("rb") as stream:
        header = parse_sbdh(stream)
    user_message = user_message_for(header, from_party=key.subject_cn, to_party=key.subject_cn,
                                    content_id=mime.new_content_id(), domain="test.example", now=datetime.now(UTC))
    content_id = user_message.parts[0].content_id
    assert content_id is not None
    compressed = gzip_bytes(sbd.read_bytes())
    envelope = messaging.build_user_message(user_message)
    wssec.sign(envelope, key, [wssec.AttachmentContent.from_stream(content_id, GZIP_MIME_TYPE, io.BytesIO(compressed))])
    content_type, chunks = mime.write_message(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
                                              [mime.OutgoingAttachment(content_id, compressed, GZIP_MIME_TYPE)])
    for chunk in chunks:
        out.write(chunk)
    return content_type


def make_round_trip(directory: Path, vectors: Path, *, crl_url: str | None = None) -> RoundTrip:
    pki = init_pki(directory / "pki", crl_url=crl_url)
    key = load_pkcs12(pki.ap_p12, pki.password)
    sbd = vectors / SBD_TEMPLATE
    message = directory / "message.mime"
    with message.open("wb") as out:
        content_type, message_id = write_message(sbd, key, key.certificate, out)
    return RoundTrip(pki, key, message, content_type, message_id, sbd)
