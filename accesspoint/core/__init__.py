"""The protocol core: sans-IO, bytes (or byte chunks) in, values out; no web framework, database, HTTP client,
socket or clock (an explicit `now` is passed). DESIGN.md, "A protocol core without I/O".

This module is the public surface of the AS4 side, a few recipes over the internals of `core.as4` (generic ebMS 3:
MIME, eb:Messaging, WS-Security, receipts) and `core.peppol` (the Peppol AS4 profile): the flows, the doors and the
adapters import these names and nothing else from those packages (an import-linter contract in pyproject.toml says
so). The SBDH has its own surface, `accesspoint.core.sbdh`.

- open a received message: `open_message` -> `InboundMessage`, or `InboundRefusal`
- answer it: `respond` (the signed receipt) or `error_response` (a signed ebMS Error signal); `repeat_difference`
  tells an identical repeat from a reused MessageId
- inspect one: `inspect_message` -> `InspectionReport` (`human_lines` for a terminal)
- build a message: `build_message` -> `OutgoingMessage`
- open the answer to a sent one: `open_answer` -> `Receipted` | `Refused` | `BadReceipt` | `NotAnAnswer`;
  `signed_references` reads what a stored message of ours signed (what its receipt must acknowledge)

Everything that came from a peer and is wrong raises `As4Error` (with its ebMS code), and nothing else.
"""

from accesspoint.core.as4.errors import (
    DUPLICATE_DETECTED,
    INVALID_RECEIPT,
    MIME_INCONSISTENCY,
    NOT_SERVICED,
    OTHER,
    As4Error,
)
from accesspoint.core.as4.messaging import ErrorSignal, UserMessage, new_message_id
from accesspoint.core.as4.mime import BoundaryCollisionError
from accesspoint.core.peppol.answers import (
    BadReceipt,
    NotAnAnswer,
    Receipted,
    Refused,
    open_answer,
    signed_references,
)
from accesspoint.core.peppol.inbound import (
    InboundMessage,
    InboundRefusal,
    SignedReceipt,
    error_response,
    open_message,
    repeat_difference,
    respond,
)
from accesspoint.core.peppol.inspection import InspectionReport, human_lines, inspect_message
from accesspoint.core.peppol.outbound import OutgoingMessage, build_message
from accesspoint.core.peppol.steps import InboundLimits, SignerCheck

__all__ = [
    "DUPLICATE_DETECTED",
    "INVALID_RECEIPT",
    "MIME_INCONSISTENCY",
    "NOT_SERVICED",
    "OTHER",
    "As4Error",
    "BadReceipt",
    "BoundaryCollisionError",
    "ErrorSignal",
    "InboundLimits",
    "InboundMessage",
    "InboundRefusal",
    "InspectionReport",
    "NotAnAnswer",
    "OutgoingMessage",
    "Receipted",
    "Refused",
    "SignedReceipt",
    "SignerCheck",
    "UserMessage",
    "build_message",
    "error_response",
    "human_lines",
    "inspect_message",
    "new_message_id",
    "open_answer",
    "open_message",
    "repeat_difference",
    "respond",
    "signed_references",
]
