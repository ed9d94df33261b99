"""SECL lexer (PLY). Built once per process; each parse uses a clone.

The lexer knows nothing of the parser: problems go to the ``on_error``
callback given to :func:`tokenize` / :func:`new_lexer` as (offset, message).
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from ply import lex

ErrorCallback = Callable[[int, str], None]

KEYWORDS = {
    "and": "AND", "or": "OR", "not": "NOT", "in": "IN", "allin": "ALLIN",
    "true": "TRUE", "false": "FALSE",
}

tokens = (
    "OR", "AND", "NOT",
    "EQ", "NE", "LT", "LE", "GT", "GE", "MATCH", "NOTMATCH", "IN", "NOTIN", "ALLIN",
    "PLUS", "MINUS", "BAND", "BOR", "BXOR",
    "LPAREN", "RPAREN", "LBRACKET", "RBRACKET", "COMMA",
    "INT", "DURATION", "STRING", "PATTERN", "REGEX", "IP", "TRUE", "FALSE",
    "IDENT", "VARIABLE",
)

DURATION_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                  "m": 60_000_000_000, "h": 3_600_000_000_000}

t_ignore = " \t\r\n"
t_ignore_COMMENT = r"(\#|//)[^\n]*"

t_OR = r"\|\|"
t_AND = r"&&"
t_EQ = r"=="
t_NE = r"!="
t_LE = r"<="
t_GE = r">="
t_LT = r"<"
t_GT = r">"
t_MATCH = r"=~"
t_NOTMATCH = r"!~"
t_NOT = r"!"
t_PLUS = r"\+"
t_MINUS = r"-"
t_BAND = r"&"
t_BOR = r"\|"
t_BXOR = r"\^"
t_LPAREN = r"\("
t_RPAREN = r"\)"
t_LBRACKET = r"\["
t_RBRACKET = r"\]"
t_COMMA = r","

_IDENT_PART = r"[A-Za-z_][A-Za-z0-9_]*(?:\[_\])?"


def unescape(raw: str, start: int, keep_backslashes: bool = False) -> tuple[str, tuple[int, ...]]:
    """Decode a quoted literal's body; ``start`` is the body's offset.

    Only ``\\"`` and ``\\\\`` are escapes in strings and patterns; a regex
    keeps every backslash (``keep_backslashes``) except before a quote.
    Returns the value and the expression offset of each of its characters.
    """
    out: list[str] = []
    offsets: list[int] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw) and raw[i + 1] in ('"', "\\"):
            nxt = raw[i + 1]
            if keep_backslashes and nxt == "\\":
                out.append("\\\\")
                offsets.extend((start + i, start + i + 1))
            else:
                out.append(nxt)
                offsets.append(start + i)
            i += 2
            continue
        out.append(c)
        offsets.append(start + i)
        i += 1
    return "".join(out), tuple(offsets)


def t_NOTIN(t: lex.LexToken) -> lex.LexToken:
    r"not[ \t\r\n]+in\b"
    t.value = "not in"
    return t


def t_REGEX(t: lex.LexToken) -> lex.LexToken:
    r'r"(?:[^"\\\n]|\\.)*"'
    t.value = unescape(t.value[2:-1], t.lexpos + 2, keep_backslashes=True)
    return t


def t_PATTERN(t: lex.LexToken) -> lex.LexToken:
    r'~"(?:[^"\\\n]|\\.)*"'
    t.value = unescape(t.value[2:-1], t.lexpos + 2)
    return t


def t_STRING(t: lex.LexToken) -> lex.LexToken:
    r'"(?:[^"\\\n]|\\.)*"'
    t.value = unescape(t.value[1:-1], t.lexpos + 1)
    return t


def t_UNTERMINATED(t: lex.LexToken) -> None:
    r'(?:r|~)?"(?:[^"\\\n]|\\.)*\\?'
    t.lexer.on_error(t.lexpos, "unterminated string")


def t_VARIABLE(t: lex.LexToken) -> lex.LexToken:
    r"\$\{[^}\n]*\}?"
    if not t.value.endswith("}"):
        t.lexer.on_error(t.lexpos, "unterminated variable: expected '}'")
    name = t.value[2:].rstrip("}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", name):
        t.lexer.on_error(t.lexpos + 2, f"invalid variable name {name!r}")
    t.value = name
    return t


def t_IP6(t: lex.LexToken) -> lex.LexToken:
    r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:/[0-9]{1,3})?"
    return _ip(t)


def t_IP4(t: lex.LexToken) -> lex.LexToken:
    r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?:/[0-9]{1,3})?"
    return _ip(t)


def _ip(t: lex.LexToken) -> lex.LexToken:
    text = t.value
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        t.lexer.on_error(t.lexpos, f"invalid IP address or CIDR {text!r}: {exc}")
        network = ipaddress.ip_network("0.0.0.0/32")
    t.type = "IP"
    t.value = (network, text)
    return t


def t_DURATION(t: lex.LexToken) -> lex.LexToken:
    r"[0-9]+(?:ns|us|ms|s|m|h)\b"
    unit = t.value.lstrip("0123456789")
    t.value = int(t.value[: len(t.value) - len(unit)]) * DURATION_UNITS[unit]
    return t


def t_INT(t: lex.LexToken) -> lex.LexToken:
    r"0[xX][0-9A-Fa-f]+|0[oO][0-7]+|[0-9]+"
    t.value = int(t.value, 0) if t.value[:2].lower() in ("0x", "0o") else int(t.value)
    return t


def t_IDENT(t: lex.LexToken) -> lex.LexToken:
    t.type = KEYWORDS.get(t.value, "IDENT")
    if t.type in ("AND", "OR"):
        t.value = "&&" if t.type == "AND" else "||"
    elif t.type == "NOT":
        t.value = "!"
    return t


t_IDENT.__doc__ = _IDENT_PART + r"(?:\." + _IDENT_PART + r")*"


def t_error(t: lex.LexToken) -> None:
    t.lexer.on_error(t.lexpos, f"unexpected character {t.value[0]!r}")
    t.lexer.skip(1)


_BASE = lex.lex(optimize=False, debug=False, reflags=0)


def new_lexer(text: str, on_error: ErrorCallback) -> lex.Lexer:
    """A fresh lexer over ``text`` reporting to ``on_error``."""
    lexer = _BASE.clone()
    lexer.on_error = on_error
    lexer.input(text)
    return lexer


def tokenize(text: str, on_error: ErrorCallback) -> list[lex.LexToken]:
    """All tokens of ``text`` (for tests and tools)."""
    lexer = new_lexer(text, on_error)
    return list(iter(lexer.token, None))
