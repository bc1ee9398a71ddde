"""BIS validation cost on one core: validations per second for a 10 KB and a 1 MB invoice after warm-up, resident
memory with the compiled rules loaded, and what the outbound check adds to a submission (p50/p99).

    PYTHONPATH=$PWD .venv/bin/python bench/bench_validation.py --seconds 10

The rules come from the configured rules directory (`peppol-ap rules install`; PEPPOL_AP_VALIDATION__RULES_DIR
points elsewhere). The process is pinned to one CPU. "10 KB" is the BIS base example (5.9 KB) with our own
padding note to 10 KB; "1 MB" is the same invoice with its first InvoiceLine repeated (fresh IDs) until it passes
1 MB, so its totals no longer add up and it carries findings (BR-CO-10 and friends), as a wrong 1 MB invoice would.
The submit-path cost is `validate_document` as the outbound check calls it (SBD extraction when needed, XSD, CEN,
Peppol, SVRL reading, line numbers), without the one-row organisation read.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accesspoint.config import load_config  # noqa: E402
from accesspoint.flows.validation import business_document  # noqa: E402
from accesspoint.gateway import build_validator  # noqa: E402
from accesspoint.store.types import utcnow  # noqa: E402

TEMPLATE = ROOT.parent / "shared" / "vectors" / "bis" / "base-example.xml"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sized(target: int) -> bytes:
    text = TEMPLATE.read_text("utf-8")
    if target <= len(text) * 2:
        padding = "x" * max(0, target - len(text) - 30)
        return text.replace("<cbc:Note>", f"<cbc:Note>{padding} ", 1).encode()
    line = re.search(r"<cac:InvoiceLine>.*?</cac:InvoiceLine>", text, re.S)
    assert line is not None
    copies = []
    n = 0
    while len(text) + sum(map(len, copies)) < target:
        n += 1
        copies.append(re.sub(r"<cbc:ID>[^<]*</cbc:ID>", f"<cbc:ID>L{n}</cbc:ID>", line.group(0), count=1))
    return (text[:line.end()] + "".join(copies) + text[line.end():]).encode()


def rate(validate, document: bytes, seconds: float) -> tuple[int, float, list[float]]:  # type: ignore[no-untyped-def]
    times: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end or len(times) < 3:
        started = time.perf_counter()
        validate(document)
        times.append(time.perf_counter() - started)
    return len(times), sum(times), times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per case")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    before = rss_mib()
    cfg = load_config()
    validator = build_validator(cfg)
    today = utcnow().date()
    started = time.monotonic()
    validator.warm_up(today)
    compile_s = time.monotonic() - started
    def check(document: bytes) -> None:
        validator.validate(business_document(document), today)

    small, large = sized(10 * 1024), sized(1024 * 1024)
    for document in (small, large):  # warm-up: JIT and caches
        for _ in range(5):
            check(document)
    loaded = rss_mib()
    print(f"rules {cfg.rules_dir}, release {validator.release_for(cfg.validation.document_types[-2], today)}")
    print(f"load + compile (XSD, CEN, Peppol for invoice and credit note): {compile_s:.2f} s")
    print(f"RSS: {before:.0f} MiB before, {loaded:.0f} MiB with the compiled rules loaded and warmed up "
          f"(+{loaded - before:.0f} MiB)")
    print(f"{'case':<6} {'bytes':>9} {'runs':>6} {'ms/doc':>8} {'docs/s/core':>12} {'p50 ms':>8} {'p99 ms':>8}")
    for name, document in (("10KB", small), ("1MB", large)):
        runs, total, times = rate(check, document, args.seconds)
        print(f"{name:<6} {len(document):>9} {runs:>6} {1000 * total / runs:>8.2f} {runs / total:>12.1f} "
              f"{1000 * statistics.median(times):>8.2f} {1000 * percentile(times, 0.99):>8.2f}")
    print(f"RSS after the runs: {rss_mib():.0f} MiB; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
