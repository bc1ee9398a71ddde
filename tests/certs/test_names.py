"""certs.names: the one place that reads CNs out of a certificate name."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from certs.names import common_name, common_names


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def test_one_cn_is_the_seat_id() -> None:
    name = _name((NameOID.COUNTRY_NAME, "SE"), (NameOID.COMMON_NAME, "PSE000123"))
    assert common_names(name) == ["PSE000123"]
    assert common_name(name) == "PSE000123"


def test_several_cns_in_order_and_the_first_for_reports() -> None:
    name = _name((NameOID.COMMON_NAME, "POP000001"), (NameOID.COMMON_NAME, "POP000002"))
    assert common_names(name) == ["POP000001", "POP000002"]
    assert common_name(name) == "POP000001"


def test_no_cn() -> None:
    name = _name((NameOID.ORGANIZATION_NAME, "Example AB"))
    assert common_names(name) == []
    assert common_name(name) == ""
