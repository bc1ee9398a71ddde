"""Peak memory of the receive path for a 100 MB attachment, measured in a fresh process.

    PYTHONPATH=$PWD /work/venv/bin/python bench/peak_memory_receive.py [--attachment-mb 100] [--tracemalloc]

The parent writes an SBD in chunks whose gzip is at least the requested attachment size (random hex notes, so it
compresses only about 2:1), builds the signed and encrypted AS4 message for a dev-PKI key on disk, then starts a
fresh Python process that imports everything, loads the key, records its resident set (the baseline), resets the
kernel's high-water mark (/proc/self/clear_refs, value 5) and runs the full receive path from the file stream:
MIME parse -> decrypt -> signature verify -> certificate check -> bounded gunzip -> SBDH parse
(`inspection.inspect_message`, which asserts every step passed). It reports VmHWM - baseline. `--tracemalloc` also
lists the Python allocations that were live at the peak, by line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEMPLATE = ROOT.parent / "shared/vectors/as4/sbdh/good/phase4-base-sbdh.xml"
LIMIT_MB = 64


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(message: Path, content_type: str, p12: Path, password: str, anchors_dir: Path, trace: bool) -> None:
    """Runs in the fresh process; prints one JSON line."""
    from accesspoint.core.peppol.inbound import InboundLimits
    from accesspoint.core.peppol.inspection import inspect_message
    from certs.devpki import load_pki
    from certs.keystore import load_pkcs12
    from certs.validation import CertificateValidator

    key = load_pkcs12(p12, password)
    validator = CertificateValidator(load_pki(anchors_dir).anchors())
    limits = InboundLimits(max_message_bytes=400 << 20, max_payload_bytes=400 << 20)
    if trace:
        import tracemalloc

        tracemalloc.start(10)
    baseline = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    started = time.perf_counter()
    with message.open("rb") as stream:
        report = inspect_message(iter(lambda: stream.read(1 << 16), b""),
                                 content_type, keys=[key], validator=validator, limits=limits, at=datetime.now(UTC))
    seconds = time.perf_counter() - started
    peak = _status_kb("VmHWM")
    if not report.valid:
        raise SystemExit(f"receive path failed: {[s.summary for s in report.steps if s.status != 'ok']}")
    result = {"baseline_kb": baseline, "peak_kb": peak, "above_baseline_kb": peak - baseline, "seconds": seconds,
              "payload_size": report.payload_size}
    if trace:
        import tracemalloc

        _, traced_peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot()
        result["tracemalloc_peak_kb"] = traced_peak // 1024
        result["tracemalloc_top_now"] = [str(s) for s in snapshot.statistics("lineno")[:10]]
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attachment-mb", type=int, default=100, help="minimum size of the encrypted attachment")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        message, content_type, p12, password, anchors_dir = args.child
        child(Path(message), content_type, Path(p12), password, Path(anchors_dir), args.tracemalloc)
        return

    from bench.as4_roundtrip import write_message, write_sbd
    from certs.devpki import init_pki
    from certs.keystore import load_pkcs12

    with tempfile.TemporaryDirectory(prefix="bench-peak-") as tmp:
        work = Path(tmp)
        pki = init_pki(work / "pki")
        key = load_pkcs12(pki.ap_p12, pki.password)
        sbd = work / "sbd.xml"
        # Hex of random bytes gzips to a bit over half its size; 2.3x the attachment size leaves a margin.
        sbd_size = write_sbd(TEMPLATE, sbd, int(args.attachment_mb * 2.3) << 20, note_bytes=2048)
        message = work / "message.mime"
        with message.open("wb") as out:
            content_type, _ = write_message(sbd, key, key.certificate, out)
        wire = message.stat().st_size
        if wire < args.attachment_mb << 20:
            raise SystemExit(f"the message is only {wire} bytes; raise the SBD size")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        command = [sys.executable, __file__, "--child", str(message), content_type, str(pki.ap_p12), pki.password,
                   str(pki.directory)] + (["--tracemalloc"] if args.tracemalloc else [])
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        above_mb = result["above_baseline_kb"] / 1024
        print(f"SBD {sbd_size / 2**20:.1f} MiB, message on the wire {wire / 2**20:.1f} MiB (one attachment)")
        print(f"baseline RSS {result['baseline_kb'] / 1024:.1f} MiB, peak RSS {result['peak_kb'] / 1024:.1f} MiB, "
              f"peak above baseline {above_mb:.1f} MiB (limit {LIMIT_MB} MiB): "
              f"{'OK' if above_mb < LIMIT_MB else 'OVER'}")
        print(f"receive path took {result['seconds']:.2f} s ({wire / 2**20 / result['seconds']:.1f} MiB/s wire)")
        if args.tracemalloc:
            print(f"tracemalloc peak of Python allocations: {result['tracemalloc_peak_kb'] / 1024:.1f} MiB")
            for line in result["tracemalloc_top_now"]:
                print(f"  {line}")


if __name__ == "__main__":
    main()
