"""A small authoritative DNS server for one SML zone, serving NAPTR records (dnslib).

Used by the tests, the benchmark and the local SML. Records come from a JSON file that is
re-read whenever it changes, so another process (the local SML) can publish and withdraw
participants by rewriting the file (`write_records` does that atomically, `set_records` changes one
name under a lock):

    {"ttl": 60,
     "records": {"<name relative to the zone or absolute>": [
         {"order": 100, "preference": 10, "flags": "U", "service": "Meta:SMP",
          "regexp": "!^.*$!https://smp.example.test!", "replacement": "."}]},
     "servfail": ["<name>", ...]}

Names under the zone without records get NXDOMAIN; names listed in `servfail` get SERVFAIL (to
exercise the "temporarily unavailable" path); names outside the zone get REFUSED.

    python -m smp.dnsserver --zone local.peppol.test --port 0 --records records.json

prints `listening on 127.0.0.1:<port>` once the UDP and TCP sockets are bound.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dnslib import NAPTR, NS, QTYPE, RCODE, RR, SOA, DNSLabel, DNSRecord
from dnslib.server import DNSLogger, DNSServer


class _QuietLogger(DNSLogger):
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


def write_records(path: str | Path, records: Mapping[str, Sequence[Mapping[str, Any]]], *, ttl: int = 60,
                  servfail: Sequence[str] = ()) -> None:
    """Write a records file atomically (the server never sees a half-written file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".records-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"ttl": ttl, "records": records, "servfail": list(servfail)}, fh, indent=1)
    os.replace(tmp, path)


def read_records(path: str | Path) -> dict[str, Any]:
    """The records file as written by write_records (empty zone if the file does not exist yet)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"ttl": 60, "records": {}, "servfail": []}
    return {"ttl": int(data.get("ttl", 60)), "records": dict(data.get("records", {})),
            "servfail": list(data.get("servfail", []))}


def set_records(path: str | Path, name: str, records: Sequence[Mapping[str, Any]] | None) -> None:
    """Publish (records) or withdraw (None) one name, keeping the others; serialised between
    processes with a lock file next to the records file."""
    path = Path(path)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_records(path)
        if records is None:
            data["records"].pop(name, None)
        else:
            data["records"][name] = [dict(r) for r in records]
        write_records(path, data["records"], ttl=data["ttl"], servfail=data["servfail"])


def smp_record(smp_uri: str, *, order: int = 100, preference: int = 10) -> dict[str, Any]:
    """The U-NAPTR record the SML publishes for a participant served by the SMP at `smp_uri`."""
    return {"order": order, "preference": preference, "flags": "U", "service": "Meta:SMP",
            "regexp": f"!^.*$!{smp_uri}!", "replacement": "."}


class ZoneResolver:
    """dnslib resolver for one zone; records from a JSON file re-read when its mtime/size changes."""

    def __init__(self, zone: str, records_file: str | Path) -> None:
        self.zone = DNSLabel(zone.strip(".").lower())
        self.records_file = Path(records_file)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._records: dict[DNSLabel, list[NAPTR]] = {}
        self._servfail: set[DNSLabel] = set()
        self._ttl = 60
        self._reload()

    def _label(self, name: str) -> DNSLabel:
        name = name.strip().lower()
        if name.endswith("."):
            return DNSLabel(name)
        full = DNSLabel(name)
        return full if full.matchSuffix(self.zone) else DNSLabel(f"{name}.{self.zone}")

    def _reload(self) -> None:
        try:
            st = self.records_file.stat()
        except FileNotFoundError:
            stamp = (0, 0, 0)
        else:
            # the inode too: every write replaces the file, and two quick same-size writes share mtime and size
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp == self._stamp:
                return
            data: dict[str, Any] = {}
            if stamp != (0, 0):
                try:
                    data = json.loads(self.records_file.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    # Keep serving the last good records; a broken file must not empty the zone.
                    print(f"dnsserver: cannot read {self.records_file}: {exc}", file=sys.stderr)
                    return
            self._ttl = int(data.get("ttl", 60))
            self._records = {
                self._label(name): [
                    NAPTR(int(r["order"]), int(r["preference"]), str(r["flags"]).encode(),
                          str(r["service"]).encode(), str(r["regexp"]).encode(), r.get("replacement", ".") or ".")
                    for r in recs
                ]
                for name, recs in data.get("records", {}).items()
            }
            self._servfail = {self._label(name) for name in data.get("servfail", [])}
            self._stamp = stamp

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        self._reload()
        reply = request.reply()
        qname = request.q.qname
        qtype = request.q.qtype
        if not qname.matchSuffix(self.zone):
            reply.header.rcode = RCODE.REFUSED
            return reply
        with self._lock:
            records = self._records.get(qname)
            servfail = qname in self._servfail
            ttl = self._ttl
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
            for rdata in records:
                reply.add_answer(RR(qname, QTYPE.NAPTR, ttl=ttl, rdata=rdata))
        else:
            reply.add_auth(soa)
        reply.header.aa = 1
        return reply


class ZoneServer:
    """UDP and TCP servers on the same port, in daemon threads."""

    def __init__(self, zone: str, records_file: str | Path, *, address: str = "127.0.0.1", port: int = 0) -> None:
        self.resolver = ZoneResolver(zone, records_file)
        logger = _QuietLogger()
        self._udp = DNSServer(self.resolver, address=address, port=port, logger=logger)
        self.address, self.port = self._udp.server.server_address[:2]
        self._tcp = DNSServer(self.resolver, address=address, port=self.port, tcp=True, logger=logger)

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
    parser.add_argument("--records", required=True, help="JSON records file (re-read on change)")
    parser.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0 = any free port; printed on start)")
    args = parser.parse_args(argv)
    server = ZoneServer(args.zone, args.records, address=args.address, port=args.port).start()
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
