"""Shared fixtures: where the read-only reference vectors live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PEPPOL_SHARED", ROOT.parent / "shared")).resolve()
VECTORS = SHARED / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.is_dir():
        raise RuntimeError(f"reference vectors not found at {VECTORS}; set PEPPOL_SHARED")
    return VECTORS
