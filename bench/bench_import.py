"""Bulk import of a generated customer register: rows per second through `run_import` (the code behind
`peppol-ap participants import` and `POST /admin/api/imports`), against the real local SML.

    PYTHONPATH=$PWD /work/venv/bin/python bench/bench_import.py [--rows 10000] [--workers 8] [--sample 200]

The register (tests/registrations/generated_register.py) has 2 % invalid check digits, 2.5 % repeated identifiers,
1 % participants another provider holds in the SML, and receive=no on one in seven of the rest. The SML is
`python -m smp.localsml` with its DNS server (`smp.dnsserver`), both separate processes on 127.0.0.1 sharing a
SQLite zone store. Prints the dry-run time, the import time and the per-outcome counts, checks the counts against
the pattern, and resolves a random sample of the registered participants over real DNS (NAPTR, dnspython).
Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accesspoint.config import load_config  # noqa: E402
from accesspoint.flows.importer import run_import  # noqa: E402
from accesspoint.flows.registrations import Registrar  # noqa: E402
from accesspoint.gateway import build_gateway  # noqa: E402
from accesspoint.store.audit import Actor  # noqa: E402
from smp.identifiers import ParticipantId  # noqa: E402
from smp.lookup import SmlLookup  # noqa: E402
from smp.sml import SmlClient  # noqa: E402
from tests.registrations.generated_register import generate  # noqa: E402

ZONE = "local.peppol.test"


def start_sml(directory: Path) -> tuple[subprocess.Popen[str], str, int]:
    """The local SML and its DNS server; (process, SOAP URL, DNS port)."""
    command = [sys.executable, "-m", "smp.localsml", "--port", "0", "--store", str(directory / "sml.sqlite"),
               "--dns-port", "0", "--zone", ZONE]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    sml_line = process.stdout.readline().strip()
    dns_line = process.stdout.readline().strip()
    if not sml_line.startswith("sml listening on ") or not dns_line.startswith("dns listening on "):
        process.kill()
        raise SystemExit(f"the local SML did not start: {sml_line!r} {dns_line!r}")
    return process, sml_line.removeprefix("sml listening on "), int(dns_line.rsplit(":", 1)[1])


def unresolved(participants: list[ParticipantId], dns_port: int, smp_url: str) -> list[str]:
    """The participants whose NAPTR record, asked of the DNS server, does not point at our SMP."""
    lookup = SmlLookup(ZONE, [f"127.0.0.1:{dns_port}"], 5.0)
    wrong = []
    for participant in participants:
        answer = lookup.lookup(participant)
        if answer.smp_uri.rstrip("/") != smp_url.rstrip("/"):
            wrong.append(f"{participant.uri} -> {answer.smp_uri}")
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=200, help="registered participants resolved over DNS")
    parser.add_argument("--workers", type=int, default=8, help="concurrent SML registrations")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        directory = Path(tmp)
        register = generate(args.rows)
        csv_file = directory / "register.csv"
        csv_file.write_text("".join(register.lines), encoding="utf-8")
        sml, sml_url, dns_port = start_sml(directory)
        try:
            other = SmlClient(sml_url, "OTHER-SMP", timeout=30)
            other.create_smp("http://other-provider.invalid/smp", "127.0.0.2")
            for participant in register.elsewhere:
                other.create_participant(participant)
            gateway = build_gateway(load_config(None, {
                "PEPPOL_AP_STORAGE__DATA_DIR": str(directory / "gateway"),
                "PEPPOL_AP_SML__MANAGEMENT_URL": sml_url,
            }))
            with Registrar(gateway) as registrar:
                registrar.register_smp()

            with csv_file.open(encoding="utf-8", newline="") as fh:
                dry = run_import(gateway, fh, dry_run=True, batch_size=args.batch_size,
                                 actor=Actor.command_line())
            with csv_file.open(encoding="utf-8", newline="") as fh:
                started = time.perf_counter()
                report = run_import(gateway, fh, batch_size=args.batch_size, workers=args.workers,
                                    actor=Actor.command_line())
                seconds = time.perf_counter() - started
            ours = SmlClient(sml_url, registrar.smp_id, timeout=60)
            listed = ours.list_participants()
            registered = len(listed)
            sample = random.Random(1).sample(listed, min(args.sample, len(listed)))
            started = time.perf_counter()
            wrong = unresolved(sample, dns_port, ours.read_smp().logical_address)
            dns_seconds = time.perf_counter() - started
        finally:
            sml.terminate()
            sml.wait(10)

    counts = Counter({k: v for k, v in report.counts().items() if v})
    print(f"rows {args.rows}, local SML, workers {args.workers}, batch {args.batch_size}")
    print(f"dry run  {dry.seconds:8.1f} s  {args.rows / dry.seconds:8.0f} rows/s")
    print(f"import   {seconds:8.1f} s  {args.rows / seconds:8.0f} rows/s  {dict(counts)}")
    print(f"SML lists {registered} participants for our SMP")
    print(f"DNS      {dns_seconds:8.1f} s  {len(sample) - len(wrong)} of {len(sample)} sampled participants resolve "
          "to our SMP")
    if wrong:
        print("NOT RESOLVED: " + "; ".join(wrong[:10]), file=sys.stderr)
        return 1
    if counts != register.expected or registered != register.expected["registered"]:
        print(f"MISMATCH: expected {dict(register.expected)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
