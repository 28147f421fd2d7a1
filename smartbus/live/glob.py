"""Channel patterns as Redis matches them, for both live stores' subscribers."""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=1024)
def redis_glob(pattern: str) -> re.Pattern[bytes]:
    """Redis's glob-style pattern (PSUBSCRIBE, KEYS, SCAN MATCH) as a regular expression over the UTF-8 bytes of a
    name, for fullmatch: `*`, `?` (one byte, as Redis), `[abc]`, `[^abc]`, `[a-z]` (either way round) and a
    backslash escaping the next byte, as Redis's stringmatchlen reads them; a `[` never closed runs to the end."""
    source = pattern.encode()
    out: list[bytes] = []
    i, n = 0, len(source)

    def literal(at: int) -> bytes:
        return re.escape(source[at : at + 1])

    while i < n:
        c = source[i : i + 1]
        if c == b"*":
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"\\" and i + 1 < n:
            i += 1
            out.append(literal(i))
        elif c == b"[":
            i += 1
            negate = i < n and source[i : i + 1] == b"^"
            i += negate
            members: list[bytes] = []
            while i < n and source[i : i + 1] != b"]":
                if source[i : i + 1] == b"\\" and i + 1 < n:
                    i += 1
                    members.append(literal(i))
                elif i + 2 < n and source[i + 1 : i + 2] == b"-":
                    low, high = sorted((i, i + 2), key=lambda at: source[at])
                    members.append(literal(low) + b"-" + literal(high))
                    i += 2
                else:
                    members.append(literal(i))
                i += 1
            body = b"".join(members)
            out.append(b"[^" + body + b"]" if negate and body else b"." if negate else b"[" + body + b"]" if body
                       else b"(?!)")
        else:
            out.append(literal(i))
        i += 1
    return re.compile(b"".join(out), re.DOTALL)
