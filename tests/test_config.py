"""Start-up validation: every problem stops start-up with one line naming the key; secrets never shown."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ValidationError

from accesspoint.adapters.discovery import build_discovery
from accesspoint.cli.main import cli
from accesspoint.config import DEFAULT_FILE, Config, ConfigError, key_material, load_config

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


def test_local_lookups_ask_the_local_smls_dns_server_never_the_system_resolver(tmp_path: Path, vectors: Path) -> None:
    local = load_config(None, {"PEPPOL_AP_LOCAL_SML__DNS_PORT": "9553"})
    assert local.dns_servers == ["127.0.0.1:9553"]
    lookup = build_discovery(local, validator=None).sml
    assert lookup.zone == "local.peppol.test"
    assert [str(s) for s in lookup._resolver.nameservers] == ["Do53:127.0.0.1@9553"]  # dnspython's spelling
    chosen = load_config(None, {"PEPPOL_AP_SML__DNS_SERVERS": "127.0.0.2:53"})
    assert chosen.dns_servers == ["127.0.0.2:53"]
    p12 = vectors / "as4/keys/peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12"
    peppol = load_config(None, {"PEPPOL_AP_ENVIRONMENT": "test", "PEPPOL_AP_KEYSTORE__PKCS12": str(p12)})
    assert peppol.dns_servers == []  # the Peppol SML zones are public DNS: the system resolver asks them


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


# --- typed settings: every rule, every problem at once, secrets never shown ------------------------------------

def problems(tmp_path: Path, text: str = "", env: dict[str, str] | None = None) -> list[str]:
    """Every problem load_config reports, one line each."""
    path = write(tmp_path, text) if text else None
    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    return str(info.value).splitlines()


@pytest.mark.parametrize(("variable", "value", "line"), [
    ("PEPPOL_AP_SERVER__PORT", "0", "server.port: must be between 1 and 65535, got 0"),
    ("PEPPOL_AP_SERVER__PORT", "70000", "server.port: must be between 1 and 65535, got 70000"),
    ("PEPPOL_AP_SERVER__PORT", "http", "server.port: expected int, got 'http'"),
    ("PEPPOL_AP_SENDING__RETRY_INITIAL_SECONDS", "-5", "sending.retry_initial_seconds: must be greater than 0, got -5"),
    ("PEPPOL_AP_SENDING__CONNECT_TIMEOUT_SECONDS", "0", "sending.connect_timeout_seconds: must be greater than 0"),
    ("PEPPOL_AP_SENDING__BATCH_SIZE", "0", "sending.batch_size: must be at least 1, got 0"),
    ("PEPPOL_AP_SENDING__CIRCUIT_BREAKER_FAILURES", "0", "sending.circuit_breaker_failures: must be at least 1"),
    ("PEPPOL_AP_SML__TIMEOUT_SECONDS", "-1", "sml.timeout_seconds: must be greater than 0, got -1"),
    ("PEPPOL_AP_SML__TIMEOUT_SECONDS", "soon", "sml.timeout_seconds: expected a number, got 'soon'"),
    ("PEPPOL_AP_REVOCATION__CACHE_HOURS", "7", "revocation.cache_hours: must be between 1 and 6, got 7"),
    ("PEPPOL_AP_REVOCATION__TIMEOUT_SECONDS", "0", "revocation.timeout_seconds: must be greater than 0"),
    ("PEPPOL_AP_SMP_CLIENT__MAX_RESPONSE_BYTES", "0", "smp_client.max_response_bytes: must be at least 1"),
    ("PEPPOL_AP_SMP_CLIENT__CACHE_MINUTES", "-1", "smp_client.cache_minutes: must be at least 0, got -1"),
    ("PEPPOL_AP_AS4__SPILL_THRESHOLD_BYTES", "-1", "as4.spill_threshold_bytes: must be at least 0, got -1"),
    ("PEPPOL_AP_AS4__MAX_MESSAGE_BYTES", "0", "as4.max_message_bytes: must be at least 1, got 0"),
    ("PEPPOL_AP_AS4__MAX_COMPRESSION_RATIO", "inf", "as4.max_compression_ratio: "),
    ("PEPPOL_AP_REVOCATION__SOFT_FAIL", "maybe", "revocation.soft_fail: expected true or false, got 'maybe'"),
    ("PEPPOL_AP_REVOCATION__ORDER", "crl,ldap", "revocation.order[1]: must be one of 'crl' or 'ocsp', got 'ldap'"),
    ("PEPPOL_AP_REVOCATION__ORDER", "crl,crl", "revocation.order: lists a method twice: ['crl', 'crl']"),
    ("PEPPOL_AP_REVOCATION__ORDER", "", "revocation.order: must not be empty"),
    ("PEPPOL_AP_LOG__FORMAT", "xml", "log.format: must be one of 'json' or 'text', got 'xml'"),
    ("PEPPOL_AP_LOG__LEVEL", "chatty", "log.level: must be one of 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    ("PEPPOL_AP_SERVER__PUBLIC_URL", "ap.example", "server.public_url: 'ap.example' is not an http(s) URL"),
    ("PEPPOL_AP_SERVER__PUBLIC_URL", "ftp://ap.example", "server.public_url: 'ftp://ap.example' is not an http(s) URL"),
    ("PEPPOL_AP_SML__MANAGEMENT_URL", "https://", "sml.management_url: 'https://' is not an http(s) URL"),
    ("PEPPOL_AP_DIRECTORY__URL", "directory", "directory.url: 'directory' is not an http(s) URL"),
    ("PEPPOL_AP_DATABASE__URL", "gateway.db", "database.url: not a SQLAlchemy database URL"),
    ("PEPPOL_AP_SML__PHYSICAL_ADDRESS", "smp.example", "sml.physical_address: 'smp.example' is not an IPv4 address"),
    ("PEPPOL_AP_STORAGE__DATA_DIR", "", "storage.data_dir: must not be empty"),
    ("PEPPOL_AP_ENVIRONMENT", "staging", "environment: must be one of 'local', 'test' or 'production', got 'staging'"),
])
def test_each_rule_names_the_key_and_the_variable(tmp_path: Path, variable: str, value: str, line: str) -> None:
    [reported] = problems(tmp_path, env={variable: value})
    assert reported.startswith(line)
    assert reported.endswith(f"(in {variable})")


def test_values_in_a_file_are_typed_strictly(tmp_path: Path) -> None:
    text = "[server]\nport = true\n[sending]\nbatch_size = 1.5\n[revocation]\nsoft_fail = 1\n"
    path = tmp_path / "gateway.toml"
    assert problems(tmp_path, text) == [
        f"server.port: expected int, got True (in {path})",
        f"revocation.soft_fail: expected true or false, got 1 (in {path})",
        f"sending.batch_size: expected int, got 1.5 (in {path})",
    ]


@pytest.mark.parametrize(("text", "value"), [("true", True), ("yes", True), ("1", True), ("TRUE", True),
                                             ("false", False), ("no", False), ("0", False)])
def test_booleans_from_environment_variables(text: str, value: bool) -> None:
    assert load_config(None, {"PEPPOL_AP_REVOCATION__SOFT_FAIL": text}).revocation.soft_fail is value


def test_several_problems_are_reported_together_one_line_each(tmp_path: Path) -> None:
    text = "[server]\nport = 0\n[smp_client]\ntimeout_seconds = -3\n"
    path = tmp_path / "gateway.toml"
    env = {"PEPPOL_AP_SENDING__BATCH_SIZE": "0", "PEPPOL_AP_SERVER__PROT": "1", "PEPPOL_AP_LOG__FORMAT": "xml",
           "PEPPOL_AP_SENDING__LEASE_SECONDS": "10", "PEPPOL_AP_SENDING__RETRY_MAX_SECONDS": "1",
           "PEPPOL_AP_SENDING__RETRY_INITIAL_SECONDS": "5"}
    assert problems(tmp_path, text, env) == [
        f"server.port: must be between 1 and 65535, got 0 (in {path})",
        "server.prot: unknown key (in PEPPOL_AP_SERVER__PROT)",
        f"smp_client.timeout_seconds: must be greater than 0, got -3 (in {path})",
        "sending.batch_size: must be at least 1, got 0 (in PEPPOL_AP_SENDING__BATCH_SIZE)",
        "log.format: must be one of 'json' or 'text', got 'xml' (in PEPPOL_AP_LOG__FORMAT)",
    ]
    # the rules between keys of one section are all reported too, once its keys are valid each
    assert problems(tmp_path, env={k: v for k, v in env.items() if k.startswith("PEPPOL_AP_SENDING__")
                                   and "BATCH" not in k}) == [
        "sending.retry_max_seconds: must not be smaller than sending.retry_initial_seconds "
        "(in PEPPOL_AP_SENDING__RETRY_MAX_SECONDS)",
        "sending.lease_seconds: must exceed connect_timeout_seconds + response_timeout_seconds, or another worker "
        "takes a message over while it is still being sent (in PEPPOL_AP_SENDING__LEASE_SECONDS)",
    ]


def test_rules_of_the_environment_are_reported_together(tmp_path: Path, vectors: Path) -> None:
    ca = vectors / "smp/generated/pki/test-ap-ca.cert.pem"
    env = {"PEPPOL_AP_ENVIRONMENT": "production", "PEPPOL_AP_TRUST__AP_CA": str(ca),
           "PEPPOL_AP_TRUST__SMP_CA": str(ca), "PEPPOL_AP_SML__MANAGEMENT_URL": "http://sml.example"}
    assert problems(tmp_path, env=env) == [
        "trust.ap_ca: only allowed in the local environment (in PEPPOL_AP_TRUST__AP_CA)",
        "trust.smp_ca: only allowed in the local environment (in PEPPOL_AP_TRUST__SMP_CA)",
        # the default is not where the problem was made: no origin
        "keystore.pkcs12: required in the production environment (or keystore.key + keystore.certificate)",
        "sml.management_url: must be an https URL in the production environment (our SMP certificate "
        "authenticates us over TLS) (in PEPPOL_AP_SML__MANAGEMENT_URL)",
    ]


def test_keystore_forms(tmp_path: Path, vectors: Path) -> None:
    keys = vectors / "as4/keys"
    p12, key = keys / "peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12", keys / "dummy-ph-as4.key.pem"
    assert problems(tmp_path, env={"PEPPOL_AP_SMP_KEYSTORE__PKCS12": str(p12),
                                   "PEPPOL_AP_SMP_KEYSTORE__KEY": str(key)}) == [
        "smp_keystore.pkcs12: set either pkcs12 or key + certificate, not both (in PEPPOL_AP_SMP_KEYSTORE__PKCS12)",
        "smp_keystore.certificate: required with key",
    ]
    [line] = problems(tmp_path, env={"PEPPOL_AP_TRUST__SMP_CA": f"{key}, {tmp_path}/gone.pem"})
    assert line == f"trust.smp_ca[1]: file not found: {tmp_path}/gone.pem (in PEPPOL_AP_TRUST__SMP_CA)"


def test_secrets_are_masked_everywhere(tmp_path: Path) -> None:
    env = {"PEPPOL_AP_KEYSTORE__PASSWORD": SECRET, "PEPPOL_AP_SMP_KEYSTORE__PASSWORD": SECRET,
           "PEPPOL_AP_DATABASE__URL": f"postgresql+psycopg://ap:{SECRET}@db.example/ap"}
    cfg = load_config(None, env)
    assert cfg.keystore.password.get_secret_value() == SECRET
    assert SECRET not in repr(cfg) and SECRET not in str(cfg.redacted())
    assert cfg.redacted()["smp_keystore"]["password"] == "***"
    assert cfg.redacted()["database"]["url"] == "postgresql+psycopg://ap:***@db.example/ap"
    assert load_config(None, {}).redacted()["keystore"]["password"] == ""  # unset stays visibly unset
    # in error lines: a secret of the wrong type, a misspelt secret key, a secret next to other problems
    lines = problems(tmp_path, f'[keystore]\npassword = 1234\npasword = "{SECRET}"\n',
                     {"PEPPOL_AP_SMP_KEYSTORE__PASSWORD": SECRET, "PEPPOL_AP_SERVER__PORT": "0"})
    assert lines[:2] == ["server.port: must be between 1 and 65535, got 0 (in PEPPOL_AP_SERVER__PORT)",
                         f"keystore.password: expected a string, got *** (in {tmp_path / 'gateway.toml'})"]
    assert lines[2].startswith("keystore.pasword: unknown key")
    assert SECRET not in "\n".join(lines) and "1234" not in "\n".join(lines)


def test_environment_variable_nesting(tmp_path: Path) -> None:
    cfg = load_config(None, {"PEPPOL_AP_ENVIRONMENT": "local", "PEPPOL_AP_SML__ZONE": "zone.example",
                             "PEPPOL_AP_CONFIG": "", "OTHER_SERVER__PORT": "1"})
    assert (cfg.environment, cfg.sml_zone) == ("local", "zone.example")
    assert problems(tmp_path, env={"PEPPOL_AP_SERVER__TLS__PORT": "1", "PEPPOL_AP_SEVRER__PORT": "1",
                                   "PEPPOL_AP_SERVER": "1", "PEPPOL_AP_PORT": "1"}) == [
        "PEPPOL_AP_SERVER__TLS__PORT: unknown setting (use PEPPOL_AP_<KEY> or PEPPOL_AP_<SECTION>__<KEY>)",
        "server: must be a table, got '1' (in PEPPOL_AP_SERVER)",
        "port: unknown key (in PEPPOL_AP_PORT)",
        "sevrer: unknown key (in PEPPOL_AP_SEVRER__PORT)",
    ]


def test_settings_are_frozen() -> None:
    cfg = load_config(None, {})
    with pytest.raises(ValidationError):
        cfg.server.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.environment = "production"  # type: ignore[misc]


def test_conf_default_toml_is_the_one_source_of_defaults() -> None:
    # the models declare no defaults, so every key must come from conf/default.toml ...
    for name, section in Config.model_fields.items():
        assert section.is_required(), name
        model = section.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            assert all(field.is_required() for field in model.model_fields.values()), name
    # ... and the defaults load as written there
    with DEFAULT_FILE.open("rb") as fh:
        assert load_config(None, {}).redacted() == tomllib.load(fh)


def test_config_check_prints_every_problem_and_fails(tmp_path: Path) -> None:
    env = {"PEPPOL_AP_SERVER__PORT": "0", "PEPPOL_AP_SENDING__BATCH_SIZE": "0",
           "PEPPOL_AP_KEYSTORE__PASSWORD": SECRET, "PEPPOL_AP_KEYSTORE__PKCS12": str(tmp_path / "ap.p12")}
    result = CliRunner().invoke(cli, ["config", "check"], env=env)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "peppol-ap: configuration error: server.port: must be between 1 and 65535, got 0 (in PEPPOL_AP_SERVER__PORT)",
        f"peppol-ap: configuration error: keystore.pkcs12: file not found: {tmp_path / 'ap.p12'} "
        "(in PEPPOL_AP_KEYSTORE__PKCS12)",
        "peppol-ap: configuration error: sending.batch_size: must be at least 1, got 0 "
        "(in PEPPOL_AP_SENDING__BATCH_SIZE)",
    ]
    assert SECRET not in result.output


def test_config_check_and_show_of_a_good_configuration(tmp_path: Path) -> None:
    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path), "PEPPOL_AP_SMP_KEYSTORE__PASSWORD": SECRET}
    check = CliRunner().invoke(cli, ["config", "check"], env=env)
    assert check.exit_code == 0, check.output
    assert check.stdout.splitlines()[-1] == "configuration OK"
    show = CliRunner().invoke(cli, ["config", "show"], env=env)
    assert show.exit_code == 0
    assert json.loads(show.stdout)["smp_keystore"]["password"] == "***"
    assert SECRET not in show.output
