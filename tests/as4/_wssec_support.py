"""Helpers shared by the WS-Security and receipt tests: keys, envelopes like phase4's, attachments."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from accesspoint.core.as4 import messaging, ns
from accesspoint.core.as4.wssec import AttachmentContent
from certs.keystore import KeyMaterial, load_pem


@lru_cache(maxsize=4)
def make_key(common_name: str) -> KeyMaterial:
    """A throwaway RSA-2048 self-signed key pair (cached per name: key generation is slow on 2 cores)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=True, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return KeyMaterial(key, cert)


def dummy_key(vectors: Path) -> KeyMaterial:
    keys = vectors / "as4" / "keys"
    return load_pem(keys / "dummy-ph-as4.key.pem", keys / "dummy-ph-as4.cert.pem")


def bytes_attachment(content_id: str, data: bytes, mime_type: str = "application/gzip") -> AttachmentContent:
    return AttachmentContent(content_id, mime_type, lambda: io.BytesIO(data))


def gzip_attachment(content_id: str | None = None, text: bytes = b"<Invoice>42</Invoice>") -> AttachmentContent:
    return bytes_attachment(content_id or f"att-{uuid.uuid4()}@cid", gzip.compress(text, mtime=0))


def user_message_envelope(content_ids: list[str]) -> etree._Element:
    """An unsigned Peppol-like UserMessage envelope shaped as phase4 writes it."""
    envelope = etree.Element(f"{{{ns.S12}}}Envelope", nsmap={"S12": ns.S12})
    header = etree.SubElement(envelope, f"{{{ns.S12}}}Header")
    security = etree.SubElement(header, f"{{{ns.WSSE}}}Security", nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    security.set(f"{{{ns.S12}}}mustUnderstand", "true")
    messaging = etree.SubElement(header, f"{{{ns.EB}}}Messaging", nsmap={"eb": ns.EB, "wsu": ns.WSU, "ns3": ns.S12})
    messaging.set(f"{{{ns.S12}}}mustUnderstand", "true")
    messaging.set(f"{{{ns.WSU}}}Id", f"phase4-msg-{uuid.uuid4()}")
    user_message = etree.SubElement(messaging, f"{{{ns.EB}}}UserMessage")
    info = etree.SubElement(user_message, f"{{{ns.EB}}}MessageInfo")
    etree.SubElement(info, f"{{{ns.EB}}}Timestamp").text = "2026-11-21T10:00:00.000Z"
    etree.SubElement(info, f"{{{ns.EB}}}MessageId").text = f"{uuid.uuid4()}@test"
    collaboration = etree.SubElement(user_message, f"{{{ns.EB}}}CollaborationInfo")
    etree.SubElement(collaboration, f"{{{ns.EB}}}AgreementRef").text = ns.AGREEMENT
    payload_info = etree.SubElement(user_message, f"{{{ns.EB}}}PayloadInfo")
    for content_id in content_ids:
        etree.SubElement(payload_info, f"{{{ns.EB}}}PartInfo", href=f"cid:{content_id}")
    etree.SubElement(envelope, f"{{{ns.S12}}}Body")
    return envelope


def soap_part_of_mime(data: bytes) -> bytes:
    """The root SOAP part of a phase4 MIME dump (binary CTE, root = first part)."""
    start = data.index(b"<?xml")
    return data[start:data.index(b"\r\n--", start)]


def body_of_http_dump(data: bytes) -> bytes:
    return data[data.index(b"<?xml"):]


def peppol_user_message_envelope(content_ids: list[str]) -> etree._Element:
    """A complete Peppol UserMessage built by `messaging` (what the outbound pipeline signs)."""
    user_message = messaging.new_user_message(
        domain="test.example", from_party="POP000001", to_party="POP000002",
        service="urn:fdc:peppol.eu:2017:poacc:billing:01:1.0", service_type="cenbii-procid-ubl",
        action="busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
               "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1",
        original_sender=messaging.Participant("iso6523-actorid-upis", "0088:7315458756324"),
        final_recipient=messaging.Participant("iso6523-actorid-upis", "0088:5798000000001"),
        parts=[messaging.PartInfo.attachment(content_id) for content_id in content_ids], now=datetime.now(UTC),
    )
    return messaging.build_user_message(user_message)
