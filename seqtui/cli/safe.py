"""Untrusted text never drives the terminal: one helper for every CLI print of text that came
from a corpus, a title, a checkpoint's vocabulary, a config or a model's output.

``visible(text)`` replaces control characters (C0, DEL, C1, and the bidi/format controls that
reorder a line) with visible stand-ins — ``\\x1b`` becomes ``␛``, other C0 characters their
U+2400 pictures, the rest ``\\xNN``/``\\uNNNN`` — keeping ``\\n`` and ``\\t`` where layout needs
them (and ``\r`` right before ``\n``; ``keep=""`` makes them all visible).
"""

from __future__ import annotations

import unicodedata

_C0 = {i: chr(0x2400 + i) for i in range(0x20)}  # ␀ … ␟ (␛ for ESC)
_C0[0x7F] = "␡"


def _stand_in(ch: str) -> str:
    o = ord(ch)
    if o in _C0:
        return _C0[o]
    if o <= 0xFF:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def _unsafe(ch: str) -> bool:
    o = ord(ch)
    if o < 0x20 or 0x7F <= o <= 0x9F:
        return True
    if o < 0xA0:
        return False
    return unicodedata.category(ch) in ("Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def visible(text: object, keep: str = "\n\t") -> str:
    """``text`` with every control character but those in ``keep`` made visible."""
    s = str(text)
    if s.isprintable() and not any(c in s for c in "\u2028\u2029"):
        return s  # the common case, fast (isprintable() is False for every control character)
    out = []
    for i, c in enumerate(s):
        if c in keep or not _unsafe(c):
            out.append(c)
        elif c == "\r" and "\n" in keep and s.startswith("\n", i + 1):
            out.append(c)  # CRLF line ends (a CRLF corpus) are layout too: nothing is overwritten
        else:
            out.append(_stand_in(c))
    return "".join(out)


def visible_line(text: object) -> str:
    """For one-line fields (names, titles, paths): newlines and tabs made visible too."""
    return visible(text, keep="")


def safe_json(obj, **kwargs) -> str:
    """``json.dumps(obj, ensure_ascii=False, ...)`` with every control character \\u-escaped —
    JSON escapes C0 itself but passes C1 (``\\x9b`` is a CSI) and bidi controls through raw."""
    import json

    text = json.dumps(obj, ensure_ascii=False, **kwargs)
    if text.isascii():
        return text
    return "".join(_json_escape(c) if ord(c) >= 0x7F and _unsafe(c) else c for c in text)


def _json_escape(c: str) -> str:
    o = ord(c)
    if o <= 0xFFFF:
        return f"\\u{o:04x}"
    o -= 0x10000  # a surrogate pair, as JSON spells code points beyond the BMP
    return f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04x}"
