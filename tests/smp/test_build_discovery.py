"""build_discovery takes zone, DNS servers, time-outs and cache TTLs from the configuration."""

from __future__ import annotations

from accesspoint.adapters.discovery import build_discovery
from accesspoint.config import load_config
from certs.validation import CertificateValidator


def test_configured_values(validator: CertificateValidator) -> None:
    cfg = load_config(environ={
        "PEPPOL_AP_ENVIRONMENT": "local", "PEPPOL_AP_SML__ZONE": "sml.example.test",
        "PEPPOL_AP_SML__DNS_SERVERS": "127.0.0.1:5353", "PEPPOL_AP_SMP_CLIENT__CACHE_MINUTES": "5",
        "PEPPOL_AP_SMP_CLIENT__MAX_RESPONSE_BYTES": "4096",
    })
    discovery = build_discovery(cfg, validator)
    assert discovery.sml.zone == "sml.example.test"
    assert discovery.sml.timeout == 5.0
    assert discovery.cache.positive_ttl == 300 and discovery.cache.negative_ttl == 120
    assert discovery.smp.max_bytes == 4096 and discovery.smp.timeout == (10.0, 10.0)
    assert discovery.smp.allow_sha1 is False


def test_other_environment_gets_its_peppol_zone(validator: CertificateValidator) -> None:
    cfg = load_config(environ={"PEPPOL_AP_SML__ZONE": "sml.example.test"})
    assert build_discovery(cfg, validator, environment="test").sml.zone == "participant.sml.test.tech.peppol.org"
    assert build_discovery(cfg, validator, environment="production", zone="z.test").sml.zone == "z.test"
