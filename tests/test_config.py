"""Start-up validation: every problem stops start-up with one line naming the key; secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from accesspoint.config import ConfigError, key_material, load_config

SECRET = "s3cret-Passw0rd"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def problem(tmp_path: Path, text: str = "", env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text) if text else None
    with pytest.raises(ConfigError) as info:
        cfg = load_config(path, env or {})
        key_material(cfg)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_are_the_local_environment(tmp_path: Path) -> None:
    cfg = load_config(None, {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    assert cfg.environment == "local"
    assert cfg.server.host == "127.0.0.1"
    assert cfg.database_url == f"sqlite:///{tmp_path / 'gateway.db'}"
    assert cfg.sml_zone == "local.peppol.test"
    assert cfg.public_url == "http://127.0.0.1:8080"


def test_environment_variables_override_file_and_are_typed(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\n")
    cfg = load_config(path, {"PEPPOL_AP_SERVER__PORT": "9100", "PEPPOL_AP_REVOCATION__SOFT_FAIL": "true",
                             "PEPPOL_AP_SML__DNS_SERVERS": "127.0.0.1:5353, 127.0.0.2"})
    assert cfg.server.port == 9100
    assert cfg.revocation.soft_fail is True
    assert cfg.sml.dns_servers == ["127.0.0.1:5353", "127.0.0.2"]


@pytest.mark.parametrize(("environment", "zone"), [("test", "participant.sml.test.tech.peppol.org"),
                                                   ("production", "participant.sml.prod.tech.peppol.org")])
def test_environment_selects_sml_zone(tmp_path: Path, environment: str, zone: str, vectors: Path) -> None:
    p12 = vectors / "as4/keys/peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12"
    cfg = load_config(None, {"PEPPOL_AP_ENVIRONMENT": environment, "PEPPOL_AP_KEYSTORE__PKCS12": str(p12)})
    assert cfg.sml_zone == zone


def test_unknown_key_in_file(tmp_path: Path) -> None:
    assert problem(tmp_path, "[server]\nprot = 1\n").startswith("server.prot: unknown key")


def test_unknown_section(tmp_path: Path) -> None:
    assert problem(tmp_path, "[sevrer]\nport = 1\n").startswith("sevrer: unknown key")


def test_unknown_environment_variable(tmp_path: Path) -> None:
    assert "PEPPOL_AP_SERVER__PROT" in problem(tmp_path, env={"PEPPOL_AP_SERVER__PROT": "1"})


def test_wrong_type(tmp_path: Path) -> None:
    assert problem(tmp_path, '[server]\nport = "eighty"\n').startswith("server.port: expected int")


def test_unknown_environment(tmp_path: Path) -> None:
    assert problem(tmp_path, 'environment = "staging"\n').startswith("environment: must be one of")


def test_port_out_of_range(tmp_path: Path) -> None:
    assert problem(tmp_path, "[server]\nport = 70000\n").startswith("server.port:")


def test_missing_config_file(tmp_path: Path) -> None:
    assert "file not found" in problem(tmp_path, env={"PEPPOL_AP_CONFIG": str(tmp_path / "nope.toml")})


def test_missing_keystore_file(tmp_path: Path) -> None:
    message = problem(tmp_path, f'[keystore]\npkcs12 = "{tmp_path}/missing.p12"\n')
    assert message.startswith("keystore.pkcs12: file not found")


def test_production_requires_a_keystore(tmp_path: Path) -> None:
    assert problem(tmp_path, 'environment = "production"\n').startswith("keystore.pkcs12: required")


def test_trust_extras_only_in_local(tmp_path: Path, vectors: Path) -> None:
    ca = vectors / "smp/generated/pki/test-ap-ca.cert.pem"
    p12 = vectors / "as4/keys/peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12"
    text = f'environment = "test"\n[keystore]\npkcs12 = "{p12}"\n[trust]\nap_ca = ["{ca}"]\n'
    assert problem(tmp_path, text).startswith("trust.ap_ca: only allowed in the local environment")


def test_wrong_keystore_password_names_key_not_secret(tmp_path: Path, vectors: Path) -> None:
    p12 = vectors / "as4/keys/peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12"
    message = problem(tmp_path, f'[keystore]\npkcs12 = "{p12}"\npassword = "{SECRET}"\n')
    assert message.startswith("keystore.pkcs12: cannot open PKCS#12")
    assert "wrong password" in message
    assert SECRET not in message


def test_expired_own_certificate(tmp_path: Path, vectors: Path) -> None:
    p12 = vectors / "as4/keys/peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12"
    message = problem(tmp_path, f'[keystore]\npkcs12 = "{p12}"\npassword = "peppol"\n')
    assert message.startswith("keystore.pkcs12: certificate ")
    assert "CN=POP000306" in message
    assert message.endswith("expired on 2021-06-20")


def test_key_that_does_not_match_certificate(tmp_path: Path, vectors: Path) -> None:
    keys = vectors / "as4/keys"
    text = (f'[keystore]\nkey = "{keys}/dummy-ph-as4.key.pem"\n'
            f'certificate = "{keys}/peppol-test-ap-POP000306-EXPIRED.chain.pem"\n')
    assert problem(tmp_path, text) == "keystore.key: the private key does not match the certificate"


def test_pem_key_material_loads(tmp_path: Path, vectors: Path) -> None:
    keys = vectors / "as4/keys"
    cfg = load_config(write(tmp_path, f'[keystore]\nkey = "{keys}/dummy-ph-as4.key.pem"\n'
                                      f'certificate = "{keys}/dummy-ph-as4.cert.pem"\n'), {})
    material = key_material(cfg)
    assert material.subject_cn == "ph-as4"


def test_redacted_hides_password(tmp_path: Path) -> None:
    cfg = load_config(None, {"PEPPOL_AP_KEYSTORE__PASSWORD": SECRET})
    assert SECRET not in repr(cfg.redacted())
    assert cfg.redacted()["keystore"]["password"] == "***"


def test_bad_sending_settings_stop_every_process_type(tmp_path: Path) -> None:
    # load_config is where the web app, the worker and every CLI command start, so checking there stops them all
    with pytest.raises(ConfigError) as info:
        load_config(None, {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path), "PEPPOL_AP_SENDING__LEASE_SECONDS": "10"})
    assert str(info.value).startswith("sending.lease_seconds: must exceed")
