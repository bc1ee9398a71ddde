"""An SML whose state lives in memory, for bench/bench_import.py: the SML management SOAP interface (SMP
create/read/update, participant create/delete/list) over real HTTP on 127.0.0.1, answering in constant time
whatever its size, as a remote SML does. smp.localsml rewrites its whole state file and DNS records on every
change, which makes a 10,000-participant import quadratic in the local SML rather than in the gateway.

    python bench/memory_sml.py        prints `sml listening on http://127.0.0.1:<port>`
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask, Response, request  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from smp.identifiers import ParticipantId  # noqa: E402
from smp.smlsoap import (  # noqa: E402
    PARTICIPANT_SERVICE,
    SMP_SERVICE,
    SmlRequest,
    SmpRecord,
    fault_response,
    participant_page_response,
    read_request,
    smp_record_response,
    void_response,
)

PAGE_SIZE = 100


class Fault(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class MemorySml:
    def __init__(self) -> None:
        self.smps: dict[str, SmpRecord] = {}
        self.owner: dict[ParticipantId, str] = {}
        self.listed: dict[str, list[ParticipantId]] = {}
        self.lock = threading.Lock()

    def handle(self, req: SmlRequest) -> bytes:
        with self.lock:
            if req.service == SMP_SERVICE:
                return self._smp(req)
            if req.smp_id not in self.smps:
                raise Fault("NotFoundFault", f"[ERR-100] The SMP '{req.smp_id}' doesn't exist.")
            if req.operation == "listIn":
                start = int(req.next_page or "0")
                ours = self.listed.get(req.smp_id, [])
                more = start + PAGE_SIZE < len(ours)
                return participant_page_response(req.smp_id, ours[start:start + PAGE_SIZE],
                                                 str(start + PAGE_SIZE) if more else None)
            assert req.participant is not None
            participant = req.participant
            owner = self.owner.get(participant)
            if req.operation == "createIn":
                if owner is not None:
                    raise Fault("BadRequestFault", f"[ERR-112] The participant identifier '{participant.uri}' "
                                                   "already exists.")
                self.owner[participant] = req.smp_id
                self.listed.setdefault(req.smp_id, []).append(participant)
            elif req.operation == "deleteIn":
                if owner is None:
                    raise Fault("NotFoundFault", f"[ERR-110] The participant identifier '{participant.uri}' doesn't "
                                                 "exist.")
                if owner != req.smp_id:
                    raise Fault("UnauthorizedFault", f"[ERR-101] '{participant.uri}' is managed by another SMP.")
                del self.owner[participant]
                self.listed[owner].remove(participant)
            else:
                raise Fault("BadRequestFault", f"[ERR-106] {req.operation} is not offered by this bench SML.")
            return void_response()

    def _smp(self, req: SmlRequest) -> bytes:
        if req.operation == "readIn":
            if req.smp_id not in self.smps:
                raise Fault("NotFoundFault", f"[ERR-100] The SMP '{req.smp_id}' doesn't exist.")
            return smp_record_response(self.smps[req.smp_id])
        if req.operation in ("createIn", "updateIn"):
            self.smps[req.smp_id] = SmpRecord(req.smp_id, req.logical_address or "", req.physical_address or "")
            return void_response()
        raise Fault("BadRequestFault", f"[ERR-106] {req.operation} is not offered by this bench SML.")


def create_app(sml: MemorySml) -> Flask:
    app = Flask("bench.memory_sml")

    @app.post(f"/<any({PARTICIPANT_SERVICE!r}, {SMP_SERVICE!r}):service>")
    def service(service: str) -> Response:
        try:
            body, status = sml.handle(read_request(service, request.headers.get("SOAPAction"), request.get_data())), 200
        except Fault as fault:
            body, status = fault_response(fault.kind, str(fault)), 500
        except ValueError as exc:
            body, status = fault_response("BadRequestFault", f"[ERR-106] {exc}"), 500
        return Response(body, status=status, content_type="text/xml; charset=UTF-8")

    return app


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, create_app(MemorySml()), threaded=True)
    print(f"sml listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
