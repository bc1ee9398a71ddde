"""A local development PKI shaped like the Peppol G3 hierarchy.

One root CA with an AP CA and an SMP CA below it, and leaves shaped like Peppol G3 AP/SMP
certificates (seat-ID CN, critical clientAuth EKU, critical key usage, optional CRL/OCSP URLs).
Used by the `local` environment and by the tests; nothing generated here is ever trusted in
`test` or `production`, and every CA name says so.

Private keys are written unencrypted (dev only). The PKCS#12 files use PBES2/AES-256 with an
HMAC-SHA256 MAC, which Java 17 keytool reads. For a Java peer (e.g. phase4) use ap.p12 as its
keystore (alias "ap") and truststore.p12 as its truststore, or build the truststore yourself:

    keytool -importcert -noprompt -storetype PKCS12 -keystore truststore.p12 -storepass peppol \
            -alias local-dev-ap-ca -file <pki>/ap-ca.pem      (repeat for root-ca.pem and smp-ca.pem)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.anchors import TrustAnchors

Role = Literal["ap", "smp"]

MANIFEST = "pki.json"
DEFAULT_PASSWORD = "peppol"  # noqa: S105 - the documented dev-PKI password, like the Peppol truststores' "peppol"
DEFAULT_KEY_USAGE: tuple[str, ...] = ("digital_signature", "key_encipherment", "data_encipherment")
KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)
# Dev CAs use 2048-bit keys (Peppol's are 4096) so that tests creating several PKIs stay fast on a shared machine.
_KEY_SIZE = 2048
_CA_DAYS = 3650
_CLOCK_SKEW = timedelta(hours=1)
_LOCAL_O = "peppol-ap LOCAL DEV PKI"
_LOCAL_OU = "FOR LOCAL TESTING ONLY"
_LEAF_O = "LOCAL DEV OPERATOR"
_LEAF_OU = {"ap": "PEPPOL TEST AP", "smp": "PEPPOL TEST SMP"}
_CA_CN = {
    "root": "LOCAL DEV PEPPOL ROOT CA",
    "ap": "LOCAL DEV PEPPOL ACCESS POINT CA",
    "smp": "LOCAL DEV PEPPOL SERVICE METADATA PUBLISHER CA",
}


class DevPkiError(RuntimeError):
    """The dev PKI cannot be created or loaded; the message says which file or directory."""


@dataclass(frozen=True)
class DevPki:
    directory: Path
    root_ca: Path
    ap_ca: Path
    smp_ca: Path
    root_ca_key: Path
    ap_ca_key: Path
    smp_ca_key: Path
    ap_p12: Path
    smp_p12: Path
    ap_key: Path
    ap_cert: Path
    smp_key: Path
    smp_cert: Path
    truststore_pem: Path
    truststore_p12: Path
    password: str

    @classmethod
    def at(cls, directory: Path, password: str) -> DevPki:
        d = directory
        return cls(
            directory=d,
            root_ca=d / "root-ca.pem",
            ap_ca=d / "ap-ca.pem",
            smp_ca=d / "smp-ca.pem",
            root_ca_key=d / "root-ca.key.pem",
            ap_ca_key=d / "ap-ca.key.pem",
            smp_ca_key=d / "smp-ca.key.pem",
            ap_p12=d / "ap.p12",
            smp_p12=d / "smp.p12",
            ap_key=d / "ap.key.pem",
            ap_cert=d / "ap.cert.pem",
            smp_key=d / "smp.key.pem",
            smp_cert=d / "smp.cert.pem",
            truststore_pem=d / "truststore.pem",
            truststore_p12=d / "truststore.p12",
            password=password,
        )

    def files(self) -> list[Path]:
        return [v for v in vars(self).values() if isinstance(v, Path) and v != self.directory]

    def anchors(self) -> TrustAnchors:
        """The trust anchors of this PKI as a `local` environment."""
        return TrustAnchors(
            environment="local",
            roots=(x509.load_pem_x509_certificate(self.root_ca.read_bytes()),),
            ap_cas=(x509.load_pem_x509_certificate(self.ap_ca.read_bytes()),),
            smp_cas=(x509.load_pem_x509_certificate(self.smp_ca.read_bytes()),),
        )

    def ca(self, role: Literal["root", "ap", "smp"]) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """The certificate and private key of one of the dev CAs."""
        cert_path, key_path = {
            "root": (self.root_ca, self.root_ca_key),
            "ap": (self.ap_ca, self.ap_ca_key),
            "smp": (self.smp_ca, self.smp_ca_key),
        }[role]
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise DevPkiError(f"{key_path} is not an RSA key")
        return cert, key


@dataclass(frozen=True)
class IssuedLeaf:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    p12: Path
    key_pem: Path
    cert_pem: Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)


def _ca_name(role: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _LOCAL_O),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _LOCAL_OU),
            x509.NameAttribute(NameOID.COMMON_NAME, _CA_CN[role]),
        ]
    )


def _leaf_name(role: Role, cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _LEAF_O),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _LEAF_OU[role]),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key_usage(names: Iterable[str]) -> x509.KeyUsage:
    wanted = set(names)
    unknown = wanted - set(KEY_USAGES)
    if unknown:
        raise ValueError(f"unknown key usage {sorted(unknown)}; choose from {', '.join(KEY_USAGES)}")
    flags = {name: name in wanted for name in KEY_USAGES}
    return x509.KeyUsage(**flags, encipher_only=False, decipher_only=False)


def _ca_cert(
    role: str,
    key: rsa.RSAPrivateKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    now: datetime,
) -> x509.Certificate:
    subject = _ca_name(role)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer_cert is None else 0), critical=True)
        .add_extension(
            _key_usage(("digital_signature", "key_cert_sign", "crl_sign")),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _leaf_cert(
    role: Role,
    cn: str,
    key: rsa.RSAPrivateKey,
    issuer_cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    not_before: datetime,
    not_after: datetime,
    key_usage: Iterable[str],
    crl_url: str | None,
    ocsp_url: str | None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_leaf_name(role, cn))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key_usage), critical=True)
        # Peppol leaves mark the clientAuth EKU critical; keep that so our validator is tested against it.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
            ),
            critical=False,
        )
    if ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_certs(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _p12_encryption(password: str) -> serialization.KeySerializationEncryption:
    # PBES2 + AES-256 + HMAC-SHA256: supported by Java 11.0.12+/17 keytool and OpenSSL 3 without -legacy.
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(10000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )


def _write_leaf_files(
    alias: str,
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    chain: tuple[x509.Certificate, ...],
    password: str,
    p12: Path,
    key_pem: Path,
    cert_pem: Path,
) -> None:
    key_pem.write_bytes(_pem_key(key))
    os.chmod(key_pem, 0o600)
    cert_pem.write_bytes(_pem_certs(cert, *chain))
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(alias.encode(), key, cert, list(chain), _p12_encryption(password))
    )


def _generate(
    directory: Path,
    *,
    ap_seat_id: str,
    smp_seat_id: str,
    crl_url: str | None,
    ocsp_url: str | None,
    password: str,
    days: int,
) -> DevPki:
    pki = DevPki.at(directory, password)
    now = datetime.now(UTC)
    root_key, ap_ca_key, smp_ca_key = _new_key(), _new_key(), _new_key()
    root = _ca_cert("root", root_key, None, root_key, now)
    ap_ca = _ca_cert("ap", ap_ca_key, root, root_key, now)
    smp_ca = _ca_cert("smp", smp_ca_key, root, root_key, now)
    for cert, key, cert_path, key_path in (
        (root, root_key, pki.root_ca, pki.root_ca_key),
        (ap_ca, ap_ca_key, pki.ap_ca, pki.ap_ca_key),
        (smp_ca, smp_ca_key, pki.smp_ca, pki.smp_ca_key),
    ):
        cert_path.write_bytes(_pem_certs(cert))
        key_path.write_bytes(_pem_key(key))
        os.chmod(key_path, 0o600)
    pki.truststore_pem.write_bytes(_pem_certs(root, ap_ca, smp_ca))
    pki.truststore_p12.write_bytes(
        pkcs12.serialize_java_truststore(
            [
                pkcs12.PKCS12Certificate(root, b"local-dev-root-ca"),
                pkcs12.PKCS12Certificate(ap_ca, b"local-dev-ap-ca"),
                pkcs12.PKCS12Certificate(smp_ca, b"local-dev-smp-ca"),
            ],
            _p12_encryption(password),
        )
    )
    not_before, not_after = now - _CLOCK_SKEW, now + timedelta(days=days)
    for role, seat, ca_cert, ca_key, p12, key_pem, cert_pem in (
        ("ap", ap_seat_id, ap_ca, ap_ca_key, pki.ap_p12, pki.ap_key, pki.ap_cert),
        ("smp", smp_seat_id, smp_ca, smp_ca_key, pki.smp_p12, pki.smp_key, pki.smp_cert),
    ):
        key = _new_key()
        cert = _leaf_cert(role, seat, key, ca_cert, ca_key, not_before, not_after, DEFAULT_KEY_USAGE,
                          crl_url, ocsp_url)
        _write_leaf_files(role, key, cert, (ca_cert, root), password, p12, key_pem, cert_pem)
    # The manifest is written last: its presence means the PKI is complete. The password is stored
    # beside the unencrypted keys it protects, so it adds no exposure.
    (directory / MANIFEST).write_text(
        json.dumps({"password": password, "ap_seat_id": ap_seat_id, "smp_seat_id": smp_seat_id,
                    "created": now.isoformat()}, indent=2)
    )
    return pki


def load_pki(directory: str | Path) -> DevPki:
    """Load an existing dev PKI (fails with a clear message if it is missing or incomplete)."""
    directory = Path(directory)
    manifest = directory / MANIFEST
    try:
        password = json.loads(manifest.read_text())["password"]
    except FileNotFoundError:
        raise DevPkiError(
            f"no dev PKI in {directory} ({MANIFEST} missing); create one with `peppol-ap pki init`"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise DevPkiError(f"{manifest} is damaged; recreate the dev PKI with `peppol-ap pki init --force`") from None
    pki = DevPki.at(directory, str(password))
    missing = [p.name for p in pki.files() if not p.is_file()]
    if missing:
        raise DevPkiError(
            f"dev PKI in {directory} is incomplete (missing {', '.join(missing)}); recreate it with --force"
        )
    return pki


def _make_in_temp(target: Path, generate: Callable[[Path], DevPki]) -> Path:
    """Generate into a fresh temporary directory beside target (same file system, so rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        generate(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def init_pki(
    out_dir: str | Path,
    *,
    ap_seat_id: str = "POP000001",
    smp_seat_id: str = "POP000001",
    crl_url: str | None = None,
    ocsp_url: str | None = None,
    password: str = DEFAULT_PASSWORD,
    days: int = 730,
    force: bool = False,
) -> DevPki:
    """Create a dev PKI in out_dir. Refuses to replace an existing one unless force."""
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise DevPkiError(f"{out} is a file, not a directory")
    if (out / MANIFEST).exists() and not force:
        raise DevPkiError(f"a dev PKI already exists in {out}; use --force to replace it")
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    tmp = _make_in_temp(out, lambda d: _generate(d, ap_seat_id=ap_seat_id, smp_seat_id=smp_seat_id,
                                                 crl_url=crl_url, ocsp_url=ocsp_url, password=password, days=days))
    try:
        os.rename(tmp, out)
    except OSError:
        # out exists and is not empty (an old PKI or unrelated files): move the files over, manifest last.
        # Removing the old manifest first means a crash in between leaves "incomplete", never a mixed PKI.
        (out / MANIFEST).unlink(missing_ok=True)
        for path in sorted(tmp.iterdir(), key=lambda p: p.name == MANIFEST):
            os.replace(path, out / path.name)
        tmp.rmdir()
    return load_pki(out)


def ensure_dev_pki(directory: str | Path) -> DevPki:
    """The dev PKI in directory, created with defaults on first use.

    Safe when several processes start at once: each builds in its own temporary directory and
    renames it into place; the losers discard theirs and load the winner's.
    """
    target = Path(directory).absolute()
    if (target / MANIFEST).exists():
        return load_pki(target)
    tmp = _make_in_temp(target, lambda d: _generate(d, ap_seat_id="POP000001", smp_seat_id="POP000001",
                                                    crl_url=None, ocsp_url=None, password=DEFAULT_PASSWORD, days=730))
    try:
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / MANIFEST).exists():
            raise DevPkiError(
                f"{target} exists but holds no dev PKI; remove it or point storage.data_dir elsewhere"
            ) from None
    return load_pki(target)


def issue_leaf(
    pki: DevPki,
    *,
    role: Role = "ap",
    cn: str,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_usage: Iterable[str] = DEFAULT_KEY_USAGE,
    crl_url: str | None = None,
    ocsp_url: str | None = None,
    out_dir: str | Path | None = None,
    name: str | None = None,
) -> IssuedLeaf:
    """Issue a Peppol-shaped leaf from the dev AP CA (role "ap") or SMP CA (role "smp").

    Files: <out_dir>/<name>.p12 (key + leaf + chain, alias = name), <name>.key.pem, <name>.cert.pem
    (leaf then chain). out_dir defaults to <pki>/leaves, name to "<role>-<cn>" in lower case.
    """
    if role not in _LEAF_OU:
        raise ValueError(f"role must be 'ap' or 'smp', got {role!r}")
    ca_cert, ca_key = pki.ca(role)
    root, _ = pki.ca("root")
    now = datetime.now(UTC)
    start = not_before or now - _CLOCK_SKEW
    end = not_after or start + timedelta(days=730)
    key = _new_key()
    cert = _leaf_cert(role, cn, key, ca_cert, ca_key, start, end, key_usage, crl_url, ocsp_url)
    folder = Path(out_dir) if out_dir else pki.directory / "leaves"
    folder.mkdir(parents=True, exist_ok=True)
    stem = name or f"{role}-{cn}".lower()
    leaf = IssuedLeaf(key, cert, folder / f"{stem}.p12", folder / f"{stem}.key.pem", folder / f"{stem}.cert.pem")
    _write_leaf_files(stem, key, cert, (ca_cert, root), pki.password, leaf.p12, leaf.key_pem, leaf.cert_pem)
    return leaf
