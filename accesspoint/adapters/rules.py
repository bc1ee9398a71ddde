"""The rules directory: the official BIS validation artefacts, installed from the Maven Central jars that package
them unchanged, and read by the validator (accesspoint.adapters.validation).

The jars are pinned by version and SHA-256; only what the gateway uses is extracted (the OpenPeppol release
folders of compiled Schematron XSLTs, the MLS and Reporting XSLTs and schemas, the UBL 2.1 schemas and the four
schemas they import without a location). No rule is edited: files are copied as published. What was installed is
recorded in `manifest.json`, which also makes a repeated `rules install` a no-op.

Layout of the directory:
    manifest.json
    schematron/openpeppol/<release>/xslt/*.xslt, schematron/mls/..., schematron/reporting/...
    schemas/peppol-*-reporting-*.xsd
    schemas/ubl21/{maindoc,common}/*.xsd        UBL 2.1
    schemas/imports/*.xsd                       CCTS, xmldsig, XAdES 1.3.2 and 1.4.1
    schemas/wrappers/UBL-<Type>-2.1.xsd         made here: the imports with their locations, then the UBL schema
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

MANIFEST = "manifest.json"
_OPENPEPPOL = PurePosixPath("schematron/openpeppol")
_WRAPPERS = PurePosixPath("schemas/wrappers")
_MAINDOC = PurePosixPath("schemas/ubl21/maindoc")
_IMPORTS = PurePosixPath("schemas/imports")


class RulesError(RuntimeError):
    """The rules cannot be installed or are not installed; the message says what to do."""


@dataclass(frozen=True)
class Artifact:
    """A pinned Maven artifact and which of its entries go where in the rules directory (jar prefix -> target)."""

    group: str
    name: str
    version: str
    sha256: str
    entries: tuple[tuple[str, str], ...]

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.name}:{self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.jar"


def _xsd(name: str, version: str, sha256: str, schema: str) -> Artifact:
    return Artifact("com.helger.xsd", name, version, sha256, ((f"schemas/{schema}", f"{_IMPORTS}/{schema}"),))


# The newest releases on Maven Central when pinned; a new version is a new pin (and checksum) here.
ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("com.helger.phive.rules", "phive-rules-peppol", "4.3.7",
             "c82aaeda5ca16166034421393d160ec6cf77460b16e027eecc4bb5fe67a552ce",
             (("external/schematron/openpeppol/", "schematron/openpeppol/"),
              ("external/schematron/mls/", "schematron/mls/"),
              ("external/schematron/reporting/", "schematron/reporting/"),
              *((f"external/schemas/peppol-{kind}-statistics-reporting-",
                 f"schemas/peppol-{kind}-statistics-reporting-") for kind in ("transaction", "end-user")))),
    Artifact("com.helger.ubl", "ph-ubl21", "10.1.0",
             "aab58f8b1a3d539e24df125e7148c546f85b3bd7778aa2dc11a3027cf8396478",
             (("external/schemas/ubl21/", "schemas/ubl21/"),)),
    _xsd("ph-xsds-ccts-cct-schemamodule", "4.1.0", "ec0e60be5265b09fac75a57a4b284244820c23f0481a1c75802ba4eb6338b0fd",
         "CCTS_CCT_SchemaModule.xsd"),
    _xsd("ph-xsds-xmldsig", "4.1.0", "66590e38b0994d0fd6cd89b1588a3c96fad3a3c85494cf764783fe0c4acc9c3d",
         "xmldsig-core-schema.xsd"),
    _xsd("ph-xsds-xades132", "4.1.0", "d90bdb2359bbef63bd789af238fb135dd7ada0ba9722f4e2825cd210dada013c",
         "XAdES01903v132-201601.xsd"),
    _xsd("ph-xsds-xades141", "4.1.0", "b34b2670774e9de79653767fd667d86823261c153f706c2344889d0702f54e41",
         "XAdES01903v141-201601.xsd"),
)
_BY_NAME = {a.name: a for a in ARTIFACTS}

# The UBL schemas import these namespaces without a schemaLocation; the wrapper imports them first, in this order
# (XAdES imports xmldsig, 1.4.1 imports 1.3.2), so that the UBL schema finds them already loaded.
_IMPORTED = (
    ("http://www.w3.org/2000/09/xmldsig#", "xmldsig-core-schema.xsd"),
    ("http://uri.etsi.org/01903/v1.3.2#", "XAdES01903v132-201601.xsd"),
    ("http://uri.etsi.org/01903/v1.4.1#", "XAdES01903v141-201601.xsd"),
    ("urn:un:unece:uncefact:data:specification:CoreComponentTypeSchemaModule:2", "CCTS_CCT_SchemaModule.xsd"),
)
_TARGET_NAMESPACE = re.compile(rb'targetNamespace="([^"]+)"')


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Installed:
    """One artifact recorded in the manifest."""

    artifact: str
    version: str
    sha256: str
    installed_at: str
    pinned: bool


class RulesDirectory:
    """The installed artefacts, read side: what is there, and where a release's files are."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def manifest(self) -> list[Installed]:
        try:
            data = json.loads((self.path / MANIFEST).read_text("utf-8"))
        except (OSError, ValueError):
            return []
        return [Installed(**entry) for entry in data.get("artifacts", [])]

    def releases(self) -> list[str]:
        """The OpenPeppol releases installed (folders with compiled XSLTs)."""
        base = self.path / _OPENPEPPOL
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "xslt").is_dir())

    def has(self, release: str, names: Iterable[str]) -> bool:
        return all(self.xslt(release, name).is_file() for name in names)

    def xslt(self, release: str, name: str) -> Path:
        return self.path / _OPENPEPPOL / release / "xslt" / name

    def schema(self, name: str) -> Path:
        return self.path / _WRAPPERS / name

    def missing(self) -> list[str]:
        """Pinned artifacts not recorded as installed (by name; another version counts as installed)."""
        names = {entry.artifact for entry in self.manifest()}
        return [a.coordinates for a in ARTIFACTS if a.name not in names]

    def is_current(self) -> bool:
        """Every pinned artifact installed with its pinned checksum, and the files in place."""
        recorded = {(e.artifact, e.sha256) for e in self.manifest()}
        return (all((a.name, a.sha256) in recorded for a in ARTIFACTS) and bool(self.releases())
                and (self.path / _WRAPPERS).is_dir())


# --- installing ------------------------------------------------------------------------------------------------


def _identify(jar: Path, sha256: str) -> Artifact | None:
    """Which artifact a jar is: by its pinned checksum, else by its pom.properties."""
    for artifact in ARTIFACTS:
        if artifact.sha256 == sha256:
            return artifact
    try:
        with zipfile.ZipFile(jar) as zf:
            for name in zf.namelist():
                if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
                    props = dict(line.split("=", 1) for line in zf.read(name).decode("utf-8", "replace").splitlines()
                                 if "=" in line and not line.startswith("#"))
                    known = _BY_NAME.get(props.get("artifactId", "").strip())
                    if known is not None and props.get("groupId", "").strip() == known.group:
                        return Artifact(known.group, known.name, props.get("version", "?").strip(), sha256,
                                        known.entries)
    except zipfile.BadZipFile:
        raise RulesError(f"{jar}: not a jar (zip) file") from None
    return None


def _extract(jar: Path, artifact: Artifact, staging: Path) -> int:
    """Copy the artifact's entries to `staging`, refusing any entry that would land outside it."""
    count = 0
    with zipfile.ZipFile(jar) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            for prefix, target in artifact.entries:
                if info.filename.startswith(prefix):
                    relative = PurePosixPath(target + info.filename[len(prefix):])
                    if relative.is_absolute() or ".." in relative.parts:
                        raise RulesError(f"{jar}: entry {info.filename!r} leaves the rules directory")
                    destination = staging / relative
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, destination.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    count += 1
                    break
    if not count:
        raise RulesError(f"{jar}: none of the expected files are in it ({artifact.coordinates})")
    return count


def _write_wrappers(root: Path) -> None:
    """One wrapper schema per UBL 2.1 document schema: the four imports with explicit locations, then the
    document schema (its own imports of the UBL common schemas carry their locations)."""
    maindoc = root / _MAINDOC
    wrappers = root / _WRAPPERS
    if not maindoc.is_dir() or not all((root / _IMPORTS / f).is_file() for _ns, f in _IMPORTED):
        return
    wrappers.mkdir(parents=True, exist_ok=True)
    for schema in sorted(maindoc.glob("UBL-*-2.1.xsd")):
        match = _TARGET_NAMESPACE.search(schema.read_bytes()[:4096])
        if match is None:
            continue
        imports = [(ns, f"../imports/{f}") for ns, f in _IMPORTED] + [
            (match.group(1).decode(), f"../ubl21/maindoc/{schema.name}")]
        lines = "".join(f'  <xsd:import namespace="{ns}" schemaLocation="{loc}"/>\n' for ns, loc in imports)
        (wrappers / schema.name).write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<!-- Made by `peppol-ap rules install`: loads the UBL 2.1 schema with the imports it names without a "
            "location. -->\n"
            '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'targetNamespace="urn:peppol-ap:ubl-wrapper" elementFormDefault="qualified">\n'
            f"{lines}</xsd:schema>\n", "utf-8")


def _jars_in(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*.jar") if p.is_file())


def fetch_with_maven(into: Path, mvn: str | None = None) -> list[Path]:
    """Download the pinned jars with Maven (its local repository caches them) into `into`."""
    executable = mvn or shutil.which("mvn")
    if executable is None:
        raise RulesError("mvn (Maven) is not installed; install it, or download the jars and run "
                         "`peppol-ap rules install --from FILE_OR_DIR`")
    for artifact in ARTIFACTS:
        result = subprocess.run(
            [executable, "-q", "-B", "dependency:copy", f"-Dartifact={artifact.coordinates}:jar",
             f"-DoutputDirectory={into}", "-Dmdep.overWriteReleases=true"],
            capture_output=True, text=True, check=False, cwd=into)
        if result.returncode != 0:
            last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["(no output)"]
            raise RulesError(f"mvn could not fetch {artifact.coordinates}: {last[0]}; without network, download the "
                             "jars and run `peppol-ap rules install --from FILE_OR_DIR`")
    return [into / a.file_name for a in ARTIFACTS]


@dataclass(frozen=True)
class InstallResult:
    installed: tuple[Installed, ...]
    skipped: bool


def _copy_extracted(source: Path, staging: Path) -> list[Installed]:
    """An already extracted rules directory: copied as it is, its manifest taken over."""
    shutil.copytree(source, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST, ".*"))
    return RulesDirectory(source).manifest()


def _merge_into(target: Path, staging: Path, artifacts: Iterable[Artifact]) -> None:
    """Move the staged files into place. A folder an artifact owns (`schematron/openpeppol/`, `schemas/ubl21/`)
    replaces the old one whole, so no folder mixes files of two versions; single files (the imported schemas, each
    from its own jar) replace their old copy."""
    for artifact in artifacts:
        for _prefix, folder in artifact.entries:
            staged = staging / folder
            if folder.endswith("/") and staged.is_dir():
                destination = target / folder
                if destination.exists():
                    shutil.rmtree(destination)
                destination.parent.mkdir(parents=True, exist_ok=True)
                staged.replace(destination)
    for staged in sorted(p for p in staging.rglob("*") if p.is_file()):
        destination = target / staged.relative_to(staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        staged.replace(destination)


def install(target: Path, source: Path | None = None, *, accept_unknown: bool = False,
            mvn: str | None = None, now: datetime | None = None) -> InstallResult:
    """Install the artefacts into `target` from Maven (no `source`), from jars (a file or a directory holding
    them), or from an already extracted rules directory. A jar whose checksum is not the pinned one is refused
    unless `accept_unknown`. Without `source`, nothing happens when the pinned artifacts are installed already."""
    rules = RulesDirectory(target)
    if source is None and rules.is_current():
        return InstallResult(tuple(rules.manifest()), skipped=True)
    moment = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=target) as tmp:
        staging = Path(tmp) / "rules"
        staging.mkdir()
        if source is not None and source.is_dir() and (source / MANIFEST).is_file():
            recorded = _copy_extracted(source, staging)
            owners: Iterable[Artifact] = ARTIFACTS
        else:
            if source is not None and not source.exists():
                raise RulesError(f"--from {source}: no such file or directory")
            jars = _jars_in(source) if source is not None else fetch_with_maven(Path(tmp), mvn)
            recorded = list(_install_jars(jars, staging, accept_unknown, moment, single=source is not None
                                          and source.is_file()))
            owners = [_BY_NAME[entry.artifact] for entry in recorded]
        _merge_into(target, staging, owners)
    _write_wrappers(target)
    entries = {e.artifact: e for e in rules.manifest()}
    entries.update({e.artifact: e for e in recorded})
    manifest = {"artifacts": [e.__dict__ for e in sorted(entries.values(), key=lambda e: e.artifact)]}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return InstallResult(tuple(recorded), skipped=False)


def _choose(jars: list[Path], single: bool) -> dict[str, tuple[Path, Artifact, str]]:
    """One jar per artifact: the pinned one when present (a directory such as a Maven repository may hold other
    versions too), else the only other one."""
    chosen: dict[str, tuple[Path, Artifact, str]] = {}
    others: dict[str, list[tuple[Path, Artifact, str]]] = {}
    for jar in jars:
        checksum = sha256_of(jar)
        artifact = _identify(jar, checksum)
        if artifact is None:
            if single:
                raise RulesError(f"{jar}: not one of the artifacts the gateway uses "
                                 f"({', '.join(a.coordinates for a in ARTIFACTS)})")
            continue
        if checksum == _BY_NAME[artifact.name].sha256:
            chosen[artifact.name] = (jar, artifact, checksum)
        else:
            others.setdefault(artifact.name, []).append((jar, artifact, checksum))
    for name, candidates in others.items():
        if name in chosen:
            continue
        if len(candidates) > 1:
            raise RulesError(f"several jars of {name} and none with the pinned checksum: "
                             f"{', '.join(str(c[0]) for c in candidates)}; give one with --from FILE")
        chosen[name] = candidates[0]
    if not chosen:
        raise RulesError("no jar of the artifacts the gateway uses was found "
                         f"({', '.join(a.coordinates for a in ARTIFACTS)})")
    return chosen


def _install_jars(jars: list[Path], staging: Path, accept_unknown: bool, moment: str,
                  single: bool) -> Iterator[Installed]:
    chosen = _choose(jars, single)
    for jar, artifact, checksum in chosen.values():
        pinned = _BY_NAME[artifact.name]
        if checksum != pinned.sha256 and not accept_unknown:
            raise RulesError(f"{jar}: SHA-256 {checksum} is not the pinned one of {pinned.coordinates} "
                             f"({pinned.sha256}); refused (use --accept-unknown to install it anyway)")
    for jar, artifact, checksum in chosen.values():
        _extract(jar, artifact, staging)
        yield Installed(artifact=artifact.name, version=artifact.version, sha256=checksum, installed_at=moment,
                        pinned=checksum == _BY_NAME[artifact.name].sha256)
