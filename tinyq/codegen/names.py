"""Names from models reach C only through these two functions.

Layer and tensor names are user data (Keras layer names, TFLite tensor
names): they may hold quotes, newlines, `*/`, trigraphs or C keywords.
"""

from __future__ import annotations

import re

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert
_Thread_local asm typeof main""".split()
)


def c_identifier(text: str, prefix: str = "", max_length: int = 48) -> str:
    """A valid, non-reserved C identifier derived from `text`."""
    body = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    ident = f"{prefix}{body}"[:max_length].rstrip("_") or "unnamed"
    if ident[0].isdigit() or ident in C_KEYWORDS or ident.startswith("_"):
        ident = f"n_{ident}"
    return ident


def c_comment(text: str, max_length: int = 120) -> str:
    """Text safe inside /* ... */: printable ASCII, no comment delimiters or trigraphs."""
    clean = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in text)
    while "*/" in clean or "/*" in clean or "??" in clean:
        clean = clean.replace("*/", "* /").replace("/*", "/ *").replace("??", "?")
    clean = clean.replace("\\", "/")
    return clean[:max_length].rstrip()
