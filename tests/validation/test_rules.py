"""`rules install` and the rules directory: pinned checksums, what is extracted, the manifest, idempotence."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from accesspoint.adapters.rules import ARTIFACTS, RulesDirectory, RulesError, install
from accesspoint.core.validation import ReleaseError, newest_in_force, release_key, select_release
from tests.conftest import cached_rule_jars

DATES = {"2025.5": date(2025, 8, 25), "2025.11": date(2026, 2, 23), "2026.5": date(2026, 8, 17)}
needs_jars = pytest.mark.skipif(not cached_rule_jars(), reason="the pinned jars are not in the Maven cache")


def test_the_session_rules_hold_the_releases_schemas_and_a_manifest(bis_rules: Path) -> None:
    rules = RulesDirectory(bis_rules)
    assert {"2025.11", "2026.5"} <= set(rules.releases())
    assert rules.has("2026.5", ["CEN-EN16931-UBL.xslt", "PEPPOL-EN16931-UBL.xslt"])
    assert rules.schema("UBL-Invoice-2.1.xsd").is_file() and rules.schema("UBL-CreditNote-2.1.xsd").is_file()
    assert (bis_rules / "schematron/mls/1.0.0/xslt/peppol-mls-1.0.0.xslt").is_file()
    assert list((bis_rules / "schematron/reporting").rglob("*.xslt"))
    assert list((bis_rules / "schemas").glob("peppol-*-reporting-*.xsd"))
    manifest = json.loads((bis_rules / "manifest.json").read_text())
    assert {e["artifact"]: e["sha256"] for e in manifest["artifacts"]} == {a.name: a.sha256 for a in ARTIFACTS}
    assert all(e["installed_at"] and e["pinned"] for e in manifest["artifacts"])
    assert rules.is_current() and not rules.missing()
    # only what the gateway uses: no Java classes, no other rule families
    assert not list(bis_rules.rglob("*.class")) and not (bis_rules / "schematron/pint").exists()


def test_a_second_install_without_source_does_nothing(bis_rules: Path) -> None:
    before = (bis_rules / "manifest.json").read_text()
    assert install(bis_rules).skipped
    assert (bis_rules / "manifest.json").read_text() == before


@needs_jars
def test_install_from_one_jar_then_the_others_merges_the_manifest(tmp_path: Path) -> None:
    jars = cached_rule_jars()
    rules = RulesDirectory(tmp_path / "rules")
    install(rules.path, jars[0], now=datetime(2026, 12, 4, tzinfo=UTC))
    assert rules.releases() and not rules.schema("UBL-Invoice-2.1.xsd").exists()
    assert len(rules.missing()) == len(ARTIFACTS) - 1
    for jar in jars[1:]:
        install(rules.path, jar)
    assert rules.is_current() and rules.schema("UBL-Invoice-2.1.xsd").is_file()


@needs_jars
def test_install_from_an_installed_directory_copies_it(bis_rules: Path, tmp_path: Path) -> None:
    install(tmp_path / "copy", bis_rules)
    assert RulesDirectory(tmp_path / "copy").is_current()


def _tampered(jar: Path, into: Path) -> Path:
    """The jar with one more entry: same artifact (its pom.properties), another checksum."""
    copy = into / jar.name
    copy.write_bytes(jar.read_bytes())
    with zipfile.ZipFile(copy, "a") as zf:
        zf.writestr("extra.txt", "changed")
    return copy


@needs_jars
def test_a_jar_with_another_checksum_is_refused_unless_accepted(tmp_path: Path) -> None:
    xmldsig = next(j for j in cached_rule_jars() if "xmldsig" in j.name)
    tampered = _tampered(xmldsig, tmp_path)
    with pytest.raises(RulesError, match=r"not the pinned one.*--accept-unknown"):
        install(tmp_path / "rules", tampered)
    assert not (tmp_path / "rules" / "manifest.json").exists()
    install(tmp_path / "rules", tampered, accept_unknown=True)
    [entry] = RulesDirectory(tmp_path / "rules").manifest()
    assert entry.artifact == "ph-xsds-xmldsig" and not entry.pinned


@needs_jars
def test_a_directory_with_the_pinned_jar_and_another_version_takes_the_pinned(tmp_path: Path) -> None:
    xmldsig = next(j for j in cached_rule_jars() if "xmldsig" in j.name)
    (tmp_path / "old").mkdir()
    _tampered(xmldsig, tmp_path / "old")
    (tmp_path / xmldsig.name).symlink_to(xmldsig)
    install(tmp_path / "rules", tmp_path)
    assert RulesDirectory(tmp_path / "rules").manifest()[0].pinned


def test_not_a_rules_jar_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.jar"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("a.txt", "a")
    with pytest.raises(RulesError, match="not one of the artifacts"):
        install(tmp_path / "rules", other)


def test_without_maven_the_error_names_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RulesError, match=r"mvn \(Maven\) is not installed.*--from"):
        install(tmp_path / "rules")


def test_release_order_is_numeric() -> None:
    assert sorted(["2026.5", "2025.11", "2025.5", "2026.3"], key=release_key) == \
        ["2025.5", "2025.11", "2026.3", "2026.5"]


@pytest.mark.parametrize(("today", "expected"), [
    (date(2026, 2, 22), "2025.5"), (date(2026, 2, 23), "2025.11"), (date(2026, 12, 4), "2026.5"),
])
def test_the_newest_installed_release_whose_date_has_passed_is_in_force(today: date, expected: str) -> None:
    installed = ["2024.11", "2025.5", "2025.11", "2026.3", "2026.5"]
    assert select_release(installed, DATES, today) == expected


def test_a_pinned_release_wins_and_must_be_installed() -> None:
    assert select_release(["2025.11", "2026.5"], DATES, date(2026, 12, 4), pinned="2025.11") == "2025.11"
    with pytest.raises(ReleaseError, match=r"2027\.5 is not installed"):
        select_release(["2025.11"], DATES, date(2026, 12, 4), pinned="2027.5")


def test_no_release_in_force_is_an_error() -> None:
    with pytest.raises(ReleaseError, match="no rule release is installed"):
        select_release([], DATES, date(2026, 12, 4))
    with pytest.raises(ReleaseError, match="no installed release is in force"):
        select_release(["2026.5"], DATES, date(2026, 1, 1))
    assert newest_in_force(DATES, date(2024, 1, 1)) is None


@needs_jars
def test_without_from_the_pinned_jars_are_fetched_with_maven_and_checked(tmp_path: Path) -> None:
    # a stand-in for mvn that "downloads" from the local Maven cache: dependency:copy -Dartifact=G:A:V:jar
    # -DoutputDirectory=DIR copies A-V.jar into DIR
    cache = tmp_path / "cache"
    cache.mkdir()
    for jar in cached_rule_jars():
        (cache / jar.name).symlink_to(jar)
    fake = tmp_path / "mvn"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do case $a in -Dartifact=*) art=${a#-Dartifact=};; '
                    '-DoutputDirectory=*) out=${a#-DoutputDirectory=};; esac; done\n'
                    f'cp "{cache}/$(echo "$art" | cut -d: -f2,3 | tr : -).jar" "$out/"\n')
    fake.chmod(0o755)
    result = install(tmp_path / "rules", mvn=str(fake))
    assert not result.skipped and {e.artifact for e in result.installed} == {a.name for a in ARTIFACTS}
    assert RulesDirectory(tmp_path / "rules").is_current()
    assert install(tmp_path / "rules", mvn=str(fake)).skipped


def test_a_failing_maven_names_the_artifact_and_from(tmp_path: Path) -> None:
    fake = tmp_path / "mvn"
    fake.write_text("#!/bin/sh\necho '[ERROR] Could not resolve artifact' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(RulesError, match=r"mvn could not fetch com\.helger\.phive\.rules:phive-rules-peppol:4\.3\.7: "
                                         r"\[ERROR\] Could not resolve artifact; .*--from"):
        install(tmp_path / "rules", mvn=str(fake))
