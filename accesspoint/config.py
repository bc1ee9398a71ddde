"""Configuration: conf/default.toml, an optional file named by PEPPOL_AP_CONFIG, then environment
variables. Validated at start-up; every problem is one line naming the key, never a secret's value.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from certs.anchors import ENVIRONMENTS, TrustAnchors, peppol_anchors
from certs.fetch import http_fetch
from certs.keystore import KeyMaterial, KeystoreError, load_certificates, load_pem, load_pkcs12
from certs.revocation import RevocationChecker
from certs.validation import CertificateValidator
from smp.lookup import SML_ZONES

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "conf" / "default.toml"
ENV_PREFIX = "PEPPOL_AP_"
SECRET_KEYS = {("keystore", "password"), ("smp_keystore", "password")}


class ConfigError(ValueError):
    """A configuration problem, as one line: the key, then what is wrong."""


def _merge(base: dict[str, Any], override: Mapping[str, Any], where: str, origin: str) -> None:
    for key, value in override.items():
        name = f"{where}.{key}" if where else key
        if key not in base:
            raise ConfigError(f"{name}: unknown key (in {origin})")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name}: must be a table (in {origin})")
            _merge(base[key], value, name, origin)
        else:
            base[key] = _coerce(name, base[key], value, origin)


def _coerce(name: str, default: Any, value: Any, origin: str) -> Any:
    expected = type(default)
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif expected is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif expected is list:
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
    elif expected is str:
        if isinstance(value, str):
            return value
    shown = "***" if name.endswith("password") else repr(value)
    raise ConfigError(f"{name}: expected {expected.__name__}, got {shown} (in {origin})")


def _env_overrides(environ: Mapping[str, str], defaults: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX) or var == ENV_PREFIX + "CONFIG":
            continue
        path = var[len(ENV_PREFIX):].lower().split("__")
        if len(path) == 1:
            if path[0] not in defaults or isinstance(defaults[path[0]], dict):
                raise ConfigError(f"{var}: unknown setting (top-level keys: use PEPPOL_AP_<KEY>)")
            result[path[0]] = value
        elif len(path) == 2:
            section, key = path
            if not isinstance(defaults.get(section), dict) or key not in defaults[section]:
                raise ConfigError(f"{var}: unknown setting {section}.{key}")
            result.setdefault(section, {})[key] = value
        else:
            raise ConfigError(f"{var}: unknown setting (use PEPPOL_AP_<SECTION>__<KEY>)")
    return result


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"PEPPOL_AP_CONFIG: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


@dataclass(frozen=True)
class Config:
    """Validated settings. Sections are attribute namespaces: cfg.server.port, cfg.keystore.pkcs12."""

    data: dict[str, Any]
    sources: tuple[str, ...]

    def __getattr__(self, name: str) -> Any:
        try:
            value = self.data[name]
        except KeyError:
            raise AttributeError(name) from None
        return SimpleNamespace(**value) if isinstance(value, dict) else value

    @property
    def data_dir(self) -> Path:
        return Path(self.data["storage"]["data_dir"]).resolve()

    @property
    def database_url(self) -> str:
        return self.data["database"]["url"] or f"sqlite:///{self.data_dir / 'gateway.db'}"

    @property
    def public_url(self) -> str:
        server = self.data["server"]
        return (server["public_url"] or f"http://{server['host']}:{server['port']}").rstrip("/")

    @property
    def sml_zone(self) -> str:
        return self.data["sml"]["zone"] or SML_ZONES[self.data["environment"]]

    def redacted(self) -> dict[str, Any]:
        """The settings with secrets replaced, for logs and `peppol-ap config show`."""
        out = {k: dict(v) if isinstance(v, dict) else v for k, v in self.data.items()}
        for section, key in SECRET_KEYS:
            if out[section][key]:
                out[section][key] = "***"
        return out


@dataclass(frozen=True)
class SendingSettings:
    """The [sending] section of the configuration, checked."""

    connect_timeout: float = 5.0
    response_timeout: float = 120.0
    retry_initial: float = 60.0
    retry_max: float = 3600.0
    deadline: timedelta = timedelta(hours=24)
    breaker_failures: int = 5
    breaker_open: float = 60.0
    batch_size: int = 10
    lease: timedelta = timedelta(seconds=300)

    @classmethod
    def from_config(cls, cfg: Config) -> SendingSettings:
        s = cfg.data["sending"]
        for key in ("connect_timeout_seconds", "response_timeout_seconds", "retry_initial_seconds",
                    "retry_max_seconds", "deadline_hours", "circuit_breaker_failures",
                    "circuit_breaker_open_seconds", "batch_size", "lease_seconds"):
            if s[key] <= 0:
                raise ConfigError(f"sending.{key}: must be greater than 0, got {s[key]}")
        if s["retry_max_seconds"] < s["retry_initial_seconds"]:
            raise ConfigError("sending.retry_max_seconds: must not be smaller than sending.retry_initial_seconds")
        if s["lease_seconds"] <= s["connect_timeout_seconds"] + s["response_timeout_seconds"]:
            raise ConfigError("sending.lease_seconds: must exceed connect_timeout_seconds + response_timeout_seconds, "
                              "or another worker takes a message over while it is still being sent")
        return cls(
            connect_timeout=float(s["connect_timeout_seconds"]), response_timeout=float(s["response_timeout_seconds"]),
            retry_initial=float(s["retry_initial_seconds"]), retry_max=float(s["retry_max_seconds"]),
            deadline=timedelta(hours=s["deadline_hours"]), breaker_failures=int(s["circuit_breaker_failures"]),
            breaker_open=float(s["circuit_breaker_open_seconds"]), batch_size=int(s["batch_size"]),
            lease=timedelta(seconds=s["lease_seconds"]),
        )


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the configuration (without touching key material; see `key_material`)."""
    environ = os.environ if environ is None else environ
    data = _read_toml(DEFAULT_FILE)
    sources = [str(DEFAULT_FILE)]
    chosen = path or environ.get(ENV_PREFIX + "CONFIG")
    if chosen:
        _merge(data, _read_toml(Path(chosen)), "", str(chosen))
        sources.append(str(chosen))
    _merge(data, _env_overrides(environ, data), "", "environment")
    config = Config(data, tuple(sources))
    _validate(config)
    SendingSettings.from_config(config)
    return config


def _validate(cfg: Config) -> None:
    d = cfg.data
    if d["environment"] not in ENVIRONMENTS:
        raise ConfigError(f"environment: must be one of {', '.join(ENVIRONMENTS)}, got {d['environment']!r}")
    if not 0 < d["server"]["port"] < 65536:
        raise ConfigError(f"server.port: must be 1-65535, got {d['server']['port']}")
    order = d["revocation"]["order"]
    if not order or any(m not in ("crl", "ocsp") for m in order) or len(set(order)) != len(order):
        raise ConfigError(f"revocation.order: must list 'crl' and/or 'ocsp' once each, got {order!r}")
    if not 0 < d["revocation"]["cache_hours"] <= 6:
        raise ConfigError("revocation.cache_hours: must be between 1 and 6")
    for key in ("orphan_grace_minutes", "orphan_sweep_minutes"):
        if d["storage"][key] < 1:
            raise ConfigError(f"storage.{key}: must be at least 1 minute, got {d['storage'][key]}")
    if d["as4"]["max_header_bytes"] < 1024:
        raise ConfigError(f"as4.max_header_bytes: must be at least 1024 bytes, got {d['as4']['max_header_bytes']}")
    if d["log"]["format"] not in ("json", "text"):
        raise ConfigError(f"log.format: must be 'json' or 'text', got {d['log']['format']!r}")
    if d["log"]["level"].upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log.level: must be DEBUG, INFO, WARNING or ERROR, got {d['log']['level']!r}")
    if d["environment"] != "local" and (d["trust"]["ap_ca"] or d["trust"]["smp_ca"]):
        raise ConfigError("trust.ap_ca/trust.smp_ca: only allowed in the local environment")
    for section in ("keystore", "smp_keystore"):
        ks = d[section]
        if ks["pkcs12"] and (ks["key"] or ks["certificate"]):
            raise ConfigError(f"{section}: set either {section}.pkcs12 or {section}.key + {section}.certificate")
        if bool(ks["key"]) != bool(ks["certificate"]):
            raise ConfigError(f"{section}: {section}.key and {section}.certificate go together")
        for key in ("pkcs12", "key", "certificate", "chain"):
            if ks[key] and not Path(ks[key]).is_file():
                raise ConfigError(f"{section}.{key}: file not found: {ks[key]}")
    if d["environment"] != "local" and not (d["keystore"]["pkcs12"] or d["keystore"]["key"]):
        raise ConfigError(f"keystore.pkcs12: required in the {d['environment']} environment")
    for key in ("ap_ca", "smp_ca"):
        for value in d["trust"][key]:
            if not Path(value).is_file():
                raise ConfigError(f"trust.{key}: file not found: {value}")


def key_material(cfg: Config, section: str = "keystore") -> KeyMaterial:
    """Our AP key material (or, with section="smp_keystore", our SMP key material), checked: it opens, the key
    matches the certificate, the certificate is not expired. The local environment falls back to the dev PKI."""
    ks = cfg.data[section]
    try:
        if ks["pkcs12"]:
            where = f"{section}.pkcs12"
            material = load_pkcs12(ks["pkcs12"], ks["password"])
        elif ks["key"]:
            where = f"{section}.key"
            material = load_pem(ks["key"], ks["certificate"], ks["chain"] or None, ks["password"] or None)
        else:
            from certs.devpki import ensure_dev_pki

            where = "storage.data_dir (dev PKI)"
            pki = ensure_dev_pki(cfg.data_dir / "pki")
            material = load_pkcs12(pki.ap_p12 if section == "keystore" else pki.smp_p12, pki.password)
        material.check_usable()
    except KeystoreError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return material


def smp_key_material(cfg: Config) -> KeyMaterial | None:
    """Our SMP key material, or None when no SMP key is configured outside the local environment."""
    ks = cfg.data["smp_keystore"]
    if cfg.data["environment"] != "local" and not (ks["pkcs12"] or ks["key"]):
        return None
    return key_material(cfg, "smp_keystore")


def trust_anchors(cfg: Config) -> TrustAnchors:
    """The anchors of the configured environment; local = dev PKI plus trust.* extras."""
    env = cfg.data["environment"]
    if env != "local":
        return peppol_anchors(env)
    from certs.devpki import ensure_dev_pki

    pki = ensure_dev_pki(cfg.data_dir / "pki")
    extra_ap = [c for f in cfg.data["trust"]["ap_ca"] for c in load_certificates(f)]
    extra_smp = [c for f in cfg.data["trust"]["smp_ca"] for c in load_certificates(f)]
    return TrustAnchors(
        environment="local",
        roots=tuple(load_certificates(pki.root_ca)),
        ap_cas=tuple(load_certificates(pki.ap_ca)) + tuple(extra_ap),
        smp_cas=tuple(load_certificates(pki.smp_ca)) + tuple(extra_smp),
    )


def revocation_checker(cfg: Config, environment: str | None = None) -> RevocationChecker | None:
    """The configured revocation checker for `environment` (default: the configured one); None in the local
    environment, whose dev PKI publishes no CRL or OCSP service (its certificates would all be
    `revocation-unknown` under hard fail)."""
    if (environment or cfg.data["environment"]) == "local":
        return None
    rev = cfg.data["revocation"]
    return RevocationChecker(
        http_fetch,
        order=tuple(rev["order"]),
        cache_seconds=rev["cache_hours"] * 3600,
        soft_fail=rev["soft_fail"],
        grace_seconds=rev["soft_fail_grace_hours"] * 3600,
        timeout=float(rev["timeout_seconds"]),
    )


def certificate_validator(cfg: Config, anchors: TrustAnchors | None = None) -> CertificateValidator:
    """Validator for peer AP and SMP certificates of the configured environment."""
    return CertificateValidator(anchors or trust_anchors(cfg), revocation_checker(cfg))
