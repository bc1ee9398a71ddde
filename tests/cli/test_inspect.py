"""`peppol-ap inspect` through click: every vector with --json, human output, keys, trust and exit status."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from accesspoint.cli.main import cli
from tests.as4.inspect_support import AT, EXPECTED, RoundTrip, check, make_round_trip
from tests.certs.revocation_server import RevocationServer, make_crl


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory, vectors: Path) -> RoundTrip:
    return make_round_trip(tmp_path_factory.mktemp("cli-inspect"), vectors)


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["inspect", *map(str, args)], catch_exceptions=False)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_vector_as_json(name: str, vectors: Path) -> None:
    result = _run(vectors / "as4/messages" / name, "--env", "test", "--at", AT.isoformat(), "--json")
    data = json.loads(result.output)
    check(name, data, vectors)
    assert result.exit_code == (0 if data["valid"] else 1)


def test_phase4_user_message_human_output(vectors: Path) -> None:
    keys = vectors / "as4/keys"
    result = _run(vectors / "as4/messages/um-phase4-peppol-signed-encrypted.mime", "--env", "test",
                  "--at", "2026-06-01T00:00:00Z", "--key", keys / "dummy-ph-as4.key.pem",
                  "--cert", keys / "dummy-ph-as4.cert.pem")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "user-message 17a7c374-efe3-41e2-ac0d-8a8f47529e47@phase4"
    decryption = next(line for line in lines if line.startswith("✗ decryption: "))
    assert "the message is encrypted for CN=POP000306" in decryption
    assert "not for our key: CN=ph-as4,C=AT, serial 0x587f3dae" in decryption
    assert decryption.endswith("[EBMS:0102]")
    assert any(line.startswith("? signature: SignatureValue valid (3 references, 2 digest(s) OK") for line in lines)
    assert "– revocation: not checked (use --revocation to ask the CA's CRL/OCSP server)" in lines
    assert lines[-1] == "verdict: NOT valid; we would answer EBMS:0102 FailedDecryption"


def test_receipt_2022_with_g2_trust_expired_now_valid_then(vectors: Path) -> None:
    path = vectors / "as4/messages/receipt-phase4-2022-POP000306.as4in"
    g2 = vectors / "as4/truststores/peppol-test-G2-cas.pem"
    expired = _run(path, "--trust", g2, "--at", "2026-11-21T00:00:00Z")
    assert expired.exit_code == 1
    assert any(line.startswith("✗ certificate: the signing certificate ") and "(expired): the certificate expired on "
               "2023-05-14" in line for line in expired.output.splitlines())
    then = _run(path, "--trust", g2, "--at", "2022-03-07T17:36:50", "--json")
    assert then.exit_code == 0, then.output
    assert json.loads(then.output)["certificate"]["valid"] is True


def test_receipt_2022_with_test_anchors_is_an_unsupported_issuer(vectors: Path) -> None:
    result = _run(vectors / "as4/messages/receipt-phase4-2022-POP000306.as4in", "--env", "test", "--json")
    data = json.loads(result.output)
    assert result.exit_code == 1
    assert data["certificate"]["reason"] == "unsupported-issuer"
    assert data["signature"]["valid"] is True


def test_round_trip_with_pkcs12_key_is_valid(round_trip: RoundTrip) -> None:
    result = _run(round_trip.message, "--content-type", round_trip.content_type, "--key", round_trip.pki.ap_p12,
                  "--key-password", round_trip.pki.password, "--trust", round_trip.pki.truststore_pem, "--json")
    data = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert data["kind"] == "user-message" and data["message_id"] == round_trip.message_id
    assert data["decrypted"] is True
    assert data["payload_sha256"] == hashlib.sha256(round_trip.sbd.read_bytes()).hexdigest()
    assert data["sbdh"]["sender"] == "iso6523-actorid-upis::9915:phase4-test-sender"
    assert data["signature"]["valid"] is True and data["certificate"]["valid"] is True
    assert data["ebms_error"] is None


def test_round_trip_with_pem_key_and_cert(round_trip: RoundTrip) -> None:
    result = _run(round_trip.message, "--content-type", round_trip.content_type, "--key", round_trip.pki.ap_key,
                  "--cert", round_trip.pki.ap_cert, "--trust", round_trip.pki.truststore_pem)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "verdict: valid"
    assert any(line.startswith("✓ sbdh: iso6523-actorid-upis::9915:phase4-test-sender -> ")
               for line in result.output.splitlines())


def test_round_trip_tampered_names_the_failing_step(round_trip: RoundTrip, tmp_path: Path) -> None:
    tampered = round_trip.tampered(tmp_path / "tampered.mime", offset_from_end=200)
    result = _run(tampered, "--content-type", round_trip.content_type, "--key", round_trip.pki.ap_p12,
                  "--key-password", round_trip.pki.password, "--trust", round_trip.pki.truststore_pem)
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("✗ ")]
    assert len(failed) == 1 and failed[0].startswith("✗ decryption: attachment ")
    assert "AES-GCM integrity check" in failed[0]


def test_pem_key_without_cert_is_a_usage_error(round_trip: RoundTrip) -> None:
    result = CliRunner().invoke(cli, ["inspect", str(round_trip.message), "--key", str(round_trip.pki.ap_key),
                                      "--env", "test"])
    assert result.exit_code == 2
    assert "is a PEM private key; give its certificate with --cert" in result.output


def test_wrong_pkcs12_password_is_a_usage_error(round_trip: RoundTrip) -> None:
    result = CliRunner().invoke(cli, ["inspect", str(round_trip.message), "--key", str(round_trip.pki.ap_p12),
                                      "--key-password", "wrong", "--env", "test"])
    assert result.exit_code == 2
    assert "wrong password" in result.output


def test_bad_time_is_a_usage_error(vectors: Path) -> None:
    result = CliRunner().invoke(cli, ["inspect", str(vectors / "as4/messages/nri-fragment.xml"), "--env", "test",
                                      "--at", "yesterday"])
    assert result.exit_code == 2
    assert "--at: not an ISO 8601 time: 'yesterday'" in result.output


def test_default_anchors_come_from_the_configured_environment(vectors: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEPPOL_AP_ENVIRONMENT", "test")
    keys = vectors / "as4/keys"
    monkeypatch.setenv("PEPPOL_AP_KEYSTORE__PKCS12", str(keys / "peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12"))
    result = _run(vectors / "as4/messages/receipt-phase4-4.0.1-PDE000576.xml", "--at", AT.isoformat(), "--json")
    data = json.loads(result.output)
    assert result.exit_code == 0
    assert "of the test environment" in data["certificate"]["detail"]


@pytest.mark.parametrize("revoked", [False, True])
def test_revocation_is_checked_only_with_the_flag(vectors: Path, tmp_path: Path, revoked: bool) -> None:
    with RevocationServer() as server:
        trip = make_round_trip(tmp_path, vectors, crl_url=server.crl_url("ap"))
        ca_cert, ca_key = trip.pki.ca("ap")
        serial = trip.key.certificate.serial_number
        server.crls["ap"] = make_crl(ca_cert, ca_key, {serial: datetime.now(UTC)} if revoked else {})
        common = [trip.message, "--content-type", trip.content_type, "--key", trip.pki.ap_p12,
                  "--key-password", trip.pki.password, "--trust", trip.pki.truststore_pem]
        unchecked = _run(*common)
        checked = _run(*common, "--revocation", "--json")
    assert unchecked.exit_code == 0
    assert "– revocation: not checked (use --revocation to ask the CA's CRL/OCSP server)" in unchecked.output
    data = json.loads(checked.output)
    assert data["certificate"]["revocation_checked"] is True
    assert "revocation" not in [s["step"] for s in data["steps"]]
    if revoked:
        assert checked.exit_code == 1
        assert data["certificate"]["reason"] == "revoked"
        assert data["ebms_error"] == "EBMS:0101"
    else:
        assert checked.exit_code == 0, checked.output
        assert "not revoked (crl" in data["certificate"]["detail"]
    assert server.hits["/crl/ap"] == 1
