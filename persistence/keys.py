"""ObjectStore keys: LEAN's key rule, a reversible escape for names, and the per-run namespace.

LEAN refuses a key that does not match `^\\.?[a-zA-Z0-9\\\\/_#\\-\\$= ]+\\.?[a-zA-Z0-9]*$` (no ':', at most one
extension dot: LocalObjectStore's key regex). The store is shared by every project, backtest and live run of a workspace
(locally) or organisation (cloud; LocalObjectStore.PathForKey has no per-project folder), so every key lives under a
namespace:

    live:      <prefix>/<project>/live/...
    backtest:  <prefix>/<project>/backtest/<run>/...

`run` is the algorithm id, new on every backtest, so a backtest starts clean; the `resume-run` parameter names
an earlier run to continue. Live has one namespace per project and never looks at backtest keys.

Layout under a namespace root (`Namespace.root`):

    records/<name>-a.json, records/<name>-b.json   two slots per record (see store.py); -c and -d are
                                                   spares for a slot whose bad value is left in place
    manifest-a.json, manifest-b.json               which records exist, with their latest seq (spares too)
    quarantine/<escaped original>-<digest>.json    copies of bad data, never read back as state
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

LEAN_KEY_PATTERN = re.compile(r"^\.?[a-zA-Z0-9\\/_#\-\$= ]+\.?[a-zA-Z0-9]*$")
MAX_SEPARATORS = 100  # LEAN also refuses more than 100 '/' or '\'
DEFAULT_PREFIX = "crashsafe"
SLOTS = ("a", "b")
# used instead of a slot whose value is quarantined: that key is left untouched until a person clears it
SPARE_SLOTS = ("c", "d")
ALL_SLOTS = SLOTS + SPARE_SLOTS
EXTENSION = ".json"
RECORDS_FOLDER = "records"
QUARANTINE_FOLDER = "quarantine"
MANIFEST_NAME = "manifest"

_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SAFE_NAME = "[A-Za-z0-9_-]"  # one of _SAFE_CHARS, as a regular expression
_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
_ESCAPE = re.compile(r"=([0-9A-F]{2})")


class KeyRuleError(ValueError):
    """A key LEAN would refuse (ArgumentException 'path is not supported')."""


def check_key(key: str) -> str:
    """Return `key` if LEAN accepts it as is; raise KeyRuleError otherwise.

    Stricter than LEAN in two harmless ways: no leading '.', '/' or '\\' (LEAN would silently normalise them
    away, and then the key we read back would differ from the one we built) and no trailing newline."""
    if (
        not key
        or LEAN_KEY_PATTERN.fullmatch(key) is None
        or key[0] in "./\\"
        or key.count("/") > MAX_SEPARATORS
        or key.count("\\") > MAX_SEPARATORS
    ):
        raise KeyRuleError(f"not a valid ObjectStore key: {key!r}")
    return key


def escape_segment(text: str) -> str:
    """Key-safe, reversible form of any text: characters outside [A-Za-z0-9_-] become '=XX' per UTF-8 byte."""
    if text and _SAFE_CHARS.issuperset(text):
        return text
    out = []
    for char in text:
        if char in _SAFE_CHARS:
            out.append(char)
        else:
            out.extend(f"={byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out) or "="  # an empty name still needs a segment; a lone "=" is never an escape


def unescape_segment(segment: str) -> str:
    """Inverse of escape_segment (bad escapes decode to U+FFFD; parse_record_key re-escapes to check)."""
    if segment == "=":
        return ""
    if "=" not in segment:
        return segment
    out = bytearray()
    position = 0
    while position < len(segment):
        match = _ESCAPE.match(segment, position)
        if match is not None:
            out.append(int(match.group(1), 16))
            position = match.end()
        else:
            out.extend(segment[position].encode("utf-8"))
            position += 1
    return out.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Namespace:
    """Where one project's state for one mode (and, in backtests, one run) lives."""

    prefix: str
    project: str
    mode: str  # "live" or "backtest"
    run: str = ""  # backtests only

    def __post_init__(self) -> None:
        if _PREFIX_PATTERN.fullmatch(self.prefix) is None:
            raise KeyRuleError(f"state-namespace must be letters, digits, '_', '-' and '/': {self.prefix!r}")
        if self.mode not in ("live", "backtest"):
            raise ValueError(f"mode must be 'live' or 'backtest', not {self.mode!r}")
        if self.mode == "backtest" and not self.run:
            raise ValueError("a backtest namespace needs a run id (the algorithm id), or resume-run")
        if self.mode == "live" and self.run:
            raise ValueError("live state has one namespace per project; a run id would split it")
        check_key(self.root + "/" + MANIFEST_NAME + "-a" + EXTENSION)

    @classmethod
    def for_run(
        cls,
        project_id: Union[str, int],
        live_mode: bool,
        run_id: str,
        resume_run: Optional[str] = "",
        prefix: str = DEFAULT_PREFIX,
    ) -> Namespace:
        """Live -> `<prefix>/<project>/live`; backtest -> `<prefix>/<project>/backtest/<resume_run or run_id>`.

        `resume_run` is ignored live: live state never comes from a backtest."""
        project = escape_segment(str(project_id))
        if live_mode:
            return cls(prefix, project, "live")
        run = escape_segment(resume_run) if resume_run else escape_segment(run_id) if run_id else ""
        return cls(prefix, project, "backtest", run)

    @property
    def root(self) -> str:
        base = f"{self.prefix}/{self.project}/{self.mode}"
        return f"{base}/{self.run}" if self.run else base

    def key(self, relative: str) -> str:
        return check_key(f"{self.root}/{relative}")

    def record_key(self, record_name: str, slot: str) -> str:
        if slot not in ALL_SLOTS:
            raise ValueError(f"slot must be one of {ALL_SLOTS}, not {slot!r}")
        return self.key(f"{RECORDS_FOLDER}/{escape_segment(record_name)}-{slot}{EXTENSION}")

    def manifest_key(self, slot: str) -> str:
        if slot not in ALL_SLOTS:
            raise ValueError(f"slot must be one of {ALL_SLOTS}, not {slot!r}")
        return self.key(f"{MANIFEST_NAME}-{slot}{EXTENSION}")

    def quarantine_key(self, original_key: str, digest: str) -> str:
        """Unique per (original key, content digest), so quarantining the same bytes twice is one copy."""
        relative = self.relative(original_key)
        source = relative if relative is not None else original_key
        # cut to stay far below a file name's 255 bytes; the digest keeps it unique
        name = escape_segment(source)[:150]
        return self.key(f"{QUARANTINE_FOLDER}/{name}-{escape_segment(digest)}{EXTENSION}")

    def relative(self, key: str) -> Optional[str]:
        """The part of `key` under this namespace's root, or None when the key is not ours."""
        root = self.root + "/"
        return key[len(root) :] if key.startswith(root) else None

    def owns(self, key: str) -> bool:
        return key.startswith(self.root + "/")

    def plain_record_key(self) -> Callable[[str], Optional[re.Match[str]]]:
        """A fullmatch for the usual record key of this namespace, `<root>/records/<name>-<slot>.json` with a
        name that needs no escape: group 1 is the name, exactly what parse_record_key gives for it (the loader
        reads every slot's key with it at start-up; anything else takes parse_record_key). Linear: one greedy
        run of name characters, given back at most to the last "-" (no nested repeats)."""
        folder = re.escape(f"{self.root}/{RECORDS_FOLDER}/")
        slots = "".join(ALL_SLOTS)
        return re.compile(f"{folder}({_SAFE_NAME}+)-[{slots}]{re.escape(EXTENSION)}").fullmatch


def parse_record_key(relative: str) -> Optional[Tuple[str, str]]:
    """(record name, slot) of `records/<name>-<slot>.json`, or None for anything else."""
    folder = RECORDS_FOLDER + "/"
    if not relative.startswith(folder) or not relative.endswith(EXTENSION):
        return None
    stem = relative[len(folder) : -len(EXTENSION)]
    if "/" in stem or len(stem) < 3 or stem[-2] != "-" or stem[-1] not in ALL_SLOTS:
        return None
    escaped = stem[:-2]
    if escaped and _SAFE_CHARS.issuperset(escaped):
        return escaped, stem[-1]  # no escapes: the name is the segment itself (what the round trip below gives)
    name = unescape_segment(escaped)
    if escape_segment(name) != escaped:
        return None  # not produced by escape_segment: not ours
    return name, stem[-1]


def parse_manifest_key(relative: str) -> Optional[str]:
    for slot in ALL_SLOTS:
        if relative == f"{MANIFEST_NAME}-{slot}{EXTENSION}":
            return slot
    return None


def is_quarantine_key(relative: str) -> bool:
    return relative.startswith(QUARANTINE_FOLDER + "/")


__all__ = [
    "ALL_SLOTS",
    "DEFAULT_PREFIX",
    "LEAN_KEY_PATTERN",
    "SLOTS",
    "SPARE_SLOTS",
    "KeyRuleError",
    "Namespace",
    "check_key",
    "escape_segment",
    "is_quarantine_key",
    "parse_manifest_key",
    "parse_record_key",
    "unescape_segment",
]
