"""Lexer and parser: tokens, precedence, positions, zero grammar conflicts."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from codegen import ast, parser
from codegen.errors import Diagnostics, Source
from codegen.lexer import tokenize


def toks(text: str) -> list[tuple[str, object]]:
    errors: list[tuple[int, str]] = []
    out = [(t.type, _plain(t.value)) for t in tokenize(text, lambda o, m: errors.append((o, m)))]
    assert not errors
    return out


def _plain(value: object) -> object:
    """Token values with offsets as tuples (the lexer may give a range)."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], (range, tuple)):
        return (value[0], tuple(value[1]))
    return value


def parse(text: str) -> ast.Node:
    diags = Diagnostics()
    node = parser.parse(Source(text), diags)
    assert node is not None, [d.format() for d in diags]
    return node


def parse_errors(text: str) -> list[tuple[int, int, str]]:
    diags = Diagnostics()
    assert parser.parse(Source(text), diags) is None
    return [(d.line, d.col, d.message) for d in diags]


def shape(node: ast.Node) -> str:
    """Fully parenthesised rendering of the tree."""
    if isinstance(node, ast.Binary):
        return f"({shape(node.left)} {node.op} {shape(node.right)})"
    if isinstance(node, ast.Unary):
        return f"({node.op}{shape(node.operand)})"
    if isinstance(node, ast.Ident):
        return node.name
    if isinstance(node, (ast.IntLit, ast.DurationLit)):
        return str(node.value)
    if isinstance(node, ast.ArrayLit):
        return "[" + ",".join(shape(i) for i in node.items) + "]"
    if isinstance(node, ast.StringLit):
        return repr(node.value)
    return type(node).__name__


def test_grammar_has_no_conflicts() -> None:
    shift_reduce, reduce_reduce = parser.grammar_conflicts()
    assert shift_reduce == [] and reduce_reduce == []


def test_parser_is_built_once_and_writes_no_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    package = Path(parser.__file__).parent
    before = {p: p.stat().st_mtime_ns for p in package.glob("*parsetab*")}
    first = parser._PARSER
    parse("a == 1")
    assert parser._PARSER is first
    assert not list(tmp_path.iterdir())
    # only the build writes the tables (write_tables); parsing never does
    assert {p: p.stat().st_mtime_ns for p in package.glob("*parsetab*")} == before


def test_tables_written_at_build_time_are_the_grammars(tmp_path: Path) -> None:
    import importlib.util
    import sys

    from ply import yacc

    parser.write_tables(str(tmp_path))
    spec = importlib.util.spec_from_file_location("written_parsetab", tmp_path / f"{parser.TABLE_MODULE}.py")
    assert spec is not None and spec.loader is not None
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    module = sys.modules[parser.__name__]
    info = yacc.ParserReflect({k: getattr(module, k) for k in dir(module)}, log=yacc.NullLogger())
    info.get_all()
    assert table._lr_signature == info.signature()   # PLY reads them instead of building its own
    assert parse("process.comm == \"sh\" && open.file.path == \"/etc/passwd\"") is not None


@pytest.mark.parametrize("text, expected", [
    ('"a\\"b"', [("STRING", ('a"b', (1, 2, 4)))]),
    ('~"/etc/*"', [("PATTERN", ("/etc/*", (2, 3, 4, 5, 6, 7)))]),
    ('r"^a\\d+"', [("REGEX", ("^a\\d+", (2, 3, 4, 5, 6)))]),
    ("42", [("INT", 42)]),
    ("0x1F", [("INT", 31)]),
    ("0o644", [("INT", 420)]),
    ("5s 10m 2h 3ms 4us 7ns", [("DURATION", 5_000_000_000), ("DURATION", 600_000_000_000),
                               ("DURATION", 7_200_000_000_000), ("DURATION", 3_000_000),
                               ("DURATION", 4_000), ("DURATION", 7)]),
    ("true false", [("TRUE", "true"), ("FALSE", "false")]),
    ("${process.pid}", [("VARIABLE", "process.pid")]),
    ("process.ancestors[_].file.name", [("IDENT", "process.ancestors[_].file.name")]),
    ("a and b or not c", [("IDENT", "a"), ("AND", "&&"), ("IDENT", "b"), ("OR", "||"), ("NOT", "!"),
                          ("IDENT", "c")]),
    ("x not in y", [("IDENT", "x"), ("NOTIN", "not in"), ("IDENT", "y")]),
    ("x not inode", [("IDENT", "x"), ("NOT", "!"), ("IDENT", "inode")]),
    ("a allin b", [("IDENT", "a"), ("ALLIN", "allin"), ("IDENT", "b")]),
    ("== != < <= > >= =~ !~ + - & | ^ ( ) ] [ ,",  # "[ ]" would be one ARRAY token
     [("EQ", "=="), ("NE", "!="), ("LT", "<"), ("LE", "<="), ("GT", ">"), ("GE", ">="), ("MATCH", "=~"),
      ("NOTMATCH", "!~"), ("PLUS", "+"), ("MINUS", "-"), ("BAND", "&"), ("BOR", "|"), ("BXOR", "^"),
      ("LPAREN", "("), ("RPAREN", ")"), ("RBRACKET", "]"), ("LBRACKET", "["), ("COMMA", ",")]),
    ("a # comment\n// another\nb", [("IDENT", "a"), ("IDENT", "b")]),
])
def test_tokens(text: str, expected: list[tuple[str, object]]) -> None:
    assert toks(text) == expected


@pytest.mark.parametrize("text, network", [
    ("10.0.0.1", "10.0.0.1/32"), ("10.0.0.0/8", "10.0.0.0/8"), ("::1", "::1/128"),
    ("fe80::/10", "fe80::/10"), ("2001:db8::1", "2001:db8::1/128"),
])
def test_ip_literals(text: str, network: str) -> None:
    ((kind, pair),) = toks(text)
    assert isinstance(pair, tuple)
    value, raw = pair
    assert kind == "IP" and value == ipaddress.ip_network(network) and raw == text


@pytest.mark.parametrize("text, expected", [
    ("a || b && c", "(a || (b && c))"),
    ("a && b || c", "((a && b) || c)"),
    ("a || b || c", "((a || b) || c)"),
    ("x & 2 > 0", "((x & 2) > 0)"),
    ("x + 1 & 3 == 4", "((x + (1 & 3)) == 4)"),
    ("x | 1 ^ 2 & 3", "(((x | 1) ^ 2) & 3)"),
    ("a - 1 - 2 < 3", "(((a - 1) - 2) < 3)"),
    ("!a && b", "((!a) && b)"),
    ("!a == b", "((!a) == b)"),
    ("-x + 1", "((-x) + 1)"),
    ("^x & 1", "((^x) & 1)"),
    ("a in [1, 2,] && b", "((a in [1,2]) && b)"),
    ("(a || b) && c", "((a || b) && c)"),
    ("x not in [1] || y allin [2]", "((x not in [1]) || (y allin [2]))"),
])
def test_precedence(text: str, expected: str) -> None:
    assert shape(parse(text)) == expected


def test_nodes_carry_positions_and_parens() -> None:
    node = parse('open.flags & O_RDWR > 0 && (a || b)')
    assert isinstance(node, ast.Binary) and node.op == "&&"
    assert node.span == ast.Span(0, 35) and node.op_span == ast.Span(24, 26)
    assert isinstance(node.right, ast.Binary) and node.right.parens and node.right.span == ast.Span(27, 35)
    cmp = node.left
    assert isinstance(cmp, ast.Binary) and cmp.op == ">" and cmp.op_span.start == 20
    assert isinstance(cmp.left, ast.Binary) and cmp.left.left.span == ast.Span(0, 10)


def test_nodes_are_frozen() -> None:
    node = parse("a == 1")
    with pytest.raises(AttributeError):
        node.op = "!="  # type: ignore[misc, union-attr]


@pytest.mark.parametrize("text, expected", [
    ("a == b == c", [(1, 8, "syntax error: unexpected '=='")]),
    ("a &&", [(1, 5, "unexpected end of expression")]),
    ("a ) b", [(1, 3, "syntax error: unexpected ')'")]),
    ("", [(1, 1, "empty expression")]),
    ("a = b", [(1, 3, "unexpected character '='")]),
    ('a == "abc', [(1, 6, "unterminated string")]),
    ("a ==\n  == b", [(2, 3, "syntax error: unexpected '=='")]),
    ("${x", [(1, 1, "unterminated variable: expected '}'")]),
    ("a == 300.1.1.1", [(1, 6, "invalid IP address or CIDR '300.1.1.1': '300.1.1.1' does not appear to be an IPv4 or IPv6 network")]),
    ("[1, 2", [(1, 6, "unexpected end of expression")]),
    ("a in (1, 2)", [(1, 8, "syntax error: unexpected ','")]),
])
def test_syntax_errors(text: str, expected: list[tuple[int, int, str]]) -> None:
    assert parse_errors(text) == expected


def test_error_object_keeps_position_and_prints_caret() -> None:
    diags = Diagnostics()
    parser.parse(Source("open.file.path ==", name="<expr>"), diags)
    (d,) = diags
    assert (d.file, d.line, d.col) == ("<expr>", 1, 18)
    assert d.format() == "<expr>:1:18: error: unexpected end of expression\nopen.file.path ==\n                 ^"
