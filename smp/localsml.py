"""A local SML for the local environment and the tests.

It speaks the SML management SOAP interface (ManageServiceMetadata: Create/Read/Update/Delete;
ManageParticipantIdentifier: Create/Delete/List/PrepareToMigrate/Migrate) on 127.0.0.1 over plain
HTTP, keeps its state in a JSON file, and publishes one U-NAPTR record
(`!^.*$!<SMP logical address>!`, flags U, service Meta:SMP) per registered participant into the
records file that `smp.dnsserver` serves, so SML lookups find participants registered here and
two local gateways find each other.

There is no TLS here, so the caller is identified by the SMP ID in the request body. Ownership is
still enforced like the real SML does it with certificates: only the SMP that registered a
participant may delete it or prepare its migration; another SMP registering it gets the BDMSL
duplicate fault (ERR-112); PrepareToMigrate/Migrate move it with a key.

    python -m smp.localsml --port 0 --records var/sml-records.json --dns-port 0 --zone local.peppol.test

prints `sml listening on http://127.0.0.1:<port>` and, with --dns-port, `dns listening on 127.0.0.1:<port>`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import make_server

from smp.dnsserver import set_records, smp_record
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


class LocalSml:
    """The SML's state and rules, without HTTP. Thread-safe; every change is written to disk at once."""

    def __init__(self, state_file: str | Path, records_file: str | Path, zone: str = DEFAULT_ZONE,
                 page_size: int = PAGE_SIZE) -> None:
        self.state_file = Path(state_file)
        self.records_file = Path(records_file)
        self.zone = zone.strip().strip(".").lower()
        self.page_size = page_size
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"smps": {}, "participants": {}, "migrations": {}}
        self._published: dict[str, list[dict[str, Any]]] = {}
        if self.state_file.exists():
            try:
                self._state.update(json.loads(self.state_file.read_text(encoding="utf-8")))
            except ValueError as exc:
                raise ValueError(f"local SML state file {self.state_file} is not valid JSON ({exc}); "
                                 "repair or remove it (removing forgets every registration)") from None
        self._publish()

    # --- persistence --------------------------------------------------------------------------------

    def _save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.state_file.parent, prefix=".sml-state-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self._state, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)
        self._publish()

    def _publish(self) -> None:
        """Bring the DNS records in line with the state, touching only names whose records changed
        (the records file may hold names of other writers; smp.dnsserver.set_records keeps them)."""
        desired: dict[str, list[dict[str, Any]]] = {}
        for entry in self._state["participants"].values():
            smp = self._state["smps"].get(entry["smp_id"])
            if smp is not None:
                name = naptr_name(ParticipantId(entry["scheme"], entry["value"]), self.zone) + "."
                desired[name] = [smp_record(smp["logical_address"])]
        for name in self._published.keys() - desired.keys():
            set_records(self.records_file, name, None)
        for name, records in desired.items():
            if self._published.get(name) != records:
                set_records(self.records_file, name, records)
        self._published = desired

    # --- the operations -----------------------------------------------------------------------------

    def handle(self, req: SmlRequest) -> bytes:
        """Apply one request; returns the SOAP answer or raises Fault."""
        with self._lock:
            if req.service == SMP_SERVICE:
                answer = self._smp_operation(req)
            else:
                answer = self._participant_operation(req)
            return answer

    def _smp(self, smp_id: str) -> dict[str, str]:
        smp = self._state["smps"].get(smp_id)
        if smp is None:
            raise _not_found(f"[ERR-100] The SMP '{smp_id}' doesn't exist.")
        return smp

    def _smp_operation(self, req: SmlRequest) -> bytes:
        smps = self._state["smps"]
        if req.operation == "readIn":
            smp = self._smp(req.smp_id)
            return smp_record_response(SmpRecord(req.smp_id, smp["logical_address"], smp["physical_address"]))
        if req.operation in ("createIn", "updateIn"):
            address = req.logical_address or ""
            if not address.startswith(("http://", "https://")):
                raise _bad_request(f"[ERR-106] The logical address {address!r} is not an http(s) URL.")
            if req.operation == "createIn" and req.smp_id in smps:
                raise _bad_request(f"[ERR-106] The SMP '{req.smp_id}' already exists.")
            if req.operation == "updateIn":
                self._smp(req.smp_id)
            smps[req.smp_id] = {"logical_address": address, "physical_address": req.physical_address or ""}
        else:  # deleteIn: the SMP and every participant it registered
            self._smp(req.smp_id)
            del smps[req.smp_id]
            participants = self._state["participants"]
            for key in [k for k, v in participants.items() if v["smp_id"] == req.smp_id]:
                del participants[key]
                self._state["migrations"].pop(key, None)
        self._save()
        return void_response()

    def _participant_operation(self, req: SmlRequest) -> bytes:
        self._smp(req.smp_id)
        participants: dict[str, dict[str, str]] = self._state["participants"]
        if req.operation == "listIn":
            return self._list(req, participants)
        assert req.participant is not None  # read_request guarantees it for every other operation
        try:
            participant = ParticipantId.parse(req.participant.uri)
        except IdentifierError as exc:
            raise _bad_request(f"[ERR-106] {exc}") from None
        key = participant.uri.lower()
        entry = participants.get(key)
        if req.operation == "createIn":
            if entry is not None:
                raise _bad_request(f"[ERR-112] The participant identifier '{participant.uri}' already exists.")
            participants[key] = {"scheme": participant.scheme, "value": participant.value, "smp_id": req.smp_id}
        elif req.operation == "migrateIn":
            migration = self._state["migrations"].get(key)
            if entry is None or migration is None or migration["migration_key"] != req.migration_key:
                raise _not_found(f"[ERR-111] No migration data found for participant '{participant.uri}' and this "
                                 "migration key.")
            entry["smp_id"] = req.smp_id
            del self._state["migrations"][key]
        else:
            if entry is None:
                raise _not_found(f"[ERR-110] The participant identifier '{participant.uri}' doesn't exist.")
            if entry["smp_id"] != req.smp_id:
                raise Fault("UnauthorizedFault", f"[ERR-101] The participant identifier '{participant.uri}' is "
                                                 f"managed by another SMP, not by '{req.smp_id}'.")
            if req.operation == "deleteIn":
                del participants[key]
                self._state["migrations"].pop(key, None)
            else:  # prepareMigrateIn
                assert req.migration_key is not None
                problem = migration_key_problem(req.migration_key)
                if problem:
                    raise _bad_request(f"[ERR-106] The migration key {problem}.")
                self._state["migrations"][key] = {"migration_key": req.migration_key, "smp_id": req.smp_id}
        self._save()
        return void_response()

    def _list(self, req: SmlRequest, participants: dict[str, dict[str, str]]) -> bytes:
        ours = sorted((v for v in participants.values() if v["smp_id"] == req.smp_id),
                      key=lambda v: (v["scheme"], v["value"].lower()))
        try:
            page = int(req.next_page or "0")
        except ValueError:
            raise _bad_request(f"[ERR-106] NextPageIdentifier {req.next_page!r} is not a page number.") from None
        if page < 0:
            raise _bad_request(f"[ERR-106] NextPageIdentifier {req.next_page!r} is not a page number.")
        chunk = ours[page * self.page_size:(page + 1) * self.page_size]
        more = (page + 1) * self.page_size < len(ours)
        return participant_page_response(req.smp_id, [ParticipantId(v["scheme"], v["value"]) for v in chunk],
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


def _start_dns(zone: str, port: int, records: Path) -> tuple[subprocess.Popen[str], str]:
    # With port 0 the DNS server binds UDP to a free port and then TCP to the same number, which
    # another process may hold; that start fails and a new attempt picks another port.
    attempts = 3 if port == 0 else 1
    line = ""
    for _ in range(attempts):
        proc = subprocess.Popen(
            [sys.executable, "-m", "smp.dnsserver", "--zone", zone, "--port", str(port), "--records", str(records)],
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
    parser.add_argument("--records", required=True, help="NAPTR records file written here, served by smp.dnsserver")
    parser.add_argument("--state", help="state file (default: <records>.state.json)")
    parser.add_argument("--zone", default=DEFAULT_ZONE, help=f"SML DNS zone (default {DEFAULT_ZONE})")
    parser.add_argument("--dns-port", type=int, help="also start smp.dnsserver for the zone on this port (0 = any)")
    args = parser.parse_args(argv)
    records = Path(args.records).resolve()
    records.parent.mkdir(parents=True, exist_ok=True)
    state = Path(args.state) if args.state else records.with_name(records.name + ".state.json")
    try:
        sml = LocalSml(state, records, args.zone)
    except ValueError as exc:
        print(f"localsml: {exc}", file=sys.stderr)
        return 2
    server = make_server(args.host, args.port, create_local_sml_app(sml), threaded=True)
    print(f"sml listening on http://{args.host}:{server.server_port}", flush=True)
    dns = None
    if args.dns_port is not None:
        dns, where = _start_dns(args.zone, args.dns_port, records)
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
        if dns is not None:
            dns.terminate()
            dns.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
