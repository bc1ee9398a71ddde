"""`peppol-ap send`: the same checks and pipeline as the API, with progress and the final state."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from accesspoint.cli.main import cli
from smp.identifiers import ParticipantId
from tests.sending.harness import RECEIVER, invoice, network


def test_send_wait_follows_the_message_to_sent_and_to_failed(tmp_path: Path, vectors: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with network(tmp_path) as net:
        for name, value in net.env.items():
            monkeypatch.setenv(name, value)
        net.register(RECEIVER)
        document = tmp_path / "invoice.xml"
        document.write_bytes(invoice(vectors / "bis" / "base-example.xml"))
        runner = CliRunner()

        sent = runner.invoke(cli, ["send", str(document), "--wait"])
        assert sent.exit_code == 0, sent.output
        assert f"-> {RECEIVER.value} (Invoice)" in sent.output
        assert f"attempt 1 to {net.as4_url}: sent" in sent.output
        assert "sent to POP000002" in sent.output and "receipt verified" in sent.output
        assert len(net.receiver_ap.received) == 1

        unknown = runner.invoke(cli, ["send", str(document), "--to", "0007:5566778899", "--wait"])
        assert unknown.exit_code == 1
        assert "failed: 0007:5566778899 is not registered in Peppol" in unknown.output
        assert "hint: " in unknown.output

        queued = runner.invoke(cli, ["send", str(document)])
        assert queued.exit_code == 0 and "peppol-ap worker" in queued.output

        stranger = tmp_path / "stranger.xml"
        stranger.write_bytes(invoice(vectors / "bis" / "base-example.xml",
                                     sender=ParticipantId.parse("0007:5565475489")))
        refused = runner.invoke(cli, ["send", str(stranger)])
        assert refused.exit_code == 1 and "sender: 0007:5565475489 is not a participant" in refused.output
        assert len(net.receiver_ap.received) == 1
