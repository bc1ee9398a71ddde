"""BIS validation, the pure parts: the report model, SVRL reading, and which rule release applies when.

The engine that runs the official artefacts (lxml for the UBL XSD, Saxon for the compiled Schematron XSLTs) and the
rules directory are adapters (`accesspoint.adapters.validation`, `accesspoint.adapters.rules`); this package reads
no file and no clock.
"""

from accesspoint.core.validation.releases import (
    ReleaseError,
    newest_in_force,
    release_key,
    select_release,
)
from accesspoint.core.validation.report import (
    FATAL,
    WARNING,
    XSD_RULE,
    Finding,
    Report,
    Status,
)
from accesspoint.core.validation.svrl import line_of, parse_svrl, xpath1

__all__ = [
    "FATAL",
    "WARNING",
    "XSD_RULE",
    "Finding",
    "ReleaseError",
    "Report",
    "Status",
    "line_of",
    "newest_in_force",
    "parse_svrl",
    "release_key",
    "select_release",
    "xpath1",
]
