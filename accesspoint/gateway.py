"""The assembled runtime of one gateway process: configuration, our keys, trust, database, blobs, discovery.

Built once per process by `build_gateway` (the web app, the worker and CLI commands share it) so every part
reads the same validated configuration and nothing opens its own database or key store on the side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from accesspoint.adapters.blobs import FilesystemBlobStore
from accesspoint.adapters.discovery import build_discovery
from accesspoint.adapters.rules import RulesDirectory
from accesspoint.adapters.validation import Validator
from accesspoint.config import (
    Config,
    ConfigError,
    certificate_validator,
    egress_policy,
    key_material,
    smp_key_material,
    trust_anchors,
)
from accesspoint.core import InboundLimits
from accesspoint.store.database import begin_write, display_url, make_engine, session_factory, upgrade
from base.egress import EgressPolicy
from certs.anchors import TrustAnchors
from certs.keystore import KeyMaterial
from certs.validation import CertificateValidator
from smp.client import Discovery

T = TypeVar("T")


@dataclass
class Gateway:
    config: Config
    key: KeyMaterial
    smp_key: KeyMaterial | None
    anchors: TrustAnchors
    validator: CertificateValidator
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: FilesystemBlobStore
    _discovery: Discovery | None = field(default=None, repr=False)

    @property
    def public_url(self) -> str:
        return self.config.public_url

    @property
    def as4_url(self) -> str:
        """Our AS4 endpoint as other access points reach it (published in our SMP)."""
        return f"{self.public_url}/as4"

    @property
    def smp_url(self) -> str:
        """Our SMP base URL (the logical address registered in the SML)."""
        return f"{self.public_url}/smp"

    @property
    def seat_id(self) -> str:
        """Our AP certificate's CN: the PartyId we send and answer with."""
        return self.key.subject_cn

    @cached_property
    def message_id_domain(self) -> str:
        """Right-hand side of the AS4 MessageIds we create (`uuid@domain`, as4.md pitfall 10)."""
        return urlsplit(self.public_url).hostname or "peppol-ap"

    @cached_property
    def inbound_limits(self) -> InboundLimits:
        """What one inbound message may cost, from the [as4] section (built once, not per request)."""
        return InboundLimits(**self.config.as4.model_dump())

    @cached_property
    def egress(self) -> EgressPolicy:
        """Where the gateway may connect on someone else's behalf (webhooks, AS4 endpoints, the Directory), from
        [egress]; built once."""
        return egress_policy(self.config)

    @cached_property
    def bis(self) -> Validator:
        """The BIS validator of [validation]; it compiles the rules on first use, so a process that never validates
        never pays for them, and every request of a process shares one compiled copy."""
        return build_validator(self.config)

    @property
    def discovery(self) -> Discovery:
        """SML + SMP discovery for this environment, built on first use (CLI commands that never send skip it)."""
        if self._discovery is None:
            self._discovery = build_discovery(self.config, self.validator)
        return self._discovery

    @contextmanager
    def read(self) -> Iterator[Session]:
        """One of the two transaction idioms: a transaction that takes no lock up front, for reads and for writes
        that depend on nothing read before them (plain inserts). Commits when the block ends normally and rolls
        back otherwise."""
        with self.sessions() as session, session.begin():
            yield session

    def claim(self, claimer: Callable[[Session], T]) -> T:
        """Run a queue claim (`claim_outbound`, `claim_deliveries`: both through `store.database.claim`, which opens
        and commits its own short write transaction, so no row lock is held while the worker talks to the network)
        on a fresh session."""
        with self.sessions() as session:
            return claimer(session)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """The other transaction idiom, for read-then-write work: the write lock is taken up front (SQLite:
        BEGIN IMMEDIATE; a deferred transaction that read first fails with "database is locked" when another
        process wrote meanwhile; PostgreSQL: an ordinary transaction, row locks and constraints do that work)."""
        with self.sessions() as session:
            begin_write(session)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


def build_validator(cfg: Config) -> Validator:
    """A BIS validator over the configured rules directory (for commands that validate without a gateway)."""
    return Validator(RulesDirectory(cfg.rules_dir), cfg.validation, cfg.as4.max_payload_bytes)


def build_gateway(cfg: Config, *, migrate: bool = True) -> Gateway:
    """Everything a gateway process needs; raises ConfigError (one line) for configuration problems."""
    material = key_material(cfg)
    anchors = trust_anchors(cfg)
    engine = make_engine(cfg.database_url)
    if migrate:
        try:
            upgrade(engine)
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ConfigError(f"database.url: cannot migrate {display_url(cfg.database_url)}: {detail}") from None
    return Gateway(
        config=cfg,
        key=material,
        smp_key=smp_key_material(cfg),
        anchors=anchors,
        validator=certificate_validator(cfg, anchors),
        engine=engine,
        sessions=session_factory(engine),
        blobs=FilesystemBlobStore(cfg.data_dir / "blobs"),
    )
