"""Discovery wired from the configuration ([sml] and [smp_client] sections), for the sending
pipeline and the CLI. The validator (certs.validation.CertificateValidator with the environment's
anchors and, normally, a revocation checker) is built by the caller."""

from __future__ import annotations

from typing import Any

from accesspoint.config import Config, egress_policy
from smp.cache import DiscoveryCache
from smp.client import NEGATIVE_ERRORS, Discovery, SmpClient
from smp.lookup import SML_ZONES, SmlLookup


def build_discovery(cfg: Config, validator: Any, *, environment: str | None = None, zone: str | None = None,
                    dns_servers: list[str] | None = None, allow_sha1: bool = False) -> Discovery:
    """A Discovery for `environment` (default: the configured one). The configured sml.zone only
    applies to the configured environment; another environment gets its own Peppol zone."""
    env = environment or cfg.environment
    same = env == cfg.environment  # the configured zone and DNS servers belong to the configured environment
    configured_zone = cfg.sml.zone if same else ""
    servers = dns_servers or (cfg.dns_servers if same else list(cfg.sml.dns_servers))
    sml = SmlLookup(zone or configured_zone or SML_ZONES[env], servers or None, cfg.sml.timeout_seconds)
    smp_cfg = cfg.smp_client
    client = SmpClient(validator, egress=egress_policy(cfg, env), timeout=smp_cfg.timeout_seconds,
                       max_bytes=smp_cfg.max_response_bytes, allow_sha1=allow_sha1)
    cache: DiscoveryCache[Any] = DiscoveryCache(
        positive_ttl=smp_cfg.cache_minutes * 60.0,
        negative_ttl=smp_cfg.negative_cache_minutes * 60.0,
        negative_types=NEGATIVE_ERRORS,
    )
    return Discovery(sml, client, validator, cache)
