"""Sender side for the benchmarks and the inspect round-trip tests: an SBD of any size, and the AS4 message a
Peppol sender makes of it (gzip, sign, encrypt, MIME), driving the core modules in phase4's order.

The composition `accesspoint/as4/outbound.py` (another branch) is meant to replace `build_message` here once it is
on main; until then this is the shortest honest sender: every byte goes through the same core functions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

from accesspoint.as4 import messaging, mime, wssec
from accesspoint.as4.compression import gzip_stream
from accesspoint.as4.encryption import PlainAttachment, encrypt_attachments
from accesspoint.sbdh import Sbdh, parse_sbdh
from certs.keystore import KeyMaterial

# phase4's own example SBD (vectors/as4/sbdh/good/phase4-base-sbdh.xml, 10,433 bytes): the "10 KB invoice".
_LINE_END_TAG = b"</cac:InvoiceLine>"
_DOCUMENT_END_TAG = b"</Invoice>"
SPILL_THRESHOLD = 1 << 20


def write_sbd(template: Path, target: Path, size: int, *, note_bytes: int = 48) -> int:
    """Write an SBD of about `size` bytes (at least the template's): the template's last InvoiceLine repeated with
    a fresh ID and a random `note_bytes`-byte note in hex, so the gzip ratio stays realistic (not the 1000:1 of
    identical lines; the default gives about 19:1, large notes approach 2:1).

    Written in chunks; returns the size written.
    """
    data = template.read_bytes()
    end = data.rindex(_DOCUMENT_END_TAG)
    last_line_end = data.rindex(_LINE_END_TAG, 0, end) + len(_LINE_END_TAG)
    last_line_start = data.rindex(b"<cac:InvoiceLine>", 0, last_line_end)
    line = data[last_line_start:last_line_end]
    id_start = line.index(b"<cbc:ID>") + len(b"<cbc:ID>")
    id_end = line.index(b"</cbc:ID>", id_start)
    written = 0
    with target.open("wb") as out:
        written += out.write(data[:last_line_end])
        number = 1000
        while written + len(line) + len(data) - last_line_end < size:
            number += 1
            note = os.urandom(note_bytes).hex().encode()
            written += out.write(b"\n    " + line[:id_start] + str(number).encode() + line[id_end:]
                                 .replace(b"<cac:Item>", b"<cac:Item>\n        <cbc:Description>" + note
                                          + b"</cbc:Description>", 1))
        written += out.write(data[last_line_end:])
    return written


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def build_message(sbd: Path, sender: KeyMaterial, recipient: x509.Certificate, out: BinaryIO, *,
                  encrypt: bool = True, header: Sbdh | None = None) -> tuple[str, str]:
    """Write the complete MIME body of a signed and encrypted Peppol UserMessage carrying `sbd` to `out`.

    Returns (HTTP Content-Type, eb:MessageId). Large payloads stay in temporary files. `encrypt=False` leaves the
    gzip attachment in the clear (`application/gzip`), which Peppol forbids: for testing the rejection. `header` is
    the SBD's parsed SBDH when the caller has it already (a real sender built it), else it is read from `sbd`.
    """
    if header is None:
        with sbd.open("rb") as stream:
            header = parse_sbdh(stream)
    content_id = mime.new_content_id()
    um = messaging.new_user_message(
        domain="bench", from_party=_cn(sender.certificate), to_party=_cn(recipient),
        service=header.process.value, service_type=header.process.scheme,
        action=f"{header.document_type.scheme}::{header.document_type.value}",
        original_sender=messaging.Participant(header.sender.scheme, header.sender.value),
        final_recipient=messaging.Participant(header.receiver.scheme, header.receiver.value),
        parts=[messaging.PartInfo.attachment(content_id)],
    )
    envelope = messaging.build_user_message(um)
    with tempfile.SpooledTemporaryFile(max_size=SPILL_THRESHOLD, mode="w+b") as compressed:
        with sbd.open("rb") as stream:
            gzip_stream(stream, compressed)
        # Sign first (the attachment digest is over the gzip bytes), then encrypt: as4.md section 3.
        wssec.sign(envelope, sender, [wssec.AttachmentContent.from_stream(content_id, "application/gzip",
                                                                            compressed)])
        compressed.seek(0)
        if not encrypt:
            root_xml = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
            content_type, chunks = mime.write_message(
                root_xml, [mime.OutgoingAttachment(content_id, compressed, "application/gzip")])
            for chunk in chunks:
                out.write(chunk)
            return content_type, um.message_id
        encrypted = encrypt_attachments(messaging.security_header(envelope), recipient,
                                        [PlainAttachment(content_id, "application/gzip", compressed)],
                                        spill_threshold=SPILL_THRESHOLD)
    try:
        root_xml = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        content_type, chunks = mime.write_message(
            root_xml, [mime.OutgoingAttachment(e.content_id, e.body) for e in encrypted])
        for chunk in chunks:
            out.write(chunk)
    finally:
        for item in encrypted:
            item.body.close()
    return content_type, um.message_id
