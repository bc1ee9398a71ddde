"""A local SML for the local environment and the tests.

It speaks the SML management SOAP interface (ManageServiceMetadata: Create/Read/Update/Delete;
ManageParticipantIdentifier: Create/Delete/List/PrepareToMigrate/Migrate) on 127.0.0.1 over plain
HTTP. Its state lives in a SQLite zone store (smp.zonestore) together with one U-NAPTR record
(`!^.*$!<SMP logical address>!`, flags U, service Meta:SMP) per registered participant, which
`smp.dnsserver` serves from the same file, so SML lookups find participants registered here and
two local gateways find each other. Each SOAP call changes a few rows in one transaction, so the
cost of a registration does not grow with the number of participants.

There is no TLS here, so the caller is identified by the SMP ID in the request body. Ownership is
still enforced like the real SML does it with certificates: only the SMP that registered a
participant may delete it or prepare its migration; another SMP registering it gets the BDMSL
duplicate fault (ERR-112); PrepareToMigrate/Migrate move it with a key.

    python -m smp.localsml --port 0 --store var/sml.sqlite --dns-port 0 --zone local.peppol.test

prints `sml listening on http://127.0.0.1:<port>` and, with --dns-port, `dns listening on 127.0.0.1:<port>`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.serving import make_server

from smp import zonestore
from smp.identifiers import IdentifierError, ParticipantId
from smp.lookup import naptr_name
from smp.smlsoap import (
    PARTICIPANT_SERVICE,
    SMP_SERVICE,
    SmlRequest,
    SmpRecord,
    fault_response,
    migration_key_problem,
    participant_page_response,
    read_request,
    smp_record_response,
    void_response,
)
from smp.zonestore import smp_record

DEFAULT_ZONE = "local.peppol.test"
PAGE_SIZE = 100
MAX_REQUEST_BYTES = 1024 * 1024


class Fault(Exception):
    """A SOAP fault to answer with; kind is the detail element (NotFoundFault, BadRequestFault, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _not_found(message: str) -> Fault:
    return Fault("NotFoundFault", message)


def _bad_request(message: str) -> Fault:
    return Fault("BadRequestFault", message)


# The SML's own tables, next to the zone store's naptr table in the same SQLite file. `name` is the
# participant's NAPTR name, so withdrawing or re-pointing an SMP's names is one statement.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sml_setting (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sml_smp (smp_id TEXT PRIMARY KEY, logical_address TEXT NOT NULL, "
    "physical_address TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sml_participant (key TEXT PRIMARY KEY, scheme TEXT NOT NULL, value TEXT NOT NULL, "
    "smp_id TEXT NOT NULL, name TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sml_participant_by_smp ON sml_participant (smp_id, key)",
    "CREATE TABLE IF NOT EXISTS sml_migration (key TEXT PRIMARY KEY, migration_key TEXT NOT NULL, "
    "smp_id TEXT NOT NULL)",
)


class LocalSml:
    """The SML's state and rules, without HTTP. Thread-safe; every SOAP call is one SQLite transaction
    that changes the participant rows and their NAPTR rows together (smp.zonestore)."""

    def __init__(self, store_file: str | Path, zone: str = DEFAULT_ZONE, page_size: int = PAGE_SIZE) -> None:
        self.store_file = Path(store_file)
        self.zone = zone.strip().strip(".").lower()
        self.page_size = page_size
        self._lock = threading.Lock()
        self._db = zonestore.connect(self.store_file)
        with zonestore.transaction(self._db) as db:
            for statement in SCHEMA:
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO sml_setting (key, value) VALUES ('zone', ?)", (self.zone,))
            (stored,) = db.execute("SELECT value FROM sml_setting WHERE key = 'zone'").fetchone()
        if stored != self.zone:
            self._db.close()
            raise ValueError(f"the local SML store {self.store_file} publishes the zone {stored!r}, not "
                             f"{self.zone!r}; start with --zone {stored} or use another store file")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- the operations -----------------------------------------------------------------------------

    def handle(self, req: SmlRequest) -> bytes:
        """Apply one request in one transaction; returns the SOAP answer or raises Fault (nothing changed)."""
        with self._lock, zonestore.transaction(self._db) as db:
            if req.service == SMP_SERVICE:
                return self._smp_operation(db, req)
            return self._participant_operation(db, req)

    def _smp(self, db: sqlite3.Connection, smp_id: str) -> tuple[str, str]:
        row = db.execute("SELECT logical_address, physical_address FROM sml_smp WHERE smp_id = ?",
                         (smp_id,)).fetchone()
        if row is None:
            raise _not_found(f"[ERR-100] The SMP '{smp_id}' doesn't exist.")
        return row[0], row[1]

    def _smp_operation(self, db: sqlite3.Connection, req: SmlRequest) -> bytes:
        if req.operation == "readIn":
            logical, physical = self._smp(db, req.smp_id)
            return smp_record_response(SmpRecord(req.smp_id, logical, physical))
        if req.operation in ("createIn", "updateIn"):
            address = req.logical_address or ""
            if not address.startswith(("http://", "https://")):
                raise _bad_request(f"[ERR-106] The logical address {address!r} is not an http(s) URL.")
            exists = db.execute("SELECT 1 FROM sml_smp WHERE smp_id = ?", (req.smp_id,)).fetchone()
            if req.operation == "createIn" and exists:
                raise _bad_request(f"[ERR-106] The SMP '{req.smp_id}' already exists.")
            if req.operation == "updateIn":
                self._smp(db, req.smp_id)
            db.execute("INSERT OR REPLACE INTO sml_smp (smp_id, logical_address, physical_address) VALUES (?, ?, ?)",
                       (req.smp_id, address, req.physical_address or ""))
            # every participant of the SMP now points at the new address
            db.execute("UPDATE naptr SET records = ? WHERE name IN (SELECT name FROM sml_participant WHERE smp_id = ?)",
                       (json.dumps([smp_record(address)]), req.smp_id))
        else:  # deleteIn: the SMP and every participant it registered
            self._smp(db, req.smp_id)
            db.execute("DELETE FROM naptr WHERE name IN (SELECT name FROM sml_participant WHERE smp_id = ?)",
                       (req.smp_id,))
            db.execute("DELETE FROM sml_migration WHERE key IN (SELECT key FROM sml_participant WHERE smp_id = ?)",
                       (req.smp_id,))
            db.execute("DELETE FROM sml_participant WHERE smp_id = ?", (req.smp_id,))
            db.execute("DELETE FROM sml_smp WHERE smp_id = ?", (req.smp_id,))
        return void_response()

    def _participant_operation(self, db: sqlite3.Connection, req: SmlRequest) -> bytes:
        logical, _ = self._smp(db, req.smp_id)
        if req.operation == "listIn":
            return self._list(db, req)
        assert req.participant is not None  # read_request guarantees it for every other operation
        try:
            participant = ParticipantId.parse(req.participant.uri)
        except IdentifierError as exc:
            raise _bad_request(f"[ERR-106] {exc}") from None
        key = participant.uri.lower()
        row = db.execute("SELECT smp_id, name FROM sml_participant WHERE key = ?", (key,)).fetchone()
        owner = row[0] if row else None
        if req.operation == "createIn":
            if row is not None:
                raise _bad_request(f"[ERR-112] The participant identifier '{participant.uri}' already exists.")
            name = naptr_name(participant, self.zone)
            db.execute("INSERT INTO sml_participant (key, scheme, value, smp_id, name) VALUES (?, ?, ?, ?, ?)",
                       (key, participant.scheme, participant.value, req.smp_id, zonestore.normalise(name)))
            zonestore.put_records(db, name, [smp_record(logical)])
        elif req.operation == "migrateIn":
            migration = db.execute("SELECT migration_key FROM sml_migration WHERE key = ?", (key,)).fetchone()
            if row is None or migration is None or migration[0] != req.migration_key:
                raise _not_found(f"[ERR-111] No migration data found for participant '{participant.uri}' and this "
                                 "migration key.")
            db.execute("UPDATE sml_participant SET smp_id = ? WHERE key = ?", (req.smp_id, key))
            db.execute("DELETE FROM sml_migration WHERE key = ?", (key,))
            zonestore.put_records(db, row[1], [smp_record(logical)])
        else:
            if row is None:
                raise _not_found(f"[ERR-110] The participant identifier '{participant.uri}' doesn't exist.")
            if owner != req.smp_id:
                raise Fault("UnauthorizedFault", f"[ERR-101] The participant identifier '{participant.uri}' is "
                                                 f"managed by another SMP, not by '{req.smp_id}'.")
            if req.operation == "deleteIn":
                db.execute("DELETE FROM sml_participant WHERE key = ?", (key,))
                db.execute("DELETE FROM sml_migration WHERE key = ?", (key,))
                zonestore.put_records(db, row[1], None)
            else:  # prepareMigrateIn
                assert req.migration_key is not None
                problem = migration_key_problem(req.migration_key)
                if problem:
                    raise _bad_request(f"[ERR-106] The migration key {problem}.")
                db.execute("INSERT OR REPLACE INTO sml_migration (key, migration_key, smp_id) VALUES (?, ?, ?)",
                           (key, req.migration_key, req.smp_id))
        return void_response()

    def _list(self, db: sqlite3.Connection, req: SmlRequest) -> bytes:
        try:
            page = int(req.next_page or "0")
        except ValueError:
            raise _bad_request(f"[ERR-106] NextPageIdentifier {req.next_page!r} is not a page number.") from None
        if page < 0:
            raise _bad_request(f"[ERR-106] NextPageIdentifier {req.next_page!r} is not a page number.")
        # one row more than a page tells whether another page follows
        rows = db.execute("SELECT scheme, value FROM sml_participant WHERE smp_id = ? ORDER BY key LIMIT ? OFFSET ?",
                          (req.smp_id, self.page_size + 1, page * self.page_size)).fetchall()
        more = len(rows) > self.page_size
        return participant_page_response(req.smp_id, [ParticipantId(scheme, value)
                                                      for scheme, value in rows[:self.page_size]],
                                         str(page + 1) if more else None)


def create_local_sml_app(sml: LocalSml) -> Flask:
    app = Flask("smp.localsml")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    def soap(body: bytes, status: int = 200) -> Response:
        return Response(body, status=status, content_type="text/xml; charset=UTF-8")

    @app.post(f"/<any({PARTICIPANT_SERVICE!r}, {SMP_SERVICE!r}):service>")
    def service(service: str) -> Response:
        try:
            req = read_request(service, request.headers.get("SOAPAction"), request.get_data())
            return soap(sml.handle(req))
        except Fault as fault:
            # SOAP 1.1 faults travel with HTTP 500, as the SML sends them.
            return soap(fault_response(fault.kind, fault.message), 500)
        except ValueError as exc:
            return soap(fault_response("BadRequestFault", f"[ERR-106] {exc}"), 500)

    return app


def _start_dns(zone: str, port: int, store: Path) -> tuple[subprocess.Popen[str], str]:
    # With port 0 the DNS server binds UDP to a free port and then TCP to the same number, which
    # another process may hold; that start fails and a new attempt picks another port.
    attempts = 3 if port == 0 else 1
    line = ""
    for _ in range(attempts):
        proc = subprocess.Popen(
            [sys.executable, "-m", "smp.dnsserver", "--zone", zone, "--port", str(port), "--store", str(store)],
            stdout=subprocess.PIPE, text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line.startswith("listening on "):
            return proc, line.removeprefix("listening on ")
        proc.kill()
        proc.wait(10)
    raise SystemExit(f"localsml: the DNS server did not start: {line!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smp.localsml", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address of the SOAP interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="SOAP port (0 = any free port; printed on start)")
    parser.add_argument("--store", required=True,
                        help="SQLite file holding the SML state and the NAPTR records smp.dnsserver serves")
    parser.add_argument("--zone", default=DEFAULT_ZONE, help=f"SML DNS zone (default {DEFAULT_ZONE})")
    parser.add_argument("--dns-port", type=int, help="also start smp.dnsserver for the zone on this port (0 = any)")
    args = parser.parse_args(argv)
    store = Path(args.store).resolve()
    store.parent.mkdir(parents=True, exist_ok=True)
    try:
        sml = LocalSml(store, args.zone)
    except ValueError as exc:
        print(f"localsml: {exc}", file=sys.stderr)
        return 2
    server = make_server(args.host, args.port, create_local_sml_app(sml), threaded=True)
    print(f"sml listening on http://{args.host}:{server.server_port}", flush=True)
    dns = None
    if args.dns_port is not None:
        dns, where = _start_dns(args.zone, args.dns_port, store)
        print(f"dns listening on {where}", flush=True)

    def stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever, so it must run on another thread than the signal handler's.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sml.close()
        if dns is not None:
            dns.terminate()
            dns.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
