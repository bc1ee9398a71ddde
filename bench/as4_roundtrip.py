"""Sender side for the benchmarks and the inspect round-trip tests: an SBD of any size, and the AS4 message
`accesspoint.core.peppol.outbound.build_message` makes of it (gzip, sign, encrypt, MIME), written to a file.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from cryptography import x509

from accesspoint.core.peppol.outbound import build_message
from accesspoint.core.sbdh import Sbdh
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


def write_message(sbd: Path, sender: KeyMaterial, recipient: x509.Certificate, out: BinaryIO, *,
                  header: Sbdh | None = None) -> tuple[str, str]:
    """Write the complete MIME body `outbound.build_message` makes of `sbd` (signed by `sender`, encrypted for
    `recipient`) to `out`; returns (HTTP Content-Type, eb:MessageId).

    `header` is the SBD's parsed SBDH when the caller has it already (a real sender built it), else it is read from
    `sbd`. Large payloads stay in temporary files.
    """
    with sbd.open("rb") as stream, build_message(sbd=stream, sbdh=header, our_key=sender, recipient_cert=recipient,
                                                 spill_threshold=SPILL_THRESHOLD, now=datetime.now(UTC)) as message:
        for chunk in message.chunks():
            out.write(chunk)
        return message.content_type, message.message_id
