"""ebMS error codes (shared/docs/as4.md section 4) and the exception every AS4 check raises.

Every failure of parsing, checking, decryption or verification is an `As4Error` carrying the code
we answer with; the pipeline turns it into an ebMS Error signal (or an HTTP 400 where phase4 does).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    short_description: str
    severity: str
    category: str


_TABLE = [
    ("EBMS:0001", "ValueNotRecognized", "failure", "Content"),
    ("EBMS:0002", "FeatureNotSupported", "warning", "Content"),
    ("EBMS:0003", "ValueInconsistent", "failure", "Content"),
    ("EBMS:0004", "Other", "failure", "Content"),
    ("EBMS:0005", "ConnectionFailure", "warning", "Communication"),
    ("EBMS:0006", "EmptyMessagePartitionChannel", "failure", "Communication"),
    ("EBMS:0007", "MimeInconsistency", "failure", "Unpackaging"),
    ("EBMS:0008", "FeatureNotSupportedInconsistency", "failure", "Unpackaging"),
    ("EBMS:0009", "InvalidHeader", "failure", "Unpackaging"),
    ("EBMS:0010", "ProcessingModeMismatch", "failure", "Processing"),
    ("EBMS:0011", "ExternalPayloadError", "failure", "Processing"),
    ("EBMS:0101", "FailedAuthentication", "failure", "Processing"),
    ("EBMS:0102", "FailedDecryption", "failure", "Processing"),
    ("EBMS:0103", "PolicyNoncompliance", "failure", "Processing"),
    ("EBMS:0201", "DysfunctionalReliability", "failure", "Processing"),
    ("EBMS:0202", "DeliveryFailure", "failure", "Communication"),
    ("EBMS:0301", "MissingReceipt", "failure", "Communication"),
    ("EBMS:0302", "InvalidReceipt", "failure", "Communication"),
    ("EBMS:0303", "DecompressionFailure", "failure", "Communication"),
    ("EBMS:4001", "DuplicateDetected", "failure", "Content"),  # phase4 >= 4.5.0
]
CODES: dict[str, ErrorCode] = {c: ErrorCode(c, s, sev, cat) for c, s, sev, cat in _TABLE}

VALUE_NOT_RECOGNIZED = "EBMS:0001"
VALUE_INCONSISTENT = "EBMS:0003"
OTHER = "EBMS:0004"
MIME_INCONSISTENCY = "EBMS:0007"
INVALID_HEADER = "EBMS:0009"
PMODE_MISMATCH = "EBMS:0010"
EXTERNAL_PAYLOAD_ERROR = "EBMS:0011"
FAILED_AUTHENTICATION = "EBMS:0101"
FAILED_DECRYPTION = "EBMS:0102"
POLICY_NONCOMPLIANCE = "EBMS:0103"
DELIVERY_FAILURE = "EBMS:0202"
INVALID_RECEIPT = "EBMS:0302"
DECOMPRESSION_FAILURE = "EBMS:0303"
DUPLICATE_DETECTED = "EBMS:4001"

NOT_SERVICED = "PEPPOL:NOT_SERVICED"


class As4Error(Exception):
    """A failure that maps to one ebMS error code.

    `detail` goes into eb:ErrorDetail (for NOT_SERVICED exactly "PEPPOL:NOT_SERVICED"),
    `description` is the human text for eb:Description. `http_status` is the status we answer
    with; 200 like phase4, or 400 for requests that are not AS4 at all (no SOAP, bad MIME).
    """

    def __init__(self, code: str, description: str, detail: str | None = None, http_status: int = 200) -> None:
        if code not in CODES:
            raise ValueError(f"unknown ebMS error code {code}")
        super().__init__(f"{code} {CODES[code].short_description}: {description}")
        self.code = code
        self.description = description
        self.detail = detail if detail is not None else description
        self.http_status = http_status

    @property
    def info(self) -> ErrorCode:
        return CODES[self.code]
