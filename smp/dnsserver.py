"""A small authoritative DNS server for one SML zone, serving NAPTR records (dnslib).

Used by the tests, the benchmarks and the local SML. Records come from a zone store
(smp.zonestore: SQLite, one row per name) that another process, the local SML, writes while this
server runs; each query is one indexed SELECT, so publishing a participant costs the same with ten
or ten thousand names in the zone.

Names under the zone without records get NXDOMAIN; names in the store's servfail table get
SERVFAIL (to exercise the "temporarily unavailable" path); names outside the zone get REFUSED.

    python -m smp.dnsserver --zone local.peppol.test --port 0 --store zone.sqlite

prints `listening on 127.0.0.1:<port>` once the UDP and TCP sockets are bound.
"""

from __future__ import annotations

import argparse
import errno
import sys
import threading
from pathlib import Path

from dnslib import NAPTR, NS, QTYPE, RCODE, RR, SOA, DNSLabel, DNSRecord
from dnslib.server import DNSLogger, DNSServer

from smp.zonestore import ZoneStore

DEFAULT_TTL = 60


class _QuietLogger(DNSLogger):
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


class ZoneResolver:
    """dnslib resolver for one zone; every answer is read from the zone store at query time."""

    def __init__(self, zone: str, store: ZoneStore, ttl: int = DEFAULT_TTL) -> None:
        self.zone = DNSLabel(zone.strip(".").lower())
        self.store = store
        self.ttl = ttl

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        qname = request.q.qname
        qtype = request.q.qtype
        if not qname.matchSuffix(self.zone):
            reply.header.rcode = RCODE.REFUSED
            return reply
        ttl = self.ttl
        records, servfail = self.store.lookup(str(qname))
        soa = RR(self.zone, QTYPE.SOA, ttl=ttl,
                 rdata=SOA(f"ns.{self.zone}", f"hostmaster.{self.zone}", (1, 3600, 600, 86400, ttl)))
        if servfail:
            reply.header.rcode = RCODE.SERVFAIL
        elif qname == self.zone:
            if qtype in (QTYPE.SOA, QTYPE.ANY):
                reply.add_answer(soa)
            if qtype in (QTYPE.NS, QTYPE.ANY):
                reply.add_answer(RR(self.zone, QTYPE.NS, ttl=ttl, rdata=NS(f"ns.{self.zone}")))
            if not reply.rr:
                reply.add_auth(soa)
        elif records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(soa)
        elif qtype in (QTYPE.NAPTR, QTYPE.ANY):
            for r in records:
                rdata = NAPTR(int(r["order"]), int(r["preference"]), str(r["flags"]).encode(),
                              str(r["service"]).encode(), str(r["regexp"]).encode(), r.get("replacement", ".") or ".")
                reply.add_answer(RR(qname, QTYPE.NAPTR, ttl=ttl, rdata=rdata))
        else:
            reply.add_auth(soa)
        reply.header.aa = 1
        return reply


PORT_ATTEMPTS = 20


class ZoneServer:
    """UDP and TCP servers on the same port, in daemon threads."""

    def __init__(self, zone: str, store: str | Path | ZoneStore, *, address: str = "127.0.0.1", port: int = 0,
                 ttl: int = DEFAULT_TTL) -> None:
        self.resolver = ZoneResolver(zone, store if isinstance(store, ZoneStore) else ZoneStore(store), ttl)
        logger = _QuietLogger()
        # Port 0: the UDP socket picks a free port, but TCP on the same number may be taken by someone else;
        # then let go of that UDP port and pick another. A port given explicitly is used or fails as it is.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._udp = DNSServer(self.resolver, address=address, port=port, logger=logger)
            self.address, self.port = self._udp.server.server_address[:2]
            try:
                self._tcp = DNSServer(self.resolver, address=address, port=self.port, tcp=True, logger=logger)
                break
            except OSError as exc:
                self._udp.server.server_close()
                if port != 0 or exc.errno != errno.EADDRINUSE or attempt == PORT_ATTEMPTS:
                    raise

    def start(self) -> ZoneServer:
        self._udp.start_thread()
        self._tcp.start_thread()
        return self

    def stop(self) -> None:
        for server in (self._udp, self._tcp):
            server.stop()
            server.server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smp.dnsserver", description=__doc__.split("\n\n")[0])
    parser.add_argument("--zone", required=True, help="zone served, e.g. local.peppol.test")
    parser.add_argument("--store", required=True, help="zone store (SQLite, smp.zonestore; created if missing)")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL, help=f"TTL of every answer (default {DEFAULT_TTL})")
    parser.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0 = any free port; printed on start)")
    args = parser.parse_args(argv)
    try:
        store = ZoneStore(args.store)
    except ValueError as exc:
        print(f"dnsserver: {exc}", file=sys.stderr)
        return 2
    server = ZoneServer(args.zone, store, address=args.address, port=args.port, ttl=args.ttl).start()
    print(f"listening on {server.address}:{server.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
