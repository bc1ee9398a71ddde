"""requests sessions that connect only where `base.egress.EgressPolicy` allows.

Each request's URL is judged by `check_url` before anything is sent. When urllib3 opens a new connection, the host
is resolved by `EgressPolicy.resolve` (every address checked) and the socket is connected to one of those checked
addresses, not to a second lookup of the name: a DNS answer that changes between check and connect (rebinding)
cannot slip in. TLS is unchanged: urllib3 still sends the host name as SNI and verifies the certificate against it.

A refusal raises `EgressRefused` out of the request (requests does not wrap it), so callers tell "not allowed"
from "could not connect". Redirects are never followed, proxies and credentials from the environment never used:
a proxy would make the connection on our behalf, out of the policy's sight.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

from base.egress import EgressPolicy


def _checked_socket(connection: HTTPConnection, policy: EgressPolicy) -> socket.socket:
    """What urllib3's HTTPConnection._new_conn does, but to the policy's checked addresses only."""
    try:
        addresses = policy.resolve(connection.host, connection.port)
    except socket.gaierror as exc:
        raise NameResolutionError(connection.host, connection, exc) from exc
    last: OSError | None = None
    for address in addresses:
        try:
            sock = create_connection((str(address), connection.port), connection.timeout,
                                     source_address=connection.source_address,
                                     socket_options=connection.socket_options)
        except TimeoutError as exc:
            raise ConnectTimeoutError(connection, f"Connection to {connection.host} timed out. "
                                                  f"(connect timeout={connection.timeout})") from exc
        except OSError as exc:
            last = exc
            continue
        return sock
    raise NewConnectionError(connection, f"Failed to establish a new connection: {last}")


class EgressAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections go through `policy`; `plain_http`: the protocol may use http."""

    def __init__(self, policy: EgressPolicy, *, plain_http: bool = False, **kwargs: Any) -> None:
        self.policy = policy
        self.plain_http = plain_http
        kwargs.setdefault("max_retries", 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        policy = self.policy

        class Connection(HTTPConnection):
            def _new_conn(self) -> socket.socket:
                return _checked_socket(self, policy)

        class TlsConnection(HTTPSConnection):
            def _new_conn(self) -> socket.socket:
                return _checked_socket(self, policy)

        class Pool(HTTPConnectionPool):
            ConnectionCls = Connection

        class TlsPool(HTTPSConnectionPool):
            ConnectionCls = TlsConnection

        self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TlsPool}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.policy.check_url(request.url or "", plain_http=self.plain_http)
        # through a proxy the connection would be the proxy's, made by a pool that knows no policy
        kwargs["proxies"] = {}
        return super().send(request, *args, **kwargs)


class _NoRedirects(requests.Session):
    """A 3xx is the answer: following it would reach a URL nobody chose (the caller reports it as a failure)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)


def egress_session(policy: EgressPolicy, *, plain_http: bool = False) -> requests.Session:
    """A Session for URLs someone else chose: only what `policy` allows, no redirects, no environment proxies."""
    session = _NoRedirects()
    session.trust_env = False
    # the CA bundle an operator names in the environment still counts (requests reads it only with trust_env)
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    adapter = EgressAdapter(policy, plain_http=plain_http)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
