"""The envelope around every stored value: what it is, which version, which write, when, and a checksum.

    {"body":{...},"checksum":"<sha256 hex>","saved_at":"2024-01-19T15:45:00","schema":"order_group","seq":7,"version":1}

- `schema` + `version` let the loader pick the record type and the upgrade steps (migrations.py);
- `seq` orders the writes of one record (the store keeps two slots per record and loads the newest valid one);
- `checksum` = sha256 over schema, version, seq and the canonical body text, so a torn or edited value is
  refused instead of loaded. `saved_at` is informational (the algorithm's UTC time) and not covered.

The sealed text is itself canonical JSON (sorted keys, no spaces): it is assembled from the canonical body
text directly, so sealing costs one json.dumps, and opening our own text can check the checksum over the
body's exact bytes without re-encoding it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from persistence.bounds import text_problem
from persistence.codec import canonical_json

_BODY_START = '{"body":'
_CHECKSUM_MARK = ',"checksum":"'
ENVELOPE_FIELDS = frozenset({"body", "checksum", "saved_at", "schema", "seq", "version"})
# a sane sequence number: JSON-exact everywhere (research tools read these values too) and never reached by
# counting saves, so a bigger one was written by hand or by a bug and would push every later seq past it
MAX_SEQ = 2**53


class EnvelopeError(ValueError):
    """Stored text that is not a valid envelope; the message says why (for the quarantine log)."""


@dataclass(frozen=True)
class Envelope:
    schema: str
    version: int
    seq: int
    saved_at: str
    checksum: str
    body: Dict[str, Any]


def checksum_of(schema: str, version: int, seq: int, body_text: str) -> str:
    digest = hashlib.sha256(f"{schema}\n{version}\n{seq}\n".encode())
    digest.update(body_text.encode())
    return digest.hexdigest()


def seal(schema: str, version: int, seq: int, saved_at: str, body_text: str) -> str:
    """The envelope text for a canonical body text (see codec.canonical_json)."""
    checksum = checksum_of(schema, version, seq, body_text)
    return (
        f'{_BODY_START}{body_text}{_CHECKSUM_MARK}{checksum}","saved_at":{_quoted(saved_at)},'
        f'"schema":{_quoted(schema)},"seq":{seq},"version":{version}}}'
    )


_PLAIN = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_:.+T ")


def _quoted(text: str) -> str:
    """json.dumps of a string; ISO times and schema names need no escaping, so they skip the encoder."""
    return f'"{text}"' if _PLAIN.issuperset(text) else json.dumps(text)


# the fields after the body exactly as `seal` writes them (a saved_at that needed escaping does not match: such a
# text takes the full path). Possessive repeats only: matching costs linear time, never backtracks.
_SEALED_TAIL = re.compile(
    rb',"checksum":"([0-9a-f]{64}+)","saved_at":"([^"\\\x00-\x1f\x7f-\xff]*+)","schema":"([a-z_]++)",'
    rb'"seq":(0|[1-9][0-9]{0,15}+),"version":([1-9][0-9]{0,8}+)\}'
)
_BODY_START_BYTES = _BODY_START.encode()
_BODY_AT = len(_BODY_START_BYTES)  # where the body starts in a sealed text
_CHECKSUM_MARK_BYTES = _CHECKSUM_MARK.encode()


# what a value written by `seal` says about itself, its checksum verified over the body's exact bytes: (seq,
# schema, version, where the body ends: data[len('{"body":') : end], checksum, saved_at); a plain tuple, built
# for every slot read at start-up
SealedFrame = Tuple[int, str, int, int, bytes, bytes]


def sealed_frame(data: bytes) -> Optional[SealedFrame]:
    """The frame of stored bytes exactly as `seal` wrote them (UTF-8), checksum verified, WITHOUT decoding or
    parsing the body; None for anything else (another layout, a checksum that does not match, a seq beyond
    MAX_SEQ): that value takes the full path, `open_envelope`, which says what is wrong with it. A frame
    proves the bytes are the ones sealed (no torn write, no edit without a new checksum); it does not prove
    the body is a valid record: a body is decoded, parsed and checked before it is used (`open_sealed`,
    loader.py). Linear time: one rfind, one anchored match, one sha256."""
    frame = sealed_tail(data)
    return frame if frame is not None and sealed_checksum_matches(data, frame) else None


def sealed_tail(data: bytes) -> Optional[SealedFrame]:
    """`sealed_frame` without the checksum: what the fields after the body say, when they are exactly as `seal`
    writes them. NOT a proof of anything: it only orders a record's slots (the loader verifies the checksum,
    `sealed_checksum_matches`, of a slot before it uses it). One rfind and one anchored match."""
    if not data.startswith(_BODY_START_BYTES):
        return None
    end = data.rfind(_CHECKSUM_MARK_BYTES)
    match = _SEALED_TAIL.fullmatch(data, end) if end > _BODY_AT else None
    if match is None:
        return None
    checksum, saved_at, schema, seq_text, version_text = match.groups()  # ASCII by the pattern
    seq = int(seq_text)
    if seq > MAX_SEQ:
        return None
    return (seq, schema.decode(), int(version_text), end, checksum, saved_at)


def sealed_checksum_matches(data: bytes, frame: SealedFrame) -> bool:
    """Whether the checksum in `frame` (sealed_tail of `data`) is the sha256 of checksum_of over the body's
    exact bytes: the bytes are then the ones sealed (no torn write, no edit without a new checksum)."""
    seq, schema, version, end, checksum, _ = frame
    digest = hashlib.sha256(b"%s\n%d\n%d\n" % (schema.encode(), version, seq))  # checksum_of's header
    digest.update(memoryview(data)[_BODY_AT:end])  # and the body's bytes
    return digest.hexdigest().encode() == checksum


def open_sealed(data: bytes, frame: SealedFrame) -> Envelope:
    """`open_envelope` for stored bytes whose `sealed_frame` is `frame`: the fields after the body are known
    (they matched the exact layout seal writes, which is valid JSON), so only the body is decoded, bounded and
    parsed; it must be one JSON object and nothing else. EnvelopeError as open_envelope."""
    seq, schema, version, _, checksum, saved_at = frame
    return Envelope(schema, version, seq, saved_at.decode(), checksum.decode(), sealed_body(data, frame))


def sealed_body(data: bytes, frame: SealedFrame) -> Dict[str, Any]:
    """The parsed body of `open_sealed(data, frame)` (what the loader uses: the other fields are in `frame`)."""
    try:
        body_text = data[_BODY_AT : frame[3]].decode("utf-8")
    except UnicodeDecodeError as error:
        raise EnvelopeError(f"not UTF-8 text ({error.reason} at byte {error.start + 8})") from None
    problem = text_problem(body_text)
    if problem is not None:
        raise EnvelopeError(problem)
    try:
        body = parse_json(body_text)
    except (ValueError, RecursionError) as error:
        raise EnvelopeError(f"not JSON, truncated or damaged ({error.__class__.__name__}: {error})") from None
    if type(body) is not dict:
        raise EnvelopeError("envelope body must be an object")
    return body


# the scanner a JSONDecoder reads values with (the C one when available): what json.loads runs inside
# JSONDecoder.raw_decode; an instance attribute the type stubs do not list
_SCAN_ONCE: Callable[[str, int], Tuple[Any, int]] = vars(json.JSONDecoder())["scan_once"]


def parse_json(text: str) -> Any:
    """json.loads(text): the value and the errors are json.loads' own. A text that is exactly one JSON value
    (no whitespace around it, as every sealed body) is read by json's scanner directly, which skips
    json.loads' whitespace steps and calls (a few microseconds of every body read at start-up); any other
    text, or any failure, goes through json.loads itself."""
    try:
        value, end = _SCAN_ONCE(text, 0)
    except Exception:  # StopIteration (no value at 0: whitespace, empty), JSONDecodeError, RecursionError
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def open_envelope(text: str) -> Envelope:
    """Parse and verify; EnvelopeError says what is wrong (empty, too big or too deep to parse, not JSON, not
    an envelope, bad checksum). Bounded: the text is checked by bounds.text_problem before json.loads."""
    if not text:
        raise EnvelopeError("empty value (a write that died before its first byte)")
    problem = text_problem(text)
    if problem is not None:
        raise EnvelopeError(problem)
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise EnvelopeError(f"not JSON, truncated or damaged ({error.__class__.__name__}: {error})") from None
    if type(raw) is not dict or raw.keys() != ENVELOPE_FIELDS:
        keys = sorted(raw) if type(raw) is dict else type(raw).__name__
        raise EnvelopeError(f"not an envelope (fields {keys})")
    schema, version, seq = raw["schema"], raw["version"], raw["seq"]
    saved_at, checksum, body = raw["saved_at"], raw["checksum"], raw["body"]
    if type(schema) is not str or type(saved_at) is not str or type(checksum) is not str:
        raise EnvelopeError("envelope fields schema/saved_at/checksum must be text")
    if type(version) is not int or version < 1 or type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise EnvelopeError(
            f"envelope version/seq must be whole numbers, seq at most 2**53 (version={version!r}, seq={seq!r})"
        )
    if type(body) is not dict:
        raise EnvelopeError("envelope body must be an object")
    envelope = Envelope(schema, version, seq, saved_at, checksum, body)
    if not _checksum_matches(text, envelope):
        raise EnvelopeError(f"bad checksum for schema {schema!r} seq {seq}")
    return envelope


def _checksum_matches(text: str, envelope: Envelope) -> bool:
    schema, version, seq, checksum, body = (
        envelope.schema,
        envelope.version,
        envelope.seq,
        envelope.checksum,
        envelope.body,
    )
    # fast path: our own canonical text, body bytes sliced straight out of it
    if text.startswith(_BODY_START):
        end = text.rfind(_CHECKSUM_MARK)
        if end > 0 and checksum_of(schema, version, seq, text[len(_BODY_START) : end]) == checksum:
            return True
    # slow path: the same JSON written with other spacing or key order
    try:
        body_text = canonical_json(body)
    except ValueError:
        return False
    return checksum_of(schema, version, seq, body_text) == checksum


__all__ = [
    "Envelope",
    "EnvelopeError",
    "SealedFrame",
    "checksum_of",
    "open_envelope",
    "open_sealed",
    "parse_json",
    "seal",
    "sealed_body",
    "sealed_checksum_matches",
    "sealed_frame",
    "sealed_tail",
]
