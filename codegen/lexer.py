"""SECL lexer (PLY). Built once per process; each parse uses a clone.

The lexer knows nothing of the parser: problems go to the ``on_error``
callback given to :func:`tokenize` / :func:`new_lexer` as (offset, message).

Literals are checked where they are read (:mod:`codegen.limits`): strings
at most ``MAX_STRING_CHARS`` characters, integers within 8 bytes, durations
within ``MAX_DURATION_NS`` — a number too long to be one is refused before
Python converts it. An array of plain literals (``["a", "b", 3]``, the
shape of long lists) is one ``ARRAY`` token matched by one regular
expression, so a list of 200 000 strings costs one regex scan, not a
million grammar steps; anything else in brackets goes through the grammar.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

from ply import lex

from . import limits

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
    "IDENT", "VARIABLE", "ARRAY",
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

_IDENT_PART = r"[A-Za-z_][A-Za-z0-9_]*(?:\[[A-Za-z_][A-Za-z0-9_]*\])?"  # `[_]`, or a named iterator `[A]`


Offsets = Sequence[int]  # expression offset of each character of a literal's value


def unescape(raw: str, start: int, keep_backslashes: bool = False) -> tuple[str, Offsets]:
    """Decode a quoted literal's body; ``start`` is the body's offset.

    Only ``\\"`` and ``\\\\`` are escapes in strings and patterns; a regex
    keeps every backslash (``keep_backslashes``) except before a quote.
    Returns the value and the expression offset of each of its characters.
    """
    if "\\" not in raw:
        return raw, range(start, start + len(raw))
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


# --- literals: one definition each, shared by the single tokens and ARRAY -------------

_BODY = r'[^"\\\n]*(?:\\.[^"\\\n]*)*'  # unrolled: no alternation per character
_INT_RE = r"0[xX][0-9A-Fa-f]+|0[oO][0-7]+|[0-9]+"
_WS = r"[ \t\r\n]*"
_LITERAL = rf'r"{_BODY}"|~"{_BODY}"|"{_BODY}"|(?:{_INT_RE})(?![0-9A-Za-z_.:/])'
_ARRAY_RE = rf"\[{_WS}(?:(?:{_LITERAL}){_WS},{_WS})*(?:(?:{_LITERAL}){_WS})?\]"
_ITEM = re.compile(rf'(r"|~"|")({_BODY})"|({_INT_RE})')
_QUOTED_KINDS = {'r"': "REGEX", '~"': "PATTERN", '"': "STRING"}
_INT_CHARS = 30  # longer than any 8-byte integer however written: refused without converting


def _quoted(lexer: lex.Lexer, body: str, start: int, token_start: int, regex: bool) -> tuple[str, Offsets]:
    if len(body) > limits.MAX_STRING_CHARS:  # (escapes only shorten a body: the value is within too)
        lexer.on_error(token_start, f"string longer than {limits.MAX_STRING_CHARS} characters "
                                    f"(docs/secl.md \"Limits\")")
    return unescape(body, start, keep_backslashes=regex)


def _integer(lexer: lex.Lexer, text: str, offset: int) -> int:
    if len(text) > _INT_CHARS:
        value = limits.INT8.high + 1
    else:
        value = int(text, 0) if text[:2].lower() in ("0x", "0o") else int(text)
    if value > limits.INT8.high:
        lexer.on_error(offset, f"integer {_short(text)} out of range: integers fit in 8 bytes "
                               f"(at most {limits.INT8.high})")
        return 0
    return value


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text)} digits)"


ArrayItem = tuple[str, object, int, int]  # (token type, value, start, end)


def t_ARRAY(t: lex.LexToken) -> lex.LexToken:
    items: list[ArrayItem] = []
    append = items.append
    base = t.lexpos
    lexer = t.lexer
    left = lexer.items_left
    for m in _ITEM.finditer(t.value):
        if left == 0:
            lexer.on_error(base + m.start(), f"the policy's lists hold more than {limits.MAX_LIST_ITEMS:,} elements "
                                             f"in all (docs/secl.md \"Limits\")")
            break
        left -= 1
        quote, body, number = m.groups()
        start, end = base + m.start(), base + m.end()
        if number is not None:
            append(("INT", _integer(lexer, number, start), start, end))
        else:
            value = _quoted(lexer, body, start + len(quote), start, quote == 'r"')
            append((_QUOTED_KINDS[quote], value, start, end))
    lexer.items_left = left
    t.value = items
    return t


t_ARRAY.__doc__ = _ARRAY_RE


def t_NOTIN(t: lex.LexToken) -> lex.LexToken:
    r"not[ \t\r\n]+in\b"
    t.value = "not in"
    return t


def t_REGEX(t: lex.LexToken) -> lex.LexToken:
    t.value = _quoted(t.lexer, t.value[2:-1], t.lexpos + 2, t.lexpos, regex=True)
    return t


def t_PATTERN(t: lex.LexToken) -> lex.LexToken:
    t.value = _quoted(t.lexer, t.value[2:-1], t.lexpos + 2, t.lexpos, regex=False)
    return t


def t_STRING(t: lex.LexToken) -> lex.LexToken:
    t.value = _quoted(t.lexer, t.value[1:-1], t.lexpos + 1, t.lexpos, regex=False)
    return t


t_REGEX.__doc__ = f'r"{_BODY}"'
t_PATTERN.__doc__ = f'~"{_BODY}"'
t_STRING.__doc__ = f'"{_BODY}"'


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
    digits = t.value[: len(t.value) - len(unit)]
    value = int(digits) * DURATION_UNITS[unit] if len(digits) <= _INT_CHARS else limits.MAX_DURATION_NS + 1
    if value > limits.MAX_DURATION_NS:
        t.lexer.on_error(t.lexpos, f"duration {_short(t.value)} too long: at most 100 years")
        value = 0
    t.value = value
    return t


def t_INT(t: lex.LexToken) -> lex.LexToken:
    t.value = _integer(t.lexer, t.value, t.lexpos)
    return t


t_INT.__doc__ = _INT_RE


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


def new_lexer(text: str, on_error: ErrorCallback, items_left: int = limits.MAX_LIST_ITEMS) -> lex.Lexer:
    """A fresh lexer over ``text`` reporting to ``on_error``; ``items_left``:
    how many more list elements the load may hold (``lexer.items_left``
    is what remains after each token)."""
    lexer = _BASE.clone()
    lexer.on_error = on_error
    lexer.items_left = items_left
    lexer.input(text)
    return lexer


def tokenize(text: str, on_error: ErrorCallback) -> list[lex.LexToken]:
    """All tokens of ``text`` (for tests and tools)."""
    lexer = new_lexer(text, on_error)
    return list(iter(lexer.token, None))
