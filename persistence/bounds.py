"""Bounds on reading stored data: nothing in the ObjectStore may cost more than linear time or blow the stack.

The store is shared by every project of a workspace and edited by hand in research, so a value can be
anything: 50 MB of junk, 100,000 nested lists, bytes that are not UTF-8. Every stored value passes through
`check_text` before `json.loads` sees it:

- size: a value longer than `MAX_VALUE_CHARS` is refused unparsed (the template's largest record, the
  manifest of a store with thousands of order groups, is far below it);
- nesting: `nesting_depth` finds the deepest bracket in one left-to-right pass (string literals skipped,
  escapes honoured, an unterminated string runs to the end) without recursion, and a value nested deeper
  than `MAX_NESTING` is refused, so neither the JSON parser nor the record decoder can raise RecursionError.

Invariant: every function here runs in time linear in its input (regular expressions below have no
overlapping alternatives and use possessive repetition, so they never backtrack).
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Optional

MAX_VALUE_CHARS = 8 * 1024 * 1024  # far above any record this template writes; 50 MB junk stops here
MAX_NESTING = 32  # records nest 4 deep (archive -> group -> leg -> ids); room for forks, far from the stack

# a JSON string literal, or an unterminated one that runs to the end: matching always succeeds from a quote,
# so the scan never restarts inside a long string (that restart is what makes naive patterns quadratic)
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_depth(text: str) -> int:
    """The deepest level of [ and { outside string literals (0 for a scalar). Linear, no recursion."""
    if text.count("[") + text.count("{") == 0:
        return 0
    brackets = _NOT_BRACKET.sub("", _STRING_LITERAL.sub("", text))
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def text_problem(text: str, max_chars: int = MAX_VALUE_CHARS, max_nesting: int = MAX_NESTING) -> Optional[str]:
    """Why `text` must not be parsed (too long, nested too deep), or None when parsing it is safe."""
    if len(text) > max_chars:
        return f"value of {len(text):,} characters is over the {max_chars:,} limit; not parsed"
    # cheap exit: fewer opening brackets than the limit cannot nest deeper than it
    if text.count("[") + text.count("{") > max_nesting and nesting_depth(text) > max_nesting:
        return f"JSON nested deeper than {max_nesting} levels; not parsed"
    return None


__all__ = ["MAX_NESTING", "MAX_VALUE_CHARS", "nesting_depth", "text_problem"]
