"""Fixtures for the certs tests: one dev PKI per session (creating keys is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from certs.devpki import DevPki, init_pki


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return init_pki(tmp_path_factory.mktemp("pki") / "dev")


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A second dev PKI: same CA names as dev_pki, different keys (forged-issuer cases)."""
    return init_pki(tmp_path_factory.mktemp("pki") / "other")


@pytest.fixture()
def leaf_dir(tmp_path: Path) -> Path:
    return tmp_path / "leaves"
