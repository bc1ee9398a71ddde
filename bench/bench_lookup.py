"""Lookups per second, cold and cached, against a local NAPTR DNS server process and a local SMP.

    PYTHONPATH=$PWD /work/venv/bin/python bench/bench_lookup.py [--participants 50] [--cached 2000]

Cold = every lookup goes to DNS and the SMP, verifies the XML signature and both certificates.
Cached = the same lookups answered by the discovery cache. Figures are printed, nothing asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from base.egress import EgressPolicy  # noqa: E402
from certs.anchors import TrustAnchors  # noqa: E402
from certs.keystore import load_certificates, load_pkcs12  # noqa: E402
from certs.validation import CertificateValidator  # noqa: E402
from smp.cache import DiscoveryCache  # noqa: E402
from smp.client import NEGATIVE_ERRORS, Discovery, SmpClient  # noqa: E402
from smp.identifiers import BIS3_INVOICE, BIS3_PROCESS  # noqa: E402
from smp.lookup import SmlLookup, naptr_name  # noqa: E402
from smp.zonestore import ZoneStore, put_records, smp_record  # noqa: E402
from tests.smp.conftest import Ident  # noqa: E402
from tests.smp.smpserver import EndpointSpec, SmpServer, dns_server, service_information, sign  # noqa: E402

ZONE = "local.peppol.test"
PKI = ROOT.parent / "shared" / "vectors" / "smp" / "generated" / "pki"

# the SMPs here run on 127.0.0.1, as in the local environment
LOOPBACK = EgressPolicy(loopback=True, plain_http=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=50, help="distinct participants (cold lookups)")
    parser.add_argument("--cached", type=int, default=2000, help="cached lookups to time")
    parser.add_argument("--pki", type=Path, default=PKI, help="vectors/smp/generated/pki")
    args = parser.parse_args()

    anchors = TrustAnchors("local", tuple(load_certificates(args.pki / "test-root-ca.cert.pem")),
                           tuple(load_certificates(args.pki / "test-ap-ca.cert.pem")),
                           tuple(load_certificates(args.pki / "test-smp-ca.cert.pem")))
    validator = CertificateValidator(anchors)
    smp_key = load_pkcs12(args.pki / "smp-a.p12", "test")
    ap_cert = load_pkcs12(args.pki / "ap-c.p12", "test").certificate
    participants = [Ident("iso6523-actorid-upis", f"9915:bench{i:05d}") for i in range(args.participants)]

    with tempfile.TemporaryDirectory() as tmp, SmpServer() as smp:
        zone = ZoneStore(Path(tmp) / "zone.sqlite")
        with zone.transaction() as db:
            for p in participants:
                put_records(db, naptr_name(p, ZONE), [smp_record(smp.base)])
        zone.close()
        for p in participants:
            spec = EndpointSpec((BIS3_PROCESS.scheme, BIS3_PROCESS.value), "https://ap.example.test/as4", ap_cert)
            body = sign(service_information((p.scheme, p.value), (BIS3_INVOICE.scheme, BIS3_INVOICE.value), [spec]),
                        smp_key)
            smp.serve((p.scheme, p.value), (BIS3_INVOICE.scheme, BIS3_INVOICE.value), body)
        with dns_server(ZONE, zone.path) as port:
            now = datetime.now(UTC)
            client = SmpClient(validator, egress=LOOPBACK, timeout=5.0, clock=lambda: now)
            discovery = Discovery(SmlLookup(ZONE, [f"127.0.0.1:{port}"], 5.0), client, validator,
                                  DiscoveryCache(900, 120, negative_types=NEGATIVE_ERRORS))
            start = time.perf_counter()
            for p in participants:
                discovery.find_endpoint(p, BIS3_INVOICE, BIS3_PROCESS)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            for i in range(args.cached):
                discovery.find_endpoint(participants[i % len(participants)], BIS3_INVOICE, BIS3_PROCESS)
            cached = time.perf_counter() - start
            stats = discovery.cache.stats()
    print(f"cold lookups    {len(participants):6d} in {cold:7.3f} s  = {len(participants) / cold:10.1f} /s "
          f"({cold / len(participants) * 1000:.2f} ms each: DNS + SMP GET + signature + 2 certificate checks)")
    print(f"cached lookups  {args.cached:6d} in {cached:7.3f} s  = {args.cached / cached:10.1f} /s")
    print(f"cache stats     {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
