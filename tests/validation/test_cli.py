"""`peppol-ap validate` and `peppol-ap rules list`: one line per finding, a summary per file, exit 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from accesspoint.cli.main import cli
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.store.types import utcnow
from tests.conftest import VECTORS

BIS = VECTORS / "bis"


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_valid_files_exit_0_with_a_summary_each() -> None:
    code, out, _ = _run("validate", str(BIS / "base-example.xml"), str(BIS / "Norwegian-example-1.xml"))
    assert code == 0
    assert f"{BIS / 'base-example.xml'}: valid (0 fatal, 0 warning; BIS Billing 3.0 invoice, release 2026.5)" in out
    assert f"{BIS / 'Norwegian-example-1.xml'}:4: warning UBL-CR-679 " in out
    assert "Norwegian-example-1.xml: warnings (0 fatal, 1 warning" in out


def test_an_invalid_file_exits_1_with_one_line_per_finding() -> None:
    path = BIS / "invalid/invalid-BR-CO-10.xml"
    code, out, _ = _run("validate", "--release", "2025.11", str(path), str(BIS / "base-example.xml"))
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith(f"{path}:139: fatal ")]
    assert [line.split()[2] for line in lines] == ["BR-CO-10", "BR-CO-13"]
    assert lines[0].endswith("*:LegalMonetaryTotal[namespace-uri()='urn:oasis:names:specification:ubl:schema:xsd:"
                             "CommonAggregateComponents-2'][1])")
    assert f"{path}: invalid (2 fatal, 0 warning; BIS Billing 3.0 invoice, release 2025.11)" in out


def test_an_xsd_error_is_a_finding_with_its_line() -> None:
    path = BIS / "invalid/invalid-XSD-unknown-element.xml"
    code, out, _ = _run("validate", str(path))
    assert code == 1 and f"{path}:14: fatal UBL-XSD Element" in out


def test_json_lists_every_finding() -> None:
    code, out, _ = _run("validate", "--json", str(BIS / "invalid/invalid-SE-R-001.xml"))
    [report] = json.loads(out)
    assert code == 1 and report["status"] == "invalid"
    assert {(f["rule_id"], f["flag"]) for f in report["findings"]} == {("SE-R-001", "fatal"),
                                                                        ("UBL-CR-679", "warning")}
    assert all(f["line"] and f["location"] and f["message"] for f in report["findings"])


@pytest.mark.parametrize("content", [b"not xml", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"])
def test_unusable_input_exits_2(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(content)
    code, _, err = _run("validate", str(path), str(BIS / "invalid/invalid-BR-01.xml"))
    assert code == 2 and f"{path}: unusable: not XML" in err


def test_a_missing_file_and_missing_rules_exit_2(tmp_path: Path) -> None:
    code, _, err = _run("validate", str(tmp_path / "nope.xml"))
    assert code == 2 and "cannot be read" in err
    code, _, err = _run("validate", str(BIS / "base-example.xml"),
                        env={"PEPPOL_AP_VALIDATION__RULES_DIR": str(tmp_path / "empty")})
    assert code == 2 and "run `peppol-ap rules install`" in err


def test_an_sbd_is_validated_by_its_business_document(tmp_path: Path) -> None:
    document = (BIS / "invalid/invalid-BR-CO-15.xml").read_bytes()
    path = tmp_path / "sbd.xml"
    path.write_bytes(build_sbd(sbdh_from_ubl(document, creation=utcnow()), document))
    code, out, _ = _run("validate", str(path))
    assert code == 1 and " fatal BR-CO-15 " in out


def test_rules_list_shows_the_release_in_force(bis_rules: Path) -> None:
    code, out, _ = _run("rules", "list")
    assert code == 0
    assert "2026.5     mandatory from 2026-08-17  <- in force" in out
    assert "2025.11    mandatory from 2026-02-23" in out
    assert "artifact phive-rules-peppol 4.3.7 sha256 c82aaeda" in out
    code, out, _ = _run("rules", "list", env={"PEPPOL_AP_VALIDATION__RELEASE": "2025.11"})
    assert "2025.11    mandatory from 2026-02-23  <- in force (validation.release)" in out


def test_rules_install_says_when_there_is_nothing_to_do(bis_rules: Path) -> None:
    code, out, _ = _run("rules", "install")
    assert code == 0 and "already installed" in out
