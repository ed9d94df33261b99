"""SECL parser (PLY, LALR). Built once per process, no table files written.

Precedence, loosest first (docs/secl.md): ``||`` < ``&&`` < comparisons <
``+ -`` < ``& | ^`` < unary ``! - ^``. Comparisons do not chain.

Bounded (docs/secl.md "Limits", :mod:`codegen.limits`): the text's length
is checked first, the parser's stack (open parentheses, brackets and
pending operators) while parsing, lists are built in place (linear time)
and counted, and the tree's nesting depth is checked before anything
recursive sees it.
"""
from __future__ import annotations

import logging
import sys
import threading
from dataclasses import replace
from typing import Any

from ply import yacc

from . import ast, limits
from .errors import Diagnostics, Source, Span
from .lexer import ArrayItem, new_lexer, tokens  # noqa: F401  (PLY reads `tokens` from this module)

log = logging.getLogger(__name__)

precedence = (
    ("left", "OR"),
    ("left", "AND"),
    ("nonassoc", "EQ", "NE", "LT", "LE", "GT", "GE", "MATCH", "NOTMATCH", "IN", "NOTIN", "ALLIN"),
    ("left", "PLUS", "MINUS"),
    ("left", "BAND", "BOR", "BXOR"),
    ("right", "NOT", "UMINUS", "UBNOT"),
)

start = "expression"


class _Abort(Exception):
    """Stops the parse at the first syntax error of an expression."""


def _tok_span(p: Any, i: int) -> Span:
    pos = p.lexpos(i)
    return Span(pos, pos + len(p.slice[i].raw))


def p_expression_binary(p: Any) -> None:
    """expression : expression OR expression
                  | expression AND expression
                  | expression EQ expression
                  | expression NE expression
                  | expression LT expression
                  | expression LE expression
                  | expression GT expression
                  | expression GE expression
                  | expression MATCH expression
                  | expression NOTMATCH expression
                  | expression IN expression
                  | expression NOTIN expression
                  | expression ALLIN expression
                  | expression PLUS expression
                  | expression MINUS expression
                  | expression BAND expression
                  | expression BOR expression
                  | expression BXOR expression"""
    left, right = p[1], p[3]
    p[0] = ast.Binary(p[2], left, right, Span(left.span.start, right.span.end), _tok_span(p, 2))


def p_expression_unary(p: Any) -> None:
    """expression : NOT expression
                  | MINUS expression %prec UMINUS
                  | BXOR expression %prec UBNOT"""
    p[0] = ast.Unary(p[1], p[2], Span(p.lexpos(1), p[2].span.end))


def p_expression_group(p: Any) -> None:
    """expression : LPAREN expression RPAREN"""
    inner = p[2]
    if isinstance(inner, ast.Binary):
        inner = replace(inner, parens=True, span=Span(p.lexpos(1), p.lexpos(3) + 1))
    p[0] = inner


def p_expression_primary(p: Any) -> None:
    """expression : primary"""
    p[0] = p[1]


def p_primary_ident(p: Any) -> None:
    """primary : IDENT"""
    p[0] = ast.Ident(p[1], _tok_span(p, 1))


def p_primary_variable(p: Any) -> None:
    """primary : VARIABLE"""
    p[0] = ast.Variable(p[1], _tok_span(p, 1))


def p_primary_int(p: Any) -> None:
    """primary : INT"""
    p[0] = ast.IntLit(p[1], _tok_span(p, 1))


def p_primary_duration(p: Any) -> None:
    """primary : DURATION"""
    p[0] = ast.DurationLit(p[1], _tok_span(p, 1))


def p_primary_bool(p: Any) -> None:
    """primary : TRUE
               | FALSE"""
    p[0] = ast.BoolLit(p[1] == "true", _tok_span(p, 1))


def p_primary_string(p: Any) -> None:
    """primary : STRING
               | PATTERN
               | REGEX"""
    cls = {"STRING": ast.StringLit, "PATTERN": ast.PatternLit, "REGEX": ast.RegexLit}[p.slice[1].type]
    value, offsets = p[1]
    p[0] = cls(value, offsets, _tok_span(p, 1))


def p_primary_ip(p: Any) -> None:
    """primary : IP"""
    network, text = p[1]
    p[0] = ast.IPLit(network, text, _tok_span(p, 1))


def p_primary_array(p: Any) -> None:
    """primary : LBRACKET elements RBRACKET
               | LBRACKET elements COMMA RBRACKET
               | LBRACKET RBRACKET"""
    items = tuple(p[2]) if len(p) > 3 else ()
    end = p.lexpos(len(p) - 1) + 1
    p[0] = ast.ArrayLit(items, Span(p.lexpos(1), end))


def p_primary_literal_array(p: Any) -> None:
    """primary : ARRAY"""
    items = tuple(_literal(item) for item in p[1])
    p[0] = ast.ArrayLit(items, _tok_span(p, 1))


_LITERALS: dict[str, Any] = {"STRING": ast.StringLit, "PATTERN": ast.PatternLit, "REGEX": ast.RegexLit}


def _literal(item: ArrayItem) -> ast.Node:
    kind, value, start, end = item
    if kind == "INT":
        assert isinstance(value, int)
        return ast.IntLit(value, Span(start, end))
    assert isinstance(value, tuple)
    text, offsets = value
    node: ast.Node = _LITERALS[kind](text, offsets, Span(start, end))
    return node


def p_elements(p: Any) -> None:
    """elements : expression
                | elements COMMA expression"""
    if len(p) == 2:
        p[0] = [p[1]]
        return
    items = p[1]
    state = _STATE.current
    state.budget.items -= 1
    if state.budget.items < 0:
        state.diags.error(state.source, p[3].span.start, f"the policy's lists hold more than "
                                                         f"{limits.MAX_LIST_ITEMS:,} elements in all (docs/secl.md \"Limits\")")
        raise _Abort()
    items.append(p[3])  # in place: linear time
    p[0] = items


_TOKEN_NAMES = {
    "OR": "'||'", "AND": "'&&'", "NOT": "'!'", "EQ": "'=='", "NE": "'!='", "LT": "'<'",
    "LE": "'<='", "GT": "'>'", "GE": "'>='", "MATCH": "'=~'", "NOTMATCH": "'!~'",
    "IN": "'in'", "NOTIN": "'not in'", "ALLIN": "'allin'", "PLUS": "'+'", "MINUS": "'-'",
    "BAND": "'&'", "BOR": "'|'", "BXOR": "'^'", "LPAREN": "'('", "RPAREN": "')'",
    "LBRACKET": "'['", "RBRACKET": "']'", "COMMA": "','", "INT": "integer",
    "DURATION": "duration", "STRING": "string", "PATTERN": "pattern", "REGEX": "regex",
    "IP": "IP address", "TRUE": "'true'", "FALSE": "'false'", "IDENT": "identifier",
    "VARIABLE": "variable", "ARRAY": "array",
}


def p_error(tok: Any) -> None:
    state = _STATE.current
    if len(state.diags) > state.count:
        raise _Abort()  # a lexical error already explains this one
    if tok is None:
        state.diags.error(state.source, len(state.source.text), "unexpected end of expression")
    else:
        state.diags.error(state.source, tok.lexpos, f"syntax error: unexpected {_describe(tok)}")
    raise _Abort()


def _describe(tok: Any) -> str:
    name = str(_TOKEN_NAMES.get(tok.type, tok.type))
    if tok.type in ("IDENT", "INT", "DURATION", "STRING", "PATTERN", "REGEX", "IP"):
        return f"{name} {tok.raw!r}"
    return name


class _State(threading.local):
    current: Any = None


class _ParseState:
    __slots__ = ("source", "diags", "count", "budget")

    def __init__(self, source: Source, diags: Diagnostics, budget: limits.Budget) -> None:
        self.source = source
        self.diags = diags
        self.count = len(diags)
        self.budget = budget


_STATE = _State()
_LOCK = threading.Lock()


class _RawTokenLexer:
    """Wraps a PLY lexer so every token keeps its source text (``raw``), and
    stops the parse when the parser's stack grows past the limit (the
    stack holds what is still open: ``((((``, ``!!!!``, ``a || (b || (``)."""

    def __init__(self, text: str, on_error: Any, budget: limits.Budget) -> None:
        self._lexer = new_lexer(text, on_error, budget.items)
        self._text = text
        self._budget = budget
        self.lineno = 1
        self.lexpos = 0

    def input(self, text: str) -> None:  # PLY calls this only when given text
        self._lexer.input(text)

    def token(self) -> Any:
        lexer, budget = self._lexer, self._budget
        lexer.items_left = max(budget.items, 0)  # the grammar's lists (p_elements) spend it too
        tok = lexer.token()
        budget.items = lexer.items_left
        if tok is not None:
            tok.raw = self._text[tok.lexpos : self._lexer.lexpos]
            budget.tokens -= 1
            if budget.tokens < 0:
                state = _STATE.current
                if budget.report():
                    state.diags.error(state.source, tok.lexpos,
                                      f"the policy's expressions hold more than {limits.MAX_TOKENS:,} tokens in all "
                                      f"(docs/secl.md \"Limits\"): use list macros or split the policy")
                raise _Abort()
            if len(_PARSER.symstack) > limits.MAX_PARSE_STACK:
                state = _STATE.current
                state.diags.error(state.source, tok.lexpos,
                                  f"expression nested too deeply (more than {limits.MAX_PARSE_STACK} open "
                                  f"parentheses, brackets and operators; docs/secl.md \"Limits\")")
                raise _Abort()
        return tok


# The LALR tables, generated at build time (setup.py's build_py into the
# package, `python -m agent.build` into a checkout) by write_tables(): PLY
# reads them at import instead of building them (~55 ms). Missing, or built
# from another grammar (PLY compares the grammar's signature), they are built
# here in memory, never written at run time.
TABLE_MODULE = "_secl_parsetab"


_PARSER = yacc.yacc(module=sys.modules[__name__], debug=False, write_tables=False,
                    tabmodule=f"{__package__}.{TABLE_MODULE}", errorlog=yacc.NullLogger())


def write_tables(directory: str) -> None:
    """Generate the parser's tables as ``directory/_secl_parsetab.py`` (the package's directory)."""
    table, signature = _generated_table()
    table.write_table(TABLE_MODULE, directory, signature)


def parse(source: Source, diags: Diagnostics, budget: limits.Budget | None = None) -> ast.Node | None:
    """Parse ``source.text``; on error, report to ``diags`` and return None.
    ``budget``: the load's (its tokens are spent here); a fresh one by default."""
    if len(source.text) > limits.MAX_EXPRESSION_CHARS:
        diags.error(source, 0, f"expression longer than {limits.MAX_EXPRESSION_CHARS // limits.MIB} MiB "
                               f"(the limit; docs/secl.md \"Limits\"): use list macros or split the rule")
        return None
    if not source.text.strip():
        diags.error(source, 0, "empty expression")
        return None
    count = len(diags)

    def on_error(offset: int, message: str) -> None:
        diags.error(source, offset, message)

    budget = budget if budget is not None else limits.Budget()
    lexer = _RawTokenLexer(source.text, on_error, budget)
    with _LOCK:
        _STATE.current = _ParseState(source, diags, budget)
        try:
            result = _PARSER.parse(lexer=lexer, tracking=False)
        except _Abort:
            return None
        finally:
            _STATE.current = None
    if len(diags) > count:  # lexical errors
        return None
    if nesting_depth(result) > limits.MAX_NESTING_DEPTH:
        diags.error(source, 0, f"expression nested too deeply (more than {limits.MAX_NESTING_DEPTH} levels)")
        return None
    return result


def nesting_depth(node: ast.Node) -> int:
    """Nesting depth, a chain of one logical operator counting as one level."""
    best = 0
    stack = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        best = max(best, depth)
        for c in ast.children(n):
            if isinstance(c, _LEAVES):
                best = max(best, depth + 1)
                continue
            same_chain = (isinstance(n, ast.Binary) and isinstance(c, ast.Binary)
                          and n.op in ast.LOGICAL_OPS and c.op == n.op)
            stack.append((c, depth if same_chain else depth + 1))
    return best


_LEAVES = (ast.Ident, ast.Variable, ast.IntLit, ast.DurationLit, ast.BoolLit, ast.StringLit,
           ast.PatternLit, ast.RegexLit, ast.IPLit)


def grammar_conflicts() -> tuple[list[Any], list[Any]]:
    """(shift/reduce, reduce/reduce) conflicts of the grammar, rebuilt here."""
    table, _ = _generated_table()
    return list(table.sr_conflicts), list(table.rr_conflicts)


def _generated_table() -> tuple[Any, str]:
    """The grammar's LALR tables built from this module, and the grammar's signature."""
    pdict = {k: getattr(sys.modules[__name__], k) for k in dir(sys.modules[__name__])}
    info = yacc.ParserReflect(pdict, log=yacc.NullLogger())
    info.get_all()
    if info.validate_all():
        raise yacc.YaccError("invalid grammar")
    grammar = yacc.Grammar(info.tokens)
    for term, assoc, level in info.preclist:
        grammar.set_precedence(term, assoc, level)
    for funcname, (file, line, prodname, syms) in info.grammar:
        grammar.add_production(prodname, syms, funcname, file, line)
    grammar.set_start(info.start)
    return yacc.LRGeneratedTable(grammar, "LALR", yacc.NullLogger()), info.signature()
