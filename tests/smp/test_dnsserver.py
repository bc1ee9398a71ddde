"""smp.dnsserver answers like an authoritative SML zone (queried with dnspython over UDP and TCP)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from smp.dnsserver import ZoneServer
from smp.zonestore import ZoneStore, smp_record
from tests.smp.zones import names as zone_names
from tests.smp.zones import set_records, set_servfail

ZONE = "local.peppol.test"
NAME = f"abc.iso6523-actorid-upis.{ZONE}"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZoneServer]:
    store = ZoneStore(tmp_path_factory.mktemp("zone") / "zone.sqlite")
    set_records(store, NAME + ".", [smp_record("https://smp.example.test"),
                                   smp_record("https://backup.example.test", order=200)])
    set_servfail(store, f"broken.iso6523-actorid-upis.{ZONE}.")
    zone_server = ZoneServer(ZONE, store, ttl=30).start()
    yield zone_server
    zone_server.stop()
    store.close()


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


def test_changes_by_another_writer_are_answered_at_once(tmp_path: Path) -> None:
    # The server process reads the file the SML process writes: a second handle stands for the writer.
    server = ZoneServer(ZONE, tmp_path / "zone.sqlite").start()
    writer = ZoneStore(tmp_path / "zone.sqlite")
    try:
        assert ask(server, NAME, "NAPTR").rcode() == dns.rcode.NXDOMAIN
        set_records(writer, NAME, [smp_record("https://a.example.test")])
        assert [rd.regexp for rd in ask(server, NAME, "NAPTR").answer[0]] == [b"!^.*$!https://a.example.test!"]
        set_records(writer, NAME, [smp_record("https://b.example.test")])
        assert [rd.regexp for rd in ask(server, NAME, "NAPTR").answer[0]] == [b"!^.*$!https://b.example.test!"]
        set_records(writer, NAME, None)
        assert ask(server, NAME, "NAPTR").rcode() == dns.rcode.NXDOMAIN
        set_servfail(writer, NAME)
        assert ask(server, NAME, "NAPTR").rcode() == dns.rcode.SERVFAIL
        set_servfail(writer, NAME, False)
        assert ask(server, NAME, "NAPTR").rcode() == dns.rcode.NXDOMAIN
    finally:
        server.stop()
        writer.close()


def test_store_names_are_case_insensitive_and_absolute(tmp_path: Path) -> None:
    store = ZoneStore(tmp_path / "zone.sqlite")
    try:
        set_records(store, NAME.upper() + ".", [smp_record("https://a.example.test")])
        assert zone_names(store) == {NAME}
        assert store.lookup(NAME)[0] == [smp_record("https://a.example.test")]
        assert store.lookup(f"other.{ZONE}") == (None, False)
    finally:
        store.close()


def test_a_file_that_is_not_a_store_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "zone.sqlite"
    broken.write_text("not a database, just some text that is long enough " * 20)
    with pytest.raises(ValueError, match=r"zone store .*zone\.sqlite is not a usable SQLite database"):
        ZoneStore(broken)
    result = subprocess.run([sys.executable, "-m", "smp.dnsserver", "--zone", ZONE, "--store", str(broken)],
                            cwd=ROOT, capture_output=True, text=True, timeout=30,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "not a usable SQLite database" in result.stderr


def test_a_free_port_whose_tcp_side_is_taken_is_skipped(tmp_path: Path) -> None:
    taken: list[socket.socket] = []
    real_bind = socket.socket.bind

    def bind(sock: socket.socket, addr: tuple[str, int]) -> None:
        real_bind(sock, addr)
        if sock.type == socket.SOCK_DGRAM and not taken:
            # someone else grabs TCP on the port UDP just got
            blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            real_bind(blocker, ("127.0.0.1", sock.getsockname()[1]))
            blocker.listen()
            taken.append(blocker)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "bind", bind)
        server = ZoneServer("local.peppol.test", tmp_path / "zone.sqlite").start()
    try:
        assert taken and server.port != taken[0].getsockname()[1]
    finally:
        server.stop()
        taken[0].close()
