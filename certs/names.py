"""The common names (CN) of a certificate name: for a Peppol AP certificate the one CN is the seat ID, the AS4
PartyId of that access point; for CAs and SMP certificates it is how reports name them."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID


def common_names(name: x509.Name) -> list[str]:
    """Every CN of `name`, in order (a well-formed Peppol certificate has exactly one)."""
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(NameOID.COMMON_NAME)]


def common_name(name: x509.Name) -> str:
    """The first CN of `name`, or "" when it has none: for naming a certificate in a report or a log line."""
    names = common_names(name)
    return names[0] if names else ""
