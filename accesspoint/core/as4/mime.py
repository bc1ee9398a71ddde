"""MIME multipart/related for AS4: a streaming reader tolerant of every form seen in the wild, and phase4's writer.

Reading (`parse_message`) works from a stream in fixed-size chunks. Part bodies are decoded
(Content-Transfer-Encoding) while they stream and land in `SpooledTemporaryFile`s, so a 100 MB attachment is never
held in memory. Forms accepted (shared/docs/as4.md section 1 and pitfall 7, python-libraries.md "Wire details"):
with or without `start`; preamble lines (peppol-py posts its own MIME header lines as preamble); root part chosen by
`start` or else the first part; Content-ID with or without angle brackets; CTE binary, 8bit, 7bit, base64 and
quoted-printable; CRLF or bare-LF line ends; a non-multipart SOAP body.

Writing (`write_message`) produces exactly phase4's form: a leading CRLF, the SOAP part without Content-ID, then each
attachment with Content-Type, binary CTE, `Content-Description: Attachment` and a bracketed Content-ID.

Error mapping. phase4 answers HTTP 400 (text/plain, not SOAP) when the Content-Type header is missing or unparsable
or the MIME cannot be parsed (as4.md section 4, "HTTP status codes"), so every structural failure here is
`As4Error(MIME_INCONSISTENCY, ..., http_status=400)`. A message larger than `max_total` is answered with HTTP 413:
we stop reading before its end, so we never saw a complete eb:Messaging header to refer to in an ebMS Error, and 413
tells the sending operator precisely that retrying the same message cannot succeed. The ebMS code on it is
EBMS:0007 MimeInconsistency, the closest of the table for "the MIME package cannot be unpacked here".
"""

from __future__ import annotations

import binascii
import re
import secrets
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

from accesspoint.core.as4.errors import MIME_INCONSISTENCY, As4Error

READ_CHUNK = 64 << 10
# Part header blocks and HTTP dump headers are tiny in practice; the cap keeps a garbage stream from growing a buffer.
MAX_HEADER_BLOCK = 64 << 10
# RFC 2046 allows whitespace after a boundary ("transport padding"); nobody needs more than this.
MAX_TRANSPORT_PADDING = 1024
# RFC 2046 limits boundaries to 70 characters; JavaMail and others stay well below. Being lenient costs nothing.
MAX_BOUNDARY_LENGTH = 256
PLAIN_SOAP_TYPES = frozenset({"application/soap+xml", "text/xml"})
DEFAULT_PART_TYPE = "text/plain; charset=us-ascii"  # RFC 2045 section 5.2

_SOAP_ROOT_HEADERS = b"Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Transfer-Encoding: binary\r\n"
# Outgoing Content-IDs: characters that are both valid in an RFC 3986 path (so `cid:<id>` needs no escaping and
# WSS4J's literal match of the id after `cid:`, as4.md pitfall 7, cannot go wrong) and RFC 5322 atext (so the
# Content-ID header is a valid msg-id), with at most one "@".
_ID_CHARS = r"[A-Za-z0-9._~!$&'*+=-]+"
_URI_SAFE_ID = re.compile(f"{_ID_CHARS}(@{_ID_CHARS})?")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,./:=?-]{1,70}")  # RFC 2046 bcharsnospace
_TOKEN_CHARS = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _mime_error(description: str) -> As4Error:
    return As4Error(MIME_INCONSISTENCY, description, http_status=400)


# ---------------------------------------------------------------------------------------------------------------
# Header values


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into the lower-cased media type and its parameters (names lower-cased).

    Quoted parameter values may contain `;` and backslash escapes. Raises As4Error (HTTP 400) if the media type is
    not `type/subtype` or a parameter is malformed.
    """
    text = value.strip()
    end = _scan_unquoted(text, ";")
    media_type = text[:end].strip().lower()
    if not _MEDIA_TYPE.fullmatch(media_type):
        raise _mime_error(f"Content-Type {value!r} does not start with a type/subtype media type")
    params: dict[str, str] = {}
    rest = text[end + 1:] if end < len(text) else ""
    while rest.strip():
        end = _scan_unquoted(rest, ";")
        item, rest = rest[:end].strip(), rest[end + 1:] if end < len(rest) else ""
        if not item:
            continue  # tolerate "a/b;; x=y" and a trailing ";"
        name, sep, raw = item.partition("=")
        name = name.strip().lower()
        if not sep or not _TOKEN_CHARS.fullmatch(name):
            raise _mime_error(f"Content-Type {value!r} has a malformed parameter {item!r}")
        params[name] = _unquote(raw.strip(), value)
    return media_type, params


def _scan_unquoted(text: str, stop: str) -> int:
    """Index of the first `stop` character outside a quoted string, or len(text)."""
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == stop and not quoted:
            return i
        i += 1
    return len(text)


def _unquote(raw: str, whole: str) -> str:
    if not raw.startswith('"'):
        return raw
    if len(raw) < 2 or not raw.endswith('"'):
        raise _mime_error(f"Content-Type {whole!r} has an unterminated quoted parameter value {raw!r}")
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def normalise_content_id(value: str) -> str:
    """A Content-ID (or `start` parameter) without surrounding whitespace and angle brackets.

    `<a@b>` and `a@b` both give `a@b`: the compressiontype vector and some stacks send the bare form.
    """
    value = value.strip()
    if len(value) >= 2 and value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


def _decode_header_bytes(raw: bytes) -> str:
    # Headers are ASCII by RFC 2045; RFC 6532 allows UTF-8. Latin-1 is the lossless fallback for anything else.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_header_lines(lines: list[bytes], where: str) -> list[tuple[str, str]]:
    """RFC 5322 header lines (line ends already removed) to (lower-cased name, unfolded value) pairs."""
    fields: list[tuple[str, str]] = []
    for raw in lines:
        line = _decode_header_bytes(raw)
        if line[:1] in (" ", "\t"):
            if not fields:
                raise _mime_error(f"{where} starts with a continuation line {line.strip()!r}")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or not _TOKEN_CHARS.fullmatch(name):
            raise _mime_error(f"{where} has a malformed header line {line!r}")
        fields.append((name, value.strip()))
    return fields


# ---------------------------------------------------------------------------------------------------------------
# Content-Transfer-Encoding decoders: each takes raw bytes in pieces and returns decoded bytes in pieces.


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Base64:
    """Incremental base64 decoding that ignores line breaks and other whitespace but nothing else."""

    _WHITESPACE = b" \t\r\n\f\v"

    def __init__(self, where: str) -> None:
        self._pending = b""
        self._padded = False
        self._where = where

    def feed(self, data: bytes) -> bytes:
        data = data.translate(None, self._WHITESPACE)
        if not data:
            return b""
        if self._padded:
            raise _mime_error(f"{self._where}: base64 data continues after its '=' padding")
        data = self._pending + data
        usable = len(data) - len(data) % 4
        self._pending = data[usable:]
        if usable and data[usable - 1:usable] == b"=":
            self._padded = True
        return self._decode(data[:usable])

    def finish(self) -> bytes:
        pending, self._pending = self._pending, b""
        if not pending:
            return b""
        if len(pending) == 1:
            raise _mime_error(f"{self._where}: base64 data ends with a stray character")
        # Some encoders leave out the final padding; the data is still unambiguous.
        return self._decode(pending + b"=" * (-len(pending) % 4))

    def _decode(self, data: bytes) -> bytes:
        try:
            return binascii.a2b_base64(data, strict_mode=True)
        except binascii.Error as exc:
            raise _mime_error(f"{self._where}: invalid base64 data ({exc})") from exc


class _QuotedPrintable:
    """Quoted-printable decoded line by line, so that `=XX` escapes and soft line breaks never straddle a piece."""

    _MAX_PENDING = 8 << 10

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        data = self._pending + data
        cut = data.rfind(b"\n") + 1
        if not cut and len(data) > self._MAX_PENDING:
            # An over-long line (QP lines are at most 76 characters): decode up to the last "=" near the end, so
            # that neither an "=XY" escape nor a soft line break is cut in two.
            last_escape = data.rfind(b"=", len(data) - 2)
            cut = last_escape if last_escape >= 0 else len(data)
        self._pending = data[cut:]
        return binascii.a2b_qp(data[:cut])

    def finish(self) -> bytes:
        pending, self._pending = self._pending, b""
        return binascii.a2b_qp(pending)


def _decoder_for(cte: str | None, where: str) -> _Identity | _Base64 | _QuotedPrintable:
    name = (cte or "7bit").strip().lower()
    if name in ("binary", "8bit", "7bit"):
        return _Identity()
    if name == "base64":
        return _Base64(where)
    if name == "quoted-printable":
        return _QuotedPrintable()
    raise _mime_error(f"{where} has an unknown Content-Transfer-Encoding {cte!r} "
                      "(accepted: binary, 8bit, 7bit, base64, quoted-printable)")


# ---------------------------------------------------------------------------------------------------------------
# Parts and messages


@dataclass
class Part:
    """One MIME body part, decoded. `body` is at position 0 after parsing; use `open()` to rewind it again."""

    headers: dict[str, str]
    content_type: str
    media_type: str
    content_id: str | None
    body: tempfile.SpooledTemporaryFile[bytes]
    size: int = 0

    def open(self) -> BinaryIO:
        self.body.seek(0)
        return self.body  # type: ignore[return-value]  # SpooledTemporaryFile is a binary file object

    def read_bytes(self) -> bytes:
        """The whole decoded body. Meant for small parts such as the SOAP root."""
        self.body.seek(0)
        data = self.body.read()
        self.body.seek(0)
        return data

    def close(self) -> None:
        self.body.close()


@dataclass
class MimeMessage:
    """The SOAP root part and the attachments in their order on the wire. Closing removes spilled temporary files."""

    root: Part
    attachments: list[Part] = field(default_factory=list)

    def find_attachment(self, href: str) -> Part | None:
        """The attachment a `cid:` reference (eb:PartInfo/@href, ds:Reference/@URI) points to, or None.

        The id after `cid:` is matched literally first, as WSS4J does, then percent-decoded as RFC 2392 says
        (shared/docs/as4.md pitfall 7). Content-IDs are unique within a message (`parse_message` checks it).
        """
        if not href.lower().startswith("cid:"):
            return None
        wanted = href[4:]
        for candidate in (wanted, urllib.parse.unquote(wanted)):
            for part in self.attachments:
                if part.content_id == candidate:
                    return part
        return None

    def close(self) -> None:
        self.root.close()
        for part in self.attachments:
            part.close()

    def __enter__(self) -> MimeMessage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Input:
    """A byte buffer over the stream that never reads more than `max_total` bytes in all."""

    def __init__(self, stream: BinaryIO, max_total: int) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.eof = False
        self.consumed = 0
        self.max_total = max_total

    def fill(self) -> bool:
        """Append the next chunk; False at end of stream. Raises the size-limit error when the budget is spent."""
        if self.eof:
            return False
        budget = self.max_total - self.consumed
        if budget <= 0:
            raise As4Error(MIME_INCONSISTENCY,
                           f"the message did not end within the size limit of {self.max_total} bytes",
                           http_status=413)
        data = self.stream.read(min(READ_CHUNK, budget))
        if not data:
            self.eof = True
            return False
        self.consumed += len(data)
        self.buf += data
        return True

    def ensure(self, size: int) -> bool:
        """Fill until the buffer holds `size` bytes; False if the stream ends first."""
        while len(self.buf) < size:
            if not self.fill():
                return False
        return True


def _new_body(spill_threshold: int) -> tempfile.SpooledTemporaryFile[bytes]:
    # SpooledTemporaryFile treats max_size=0 as "never spill"; here, as in encryption.py, 0 means "always on disk".
    body = tempfile.SpooledTemporaryFile(max_size=max(spill_threshold, 1), mode="w+b", prefix="as4-part-")
    if spill_threshold <= 0:
        body.rollover()
    return body


class _Tail(NamedTuple):
    """What follows a boundary: the closing "--", or the end of a delimiter line (and whether it ended in CRLF)."""

    closing: bool
    line_end: int
    crlf: bool


class _MultipartReader:
    def __init__(self, source: _Input, boundary: str, spill_threshold: int) -> None:
        self.src = source
        self.dash_boundary = b"--" + boundary.encode("latin-1")
        self.delimiter = b"\n" + self.dash_boundary
        self.spill_threshold = spill_threshold
        # Set from the first boundary line: whether a CR before "\n--boundary" belongs to the delimiter. Deciding
        # per message keeps a binary body that ends in 0x0D intact when the sender uses bare LF line ends.
        self.crlf = True

    def read_parts(self) -> list[Part]:
        parts: list[Part] = []
        try:
            closed = self._skip_preamble()
            while not closed:
                where = f"MIME part {len(parts) + 1}"
                headers = self._read_headers(where)
                part, closed = self._read_body(headers, where)
                parts.append(part)
        except BaseException:
            for part in parts:
                part.close()
            raise
        if not parts:
            raise _mime_error("the multipart body has a closing boundary but no parts")
        return parts

    def _boundary_tail(self, start: int) -> _Tail | None:
        """Classify what follows a boundary string that ends at `start`; None if it is not a boundary after all."""
        src = self.src
        src.ensure(start + 2)
        buf = src.buf
        if buf[start:start + 2] == b"--":
            return _Tail(closing=True, line_end=start + 2, crlf=self.crlf)
        i = start
        while True:
            if i >= len(buf) and not src.fill():
                raise _mime_error("the MIME body ends inside a boundary line")
            buf = src.buf
            ch = buf[i]
            if ch in (0x20, 0x09):
                i += 1
                if i - start > MAX_TRANSPORT_PADDING:
                    raise _mime_error("a MIME boundary line carries more than "
                                      f"{MAX_TRANSPORT_PADDING} bytes of trailing whitespace")
                continue
            if ch == 0x0A:
                return _Tail(closing=False, line_end=i + 1, crlf=False)
            if ch == 0x0D:
                if not src.ensure(i + 2):
                    raise _mime_error("the MIME body ends inside a boundary line")
                if src.buf[i + 1] == 0x0A:
                    return _Tail(closing=False, line_end=i + 2, crlf=True)
            return None

    def _skip_preamble(self) -> bool:
        """Drop everything up to the first boundary line; True if that is already the closing boundary."""
        src = self.src
        src.ensure(len(self.dash_boundary))
        # The first boundary either starts the body (no preamble, as in the compressiontype vector) or follows a
        # line end; preamble lines before it are dropped as they stream past.
        start: int | None = 0 if src.buf.startswith(self.dash_boundary) else None
        search_from = 0
        while True:
            if start is None:
                i = src.buf.find(self.delimiter, search_from)
                if i < 0:
                    keep = len(self.delimiter) - 1  # a delimiter may be split across reads
                    if len(src.buf) > keep:
                        del src.buf[:len(src.buf) - keep]
                    search_from = 0
                    if not src.fill():
                        raise _mime_error("the multipart boundary given in the Content-Type never appears in the body")
                    continue
                start = i + 1
            tail = self._boundary_tail(start + len(self.dash_boundary))
            if tail is None:
                search_from, start = start, None  # a longer string that merely starts like the boundary
                continue
            if tail.closing:
                return True
            self.crlf = tail.crlf
            del src.buf[:tail.line_end]
            return False

    def _read_headers(self, where: str) -> dict[str, str]:
        src = self.src
        lines: list[bytes] = []
        total = 0
        pos = 0
        while True:
            nl = src.buf.find(b"\n", pos)
            if nl < 0:
                if len(src.buf) > MAX_HEADER_BLOCK:
                    raise _mime_error(f"the headers of {where} exceed {MAX_HEADER_BLOCK} bytes")
                pos = len(src.buf)
                if not src.fill():
                    raise _mime_error(f"the MIME body ends inside the headers of {where}")
                continue
            line = bytes(src.buf[:nl]).removesuffix(b"\r")
            del src.buf[:nl + 1]
            pos = 0
            if not line:
                break
            lines.append(line)
            total += len(line)
            if total > MAX_HEADER_BLOCK:
                raise _mime_error(f"the headers of {where} exceed {MAX_HEADER_BLOCK} bytes")
        headers: dict[str, str] = {}
        for name, value in _parse_header_lines(lines, f"the headers of {where}"):
            if name in headers:
                if name.startswith("content-"):
                    # Two Content-IDs or types would let a signature check and the processing see different parts.
                    raise _mime_error(f"{where} has the header {name} more than once")
                headers[name] = f"{headers[name]}, {value}"
            else:
                headers[name] = value
        return headers

    def _read_body(self, headers: dict[str, str], where: str) -> tuple[Part, bool]:
        content_type = headers.get("content-type", DEFAULT_PART_TYPE)
        try:
            media_type, _ = parse_content_type(content_type)
        except As4Error as exc:
            raise _mime_error(f"{where}: {exc.description}") from exc
        raw_id = headers.get("content-id")
        decoder = _decoder_for(headers.get("content-transfer-encoding"), where)
        body = _new_body(self.spill_threshold)
        size = 0
        src = self.src
        try:
            search_from = 0
            keep = len(self.delimiter)  # a partial delimiter plus the CR that may precede it
            while True:
                i = src.buf.find(self.delimiter, search_from)
                if i < 0:
                    if len(src.buf) > keep:
                        emit = len(src.buf) - keep
                        size += body.write(decoder.feed(bytes(src.buf[:emit])))
                        del src.buf[:emit]
                    search_from = 0
                    if not src.fill():
                        raise _mime_error(f"the MIME body ends inside {where}, before its closing boundary")
                    continue
                tail = self._boundary_tail(i + len(self.delimiter))
                if tail is None:
                    search_from = i + 1
                    continue
                end = i - 1 if self.crlf and i > 0 and src.buf[i - 1] == 0x0D else i
                size += body.write(decoder.feed(bytes(src.buf[:end])))
                size += body.write(decoder.finish())
                if not tail.closing:
                    del src.buf[:tail.line_end]
                body.seek(0)
                part = Part(headers=headers, content_type=content_type, media_type=media_type,
                            content_id=normalise_content_id(raw_id) if raw_id is not None else None,
                            body=body, size=size)
                return part, tail.closing
        except BaseException:
            body.close()
            raise


def _read_plain(source: _Input, content_type: str, media_type: str, spill_threshold: int) -> Part:
    body = _new_body(spill_threshold)
    size = 0
    try:
        while source.fill():
            size += body.write(bytes(source.buf))
            source.buf.clear()
    except BaseException:
        body.close()
        raise
    if size == 0:
        body.close()
        raise _mime_error(f"the {media_type} request has an empty body")
    body.seek(0)
    return Part(headers={"content-type": content_type}, content_type=content_type, media_type=media_type,
                content_id=None, body=body, size=size)


def parse_message(stream: BinaryIO, content_type: str | None, *, spill_threshold: int = 1 << 20,
                  max_total: int = 200 << 20) -> MimeMessage:
    """Read an AS4 request body from `stream` given its HTTP Content-Type.

    multipart/related gives the root part (`start` if present and matching a part, else the first part) and the
    other parts as attachments in wire order; a plain SOAP body (application/soap+xml or text/xml) gives a root only.
    Reads at most `max_total` bytes from the stream and stops after the closing boundary (the epilogue is ignored).
    A plain SOAP body ends only at the end of the stream, which is seen only by reading past it, so it must be
    shorter than `max_total`.
    Raises As4Error: HTTP 400 for anything unparsable, HTTP 413 when the message does not end within `max_total`.
    """
    if content_type is None or not content_type.strip():
        raise _mime_error("the request has no Content-Type header; expected multipart/related or application/soap+xml")
    media_type, params = parse_content_type(content_type)
    source = _Input(stream, max_total)
    if media_type in PLAIN_SOAP_TYPES:
        return MimeMessage(root=_read_plain(source, content_type, media_type, spill_threshold))
    if media_type != "multipart/related":
        raise _mime_error(f"unsupported Content-Type {media_type}; an AS4 message is multipart/related "
                          "(or plain application/soap+xml)")
    boundary = params.get("boundary", "")
    if not boundary:
        raise _mime_error("the multipart/related Content-Type has no boundary parameter")
    if len(boundary) > MAX_BOUNDARY_LENGTH or not boundary.isascii() or "\r" in boundary or "\n" in boundary:
        raise _mime_error(f"the multipart boundary {boundary[:80]!r} is not a valid boundary "
                          f"(at most {MAX_BOUNDARY_LENGTH} ASCII characters)")
    parts = _MultipartReader(source, boundary, spill_threshold).read_parts()
    try:
        _check_unique_ids(parts)
    except As4Error:
        for part in parts:
            part.close()
        raise
    root_index = 0
    start = params.get("start")
    if start is not None:
        wanted = normalise_content_id(start)
        # RFC 2387 names the root by `start`; a `start` that matches no part falls back to the first part, which is
        # what phase4 always takes as the SOAP envelope.
        root_index = next((n for n, p in enumerate(parts) if p.content_id == wanted), 0)
    root = parts.pop(root_index)
    return MimeMessage(root=root, attachments=parts)


def _check_unique_ids(parts: list[Part]) -> None:
    seen: set[str] = set()
    for part in parts:
        if part.content_id is None:
            continue
        if part.content_id in seen:
            raise _mime_error(f"two MIME parts carry the same Content-ID <{part.content_id}>")
        seen.add(part.content_id)


def read_http_dump(stream: BinaryIO) -> tuple[dict[str, str], BinaryIO]:
    """Split a phase4-style dump (`.as4in`, `.as4out`, `.mime`) into its HTTP headers and the body stream.

    An optional first request or status line is skipped. Header names are lower-cased, folded values unfolded, and
    repeated headers joined with ", " as HTTP allows. The returned stream is `stream`, positioned at the body.
    Dumps hold the de-chunked body even when they list `Transfer-Encoding: chunked`.
    """
    lines: list[bytes] = []
    total = 0
    first = True
    while True:
        raw = stream.readline(MAX_HEADER_BLOCK + 1)
        total += len(raw)
        if total > MAX_HEADER_BLOCK:
            raise _mime_error(f"the dump's header section exceeds {MAX_HEADER_BLOCK} bytes")
        if not raw:
            raise _mime_error("the dump ends before the blank line that ends its headers")
        line = raw.rstrip(b"\r\n")
        if not line:
            break
        if first and (line.startswith(b"HTTP/") or re.match(rb"[A-Z]+ \S+ HTTP/\d", line)):
            first = False
            continue
        first = False
        lines.append(line)
    headers: dict[str, str] = {}
    for name, value in _parse_header_lines(lines, "the dump's headers"):
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers, stream


# ---------------------------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True)
class OutgoingAttachment:
    """An attachment to send. `content_id` is without angle brackets; `stream` is read in chunks when sending."""

    content_id: str
    stream: BinaryIO | bytes
    content_type: str = "application/octet-stream"

    def __post_init__(self) -> None:
        if not _URI_SAFE_ID.fullmatch(self.content_id):
            raise ValueError(f"Content-ID {self.content_id!r} must be URI-safe (letters, digits, ._~!$&'*+=- "
                             "and at most one '@', no angle brackets), so that its cid: reference needs no escaping")
        if (not _MEDIA_TYPE.fullmatch(self.content_type.split(";", 1)[0].strip()) or not self.content_type.isascii()
                or any(c in self.content_type for c in "\r\n")):
            raise ValueError(f"attachment content type {self.content_type!r} is not a single-line media type")


def new_content_id(domain: str = "cid") -> str:
    """A fresh attachment Content-ID `att-<uuid>@<domain>` (phase4 uses `phase4-att-<uuid>@cid`), URI-safe."""
    if not re.fullmatch(_ID_CHARS, domain):
        raise ValueError(f"Content-ID domain {domain!r} must be URI-safe (letters, digits, ._~!$&'*+=-)")
    return f"att-{uuid.uuid4()}@{domain}"


class BoundaryCollisionError(RuntimeError):
    """A streamed attachment contained the MIME boundary. Building the message again picks a new boundary."""


def new_boundary() -> str:
    """`----=_Part_` (JavaMail's look) plus 128 random bits as 32 hex digits.

    A random boundary is standard practice: the chance that 32 given hex digits occur in a 1 GiB body is below 2^-98.
    `write_message` still makes absence a guarantee: in-memory content is checked before the boundary is used, and
    streamed content is checked while it streams (BoundaryCollisionError instead of a corrupt message).
    """
    return f"----=_Part_{secrets.token_hex(16)}"


def write_message(root_xml: bytes, attachments: Sequence[OutgoingAttachment], *,
                  boundary: str | None = None) -> tuple[str, Iterator[bytes]]:
    """phase4's multipart/related form: the single-line HTTP Content-Type value and an iterator over the body.

    Attachment streams are read lazily, 64 KiB at a time, while the iterator is consumed. `boundary` is for tests;
    by default a fresh one is generated that occurs in none of the in-memory content.
    """
    in_memory = [root_xml, *(a.stream for a in attachments if isinstance(a.stream, bytes | bytearray))]
    if boundary is None:
        boundary = new_boundary()
        while any(boundary.encode("ascii") in data for data in in_memory):
            boundary = new_boundary()
    elif not _BOUNDARY.fullmatch(boundary):
        raise ValueError(f"{boundary!r} is not a MIME boundary (1 to 70 of the RFC 2046 boundary characters)")
    elif any(boundary.encode("ascii") in data for data in in_memory):
        raise ValueError("the requested MIME boundary occurs in the message content")
    content_type = f'multipart/related; boundary="{boundary}"; type="application/soap+xml"'
    return content_type, _body_chunks(root_xml, attachments, boundary.encode("ascii"))


def _body_chunks(root_xml: bytes, attachments: Sequence[OutgoingAttachment], boundary: bytes) -> Iterator[bytes]:
    yield b"\r\n--" + boundary + b"\r\n" + _SOAP_ROOT_HEADERS + b"\r\n"
    yield root_xml
    for att in attachments:
        yield (b"\r\n--" + boundary + b"\r\n"
               + f"Content-Type: {att.content_type}\r\nContent-Transfer-Encoding: binary\r\n"
                 f"Content-Description: Attachment\r\nContent-ID: <{att.content_id}>\r\n\r\n".encode("ascii"))
        if isinstance(att.stream, bytes | bytearray):
            yield bytes(att.stream)
        else:
            yield from _checked_stream(att.stream, boundary, att.content_id)
    yield b"\r\n--" + boundary + b"--\r\n"


def _checked_stream(stream: BinaryIO, boundary: bytes, content_id: str) -> Iterator[bytes]:
    # A strict reader ends a part at "CRLF--boundary", a lenient one at "LF--boundary"; refusing the bare boundary
    # anywhere in the content covers both, with an overlap so that a boundary split across reads is seen too.
    keep = len(boundary) - 1
    tail = b""
    while True:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            return
        window = tail + chunk
        if boundary in window:
            raise BoundaryCollisionError(f"attachment <{content_id}> contains the MIME boundary; build the "
                                         "message again to get a new boundary")
        tail = window[-keep:] if keep else b""
        yield chunk


__all__ = [
    "BoundaryCollisionError",
    "MimeMessage",
    "OutgoingAttachment",
    "Part",
    "new_boundary",
    "new_content_id",
    "normalise_content_id",
    "parse_content_type",
    "parse_message",
    "read_http_dump",
    "write_message",
]
