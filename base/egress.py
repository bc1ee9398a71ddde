"""Egress policy: whether the gateway may connect to a URL on someone else's behalf (a webhook subscriber, an SMP
and the redirects it names, CRL/OCSP URLs taken from certificates, the Peppol Directory, a receiver's AS4 endpoint).

The decision is in two steps, and both must pass:

1. `check_url` judges the URL's form: https only (plain http where the caller's protocol needs it, like SMP
   lookups and CRL/OCSP, or in the local environment), no user information (`https://trusted@internal/`), no
   control characters or whitespace, a host that is a DNS name or an IP address in its standard spelling.
   IP literals are judged at once, whatever the spelling: `2130706433`, `0x7f000001`, `0177.0.0.1` and `127.1`
   (which the C resolver reads as 127.0.0.1) are refused as non-standard spellings, naming the address.
2. `resolve` runs at connection time: the host is looked up and EVERY address returned is checked, so a name
   that points at an internal address (or that points there only since the URL was registered) is refused.
   The caller connects to one of these checked addresses; no second lookup happens in between (DNS rebinding).
   `base.egress_http` does that for requests.

Refused: loopback, private (RFC 1918, unique local), link-local (169.254.0.0/16 with the cloud metadata services
at 169.254.169.254, fe80::/10), shared address space (CGNAT 100.64.0.0/10), multicast, unspecified, broadcast,
documentation, benchmarking and reserved ranges, and IPv6 forms that embed an IPv4 address (IPv4-mapped,
IPv4-compatible, NAT64, 6to4) when the embedded address is refused. Python's `ipaddress` flags miss several of
these (3.11 calls 64:ff9b::7f00:1 and 192.0.0.8 global), hence the explicit list.

An operator who delivers into their own network on purpose lists CIDRs or host names in `allow`. In the local
environment loopback is permitted (the local SML, SMPs, AS4 endpoints and webhook receivers all run on
127.0.0.1), and so is plain http; private and link-local addresses stay refused there too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# a.b.c.d in decimal without leading zeros: the one IPv4 spelling every parser reads the same way
_DOTTED_QUAD = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")

_IPV4_REFUSED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("169.254.169.254/32", "link-local (the cloud metadata service)"),
    ("169.254.0.0/16", "link-local"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "documentation"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("192.88.99.0/24", "reserved (6to4 relay anycast)"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_IPV6_REFUSED: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "reserved (IETF protocol assignments, Teredo)"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "reserved (SRv6 SIDs)"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
_REFUSED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), label) for net, label in _IPV4_REFUSED + _IPV6_REFUSED)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# names that are loopback by definition (RFC 6761 6.3), whatever a resolver answers
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class EgressRefused(Exception):
    """The gateway must not connect there; `reason` says why in words an organisation or operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def address_problem(ip: IPAddress) -> str | None:
    """Why `ip` is no address to connect to on someone's behalf ('loopback', 'private', ...), None if it is public.
    IPv6 forms that carry an IPv4 address are judged by that address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None) \
            or ip.sixtofour
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem}, IPv4 {embedded} embedded in IPv6" if problem else None
    for network, label in _REFUSED_NETWORKS:
        if ip.version == network.version and ip in network:
            return label
    return None if ip.is_global else "not globally routable"


def _standard_ip(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal in its standard spelling (dotted quad, or IPv6 as urlsplit gives it
    without brackets)."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return ipaddress.IPv4Address(host) if _DOTTED_QUAD.fullmatch(host) else None


def _other_spelling(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address the C resolver reads in a non-standard spelling (decimal, hex, octal, short form)."""
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def parse_allow(entries: Iterable[str]) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """The networks and host names of an allow-list ("10.20.0.0/16", "fd00::/8", "hooks.corp.example");
    ValueError naming the entry that is neither."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in entries:
        text = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        name = text.rstrip(".")
        if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")) \
                or _other_spelling(name) is not None:
            raise ValueError(f"{entry!r} is neither a CIDR network (10.20.0.0/16) nor a host name")
        hosts.add(name)
    return tuple(networks), frozenset(hosts)


@dataclass(frozen=True)
class EgressPolicy:
    """One policy per process, built from the [egress] settings and passed to every client that fetches URLs others
    chose. `loopback` and `plain_http` are what the local environment permits."""

    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = field(default_factory=frozenset)
    loopback: bool = False
    plain_http: bool = False

    @classmethod
    def from_settings(cls, allow: Iterable[str], *, local: bool) -> EgressPolicy:
        networks, hosts = parse_allow(allow)
        return cls(networks, hosts, loopback=local, plain_http=local)

    def _host_allowed(self, host: str) -> bool:
        return host in self.allow_hosts

    def check_address(self, ip: IPAddress, host: str) -> None:
        """Raise EgressRefused unless the gateway may connect to `ip` (which `host` names)."""
        if self._host_allowed(host) or any(ip.version == n.version and ip in n for n in self.allow_networks):
            return
        if self.loopback and (ip.is_loopback or (isinstance(ip, ipaddress.IPv6Address)
                                                 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)):
            return
        problem = address_problem(ip)
        if problem is not None:
            subject = host if _standard_ip(host) == ip else f"{host} ({ip})"
            raise EgressRefused(f"{subject} is not a public address: {problem}; only public addresses are "
                                "reached (an operator may allow an internal network with egress.allow)")

    def check_url(self, url: str, *, plain_http: bool = False) -> str:
        """The URL's host name (lower case, without brackets or a trailing dot) when its form is acceptable;
        EgressRefused otherwise. `plain_http`: the caller's protocol uses http (SMP, CRL, OCSP)."""
        if any(ord(c) < 0x21 or ord(c) == 0x7F or c.isspace() for c in url):
            raise EgressRefused("the URL contains a control character or whitespace")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise EgressRefused(f"the URL is malformed ({exc})") from None
        schemes = ("https", "http") if plain_http or self.plain_http else ("https",)
        scheme = parts.scheme.lower()
        if scheme == "http" and "http" not in schemes:
            raise EgressRefused("only https URLs are accepted (plain http only in the local environment)")
        if scheme not in schemes:
            raise EgressRefused(f"the scheme must be {' or '.join(schemes)}, not {scheme!r}" if scheme
                                else "the URL is not absolute (no scheme)")
        if "@" in parts.netloc:
            raise EgressRefused("the URL must not carry user information (user@host)")
        if port == 0:
            raise EgressRefused("port 0 is no port to connect to")
        host = parts.hostname or ""
        host = host[:-1] if host.endswith(".") else host
        if not host:
            raise EgressRefused("the URL has no host")
        if not host.isascii():
            raise EgressRefused("write an internationalised host name in its ASCII (xn--) form")
        literal = _standard_ip(host)
        if literal is None and ("[" in parts.netloc or ":" in host):
            raise EgressRefused(f"{host!r} is not an IPv6 address")
        if literal is None:
            other = _other_spelling(host)
            if other is not None:
                problem = address_problem(other)
                raise EgressRefused(f"{host!r} is a non-standard spelling of the IP address {other}"
                                    + (f" ({problem})" if problem else "") + "; write addresses as a.b.c.d")
            if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")) \
                    or host.rsplit(".", 1)[-1].isdigit():
                raise EgressRefused(f"{host!r} is not a valid host name")
            if not self.loopback and not self._host_allowed(host) and (
                    host in _LOOPBACK_NAMES or host.endswith(".localhost")):
                raise EgressRefused(f"{host} is a loopback name; only public addresses are reached "
                                    "(an operator may allow it with egress.allow)")
        else:
            self.check_address(literal, host)
        return host

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` resolves to, each checked: EgressRefused if any is refused (a name with one internal
        address among public ones is refused as a whole: which one a client picks is not ours to steer).
        socket.gaierror when the name does not resolve."""
        name = host.strip("[]").rstrip(".").lower()
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if ip not in addresses:
                self.check_address(ip, name)
                addresses.append(ip)
        return addresses
