"""smp.dnsserver answers like an authoritative SML zone (queried with dnspython over UDP and TCP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from smp.dnsserver import ZoneServer, read_records, set_records, smp_record, write_records

ZONE = "local.peppol.test"
NAME = f"abc.iso6523-actorid-upis.{ZONE}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZoneServer]:
    records = tmp_path_factory.mktemp("zone") / "records.json"
    write_records(records, {"abc.iso6523-actorid-upis": [smp_record("https://smp.example.test"),
                                                          smp_record("https://backup.example.test", order=200)]},
                  ttl=30, servfail=[f"broken.iso6523-actorid-upis.{ZONE}."])
    zone_server = ZoneServer(ZONE, records).start()
    yield zone_server
    zone_server.stop()


def ask(server: ZoneServer, name: str, rdtype: str, *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, "127.0.0.1", timeout=2, port=server.port)


@pytest.mark.parametrize("tcp", [False, True])
def test_naptr_answer(server: ZoneServer, tcp: bool) -> None:
    reply = ask(server, NAME.upper(), "NAPTR", tcp=tcp)
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    rrset = reply.answer[0]
    assert rrset.ttl == 30
    records = sorted(rrset, key=lambda r: r.order)
    assert [(r.order, r.flags, r.service, r.regexp) for r in records] == [
        (100, b"U", b"Meta:SMP", b"!^.*$!https://smp.example.test!"),
        (200, b"U", b"Meta:SMP", b"!^.*$!https://backup.example.test!"),
    ]


def test_unknown_name_is_nxdomain_with_soa(server: ZoneServer) -> None:
    reply = ask(server, f"nobody.iso6523-actorid-upis.{ZONE}", "NAPTR")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_other_types_of_a_known_name_are_empty(server: ZoneServer) -> None:
    reply = ask(server, NAME, "A")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer


def test_apex_soa_and_ns(server: ZoneServer) -> None:
    assert ask(server, ZONE, "SOA").answer[0].rdtype == dns.rdatatype.SOA
    assert ask(server, ZONE, "NS").answer[0][0].target.to_text() == f"ns.{ZONE}."


def test_servfail_and_refused(server: ZoneServer) -> None:
    assert ask(server, f"broken.iso6523-actorid-upis.{ZONE}", "NAPTR").rcode() == dns.rcode.SERVFAIL
    assert ask(server, "example.org", "NAPTR").rcode() == dns.rcode.REFUSED


def test_records_file_is_reread_and_a_broken_file_keeps_the_last_records(tmp_path: Path) -> None:
    records = tmp_path / "records.json"
    write_records(records, {"abc.iso6523-actorid-upis": [smp_record("https://smp.example.test")]})
    server = ZoneServer(ZONE, records).start()
    try:
        _reread(server, records)
    finally:
        server.stop()


def _reread(server: ZoneServer, records: Path) -> None:
    assert ask(server, NAME, "NAPTR").answer
    write_records(records, {f"new.iso6523-actorid-upis.{ZONE}.": [smp_record("https://new.example.test")]})
    assert ask(server, f"new.iso6523-actorid-upis.{ZONE}", "NAPTR").answer
    assert ask(server, NAME, "NAPTR").rcode() == dns.rcode.NXDOMAIN
    records.write_text("{ not json")
    assert ask(server, f"new.iso6523-actorid-upis.{ZONE}", "NAPTR").answer


def test_set_records_publishes_and_withdraws_one_name(tmp_path: Path) -> None:
    records = tmp_path / "records.json"
    assert read_records(records) == {"ttl": 60, "records": {}, "servfail": []}
    set_records(records, "a.iso6523-actorid-upis", [smp_record("https://a.example.test")])
    set_records(records, "b.iso6523-actorid-upis", [smp_record("https://b.example.test")])
    set_records(records, "a.iso6523-actorid-upis", None)
    data = read_records(records)
    assert list(data["records"]) == ["b.iso6523-actorid-upis"]
    assert data["records"]["b.iso6523-actorid-upis"][0]["regexp"] == "!^.*$!https://b.example.test!"
    server = ZoneServer(ZONE, records).start()
    try:
        assert ask(server, f"b.iso6523-actorid-upis.{ZONE}", "NAPTR").answer
        assert ask(server, f"a.iso6523-actorid-upis.{ZONE}", "NAPTR").rcode() == dns.rcode.NXDOMAIN
    finally:
        server.stop()
