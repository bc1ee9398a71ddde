"""Our SMP's public read side (Peppol SMP 1.x, discovery.md 3): a Flask blueprint the gateway mounts.

    GET /{participant}                       ServiceGroup (unsigned)
    GET /{participant}/services/{doctype}    SignedServiceMetadata, signed with our SMP key
    GET /businesscard/{participant}          Peppol Directory business card v3

Identifiers arrive percent-encoded per path segment. Werkzeug decodes PATH_INFO exactly once
(`%3A`, `%3a` and a raw `:` all become `:`; `%23` becomes `#`; `%2F` becomes `/`) and we never
decode again, so `%253A` stays `%3A` and is rejected as unparsable (discovery.md 6.2 pitfall 5).
A participant value cannot contain `/`, so the first `/` after it separates the participant from
`services/`, and everything after `services/` is the document type, even one containing `/`.

Caching (Peppol SMP 1.x defines none; clients cache verified answers themselves, peppol-commons
for 15 minutes): every 200 answer carries `Cache-Control: public, max-age=<max_age>` (60 s by
default, so a registration change is visible to everyone within a minute while bursts of lookups
are absorbed) and a strong ETag over the exact bytes, so revalidation with If-None-Match is a
cheap 304. Signed bytes are cached per (participant, document type, digest of the unsigned
document): a data change gives a new digest, so nothing stale is ever served and unchanged data is
signed once.

Also runnable on its own for tests and local use: `create_smp_app(...)` with a
`StaticParticipantSource`, or `python -m smp.server --config smp.json` (see `main`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, Flask, Response, request
from lxml import etree
from werkzeug.serving import make_server

from certs.keystore import KeyMaterial, load_certificates, load_pkcs12
from smp.businesscard import BusinessCard, business_card_xml
from smp.identifiers import DocumentTypeId, IdentifierError, ParticipantId, ProcessId, canonical_scheme
from smp.smpxml import ProcessEndpoint, service_group_xml, service_metadata_xml, sign_service_metadata

XML_CONTENT_TYPE = "text/xml; charset=UTF-8"
DEFAULT_MAX_AGE = 60
SIGNED_CACHE_ENTRIES = 4096
SERVICES = "services/"

Registration = tuple[DocumentTypeId, Sequence[ProcessId]]


class ParticipantSource(Protocol):
    """What the SMP serves. Implemented over the database by the gateway, statically for tests."""

    def document_types(self, participant: ParticipantId) -> Sequence[Registration] | None:
        """The document types (each with its processes) we receive for `participant`; None if not ours."""
        ...

    def business_card(self, participant: ParticipantId) -> BusinessCard | None:
        """The participant's Directory business card, or None when none is published."""
        ...


class StaticParticipantSource:
    """An in-memory source; participant lookup is case-insensitive on the value (ParticipantId equality)."""

    def __init__(self, registrations: Mapping[ParticipantId, Sequence[Registration]],
                 cards: Mapping[ParticipantId, BusinessCard] | None = None) -> None:
        self.registrations = dict(registrations)
        self.cards = dict(cards or {})

    def document_types(self, participant: ParticipantId) -> Sequence[Registration] | None:
        return self.registrations.get(participant)

    def business_card(self, participant: ParticipantId) -> BusinessCard | None:
        return self.cards.get(participant)


class _SignedCache:
    """Bounded LRU of signed answers keyed by the digest of what was signed."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, ...], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, ...], value: bytes) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=UTF-8")


def _xml(body: bytes, max_age: int) -> Response:
    response = Response(body, status=200, content_type=XML_CONTENT_TYPE)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.set_etag(hashlib.sha256(body).hexdigest()[:40])
    return response.make_conditional(request)


def _participant(text: str) -> ParticipantId:
    if "::" not in text:
        raise IdentifierError("scheme", f"participant {text!r} must be given as scheme::value, "
                                        "e.g. iso6523-actorid-upis::0088:5798000000001")
    # Syntax only: a well-formed identifier we do not serve is a 404, not a 400. The scheme in any case (see
    # smp.identifiers); the value is then case-insensitive too under iso6523-actorid-upis (ParticipantId.key).
    parsed = ParticipantId.parse(text, strict=False)
    return ParticipantId(canonical_scheme(parsed.scheme), parsed.value)


def _document_type(text: str) -> DocumentTypeId:
    # The scheme in any case, like a participant's; the value stays case-sensitive (discovery.md 6.2 pitfall 6).
    parsed = DocumentTypeId.parse(text)
    return DocumentTypeId(canonical_scheme(parsed.scheme), parsed.value)


def smp_blueprint(source: ParticipantSource, smp_key: KeyMaterial, ap_certificate: x509.Certificate, as4_url: str,
                  *, public_url: str | None = None, technical_contact: str = "", description: str = "",
                  max_age: int = DEFAULT_MAX_AGE, name: str = "smp") -> Blueprint:
    """The SMP read routes. public_url: our SMP base URL as others see it (ServiceGroup hrefs);
    default: derived from each request. technical_contact/description go into every Endpoint."""
    blueprint = Blueprint(name, __name__)
    ap_der = ap_certificate.public_bytes(Encoding.DER)
    signed_cache = _SignedCache(SIGNED_CACHE_ENTRIES)

    def base_url(captured: str) -> str:
        if public_url:
            return public_url.rstrip("/")
        # request.path is decoded like `captured`, so what precedes it is the mount point.
        mount = request.path[: len(request.path) - len(captured)]
        return request.host_url.rstrip("/") + request.script_root + mount.rstrip("/")

    def served(participant: ParticipantId) -> list[Registration] | None:
        registrations = source.document_types(participant)
        if registrations is None:
            return None
        # Only document types with at least one process are published (as phoss-smp does).
        return [(doctype, processes) for doctype, processes in registrations if processes]

    def service_group(participant_text: str, captured: str) -> Response:
        try:
            participant = _participant(participant_text)
        except IdentifierError as exc:
            return _plain(400, str(exc))
        registrations = served(participant)
        if registrations is None:
            return _plain(404, f"participant {participant.uri} is not served by this SMP")
        body = service_group_xml(participant, [doctype for doctype, _ in registrations], base_url(captured))
        return _xml(body, max_age)

    def service_metadata(participant_text: str, doctype_text: str) -> Response:
        try:
            participant = _participant(participant_text)
            doctype = _document_type(doctype_text)
        except IdentifierError as exc:
            return _plain(400, str(exc))
        registrations = served(participant)
        if registrations is None:
            return _plain(404, f"participant {participant.uri} is not served by this SMP")
        # Document type identifiers are case-sensitive: exact match only (discovery.md 6.2 pitfall 6).
        processes = next((p for d, p in registrations if d == doctype), None)
        if processes is None:
            return _plain(404, f"participant {participant.uri} does not receive document type {doctype.uri} here")
        unsigned = service_metadata_xml(participant, doctype, [
            ProcessEndpoint(process, as4_url, ap_der, description=description, contact=technical_contact)
            for process in processes
        ])
        digest = hashlib.sha256(etree.tostring(unsigned, method="c14n")).hexdigest()
        key = (participant.scheme, participant.key, doctype.uri, digest)
        body = signed_cache.get(key)
        if body is None:
            body = sign_service_metadata(unsigned, smp_key)
            signed_cache.put(key, body)
        return _xml(body, max_age)

    @blueprint.get("/businesscard/<path:pid>")
    def business_card(pid: str) -> Response:
        try:
            participant = _participant(pid)
        except IdentifierError as exc:
            return _plain(400, str(exc))
        card = source.business_card(participant)
        if card is None:
            return _plain(404, f"no business card is published for {participant.uri}")
        return _xml(business_card_xml(card), max_age)

    @blueprint.get("/<path:path>")
    def participant_resource(path: str) -> Response:
        participant_text, slash, rest = path.partition("/")
        if not slash or not rest:
            return service_group(participant_text, path)
        if rest.startswith(SERVICES) and len(rest) > len(SERVICES):
            return service_metadata(participant_text, rest[len(SERVICES):])
        return _plain(404, "unknown SMP resource: use /{participant} or /{participant}/services/{document type}")

    return blueprint


def create_smp_app(source: ParticipantSource, smp_key: KeyMaterial, ap_certificate: x509.Certificate, as4_url: str,
                   *, public_url: str | None = None, technical_contact: str = "", description: str = "",
                   max_age: int = DEFAULT_MAX_AGE) -> Flask:
    """A stand-alone SMP application (tests, local use); options as for smp_blueprint."""
    app = Flask("smp.server")
    app.register_blueprint(smp_blueprint(source, smp_key, ap_certificate, as4_url, public_url=public_url,
                                         technical_contact=technical_contact, description=description,
                                         max_age=max_age))
    return app


def load_static_source(registrations: Mapping[str, Mapping[str, Sequence[str]]]) -> StaticParticipantSource:
    """{participant URI: {document type URI: [process URI, ...]}} -> StaticParticipantSource."""
    return StaticParticipantSource({
        ParticipantId.parse(pid, strict=False): [
            (DocumentTypeId.parse(doctype), [ProcessId.parse(p) for p in processes])
            for doctype, processes in doctypes.items()
        ]
        for pid, doctypes in registrations.items()
    })


def main(argv: list[str] | None = None) -> int:
    """Serve a static SMP from a JSON file:

    {"smp_keystore": "smp.p12", "ap_certificate": "ap.cert.pem", "as4_url": "https://ap.example/as4",
     "public_url": "http://127.0.0.1:8081",            (optional)
     "participants": {"iso6523-actorid-upis::9915:x": {"busdox-docid-qns::...": ["cenbii-procid-ubl::..."]}}}

    The keystore password comes from the SMP_KEYSTORE_PASSWORD environment variable.
    """
    parser = argparse.ArgumentParser(prog="python -m smp.server", description="Serve a static Peppol SMP.")
    parser.add_argument("--config", required=True, help="JSON file, see the docstring of smp.server.main")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (printed on start)")
    args = parser.parse_args(argv)
    config_path = Path(args.config)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        here = config_path.parent
        smp_key = load_pkcs12(here / config["smp_keystore"], os.environ.get("SMP_KEYSTORE_PASSWORD", ""))
        ap_certificate = load_certificates(here / config["ap_certificate"])[0]
        source = load_static_source(config.get("participants", {}))
        as4_url = config["as4_url"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"smp.server: cannot use {config_path}: {exc!r}", file=sys.stderr)
        return 2
    app = create_smp_app(source, smp_key, ap_certificate, as4_url, public_url=config.get("public_url"))
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"smp listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
