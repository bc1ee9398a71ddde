"""accesspoint.core.peppol.inspection: every vector gives its documented verdicts; a message we build inspects clean."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accesspoint.core.peppol.inbound import InboundLimits
from accesspoint.core.peppol.inspection import InspectionReport, human_lines, inspect_message
from bench.as4_roundtrip import write_message, write_sbd
from certs.anchors import anchors_from_certificates, peppol_anchors
from certs.keystore import load_certificates, load_pem
from certs.validation import CertificateValidator
from tests.as4.inspect_support import AT, EXPECTED, RoundTrip, check, make_round_trip, write_unencrypted_message

NOW = datetime.now(UTC)  # the tests' time for what they build


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory, vectors: Path) -> RoundTrip:
    return make_round_trip(tmp_path_factory.mktemp("inspect"), vectors)


def _inspect_file(path: Path, **kwargs: object) -> InspectionReport:
    with path.open("rb") as stream:
        return inspect_message(stream.read(), None, **{"at": AT, **kwargs})  # type: ignore[arg-type]


def _test_validator() -> CertificateValidator:
    return CertificateValidator(peppol_anchors("test"))


def _step(report: InspectionReport, name: str) -> tuple[str, str]:
    found = [s for s in report.steps if s.name == name]
    assert len(found) == 1, [s.name for s in report.steps]
    return found[0].status, found[0].summary


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vector_verdicts(name: str, vectors: Path) -> None:
    report = _inspect_file(vectors / "as4" / "messages" / name, validator=_test_validator(), at=AT)
    check(name, report.to_dict(), vectors)


def test_every_message_vector_is_covered(vectors: Path) -> None:
    assert sorted(p.name for p in (vectors / "as4" / "messages").iterdir()) == sorted(EXPECTED)


def test_phase4_user_message_reports_each_step_although_decryption_is_impossible(vectors: Path) -> None:
    dummy = load_pem(vectors / "as4/keys/dummy-ph-as4.key.pem", vectors / "as4/keys/dummy-ph-as4.cert.pem")
    report = _inspect_file(vectors / "as4/messages/um-phase4-peppol-signed-encrypted.mime", keys=[dummy],
                           validator=_test_validator(), at=AT)
    status, summary = _step(report, "decryption")
    assert status == "failed"
    assert "CN=POP000306" in summary and "serial 0x732c5202b9ed5daa93769d8de81d03d8" in summary
    assert "not for our key: CN=ph-as4,C=AT, serial 0x587f3dae" in summary
    status, summary = _step(report, "signature")
    assert status == "incomplete"
    assert "not checkable without decryption: cid:phase4-att-ff0f8ad5" in summary
    assert report.signature_valid is True and report.signature_complete is False
    assert _step(report, "profile")[0] == "ok"
    assert _step(report, "certificate")[0] == "ok"
    assert _step(report, "revocation") == ("skipped", "not checked (use --revocation to ask the CA's CRL/OCSP "
                                                      "server)")
    assert report.payload_sha256 is None and report.sbdh is None
    assert report.ebms_error is not None and report.ebms_error.code == "EBMS:0102"


def test_g2_receipt_is_expired_today_with_g2_anchors_and_valid_in_2022(vectors: Path) -> None:
    g2 = anchors_from_certificates(load_certificates(vectors / "as4/truststores/peppol-test-G2-cas.pem"))
    path = vectors / "as4/messages/receipt-phase4-2022-POP000306.as4in"
    today = _inspect_file(path, validator=CertificateValidator(g2), at=datetime(2026, 11, 21, tzinfo=UTC))
    assert today.certificate is not None and today.certificate.reason == "expired"
    assert today.ebms_error is not None and today.ebms_error.code == "EBMS:0302"
    back_then = _inspect_file(path, validator=CertificateValidator(g2), at=datetime(2022, 3, 7, 17, 36, tzinfo=UTC))
    assert back_then.valid, list(human_lines(back_then))


def test_without_validator_the_certificate_step_says_it_was_skipped(vectors: Path) -> None:
    report = _inspect_file(vectors / "as4/messages/receipt-phase4-4.0.1-PDE000576.xml")
    assert _step(report, "certificate") == ("skipped", "not checked (no trust anchors given)")
    assert report.valid  # skipped steps are reported, not failed


def test_error_signal_is_explained_and_never_answered(vectors: Path) -> None:
    report = _inspect_file(vectors / "as4/messages/error-EBMS0103-with-soap-fault.xml")
    status, summary = _step(report, "error-signal")
    assert status == "failed"
    assert summary.startswith("the receiver rejected 1234: EBMS:0103 PolicyNoncompliance (failure)")
    assert "SOAP Fault: env:Receiver" in summary
    assert report.ebms_error is None
    assert "verdict: NOT valid" in list(human_lines(report))


def test_unknown_signature_algorithm_is_rejected_before_any_crypto(vectors: Path) -> None:
    report = _inspect_file(vectors / "as4/messages/um-unknown-signature-algorithm.xml")
    status, summary = _step(report, "signature-policy")
    assert status == "failed" and "http://www.randomcrypt.com/random" in summary
    assert report.signer_subject == "CN=APP_1000000101,O=BRZ (Federal Computing Center Austria),C=AT"
    assert [r.digest_valid for r in report.references] == [None]


def test_round_trip_decrypts_verifies_and_reads_the_sbdh(round_trip: RoundTrip) -> None:
    with round_trip.message.open("rb") as stream:
        report = inspect_message(stream.read(), round_trip.content_type, keys=[round_trip.key],
                                 validator=CertificateValidator(round_trip.pki.anchors()), at=datetime.now(UTC))
    assert report.valid, list(human_lines(report))
    assert report.message_id == round_trip.message_id
    assert report.decrypted is True and report.signature_complete
    assert [r.digest_valid for r in report.references] == [True, True, True]
    assert report.payload_sha256 == hashlib.sha256(round_trip.sbd.read_bytes()).hexdigest()
    assert report.sbdh is not None and str(report.sbdh.receiver) == "iso6523-actorid-upis::9915:helger"
    assert report.to_dict()["sbdh"]["country_c1"] == "GB"
    assert report.ebms_error is None


def test_a_raw_body_without_content_type_fails_at_transport(round_trip: RoundTrip) -> None:
    report = _inspect_file(round_trip.message, keys=[round_trip.key])
    assert [(s.name, s.status) for s in report.steps] == [("transport", "failed")]
    assert "no Content-Type" in report.steps[0].summary
    assert report.ebms_error is not None and report.ebms_error.code == "EBMS:0007"


def test_round_trip_with_a_flipped_ciphertext_byte_fails_decryption(round_trip: RoundTrip, tmp_path: Path) -> None:
    tampered = round_trip.tampered(tmp_path / "tampered.mime", offset_from_end=200)
    with tampered.open("rb") as stream:
        report = inspect_message(stream.read(), round_trip.content_type, keys=[round_trip.key],
                                 validator=CertificateValidator(round_trip.pki.anchors()), at=datetime.now(UTC))
    assert not report.valid
    assert _step(report, "decryption")[0] == "failed"
    assert "failed the AES-GCM integrity check" in _step(report, "decryption")[1]
    assert report.decrypted is False
    assert _step(report, "signature")[0] == "incomplete"  # Messaging and Body still verified
    assert report.ebms_error is not None and report.ebms_error.code == "EBMS:0102"


def test_round_trip_with_a_changed_header_fails_the_signature(round_trip: RoundTrip, tmp_path: Path) -> None:
    changed = round_trip.with_soap_change(tmp_path / "changed.mime", b"9915:helger", b"9915:helgar")
    with changed.open("rb") as stream:
        report = inspect_message(stream.read(), round_trip.content_type, keys=[round_trip.key],
                                 validator=CertificateValidator(round_trip.pki.anchors()), at=datetime.now(UTC))
    status, summary = _step(report, "signature")
    assert status == "failed" and "digest of #" in summary and "does not match" in summary
    assert report.decrypted is True
    # the SBDH still names 9915:helger, so the cross-check names the changed finalRecipient too
    assert _step(report, "sbdh")[0] == "ok" and _step(report, "cross-check")[0] == "failed"
    assert report.ebms_error is not None and report.ebms_error.code == "EBMS:0101"


def test_unencrypted_message_is_verified_read_and_rejected_for_peppol(round_trip: RoundTrip, tmp_path: Path) -> None:
    path = tmp_path / "clear.mime"
    with path.open("wb") as out:
        content_type = write_unencrypted_message(round_trip.sbd, round_trip.key, out)
    with path.open("rb") as stream:
        report = inspect_message(stream.read(), content_type, validator=CertificateValidator(round_trip.pki.anchors()),
                                 at=NOW)
    status, summary = _step(report, "decryption")  # the receiver's words: one copy of the check
    assert status == "failed" and summary.startswith("the message is not encrypted: wsse:Security holds no "
                                                     "xenc:EncryptedKey")
    assert report.decrypted is None
    assert _step(report, "signature")[0] == "ok" and report.signature_complete
    assert report.payload_sha256 == hashlib.sha256(round_trip.sbd.read_bytes()).hexdigest()
    assert _step(report, "sbdh")[0] == "ok"
    assert report.ebms_error is not None and report.ebms_error.code == "EBMS:0102"


def test_generated_multi_megabyte_sbd_round_trips_through_spilled_files(round_trip: RoundTrip, tmp_path: Path) -> None:
    sbd = tmp_path / "big.xml"
    size = write_sbd(round_trip.sbd, sbd, 3 << 20, note_bytes=512)
    assert size == sbd.stat().st_size and (3 << 20) - 2048 < size <= 3 << 20
    path = tmp_path / "big.mime"
    with path.open("wb") as out:
        content_type, _ = write_message(sbd, round_trip.key, round_trip.key.certificate, out)
    with path.open("rb") as stream:
        # spill_threshold 1: every part, the plaintext and the gunzipped SBD go through temporary files
        report = inspect_message(stream.read(), content_type, keys=[round_trip.key],
                                 validator=CertificateValidator(round_trip.pki.anchors()),
                                 limits=InboundLimits(spill_threshold_bytes=1), at=datetime.now(UTC))
    assert report.valid, list(human_lines(report))
    assert report.payload_size == size
    assert report.payload_sha256 == hashlib.sha256(sbd.read_bytes()).hexdigest()
