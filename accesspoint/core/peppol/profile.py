"""The Peppol AS4 profile over generic ebMS 3 (shared/docs/as4.md sections 2, 4 and 5): which UserMessages and
receipts a Peppol access point accepts, with phase4's error codes in phase4's order of checks.

`accesspoint.core.as4.messaging` parses and builds any ebMS 3 envelope; this module is where Peppol narrows it (one
typed PartyId that is a seat ID, the Peppol AgreementRef, originalSender/finalRecipient, every payload a MIME
attachment, gzip only), as phase4 keeps these rules in phase4-profile-peppol apart from phase4-lib.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from urllib.parse import unquote

from accesspoint.core.as4 import ns
from accesspoint.core.as4.errors import (
    EXTERNAL_PAYLOAD_ERROR,
    INVALID_HEADER,
    INVALID_RECEIPT,
    OTHER,
    PMODE_MISMATCH,
    VALUE_INCONSISTENT,
    As4Error,
)
from accesspoint.core.as4.messaging import (
    COMPRESSION_GZIP,
    PROPERTY_FINAL_RECIPIENT,
    PROPERTY_ORIGINAL_SENDER,
    PROPERTY_TRACKING_IDENTIFIER,
    ReceiptSignal,
    UserMessage,
    is_valid_message_id,
)

SEAT_ID = re.compile(r"P[A-Z]{2}[0-9]{6}")

# Python codecs that are text encodings to Python but no charset a Java peer (phase4: Charset.forName) knows.
_PYTHON_ONLY_CODECS = frozenset({"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape"})


def _is_charset(name: str) -> bool:
    try:
        # LookupError for unknown names and for codecs that are not text encodings (rot13, base64);
        # ValueError (UnicodeError) from the "undefined" codec.
        "".encode(name)
        return codecs.lookup(name).name not in _PYTHON_ONLY_CODECS
    except (LookupError, ValueError):
        return False


def _normalise_content_id(content_id: str) -> str:
    cid = content_id.strip()
    return cid[1:-1].strip() if cid.startswith("<") and cid.endswith(">") else cid


def check_peppol_user_message(um: UserMessage, attachments_content_ids: Sequence[str]) -> None:
    """Apply the Peppol AS4 profile to a parsed UserMessage and the Content-IDs of its MIME attachments (in MIME
    order, with or without angle brackets). Raises As4Error with phase4's code, in phase4's order of checks."""
    if not is_valid_message_id(um.message_id):
        raise As4Error(INVALID_HEADER, f"eb:MessageId {um.message_id!r} is not an RFC 2822 message id "
                                       "'left@right' without angle brackets (e.g. <uuid>@<host>)")
    if um.mpc is not None and um.mpc != ns.DEFAULT_MPC:
        raise As4Error(VALUE_INCONSISTENT, f"eb:UserMessage/@mpc {um.mpc!r} is unknown; Peppol uses only the "
                                           "default MPC (omit the attribute)")
    for side, extra in (("From", um.extra_from_parties), ("To", um.extra_to_parties)):
        if extra:
            raise As4Error(VALUE_INCONSISTENT, f"eb:PartyInfo/eb:{side} has {1 + len(extra)} eb:PartyId elements; "
                                               "Peppol requires exactly one (the AP's seat ID)")
    _check_payload(um, [_normalise_content_id(c) for c in attachments_content_ids])
    _check_profile(um)
    _check_servlet_rules(um, len(attachments_content_ids))


def _check_payload(um: UserMessage, cids: list[str]) -> None:
    if len(cids) > len(um.parts):
        raise As4Error(EXTERNAL_PAYLOAD_ERROR, f"the message has {len(cids)} MIME attachments but only "
                                               f"{len(um.parts)} eb:PartInfo elements describe them")
    for n, part in enumerate(um.parts, start=1):
        label = f"eb:PartInfo #{n} (href {part.href!r})"
        if part.content_id is None or not part.content_id:
            raise As4Error(VALUE_INCONSISTENT, f"{label}: Peppol payloads are MIME attachments, so the href must be "
                                               "'cid:' followed by the attachment's Content-ID")
        if part.compression_type is not None and part.compression_type != COMPRESSION_GZIP:
            raise As4Error(VALUE_INCONSISTENT, f"{label}: CompressionType {part.compression_type!r} is not "
                                               f"supported; only {COMPRESSION_GZIP} is allowed")
        if part.compression_type is not None and not part.mime_type:
            raise As4Error(VALUE_INCONSISTENT, f"{label}: a compressed part needs a MimeType property naming the "
                                               "type before compression (e.g. application/xml)")
        if part.charset and not _is_charset(part.charset):
            raise As4Error(VALUE_INCONSISTENT, f"{label}: CharacterSet {part.charset!r} is not a known character set")
    if len(cids) < len(um.parts):
        raise As4Error(EXTERNAL_PAYLOAD_ERROR, f"{len(um.parts)} eb:PartInfo elements reference attachments but "
                                               f"the message has only {len(cids)} MIME attachments")
    for n, (cid, part) in enumerate(zip(cids, um.parts, strict=True), start=1):
        if not cid:
            raise As4Error(VALUE_INCONSISTENT, f"MIME attachment #{n} has no Content-ID header")
        referenced = part.content_id or ""
        # WSS4J takes the id after cid: literally; RFC 2392 says it is percent-encoded: accept either.
        if cid not in (referenced, unquote(referenced)):
            raise As4Error(VALUE_INCONSISTENT, f"MIME attachment #{n} has Content-ID <{cid}> but eb:PartInfo #{n} "
                                               f"references {part.href!r}; attachments must follow PartInfo order")


def _check_profile(um: UserMessage) -> None:
    """phase4's PeppolCompatibilityValidator (EBMS:0010), plus the profile's MUST NOTs it does not check."""
    if um.ref_to_message_id is not None:
        raise As4Error(PMODE_MISMATCH, "eb:RefToMessageId must not be used on a Peppol UserMessage (one-way push)")
    for side, party_type in (("From", um.from_party_type), ("To", um.to_party_type)):
        if party_type != ns.PARTY_TYPE_AP:
            shown = "missing" if party_type is None else f"{party_type!r}"
            raise As4Error(PMODE_MISMATCH, f"eb:PartyInfo/eb:{side}/eb:PartyId needs type=\"{ns.PARTY_TYPE_AP}\" "
                                           f"(it is {shown})")
    if um.agreement_ref != ns.AGREEMENT:
        shown = "missing" if um.agreement_ref is None else f"{um.agreement_ref!r}"
        raise As4Error(PMODE_MISMATCH, f"eb:AgreementRef must be {ns.AGREEMENT} (it is {shown})")
    # as4.md section 2: no type and no pmode attribute on AgreementRef (phase4 itself only rejects @type).
    for attribute, value in (("type", um.agreement_ref_type), ("pmode", um.agreement_ref_pmode)):
        if value is not None:
            raise As4Error(PMODE_MISMATCH, f"eb:AgreementRef must not carry a {attribute} attribute in Peppol "
                                           f"(it has {attribute}={value!r})")
    if not um.service:
        raise As4Error(PMODE_MISMATCH, "eb:Service is empty; it must be the process identifier value")
    # The ebMS test service has no type (as4.md section 2); every business Service carries the process scheme.
    if not um.is_ping and not um.service_type:
        raise As4Error(PMODE_MISMATCH, f"eb:Service {um.service!r} has no type attribute; it must be the process "
                                       "identifier scheme (e.g. cenbii-procid-ubl)")
    if not um.action:
        raise As4Error(PMODE_MISMATCH, "eb:Action is empty; it must be '<doctype scheme>::<doctype value>'")
    for name, participant in ((PROPERTY_ORIGINAL_SENDER, um.original_sender),
                              (PROPERTY_FINAL_RECIPIENT, um.final_recipient)):
        if participant is None or not participant.value:
            raise As4Error(PMODE_MISMATCH, f"the eb:MessageProperties property {name} is missing or empty; Peppol "
                                           "requires it with the participant identifier")
    for prop in um.extra_properties:
        if prop.name in (PROPERTY_ORIGINAL_SENDER, PROPERTY_FINAL_RECIPIENT):
            raise As4Error(PMODE_MISMATCH, f"the property {prop.name} appears more than once in eb:MessageProperties")
        if prop.name == PROPERTY_TRACKING_IDENTIFIER:
            raise As4Error(PMODE_MISMATCH, "the trackingIdentifier property must not be used in Peppol")


def _check_servlet_rules(um: UserMessage, attachment_count: int) -> None:
    """The checks of phase4's Peppol servlet SPI, which answer EBMS:0004."""
    if attachment_count == 0 and not um.is_ping:
        raise As4Error(OTHER, "the message has no MIME attachment; the first attachment must be the "
                              "Standard Business Document")
    for name, participant in ((PROPERTY_ORIGINAL_SENDER, um.original_sender),
                              (PROPERTY_FINAL_RECIPIENT, um.final_recipient)):
        if participant is not None and not participant.scheme:
            raise As4Error(OTHER, f"the {name} property has no type attribute; it must carry the participant "
                                  "identifier scheme (e.g. iso6523-actorid-upis)")
    for side, party in (("From", um.from_party), ("To", um.to_party)):
        if not SEAT_ID.fullmatch(party):
            raise As4Error(OTHER, f"eb:PartyInfo/eb:{side}/eb:PartyId {party!r} is not a Peppol seat ID "
                                  "(the AP certificate CN, like POP000306)")


def check_peppol_receipt(receipt: ReceiptSignal, sent_message_id: str | None = None) -> None:
    """What a Peppol sender requires of a receipt's ebMS content (its signature is wssec's check): it names the
    message it acknowledges (our MessageId when given) and carries non-repudiation information. EBMS:0302."""
    if receipt.ref_to_message_id is None:
        raise As4Error(INVALID_RECEIPT, f"receipt {receipt.message_id} has no eb:RefToMessageId, so it cannot be "
                                        "tied to the message we sent")
    if sent_message_id is not None and receipt.ref_to_message_id != sent_message_id:
        raise As4Error(INVALID_RECEIPT, f"receipt {receipt.message_id} acknowledges {receipt.ref_to_message_id}, "
                                        f"not our message {sent_message_id}")
    if not receipt.nri_references:
        raise As4Error(INVALID_RECEIPT, f"receipt {receipt.message_id} has no ebbp:NonRepudiationInformation with "
                                        "ds:Reference elements; Peppol requires non-repudiation receipts")
