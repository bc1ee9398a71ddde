"""AS4 throughput on one core: build+sign+encrypt (sender) and decrypt+verify+gunzip+SBDH (receiver).

    PYTHONPATH=$PWD /work/venv/bin/python bench/bench_as4.py [--seconds 5] [--profile]

Sizes: the 10 KB invoice is phase4's example SBD (vectors/as4/sbdh/good/phase4-base-sbdh.xml); the 10 MB one is
that SBD with its last InvoiceLine repeated (bench.as4_roundtrip.write_sbd). Keys come from a fresh dev PKI (RSA
2048, like Peppol's). The receive side is the receiver's recipe `accesspoint.core.open_message`, which runs the
inbound step list (MIME parse, signature policy, envelope and profile, decrypt, signature verify, certificate check
without revocation, bounded gunzip, SBDH parse and cross-check) and raises on any failure. One process, so the
figures are per core. "crypto ms" times only the cryptographic primitives of one message on the same sizes
(`crypto_floor`), "crypto %" is their share of the whole path. `--profile` runs cProfile
over the 10 KB case and splits the time into cryptography, XML (lxml), compression and the rest.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from accesspoint.core import open_message  # noqa: E402
from accesspoint.core.as4.compression import gzip_bytes  # noqa: E402
from accesspoint.core.sbdh import parse_sbdh  # noqa: E402
from bench.as4_roundtrip import write_message, write_sbd  # noqa: E402
from certs.devpki import init_pki  # noqa: E402
from certs.keystore import KeyMaterial, load_pkcs12  # noqa: E402
from certs.validation import CertificateValidator, Purpose  # noqa: E402

TEMPLATE = Path(__file__).resolve().parent.parent.parent / "shared/vectors/as4/sbdh/good/phase4-base-sbdh.xml"


def _timed(action: Callable[[], None], seconds: float, minimum: int) -> tuple[int, float]:
    """Run `action` at least `minimum` times and for at least `seconds`; (runs, total seconds)."""
    action()  # warm-up: imports, caches
    runs, started = 0, time.perf_counter()
    while runs < minimum or time.perf_counter() - started < seconds:
        action()
        runs += 1
    return runs, time.perf_counter() - started


class Case:
    def __init__(self, work: Path, label: str, sbd: Path, key: KeyMaterial, validator: CertificateValidator) -> None:
        self.label, self.sbd, self.key, self.validator = label, sbd, key, validator
        self.message = work / f"{label}.mime"
        with sbd.open("rb") as stream:
            self.header = parse_sbdh(stream)  # a sender built the SBDH, so it is not re-read per message
        with self.message.open("wb") as out:
            self.content_type, _ = write_message(sbd, key, key.certificate, out, header=self.header)
        self.wire_size = self.message.stat().st_size

    def send(self) -> None:
        write_message(self.sbd, self.key, self.key.certificate, io.BytesIO(), header=self.header)

    def receive(self) -> None:
        now = datetime.now(UTC)
        with self.message.open("rb") as stream, open_message(
                iter(lambda: stream.read(1 << 16), b""), self.content_type, our_key=self.key,
                check_signer=lambda cert: self.validator.validate(cert, Purpose.AP_SIGNING, now), now=now) as message:
            if message.sbdh is None:
                raise SystemExit(f"{self.label}: the receive path read no SBDH")


_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def crypto_floor(case: Case, ca_cert: object) -> tuple[Callable[[], None], Callable[[], None]]:
    """Only the cryptographic primitives of one message, on the real sizes: what no amount of tuning removes.

    Send: SHA-256 of the gzip bytes, RSA-SHA256 signature, AES-128-GCM encryption, RSA-OAEP key wrap. Receive:
    RSA-OAEP unwrap, AES-128-GCM decryption, SHA-256 of the gzip bytes, RSA-SHA256 signature check, and the CA's
    signature on the signer certificate.
    """
    gz = gzip_bytes(case.sbd.read_bytes())
    signed_info = os.urandom(1200)
    key, private, cert = os.urandom(16), case.key.private_key, case.key.certificate
    public = private.public_key()
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, gz, None)
    wrapped = public.encrypt(key, _OAEP)
    signature = private.sign(signed_info, padding.PKCS1v15(), hashes.SHA256())

    def send() -> None:
        hashlib.sha256(gz).digest()
        private.sign(signed_info, padding.PKCS1v15(), hashes.SHA256())
        AESGCM(key).encrypt(nonce, gz, None)
        public.encrypt(key, _OAEP)

    def receive() -> None:
        AESGCM(private.decrypt(wrapped, _OAEP)).decrypt(nonce, ciphertext, None)
        hashlib.sha256(gz).digest()
        public.verify(signature, signed_info, padding.PKCS1v15(), hashes.SHA256())
        cert.verify_directly_issued_by(ca_cert)  # type: ignore[arg-type]

    return send, receive


def _category(entry: tuple[str, int, str]) -> str:
    filename, _, function = entry
    text = f"{filename} {function}"
    if "cryptography" in text or "_rust" in text or "hashlib" in text or "_hashlib" in text or "openssl" in text:
        return "cryptography (RSA, AES-GCM, SHA-256)"
    if "lxml" in text or "safexml" in text:
        return "XML (lxml parse, C14N, serialise)"
    if "zlib" in text or "gzip" in text or "compression" in text:
        return "compression (zlib)"
    return "other Python (our modules, MIME, stdlib)"


def profile(case: Case, runs: int) -> None:
    for name, action in (("send (build+sign+encrypt)", case.send), ("receive (decrypt+verify+gunzip+sbdh)",
                                                                     case.receive)):
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(runs):
            action()
        profiler.disable()
        stats = pstats.Stats(profiler)
        totals: dict[str, float] = {}
        for entry, (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            totals[_category(entry)] = totals.get(_category(entry), 0.0) + tottime
        whole = sum(totals.values())
        print(f"\ncProfile, {case.label} {name}, {runs} runs, {whole / runs * 1000:.2f} ms per message (profiled):")
        for category, seconds in sorted(totals.items(), key=lambda item: -item[1]):
            print(f"  {category:<42} {seconds / whole * 100:5.1f} %")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
        print("  top functions by own time:")
        for line in out.getvalue().splitlines():
            if line.strip() and (line.lstrip()[0].isdigit() or line.strip().startswith("ncalls")):
                print("   ", line.rstrip()[:150])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum measuring time per row")
    parser.add_argument("--profile", action="store_true", help="also profile the 10 KB case with cProfile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-as4-") as tmp:
        work = Path(tmp)
        pki = init_pki(work / "pki")
        key = load_pkcs12(pki.ap_p12, pki.password)
        validator = CertificateValidator(pki.anchors())
        big = work / "sbd-10mb.xml"
        write_sbd(TEMPLATE, big, 10 << 20)
        cases = [Case(work, "10KB", TEMPLATE, key, validator), Case(work, "10MB", big, key, validator)]
        ap_ca = pki.anchors().ap_cas[0]
        print(f"{'case':<6} {'SBD bytes':>10} {'wire bytes':>10} {'path':<40} {'runs':>5} {'ms/msg':>9} "
              f"{'msg/s/core':>10} {'crypto ms':>9} {'crypto %':>8}")
        for case in cases:
            minimum = 3 if case.sbd.stat().st_size > 1 << 20 else 20
            floor_send, floor_receive = crypto_floor(case, ap_ca)
            for name, action, floor in (("send: build+sign+encrypt", case.send, floor_send),
                                        ("receive: decrypt+verify+gunzip+sbdh", case.receive, floor_receive)):
                runs, seconds = _timed(action, args.seconds, minimum)
                floor_runs, floor_seconds = _timed(floor, args.seconds / 2, minimum)
                per_message, crypto = seconds / runs, floor_seconds / floor_runs
                print(f"{case.label:<6} {case.sbd.stat().st_size:>10} {case.wire_size:>10} {name:<40} {runs:>5} "
                      f"{per_message * 1000:>9.2f} {1 / per_message:>10.1f} {crypto * 1000:>9.2f} "
                      f"{crypto / per_message * 100:>7.0f}%")
        if args.profile:
            profile(cases[0], 100)


if __name__ == "__main__":
    main()
