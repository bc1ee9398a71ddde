"""Configuration: typed, frozen settings, validated once at start-up.

Three layers, the later one wins: conf/default.toml, an optional file named by PEPPOL_AP_CONFIG (or --config), then
environment variables, PEPPOL_AP_<KEY> for top-level keys and PEPPOL_AP_<SECTION>__<KEY> for keys in a section.

conf/default.toml is the one source of defaults: it lists every key with its default and what it means. The models
here declare no defaults, only types, ranges and the rules between keys, so a key can neither have two defaults nor
be missing from the documented file (the loader reports it). Each table is a frozen pydantic model that refuses
unknown keys. `load_config` reports every problem at once, one line each naming the key and the layer that set it
(values from conf/default.toml name none), and never shows a secret's value.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from base.egress import EgressPolicy, parse_allow
from certs.anchors import Environment, TrustAnchors, peppol_anchors
from certs.devpki import DevPki, ensure_dev_pki
from certs.fetch import http_fetcher
from certs.keystore import KeyMaterial, KeystoreError, load_certificates, load_pem, load_pkcs12
from certs.revocation import RevocationChecker
from certs.validation import CertificateValidator
from smp.lookup import SML_ZONES

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "conf" / "default.toml"
ENV_PREFIX = "PEPPOL_AP_"
# where a key sits: ("server", "port")
KeyPath = tuple[str, ...]


class ConfigError(ValueError):
    """Configuration problems, one line each: the key, then what is wrong."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- value types ------------------------------------------------------------------------------------------------
# Environment variables are text while TOML values are typed already. Text that reads as the wanted type is
# converted; anything else reaches the strict check unchanged and is refused there, so a TOML `true` is no port
# and 1.5 no batch size.

_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _int_from_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return value


def _float_from_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _bool_from_text(value: Any) -> Any:
    return _BOOL_WORDS.get(value.strip().lower(), value) if isinstance(value, str) else value


def _list_from_text(value: Any) -> Any:
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


def _existing_file(value: str) -> str:
    if value and not Path(value).is_file():
        raise PydanticCustomError("file_not_found", "file not found: {path}", {"path": value})
    return value


_HTTP_URL = TypeAdapter(HttpUrl)


def _http_url(value: str) -> str:
    """Checked by pydantic's HttpUrl (scheme http or https, a host) but kept as written, without a trailing
    slash, since callers append paths."""
    value = value.strip()
    if value:
        try:
            _HTTP_URL.validate_python(value)
        except ValidationError:
            raise PydanticCustomError("http_url", "{value} is not an http(s) URL", {"value": repr(value)}) from None
    return value.rstrip("/")


def _database_url(value: str) -> str:
    if value:
        try:
            make_url(value)
        except ArgumentError:
            # the value may hold the database password: not shown
            raise PydanticCustomError("database_url", "not a SQLAlchemy database URL (dialect+driver://...)") from None
    return value


def _without_password(value: str) -> str:
    return make_url(value).render_as_string(hide_password=True) if value else value


def _ipv4_address(value: str) -> str:
    if value:
        try:
            IPv4Address(value)
        except ValueError:
            raise PydanticCustomError("ipv4", "{value} is not an IPv4 address", {"value": repr(value)}) from None
    return value


def _egress_allow(values: list[str]) -> list[str]:
    try:
        parse_allow(values)
    except ValueError as exc:
        raise PydanticCustomError("rule", "{message}", {"message": str(exc)}) from None
    return values


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _listed_once(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise PydanticCustomError("duplicate", "lists a method twice: {values}", {"values": repr(values)})
    return values


Int = Annotated[int, BeforeValidator(_int_from_text), Strict()]
Float = Annotated[float, BeforeValidator(_float_from_text), Strict(), AllowInfNan(False)]
Bool = Annotated[bool, BeforeValidator(_bool_from_text), Strict()]
Texts = Annotated[list[str], BeforeValidator(_list_from_text)]
Port = Annotated[Int, Field(ge=1, le=65535)]
Count = Annotated[Int, Field(ge=1)]
Minutes = Annotated[Int, Field(ge=0)]
Positive = Annotated[Float, Field(gt=0)]
# "" means unset wherever the default is ""
OptionalFile = Annotated[str, AfterValidator(_existing_file)]
HttpUrlOrUnset = Annotated[str, AfterValidator(_http_url)]
# the JSON form of the settings (config show, redacted) is the one that may be shared: secrets are masked there
Secret = Annotated[SecretStr, PlainSerializer(lambda s: "***" if s.get_secret_value() else "", when_used="json")]
DatabaseUrl = Annotated[str, AfterValidator(_database_url), PlainSerializer(_without_password, when_used="json")]


def _raise_all(title: str, problems: list[tuple[KeyPath, str]]) -> None:
    """Raise every failed rule between keys of one model at once, each at the key it blames."""
    if problems:
        raise ValidationError.from_exception_data(title, [
            InitErrorDetails(type=PydanticCustomError("rule", "{message}", {"message": message}), loc=loc, input=None)
            for loc, message in problems
        ])


# --- sections (the tables of conf/default.toml) -----------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSection(_Section):
    host: Annotated[str, Field(min_length=1)]
    port: Port
    public_url: HttpUrlOrUnset
    workers: Annotated[Int, Field(ge=0, le=64)]
    threads: Annotated[Int, Field(ge=1, le=256)]
    read_timeout_seconds: Positive
    body_timeout_seconds: Positive

    @property
    def worker_processes(self) -> int:
        return self.workers or os.cpu_count() or 1


class HealthSection(_Section):
    worker_stale_seconds: Positive
    queue_stuck_seconds: Positive
    certificate_warning_days: Annotated[Int, Field(ge=0)]


class StorageSection(_Section):
    data_dir: Annotated[str, Field(min_length=1)]
    orphan_grace_minutes: Count
    orphan_sweep_minutes: Count


class DatabaseSection(_Section):
    url: DatabaseUrl

    def __repr_args__(self) -> Iterator[tuple[str, Any]]:
        # a PostgreSQL URL may carry the password; a repr ends up in logs and tracebacks
        yield "url", _without_password(self.url)


class KeystoreSection(_Section):
    """[keystore] and [smp_keystore]: a PKCS#12 file, or PEM key + certificate (+ chain), or nothing (dev PKI)."""

    pkcs12: OptionalFile
    password: Secret
    key: OptionalFile
    certificate: OptionalFile
    chain: OptionalFile

    @property
    def configured(self) -> bool:
        return bool(self.pkcs12 or self.key)

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        problems: list[tuple[KeyPath, str]] = []
        if self.pkcs12 and (self.key or self.certificate):
            problems.append((("pkcs12",), "set either pkcs12 or key + certificate, not both"))
        if self.key and not self.certificate:
            problems.append((("certificate",), "required with key"))
        if self.certificate and not self.key:
            problems.append((("key",), "required with certificate"))
        _raise_all("keystore", problems)
        return self


class TrustSection(_Section):
    ap_ca: Annotated[list[Annotated[str, AfterValidator(_existing_file), Field(min_length=1)]],
                     BeforeValidator(_list_from_text)]
    smp_ca: Annotated[list[Annotated[str, AfterValidator(_existing_file), Field(min_length=1)]],
                      BeforeValidator(_list_from_text)]


class RevocationSection(_Section):
    order: Annotated[list[Literal["crl", "ocsp"]], BeforeValidator(_list_from_text), Field(min_length=1),
                     AfterValidator(_listed_once)]
    # a revocation answer older than 6 hours is not good enough for Peppol
    cache_hours: Annotated[Int, Field(ge=1, le=6)]
    soft_fail: Bool
    soft_fail_grace_hours: Annotated[Int, Field(ge=0)]
    timeout_seconds: Positive


class SmlSection(_Section):
    zone: str
    dns_servers: Texts
    timeout_seconds: Positive
    management_url: HttpUrlOrUnset
    smp_id: str
    physical_address: Annotated[str, AfterValidator(_ipv4_address)]


class LocalSmlSection(_Section):
    port: Port
    dns_port: Port
    store: str


class DirectorySection(_Section):
    url: HttpUrlOrUnset


class SmpClientSection(_Section):
    cache_minutes: Minutes
    negative_cache_minutes: Minutes
    timeout_seconds: Positive
    max_response_bytes: Count


class As4Section(_Section):
    """Field names are those of accesspoint.core.InboundLimits: `InboundLimits(**as4.model_dump())`."""

    max_message_bytes: Count
    spill_threshold_bytes: Annotated[Int, Field(ge=0)]
    max_payload_bytes: Count
    max_compression_ratio: Annotated[Float, Field(ge=1)]
    # below this not even a real Peppol header (a few kB) fits
    max_header_bytes: Annotated[Int, Field(ge=1024)]
    timestamp_clock_skew_seconds: Annotated[Int, Field(ge=0, le=3600)]


class SendingSection(_Section):
    connect_timeout_seconds: Positive
    response_timeout_seconds: Positive
    retry_initial_seconds: Positive
    retry_max_seconds: Positive
    deadline_hours: Positive
    circuit_breaker_failures: Count
    circuit_breaker_open_seconds: Positive
    batch_size: Count
    lease_seconds: Positive

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[KeyPath, str]] = []
        if self.retry_max_seconds < self.retry_initial_seconds:
            problems.append((("retry_max_seconds",), "must not be smaller than sending.retry_initial_seconds"))
        if self.lease_seconds <= self.connect_timeout_seconds + self.response_timeout_seconds:
            problems.append((("lease_seconds",), "must exceed connect_timeout_seconds + response_timeout_seconds, "
                             "or another worker takes a message over while it is still being sent"))
        _raise_all("sending", problems)
        return self


Days = Annotated[Int, Field(ge=1)]


class RetentionSection(_Section):
    enabled: Bool
    dry_run: Bool
    interval_minutes: Count
    batch_size: Count
    inbound_acked_payload_days: Days
    outbound_sent_payload_days: Days
    outbound_failed_payload_days: Days
    duplicate_window_days: Days
    metadata_days: Days

    @model_validator(mode="after")
    def _metadata_outlives_payloads(self) -> Self:
        # a message's row is what says its payload was removed, and the duplicate checks read it
        problems: list[tuple[KeyPath, str]] = []
        for key in ("inbound_acked_payload_days", "outbound_sent_payload_days", "outbound_failed_payload_days",
                    "duplicate_window_days"):
            if self.metadata_days < getattr(self, key):
                problems.append((("metadata_days",), f"must not be smaller than retention.{key}"))
        _raise_all("retention", problems)
        return self


class EgressSection(_Section):
    allow: Annotated[list[str], BeforeValidator(_list_from_text), AfterValidator(_egress_allow)]


class WebhooksSection(_Section):
    max_subscriptions: Count


class ApiSection(_Section):
    max_json_bytes: Count
    # below the parser's own recursion limit (about 1000), which would otherwise answer first
    max_json_depth: Annotated[Int, Field(ge=1, le=500)]


def _clark_name(value: str) -> str:
    if not re.fullmatch(r"\{[^{}\s]+\}[A-Za-z_][\w.\-]*", value):
        raise PydanticCustomError("rule", "must be a root element as {namespace}LocalName, got {value}",
                                  {"value": repr(value)})
    return value


def _file_name(value: str) -> str:
    if value and (Path(value).name != value or value.startswith(".")):
        raise PydanticCustomError("rule", "must be a file name of the rules directory, got {value}",
                                  {"value": repr(value)})
    return value


FileName = Annotated[str, AfterValidator(_file_name)]


class DocumentTypeEntry(_Section):
    """One document type the BIS validation knows: which documents it matches (root element, and a prefix of
    cbc:CustomizationID; empty: any) and which artefacts of a rule release check them, in order."""

    name: Annotated[str, Field(min_length=1)]
    root: Annotated[str, AfterValidator(_clark_name)]
    customization: str
    xsd: FileName
    schematrons: Annotated[list[Annotated[FileName, Field(min_length=1)]], Field(min_length=1)]


class ValidationSection(_Section):
    rules_dir: str
    release: str
    release_dates: dict[str, date]
    document_types: list[DocumentTypeEntry]


class LogSection(_Section):
    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)]
    format: Literal["json", "text"]


class Config(_Section):
    """The validated settings: cfg.server.port, cfg.keystore.pkcs12, ... plus the values derived from them."""

    environment: Environment
    server: ServerSection
    health: HealthSection
    storage: StorageSection
    database: DatabaseSection
    keystore: KeystoreSection
    smp_keystore: KeystoreSection
    trust: TrustSection
    revocation: RevocationSection
    sml: SmlSection
    local_sml: LocalSmlSection
    directory: DirectorySection
    smp_client: SmpClientSection
    as4: As4Section
    sending: SendingSection
    egress: EgressSection
    webhooks: WebhooksSection
    api: ApiSection
    log: LogSection
    retention: RetentionSection
    validation: ValidationSection
    # the files read, for `config check`; not a setting
    _sources: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _fits_environment(self) -> Self:
        problems: list[tuple[KeyPath, str]] = []
        if self.environment != "local":
            # test and production trust the shipped Peppol CAs only
            problems += [(("trust", key), "only allowed in the local environment")
                         for key in ("ap_ca", "smp_ca") if getattr(self.trust, key)]
            if not self.keystore.configured:
                problems.append((("keystore", "pkcs12"), f"required in the {self.environment} environment "
                                 "(or keystore.key + keystore.certificate)"))
            # the SML and the Directory know our SMP only by its certificate, presented over TLS
            for loc, url in ((("sml", "management_url"), self.sml.management_url),
                             (("directory", "url"), self.directory.url)):
                if url and urlsplit(url).scheme.lower() != "https":
                    problems.append((loc, f"must be an https URL in the {self.environment} environment "
                                          "(our SMP certificate authenticates us over TLS)"))
        _raise_all("config", problems)
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        return self._sources

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir).resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'gateway.db'}"

    @property
    def public_url(self) -> str:
        return self.server.public_url or f"http://{self.server.host}:{self.server.port}"

    @property
    def sml_zone(self) -> str:
        return self.sml.zone or SML_ZONES[self.environment]

    @property
    def sml_management_url(self) -> str:
        """The SML our SMP registers in: the configured one; in the local environment without one, the local SML
        that `peppol-ap run` starts (so that a command typed in another terminal registers where the running
        gateway does); else none."""
        if self.sml.management_url or self.environment != "local":
            return self.sml.management_url
        return f"http://127.0.0.1:{self.local_sml.port}"

    @property
    def dns_servers(self) -> list[str]:
        """The DNS servers SML lookups ask: the configured ones; in the local environment without any, the local
        SML's (its zone exists nowhere else, and asking the system resolver would leak the lookups); else none
        (the system resolver)."""
        if self.sml.dns_servers or self.environment != "local":
            return list(self.sml.dns_servers)
        return [f"127.0.0.1:{self.local_sml.dns_port}"]

    @property
    def rules_dir(self) -> Path:
        """Where `peppol-ap rules install` puts the official validation artefacts and the validator reads them."""
        return Path(self.validation.rules_dir).resolve() if self.validation.rules_dir else self.data_dir / "rules"

    @property
    def local_sml_store(self) -> Path:
        return Path(self.local_sml.store).resolve() if self.local_sml.store else \
            self.data_dir / "localsml" / "zone.sqlite"

    def redacted(self) -> dict[str, Any]:
        """The settings with secrets masked, for logs and `peppol-ap config show`."""
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class SendingSettings:
    """The [sending] section in the units the sending pipeline works in (the section itself is checked by
    SendingSection when the configuration is loaded)."""

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
        s = cfg.sending
        return cls(
            connect_timeout=s.connect_timeout_seconds, response_timeout=s.response_timeout_seconds,
            retry_initial=s.retry_initial_seconds, retry_max=s.retry_max_seconds,
            deadline=timedelta(hours=s.deadline_hours), breaker_failures=s.circuit_breaker_failures,
            breaker_open=s.circuit_breaker_open_seconds, batch_size=s.batch_size,
            lease=timedelta(seconds=s.lease_seconds),
        )


# --- loading ----------------------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"PEPPOL_AP_CONFIG: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _merge(base: dict[str, Any], layer: Mapping[str, Any], origin: str, origins: dict[KeyPath, str],
           where: KeyPath = ()) -> None:
    """Lay `layer` over `base`, table by table, noting which layer set each key."""
    for key, value in layer.items():
        path = (*where, key)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origin, origins, path)
        else:
            base[key] = value
            origins[path] = origin


def _environment_layers(environ: Mapping[str, str]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """One layer per PEPPOL_AP_ variable (so each key remembers its variable), and the variables that fit no key."""
    layers: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    for var, value in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var == ENV_PREFIX + "CONFIG":
            continue
        path = var[len(ENV_PREFIX):].lower().split("__")
        if len(path) == 1:
            layers.append((var, {path[0]: value}))
        elif len(path) == 2:
            layers.append((var, {path[0]: {path[1]: value}}))
        else:
            problems.append(f"{var}: unknown setting (use PEPPOL_AP_<KEY> or PEPPOL_AP_<SECTION>__<KEY>)")
    return layers, problems


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the configuration (without touching key material; see `key_material`). Raises
    ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    data = _read_toml(DEFAULT_FILE)
    sources = [str(DEFAULT_FILE)]
    origins: dict[KeyPath, str] = {}
    chosen = path or environ.get(ENV_PREFIX + "CONFIG")
    if chosen:
        _merge(data, _read_toml(Path(chosen)), str(chosen), origins)
        sources.append(str(chosen))
    layers, problems = _environment_layers(environ)
    for var, layer in layers:
        _merge(data, layer, var, origins)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems += [_describe(error, origins) for error in exc.errors()]
    if problems:
        raise ConfigError(*problems)
    config._sources = tuple(sources)
    return config


# --- problem lines ----------------------------------------------------------------------------------------------

_EXPECTED = {
    "int_type": "int", "int_parsing": "int", "int_from_float": "int", "float_type": "a number",
    "float_parsing": "a number", "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list",
}
# the error types of our own checks: they word their message and never include a secret
_OWN = {"file_not_found", "http_url", "database_url", "ipv4", "duplicate", "rule"}


def _field(loc: tuple[str | int, ...]) -> FieldInfo | None:
    """The declaration of the key at `loc` (list positions belong to their list's key)."""
    model: Any = Config
    info = None
    for part in loc:
        if isinstance(part, int):
            break
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        model = info.annotation
    return info


def _bound(info: FieldInfo | None, name: str) -> Any:
    return next((getattr(m, name) for m in (info.metadata if info else ()) if hasattr(m, name)), None)


def _message(error: ErrorDetails, info: FieldInfo | None) -> str:
    kind = error["type"]
    shown = "***" if info is not None and info.annotation is SecretStr else repr(error["input"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing (conf/default.toml must list every key)"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a table, got {shown}"
    if kind == "literal_error":
        return f"must be one of {error.get('ctx', {}).get('expected')}, got {shown}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        # numbers only: shown as written, also when they came as text from an environment variable
        ge, le, gt, got = _bound(info, "ge"), _bound(info, "le"), _bound(info, "gt"), error["input"]
        if ge is not None and le is not None:
            return f"must be between {ge} and {le}, got {got}"
        if gt is not None:
            return f"must be greater than {gt}, got {got}"
        return f"must be at least {ge}, got {got}" if ge is not None else f"must be at most {le}, got {got}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {shown}"
    if kind in _OWN:
        return error["msg"]
    return f"{error['msg']}, got {shown}"  # pydantic's wording of a rarer check (e.g. finite_number)


def _describe(error: ErrorDetails, origins: Mapping[KeyPath, str]) -> str:
    loc = error["loc"]
    name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    message = _message(error, _field(loc))
    keys = tuple(part for part in loc if isinstance(part, str))
    origin = next((origins[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in origins), None)
    return f"{name}: {message} (in {origin})" if origin else f"{name}: {message}"


# --- key material and trust -------------------------------------------------------------------------------------


def _key_material(cfg: Config, ks: KeystoreSection, section: str, dev_file: Callable[[DevPki], Path]) -> KeyMaterial:
    try:
        if ks.pkcs12:
            where = f"{section}.pkcs12"
            material = load_pkcs12(ks.pkcs12, ks.password.get_secret_value())
        elif ks.key:
            where = f"{section}.key"
            material = load_pem(ks.key, ks.certificate, ks.chain or None, ks.password.get_secret_value() or None)
        else:
            where = "storage.data_dir (dev PKI)"
            pki = ensure_dev_pki(cfg.data_dir / "pki")
            material = load_pkcs12(dev_file(pki), pki.password)
        material.check_usable()
    except KeystoreError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return material


def key_material(cfg: Config) -> KeyMaterial:
    """Our AP key material, checked: it opens, the key matches the certificate, the certificate is not expired.
    The local environment falls back to the dev PKI."""
    return _key_material(cfg, cfg.keystore, "keystore", lambda pki: pki.ap_p12)


def smp_key_material(cfg: Config) -> KeyMaterial | None:
    """Our SMP key material, checked likewise, or None when no SMP key is configured outside the local
    environment."""
    if cfg.environment != "local" and not cfg.smp_keystore.configured:
        return None
    return _key_material(cfg, cfg.smp_keystore, "smp_keystore", lambda pki: pki.smp_p12)


def trust_anchors(cfg: Config) -> TrustAnchors:
    """The anchors of the configured environment; local = dev PKI plus trust.* extras."""
    if cfg.environment != "local":
        return peppol_anchors(cfg.environment)
    pki = ensure_dev_pki(cfg.data_dir / "pki")
    extra_ap = [c for f in cfg.trust.ap_ca for c in load_certificates(f)]
    extra_smp = [c for f in cfg.trust.smp_ca for c in load_certificates(f)]
    return TrustAnchors(
        environment="local",
        roots=tuple(load_certificates(pki.root_ca)),
        ap_cas=tuple(load_certificates(pki.ap_ca)) + tuple(extra_ap),
        smp_cas=tuple(load_certificates(pki.smp_ca)) + tuple(extra_smp),
    )


def egress_policy(cfg: Config, environment: str | None = None) -> EgressPolicy:
    """Where the gateway may connect on someone else's behalf ([egress]) in `environment` (default: the configured
    one); the local environment also permits loopback and plain http."""
    return EgressPolicy.from_settings(cfg.egress.allow, local=(environment or cfg.environment) == "local")


def revocation_checker(cfg: Config, environment: str | None = None) -> RevocationChecker | None:
    """The configured revocation checker for `environment` (default: the configured one); None in the local
    environment, whose dev PKI publishes no CRL or OCSP service (its certificates would all be
    `revocation-unknown` under hard fail)."""
    if (environment or cfg.environment) == "local":
        return None
    rev = cfg.revocation
    return RevocationChecker(
        http_fetcher(egress_policy(cfg, environment)),
        order=tuple(rev.order),
        cache_seconds=rev.cache_hours * 3600,
        soft_fail=rev.soft_fail,
        grace_seconds=rev.soft_fail_grace_hours * 3600,
        timeout=rev.timeout_seconds,
    )


def certificate_validator(cfg: Config, anchors: TrustAnchors | None = None) -> CertificateValidator:
    """Validator for peer AP and SMP certificates of the configured environment."""
    return CertificateValidator(anchors or trust_anchors(cfg), revocation_checker(cfg))
