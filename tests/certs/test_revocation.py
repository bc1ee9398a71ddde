"""Revocation against a real CRL/OCSP server on 127.0.0.1: every answer the brief lists."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from base.egress import EgressPolicy
from certs.devpki import DevPki, IssuedLeaf, issue_leaf
from certs.fetch import http_fetcher
from certs.revocation import RevocationChecker, RevocationFetchError
from certs.validation import CertificateValidator, Purpose
from tests.certs.revocation_server import OcspResponder, RevocationServer, closed_port_url, make_crl

NOW = datetime.now(UTC)
_names = count()

# the revocation servers of these tests run on loopback, as in the local environment
http_fetch = http_fetcher(EgressPolicy(loopback=True, plain_http=True))


@pytest.fixture(scope="module")
def server() -> Iterator[RevocationServer]:
    with RevocationServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def ap_ca(dev_pki: DevPki) -> tuple[x509.Certificate, object]:
    return dev_pki.ca("ap")


def _leaf(pki: DevPki, tmp_path: Path, *, crl: str | None = None, ocsp: str | None = None) -> IssuedLeaf:
    n = next(_names)
    return issue_leaf(pki, cn=f"POP{n:06d}", crl_url=crl, ocsp_url=ocsp, out_dir=tmp_path, name=f"leaf-{n}")


def _name() -> str:
    return f"r{next(_names)}"


# -- CRL -------------------------------------------------------------------------------------------


def test_crl_good(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    server.crls[name] = make_crl(ca, key, {12345: NOW - timedelta(days=1)})
    leaf = _leaf(dev_pki, tmp_path, crl=server.crl_url(name))
    checker = RevocationChecker(http_fetch)
    result = checker.check(leaf.certificate, ca)
    assert (result.status, result.source) == ("good", "crl")
    assert result.next_update is not None and result.next_update > NOW
    assert server.crl_url(name) in result.detail
    assert checker.stats["crl_fetch"] == 1 and checker.stats["good"] == 1


def test_crl_revoked(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    leaf = _leaf(dev_pki, tmp_path, crl=server.crl_url(name))
    server.crls[name] = make_crl(ca, key, {leaf.certificate.serial_number: NOW - timedelta(hours=2)},
                                 this_update=NOW - timedelta(days=1))
    checker = RevocationChecker(http_fetch)
    result = checker.check(leaf.certificate, ca)
    assert (result.status, result.source) == ("revoked", "crl")
    assert "key_compromise" in result.detail
    assert result.revoked_at == (NOW - timedelta(hours=2)).replace(microsecond=0)
    # A revocation dated after the validation time does not count (as in Java's PKIX checker).
    assert RevocationChecker(http_fetch).check(leaf.certificate, ca, at=NOW - timedelta(hours=3)).status == "good"
    verdict = CertificateValidator(dev_pki.anchors(), checker).validate(leaf.certificate, Purpose.AP_SIGNING)
    assert (verdict.valid, verdict.reason) == (False, "revoked")
    assert verdict.revocation is not None and verdict.revocation.status == "revoked"


def test_crl_unreachable(dev_pki: DevPki, tmp_path: Path) -> None:
    ca, _ = dev_pki.ca("ap")
    leaf = _leaf(dev_pki, tmp_path, crl=closed_port_url("/ap.crl"))
    checker = RevocationChecker(http_fetch, timeout=2)
    result = checker.check(leaf.certificate, ca)
    assert (result.status, result.source) == ("unknown", None)
    assert "download failed" in result.detail
    assert "OCSP: the certificate has no OCSP responder" in result.detail
    assert checker.stats["errors"] == 1 and checker.stats["unknown"] == 1
    verdict = CertificateValidator(dev_pki.anchors(), checker).validate(leaf.certificate, Purpose.AP_SIGNING)
    assert (verdict.valid, verdict.reason) == (False, "revocation-unknown")


def test_crl_malformed(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, _ = dev_pki.ca("ap")
    name = _name()
    server.crls[name] = b"\x00garbage, not a CRL\xff" * 10
    leaf = _leaf(dev_pki, tmp_path, crl=server.crl_url(name))
    result = RevocationChecker(http_fetch).check(leaf.certificate, ca)
    assert result.status == "unknown" and "not a CRL" in result.detail


def test_crl_stale(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    server.crls[name] = make_crl(ca, key, this_update=NOW - timedelta(days=3), next_update=NOW - timedelta(hours=1))
    leaf = _leaf(dev_pki, tmp_path, crl=server.crl_url(name))
    result = RevocationChecker(http_fetch).check(leaf.certificate, ca)
    assert result.status == "unknown" and "stale" in result.detail


def test_crl_signed_by_another_key(server: RevocationServer, dev_pki: DevPki, other_pki: DevPki,
                                   tmp_path: Path) -> None:
    ca, _ = dev_pki.ca("ap")
    forger_ca, forger_key = other_pki.ca("ap")  # same CA name, other key
    name = _name()
    leaf = _leaf(dev_pki, tmp_path, crl=server.crl_url(name))
    server.crls[name] = make_crl(forger_ca, forger_key)
    result = RevocationChecker(http_fetch).check(leaf.certificate, ca)
    assert result.status == "unknown" and "signature does not verify" in result.detail


def test_crl_is_cached_by_url(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    server.crls[name] = make_crl(ca, key)
    first, second = (_leaf(dev_pki, tmp_path, crl=server.crl_url(name)) for _ in range(2))
    checker = RevocationChecker(http_fetch)
    assert checker.check(first.certificate, ca).status == "good"
    assert checker.check(second.certificate, ca).status == "good"
    assert server.hits[f"/crl/{name}"] == 1
    assert checker.stats["crl_cache_hit"] == 1
    # Past the CRL's nextUpdate the cached copy is not used: the CRL is fetched again.
    assert checker.check(second.certificate, ca, at=NOW + timedelta(days=2)).status == "unknown"
    assert server.hits[f"/crl/{name}"] == 2


# -- OCSP ------------------------------------------------------------------------------------------


def test_ocsp_good_revoked_unknown(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    responder = OcspResponder(ca, key)
    server.ocsp[name] = responder
    good, revoked, unknown = (_leaf(dev_pki, tmp_path, ocsp=server.ocsp_url(name)) for _ in range(3))
    responder.revoked[revoked.certificate.serial_number] = NOW - timedelta(days=1)
    responder.unknown.add(unknown.certificate.serial_number)
    checker = RevocationChecker(http_fetch, order=("ocsp",))

    result = checker.check(good.certificate, ca)
    assert (result.status, result.source) == ("good", "ocsp")
    assert result.this_update is not None and result.next_update is not None

    result = checker.check(revoked.certificate, ca)
    assert (result.status, result.source) == ("revoked", "ocsp")
    assert "superseded" in result.detail

    result = checker.check(unknown.certificate, ca)
    assert result.status == "unknown" and "does not know this certificate" in result.detail
    verdict = CertificateValidator(dev_pki.anchors(), checker).validate(unknown.certificate, Purpose.AP_SIGNING)
    assert verdict.reason == "revocation-unknown"
    assert checker.stats["ocsp_fetch"] == 4  # the validator asked again: unknown answers are not cached


def test_ocsp_unreachable_and_malformed(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, _ = dev_pki.ca("ap")
    name = _name()
    server.ocsp[name] = b"\x30\x03garbage"
    checker = RevocationChecker(http_fetch, order=("ocsp",), timeout=2)
    down = _leaf(dev_pki, tmp_path, ocsp=closed_port_url("/ocsp"))
    result = checker.check(down.certificate, ca)
    assert result.status == "unknown" and "request failed" in result.detail
    garbage = _leaf(dev_pki, tmp_path, ocsp=server.ocsp_url(name))
    result = checker.check(garbage.certificate, ca)
    assert result.status == "unknown" and "not an OCSP response" in result.detail


def test_ocsp_stale_and_future(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    stale, future = _name(), _name()
    server.ocsp[stale] = OcspResponder(ca, key, this_update=NOW - timedelta(days=2),
                                       next_update=NOW - timedelta(days=1))
    server.ocsp[future] = OcspResponder(ca, key, this_update=NOW + timedelta(hours=1))
    checker = RevocationChecker(http_fetch, order=("ocsp",))
    result = checker.check(_leaf(dev_pki, tmp_path, ocsp=server.ocsp_url(stale)).certificate, ca)
    assert result.status == "unknown" and "stale" in result.detail
    result = checker.check(_leaf(dev_pki, tmp_path, ocsp=server.ocsp_url(future)).certificate, ca)
    assert result.status == "unknown" and "in the future" in result.detail


def _responder_cert(pki: DevPki, tmp_path: Path, eku: bool) -> tuple[x509.Certificate, object]:
    ca, ca_key = pki.ca("ap")
    leaf = issue_leaf(pki, cn=f"OCSP RESPONDER {next(_names)}", out_dir=tmp_path)
    builder = (
        x509.CertificateBuilder()
        .subject_name(leaf.certificate.subject)
        .issuer_name(ca.subject)
        .public_key(leaf.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(days=30))
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
    from cryptography.hazmat.primitives import hashes

    return builder.sign(ca_key, hashes.SHA256()), leaf.key  # type: ignore[arg-type]


def test_ocsp_delegated_responder(server: RevocationServer, dev_pki: DevPki, other_pki: DevPki,
                                  tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    checker = RevocationChecker(http_fetch, order=("ocsp",))
    cases = {
        "with-eku": (_responder_cert(dev_pki, tmp_path, eku=True), "good", None),
        "without-eku": (_responder_cert(dev_pki, tmp_path, eku=False), "unknown", "OCSP-signing"),
        "foreign": (_responder_cert(other_pki, tmp_path, eku=True), "unknown", "not issued by the certificate's CA"),
    }
    for label, (signer, status, message) in cases.items():
        name = _name()
        server.ocsp[name] = OcspResponder(ca, key, signer=signer)  # type: ignore[arg-type]
        result = checker.check(_leaf(dev_pki, tmp_path, ocsp=server.ocsp_url(name)).certificate, ca)
        assert result.status == status, label
        if message:
            assert message in result.detail, label


def test_ocsp_signed_by_a_stranger(server: RevocationServer, dev_pki: DevPki, other_pki: DevPki,
                                   tmp_path: Path) -> None:
    ca, _ = dev_pki.ca("ap")
    other_ca, other_key = other_pki.ca("ap")
    name = _name()
    # Signed by a CA with the same name but another key, identified by key hash: not our CA.
    server.ocsp[name] = OcspResponder(other_ca, other_key)
    result = RevocationChecker(http_fetch, order=("ocsp",)).check(_leaf(dev_pki, tmp_path, ocsp=server.ocsp_url(name))
                                                      .certificate, ca)
    assert result.status == "unknown" and "signed by neither" in result.detail


# -- order, cache, soft fail -----------------------------------------------------------------------


def test_crl_down_falls_back_to_ocsp(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    server.ocsp[name] = OcspResponder(ca, key)
    leaf = _leaf(dev_pki, tmp_path, crl=closed_port_url("/down.crl"), ocsp=server.ocsp_url(name))
    checker = RevocationChecker(http_fetch, timeout=2)
    result = checker.check(leaf.certificate, ca)
    assert (result.status, result.source) == ("good", "ocsp")
    assert checker.stats["crl_fetch"] == 1 and checker.stats["ocsp_fetch"] == 1


def test_order_ocsp_first(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    server.crls[name] = make_crl(ca, key)
    server.ocsp[name] = OcspResponder(ca, key)
    leaf = _leaf(dev_pki, tmp_path, crl=server.crl_url(name), ocsp=server.ocsp_url(name))
    assert RevocationChecker(http_fetch, order=("ocsp", "crl")).check(leaf.certificate, ca).source == "ocsp"
    assert server.hits[f"/crl/{name}"] == 0
    assert RevocationChecker(http_fetch).check(leaf.certificate, ca).source == "crl"


def test_result_cache(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    server.ocsp[name] = OcspResponder(ca, key)
    leaf = _leaf(dev_pki, tmp_path, ocsp=server.ocsp_url(name))
    checker = RevocationChecker(http_fetch, order=("ocsp",), cache_seconds=3600)
    assert checker.check(leaf.certificate, ca).source == "ocsp"
    again = checker.check(leaf.certificate, ca, at=NOW + timedelta(minutes=30))
    assert (again.status, again.source) == ("good", "cache")
    assert server.hits[f"/ocsp/{name}"] == 1 and checker.stats["cache_hit"] == 1
    # After cache_seconds the responder is asked again.
    assert checker.check(leaf.certificate, ca, at=NOW + timedelta(minutes=90)).source == "ocsp"
    assert server.hits[f"/ocsp/{name}"] == 2


def test_soft_fail_within_and_beyond_grace(server: RevocationServer, dev_pki: DevPki, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    server.crls[name] = make_crl(ca, key, next_update=NOW + timedelta(hours=2))
    leaf = _leaf(dev_pki, tmp_path, crl=server.crl_url(name))
    soft = RevocationChecker(http_fetch, soft_fail=True, grace_seconds=24 * 3600)
    hard = RevocationChecker(http_fetch)
    for checker in (soft, hard):
        assert checker.check(leaf.certificate, ca).source == "crl"
    answered_by = datetime.now(UTC)  # NOW is import time; under load the first answers come later
    del server.crls[name]  # the CRL server goes down (404)

    later = NOW + timedelta(hours=7)  # past the 6 h result cache and the CRL's nextUpdate
    assert hard.check(leaf.certificate, ca, at=later).status == "unknown"
    with caplog.at_level(logging.WARNING, logger="certs.revocation"):
        result = soft.check(leaf.certificate, ca, at=later)
    assert (result.status, result.source) == ("good", "stale-cache")
    assert result.detail.startswith("SOFT FAIL") and "HTTP 404" in result.detail
    assert soft.stats["soft_fail_used"] == 1
    record = next(r for r in caplog.records if getattr(r, "event", None) == "revocation_soft_fail")
    assert record.levelno == logging.WARNING
    assert record.serial == format(leaf.certificate.serial_number, "x")  # type: ignore[attr-defined]
    assert record.answer_age_seconds >= (later - answered_by).total_seconds() - 1  # type: ignore[attr-defined]
    verdict = CertificateValidator(dev_pki.anchors(), soft).validate(leaf.certificate, Purpose.AP_SIGNING, at=later)
    assert verdict.valid and "SOFT FAIL" in verdict.detail

    beyond = soft.check(leaf.certificate, ca, at=NOW + timedelta(hours=25))
    assert (beyond.status, beyond.source) == ("unknown", None)
    assert soft.stats["soft_fail_used"] == 2  # the validator's check above used it too


def test_validator_with_good_revocation(server: RevocationServer, dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    name = _name()
    server.crls[name] = make_crl(ca, key)
    leaf = _leaf(dev_pki, tmp_path, crl=server.crl_url(name))
    verdict = CertificateValidator(dev_pki.anchors(), RevocationChecker(http_fetch)).validate(leaf.certificate,
                                                                                    Purpose.AP_ENCRYPTION)
    assert verdict.valid and "not revoked (crl" in verdict.detail
    assert verdict.to_dict()["revocation"]["status"] == "good"


def test_injected_fetch_is_the_only_io(dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    calls: list[tuple[str, bytes | None, str | None, float]] = []

    def fetch(url: str, body: bytes | None, content_type: str | None, timeout: float) -> bytes:
        calls.append((url, body, content_type, timeout))
        if body is None:
            raise RevocationFetchError(f"{url}: offline")
        return OcspResponder(ca, key)(body)

    leaf = _leaf(dev_pki, tmp_path, crl="http://crl.invalid/ap.crl", ocsp="http://ocsp.invalid/")
    result = RevocationChecker(fetch=fetch, timeout=3.5).check(leaf.certificate, ca)
    assert (result.status, result.source) == ("good", "ocsp")
    assert [(c[0], c[2], c[3]) for c in calls] == [
        ("http://crl.invalid/ap.crl", None, 3.5),
        ("http://ocsp.invalid/", "application/ocsp-request", 3.5),
    ]


def test_http_fetch_errors(server: RevocationServer) -> None:
    with pytest.raises(RevocationFetchError, match="HTTP 404"):
        http_fetch(server.crl_url("missing"), None, None, 2)
    with pytest.raises(RevocationFetchError, match="only http"):
        http_fetch("ldap://example.test/cn=crl", None, None, 2)


def test_checker_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="order"):
        RevocationChecker(http_fetch, order=("crl", "crl"))
    with pytest.raises(ValueError, match="order"):
        RevocationChecker(http_fetch, order=())
    with pytest.raises(ValueError, match="cache_seconds"):
        RevocationChecker(http_fetch, cache_seconds=7 * 3600)


def test_result_cache_is_bounded(dev_pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from certs import revocation

    monkeypatch.setattr(revocation, "MAX_CACHED_RESULTS", 2)
    ca, key = dev_pki.ca("ap")
    responder = OcspResponder(ca, key)
    asked: list[str] = []

    def fetch(url: str, body: bytes | None, content_type: str | None, timeout: float) -> bytes:
        asked.append(url)
        assert body is not None
        return responder(body)

    checker = RevocationChecker(fetch=fetch, order=("ocsp",))
    leaves = [_leaf(dev_pki, tmp_path, ocsp=f"http://ocsp.invalid/{i}") for i in range(3)]
    for i, leaf in enumerate(leaves):
        checker.check(leaf.certificate, ca, at=NOW + timedelta(seconds=i))
    # Three answers do not fit in two places: the oldest half went, the newest is still served from cache.
    assert checker.check(leaves[2].certificate, ca, at=NOW + timedelta(seconds=5)).source == "cache"
    assert checker.check(leaves[0].certificate, ca, at=NOW + timedelta(seconds=5)).source == "ocsp"
    assert len(asked) == 4
