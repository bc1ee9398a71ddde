"""`peppol-ap pki init` and `peppol-ap pki verify`, run through the real click entry point."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from accesspoint.cli.main import cli
from certs.devpki import DevPki, issue_leaf
from certs.keystore import load_pkcs12
from tests.certs.revocation_server import RevocationServer, make_crl


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def cli_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "pki"
    code, stdout, stderr = _run("pki", "init", "--out", str(out), "--seat-id", "PSE000123")
    assert (code, stderr) == (0, ""), stdout
    return out


def test_init_creates_the_files_and_prints_keytool_lines(cli_pki: Path) -> None:
    for name in ("root-ca.pem", "ap-ca.pem", "smp-ca.pem", "ap.p12", "smp.p12", "ap.key.pem", "ap.cert.pem",
                 "smp.key.pem", "smp.cert.pem", "truststore.pem", "truststore.p12", "pki.json"):
        assert (cli_pki / name).is_file(), name
    assert load_pkcs12(cli_pki / "ap.p12", "peppol").subject_cn == "PSE000123"


def test_init_output(tmp_path: Path) -> None:
    code, stdout, _ = _run("pki", "init", "--out", str(tmp_path / "p"), "--password", "s3cret-dev")
    assert code == 0
    assert "FOR LOCAL TESTING ONLY" in stdout
    assert f"-file {tmp_path / 'p' / 'ap-ca.pem'}" in stdout
    assert stdout.count("keytool -importcert") == 3
    assert "s3cret-dev" not in stdout  # a chosen password is not echoed
    assert load_pkcs12(tmp_path / "p" / "smp.p12", "s3cret-dev").subject_cn == "POP000001"


def test_init_refuses_existing_pki_in_one_line(cli_pki: Path) -> None:
    code, stdout, stderr = _run("pki", "init", "--out", str(cli_pki))
    assert code == 2 and stdout == ""
    assert stderr.startswith("peppol-ap: a dev PKI already exists") and stderr.count("\n") == 1


def test_java_keytool_reads_the_keystores(cli_pki: Path) -> None:
    listing = subprocess.run(
        ["keytool", "-list", "-storetype", "PKCS12", "-keystore", str(cli_pki / "ap.p12"), "-storepass", "peppol"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert "ap, " in listing and "PrivateKeyEntry" in listing
    trust = subprocess.run(
        ["keytool", "-list", "-storetype", "PKCS12", "-keystore", str(cli_pki / "truststore.p12"),
         "-storepass", "peppol"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert trust.count("trustedCertEntry") == 3


def test_verify_dev_leaf(cli_pki: Path) -> None:
    args = ("pki", "verify", str(cli_pki / "ap.cert.pem"), "--trust", str(cli_pki / "ap-ca.pem"), "--no-revocation")
    code, stdout, _ = _run(*args, "--purpose", "ap-signing")
    assert code == 0 and stdout.startswith("VALID for ap-signing")
    code, stdout, _ = _run(*args, "--purpose", "smp-signing")
    assert code == 1 and stdout.startswith("INVALID (unsupported-issuer)")
    # The whole truststore: its CAs are sorted into AP and SMP roles, so roles stay apart.
    trust = ("--trust", str(cli_pki / "truststore.pem"), "--no-revocation")
    assert _run("pki", "verify", str(cli_pki / "smp.cert.pem"), *trust, "--purpose", "smp-signing")[0] == 0
    assert _run("pki", "verify", str(cli_pki / "smp.cert.pem"), *trust, "--purpose", "ap-signing")[0] == 1
    assert _run("pki", "verify", str(cli_pki / "ap.cert.pem"), *trust, "--purpose", "ap-encryption")[0] == 0


def test_verify_without_revocation_source_is_unknown(cli_pki: Path) -> None:
    code, stdout, _ = _run("pki", "verify", str(cli_pki / "ap.cert.pem"), "--trust", str(cli_pki / "ap-ca.pem"),
                           "--purpose", "ap-encryption")
    assert code == 1 and stdout.startswith("INVALID (revocation-unknown)")


def test_verify_vector_json(vectors: Path) -> None:
    cert = str(vectors / "smp/pki/vefa_smp-random-test.cer")
    code, stdout, _ = _run("pki", "verify", cert, "--purpose", "smp-signing", "--at", "2026-06-01", "--no-revocation",
                           "--json")
    assert code == 0
    data = json.loads(stdout)
    assert data["valid"] is True and "PSE000018" in data["subject"]
    code, stdout, _ = _run("pki", "verify", cert, "--purpose", "smp-signing", "--env", "production",
                           "--at", "2026-06-01T00:00:00+02:00", "--no-revocation", "--json")
    assert code == 1 and json.loads(stdout)["reason"] == "unsupported-issuer"
    code, stdout, _ = _run("pki", "verify", cert, "--purpose", "smp-signing", "--at", "2030-01-01", "--no-revocation")
    assert code == 1 and "INVALID (expired)" in stdout


def test_verify_with_revocation_against_local_crl(dev_pki: DevPki, tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    with RevocationServer() as server:
        leaf = issue_leaf(dev_pki, cn="POP000777", crl_url=server.crl_url("ap"), out_dir=tmp_path)
        server.crls["ap"] = make_crl(ca, key, {leaf.certificate.serial_number: ca.not_valid_before_utc})
        code, stdout, _ = _run("pki", "verify", str(leaf.cert_pem), "--trust", str(dev_pki.ap_ca),
                               "--purpose", "ap-signing", "--json")
    assert code == 1
    data = json.loads(stdout)
    assert data["reason"] == "revoked" and data["revocation"]["source"] == "crl"


def test_verify_errors_are_one_line(tmp_path: Path, vectors: Path) -> None:
    code, _, stderr = _run("pki", "verify", str(tmp_path / "missing.pem"), "--purpose", "ap-signing")
    assert code == 2 and stderr == f"peppol-ap: certificate file not found: {tmp_path / 'missing.pem'}\n"
    cert = str(vectors / "smp/pki/vefa_smp-random-test.cer")
    code, _, stderr = _run("pki", "verify", cert, "--purpose", "smp-signing", "--at", "yesterday")
    assert code == 2 and stderr.startswith("peppol-ap: --at: not an ISO 8601 time")


@pytest.mark.parametrize("command", [("pki",), ("pki", "init"), ("pki", "verify")])
def test_help(command: tuple[str, ...]) -> None:
    code, stdout, _ = _run(*command, "--help")
    assert code == 0 and "Usage:" in stdout


@pytest.mark.parametrize("role", ["ap", "smp"])
def test_issue_another_leaf_for_a_second_local_gateway(cli_pki: Path, tmp_path: Path, role: str) -> None:
    code, stdout, stderr = _run("pki", "issue", "--pki", str(cli_pki), "--role", role, "--cn", "POP000002",
                                "--out", str(tmp_path))
    assert (code, stderr) == (0, ""), stdout
    material = load_pkcs12(tmp_path / f"{role}-pop000002.p12", "peppol")
    assert material.subject_cn == "POP000002"
    issuer = (cli_pki / f"{role}-ca.pem").read_bytes()
    assert material.chain[0].public_bytes(serialization.Encoding.PEM) == issuer
    assert "CN=POP000002" in stdout and str(tmp_path / f"{role}-pop000002.p12") in stdout


def test_issue_from_a_missing_pki_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["pki", "issue", "--pki", str(tmp_path), "--cn", "POP000002"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
