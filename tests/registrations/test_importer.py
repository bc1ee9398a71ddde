"""Bulk import: row validation (pure), the import against the local SML, and the CLI."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from accesspoint.cli.main import cli
from accesspoint.flows.importer import ImportFileError, ImportRow, Outcome, RowResult, read_rows, run_import
from accesspoint.gateway import Gateway
from accesspoint.store.audit import Actor
from accesspoint.store.models import Organisation, Participant
from smp.identifiers import ParticipantId
from tests.registrations.conftest import RunningSml
from tests.registrations.generated_register import HEADER, generate
from tests.smp.registry_support import CaptureServer

ACTOR = Actor("import test")


def rows(text: str) -> list[ImportRow | RowResult]:
    return list(read_rows(text.splitlines(keepends=True)))


@pytest.mark.parametrize(("text", "words"), [
    ("", "the file is empty"),
    ("org_number,name,country,participant,colour\n", "unknown column(s) 'colour'"),
    ("org_number,name,participant\n", "lacks the required column(s) country"),
    ("org_number,name,country,participant,name\n", "name appear more than once"),
])
def test_unusable_headers(text: str, words: str) -> None:
    with pytest.raises(ImportFileError, match=words.replace("(", r"\(").replace(")", r"\)")):
        rows(text)


def test_row_validation_names_each_problem() -> None:
    parsed = rows(
        "Org_Number, Name ,COUNTRY,participant,receive\n"
        '5567321707,"Acme, AB",se,0007:5567321707,Yes\n'
        "\n"
        "5567321707,Acme AB,SE,0007:5567321707,yes\n"
        ",Nameless,SE,0088:7300010000001,no\n"
        "5560000001,X,Sverige,0007:5560000001,maybe\n"
        "5560000001,X,SE,0088:7300010000001\n"
        "5567321707,Acme Ltd,SE,0088:7300010000018,no\n"
    )
    first = parsed[0]
    assert isinstance(first, ImportRow)
    assert first.line == 2 and first.receive is True and first.organisation["name"] == "Acme, AB"
    assert first.organisation["country"] == "SE" and first.participant == ParticipantId.parse("0007:5567321707")
    problems = {r.line: r.message for r in parsed[1:] if isinstance(r, RowResult)}
    assert all(r.outcome == Outcome.INVALID for r in parsed[1:] if isinstance(r, RowResult))
    assert "is already on line 2" in problems[4]
    assert "org_number: is required" in problems[5]
    assert "country: 'Sverige' is not a two-letter" in problems[6] and "receive: 'maybe'" in problems[6]
    assert "the row has 4 fields, the header has 5" in problems[7]
    assert "is 'Acme, AB' in SE on line 2" in problems[8]


def test_import_500_generated_rows(gateway: Gateway, local_sml: RunningSml, our_smp_id: str) -> None:
    register = generate(500)
    other = local_sml.other_provider()
    for participant in register.elsewhere:
        other.create_participant(participant)

    dry = run_import(gateway, register.lines, dry_run=True, actor=ACTOR)
    assert dry.counts() == {"valid": 500 - register.expected["invalid"], "unchanged": 0,
                            "invalid": register.expected["invalid"]}
    with gateway.read() as session:
        assert session.scalar(select(func.count()).select_from(Participant)) == 0

    started = time.perf_counter()
    report = run_import(gateway, register.lines, batch_size=200, actor=ACTOR)
    elapsed = time.perf_counter() - started
    print(f"\nimported 500 rows in {elapsed:.1f} s: {report.counts()}")
    assert Counter({k: v for k, v in report.counts().items() if v}) == register.expected
    assert [r.line for r in report.results] == list(range(2, 502))
    elsewhere = [r for r in report.results if r.outcome == Outcome.REGISTERED_ELSEWHERE]
    assert all("migration key" in (r.message or "") for r in elsewhere)
    bad_digit = next(r for r in report.results if r.line == 51)
    assert bad_digit.outcome == Outcome.INVALID and "check digit" in (bad_digit.message or "")
    assert len(local_sml.registered(our_smp_id)) == register.expected["registered"]
    with gateway.read() as session:
        assert session.scalar(select(func.count()).select_from(Organisation)) == 500 - register.expected["invalid"]

    again = run_import(gateway, register.lines, actor=ACTOR)
    assert again.counts()["unchanged"] == register.expected["registered"] + register.expected["created"]
    assert again.counts()["registered-elsewhere"] == register.expected["registered-elsewhere"]
    assert len(local_sml.registered(our_smp_id)) == register.expected["registered"]


def test_import_respects_owners_and_republishes_changed_organisations(
        gateway: Gateway, directory: CaptureServer) -> None:
    first = run_import(gateway, [HEADER, "5567321707,Acme AB,SE,,,0007:5567321707,yes\n"], actor=ACTOR)
    assert first.results[0].outcome == Outcome.REGISTERED
    assert [r.method for r in directory.requests] == ["PUT"]
    (unchanged,) = run_import(gateway, [HEADER, "5567321707,Acme Group AB,SE,,,0007:5567321707,no\n"],
                              actor=ACTOR).results
    assert unchanged.outcome == Outcome.UNCHANGED and "receiving on" in (unchanged.message or "")
    (stolen,) = run_import(gateway, [HEADER, "5560000001,Thief AB,SE,,,0007:5567321707,yes\n"],
                           actor=ACTOR).results
    assert stolen.outcome == Outcome.INVALID
    assert "already belongs to organisation 'Acme Group AB' (org number 5567321707" in (stolen.message or "")
    # the name changed: the Directory re-reads the card; receive=no never switches receiving off
    assert [r.method for r in directory.requests] == ["PUT", "PUT"]
    with gateway.read() as session:
        assert session.scalar(select(Participant.receiving_enabled))
        assert list(session.scalars(select(Organisation.name))) == ["Acme Group AB"]


def test_cli_import_with_report(gateway: Gateway, local_sml: RunningSml, tmp_path: Path) -> None:
    register = generate(60)
    csv_file = tmp_path / "register.csv"
    csv_file.write_text("".join(register.lines), encoding="utf-8")
    report_file = tmp_path / "report.json"
    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(gateway.config.data_dir),
           "PEPPOL_AP_DATABASE__URL": gateway.config.database_url,
           "PEPPOL_AP_SML__MANAGEMENT_URL": local_sml.url}

    dry = CliRunner(env=env).invoke(cli, ["participants", "import", str(csv_file), "--dry-run"])
    assert dry.exit_code == 1, dry.output
    assert "line 51: invalid:" in dry.output and "60 rows in" in dry.output

    result = CliRunner(env=env).invoke(cli, ["participants", "import", str(csv_file), "--report", str(report_file),
                                             "--workers", "2"])
    assert result.exit_code == 1, result.output
    assert "line 41: invalid: iso6523-actorid-upis::0007:5500000384: participant: " in result.output
    summary = result.output.strip().splitlines()[-1]
    assert summary.startswith("60 rows in") and f"registered {register.expected['registered']}" in summary
    saved = json.loads(report_file.read_text())
    assert saved["rows"] == 60 and saved["counts"]["created"] == register.expected["created"]

    clean = tmp_path / "clean.csv"
    clean.write_text(HEADER + "5567321707,Acme AB,SE,,,0007:5567321707,no\n", encoding="utf-8")
    ok = CliRunner(env=env).invoke(cli, ["participants", "import", str(clean)])
    assert ok.exit_code == 0 and "created 1" in ok.output

    broken = tmp_path / "broken.csv"
    broken.write_text("orgnr;name\n", encoding="utf-8")
    failed = CliRunner(env=env).invoke(cli, ["participants", "import", str(broken)])
    assert failed.exit_code == 2 and "unknown column(s) 'orgnr;name'" in failed.output
