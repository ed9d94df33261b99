"""Path globs: ``*`` within a segment, ``**`` over whole segments (last or mid-path),
and what the kernel filters derive from them (docs/secl.md "Strings, patterns, globs, regexes")."""
from __future__ import annotations

import fnmatch

import pytest
from hypothesis import assume, given, settings, strategies as st

from codegen.approvers import rule_approvers
from codegen.partial import BasenameNotIn, PathsBelow, directory_discardable, glob_below, is_discarder, partial_eval
from codegen.patterns import glob_error, make_glob
from agent.evaluator.index import index_keys
from secl_helpers import compile_ok, errors_of, evaluate, open_event

TOKEN = "/tmp/x/**/token"


@pytest.mark.parametrize("path, expected", [
    ("/tmp/x/token", True),              # zero segments
    ("/tmp/x/a/token", True),            # one
    ("/tmp/x/a/b/c/token", True),        # many
    ("/tmp/x//token", True),             # an empty segment is a segment
    ("/tmp/x/token/token", True),
    ("/tmp/xtoken", False),
    ("/tmp/token", False),               # the segments before '**' are all required
    ("/tmp/x", False),
    ("/tmp/x/", False),
    ("/tmp/x/a/token2", False),          # the last segment is matched whole
    ("/tmp/x/a/mytoken", False),
    ("/tmp/x/a/token/", False),
    ("/tmp/y/a/token", False),
    ("/other/tmp/x/a/token", False),     # anchored at the start
    ("tmp/x/a/token", False),
    ("", False),
])
def test_mid_path_globstar(path: str, expected: bool) -> None:
    assert make_glob(TOKEN).match(path) is expected


@pytest.mark.parametrize("glob, path, expected", [
    ("/var/*/secrets/**/token", "/var/run/secrets/token", True),
    ("/var/*/secrets/**/token", "/var/run/secrets/k/s/token", True),
    ("/var/*/secrets/**/token", "/var/secrets/token", False),
    ("/a/**/*.conf", "/a/b.conf", True),
    ("/a/**/*.conf", "/a/x/y/b.conf", True),
    ("/a/**/*.conf", "/a/x/y/b.txt", False),
    ("/a/**/x/*", "/a/x/f", True),
    ("/a/**/x/*", "/a/1/2/x/f", True),
    ("/a/**/x/*", "/a/1/2/x/f/g", False),
    ("/a/**/a/b", "/a/a/b", True),
    ("/a/**/a/b", "/a/b", False),         # before and after '**' never share a segment
    ("/**/passwd", "/passwd", True),
    ("/**/passwd", "/etc/passwd", True),
    ("/**/passwd", "etc/passwd", False),  # the leading '/' is a segment of its own
    ("**/passwd", "passwd", True),
    ("**/passwd", "etc/passwd", True),
    ("**/passwd", "/etc/passwd", True),
    # a last '**' keeps its meaning: everything below, not the directory itself
    ("/etc/**", "/etc/", True),
    ("/etc/**", "/etc/a/b", True),
    ("/etc/**", "/etc", False),
    ("/etc/*/**", "/etc/a/b", True),
    ("/etc/*/**", "/etc/a", False),
    ("/**", "/", True),
    ("**", "anything/at/all", True),
    ("/etc/*", "/etc/a/b", False),
])
def test_globs_with_other_wildcards(glob: str, path: str, expected: bool) -> None:
    assert glob_error(glob) is None
    assert make_glob(glob).match(path) is expected


@pytest.mark.parametrize("glob, index, message", [
    ("/a/x**/b", 4, "'**' must be a whole path segment ('/a/**/b'); use '*' within a segment"),
    ("/etc/**.conf", 5, "'**' must be a whole path segment ('/a/**/b'); use '*' within a segment"),
    ("/a/***/b", 3, "'**' must be a whole path segment ('/a/**/b'); use '*' within a segment"),
    ("/a/**/b/**", 8, "'**' may appear only once in a glob"),
    ("/**/b/**/c", 6, "'**' may appear only once in a glob"),
])
def test_invalid_globs(glob: str, index: int, message: str) -> None:
    assert glob_error(glob) == (index, message)


def test_invalid_glob_errors_point_at_the_second_globstar() -> None:
    assert errors_of('open.file.path =~ "/a/**/b/**"') == [(1, 28, "invalid glob: '**' may appear only once in a glob")]


def test_rules_match_through_the_evaluator() -> None:
    doc = open_event(open__file__path="/var/run/secrets/kubernetes.io/serviceaccount/..data/token",
                     open__file__name="token")
    assert evaluate('open.file.path =~ "/var/run/secrets/kubernetes.io/serviceaccount/**/token"', doc)
    assert evaluate('open.file.path in [~"/run/**/token", ~"/var/run/**/token"]', doc)
    assert not evaluate('open.file.path =~ "/var/run/secrets/eks.amazonaws.com/serviceaccount/**/token"', doc)
    assert not evaluate('open.file.path !~ "/var/**/token"', doc)


def test_the_basename_of_a_mid_path_globstar_glob_approves() -> None:
    expr = compile_ok(f'open.file.path =~ "{TOKEN}"').analysis.expr
    chosen = rule_approvers("r", expr, "open").chosen
    assert chosen is not None and chosen.field == "open.file.path" and chosen.values == {"token"}
    assert partial_eval(expr, "open.file.path", BasenameNotIn(frozenset({"token"}))) is False
    assert partial_eval(expr, "open.file.path", BasenameNotIn(frozenset({"other"}))) is None
    star = compile_ok('open.file.path =~ "/tmp/x/**/tok*"').analysis.expr
    offers = rule_approvers("r", star, "open")
    assert not offers.offers["open.file.path"].ok  # no basename: its literal directory prefix only
    assert offers.chosen is not None and offers.chosen.key == "open.file.path (prefix)"
    assert offers.chosen.values == {"/tmp/x/"}


@pytest.mark.parametrize("directory, expected", [
    ("/tmp", None), ("/tmp/x", None), ("/tmp/x/a", None), ("/tmp/x/a/token", None),
    ("/tmp/y", False), ("/etc", False), ("/tmp/xx", False),
])
def test_glob_below_a_directory(directory: str, expected: bool | None) -> None:
    assert glob_below(TOKEN, directory) is expected


def test_no_discarder_hides_a_path_the_glob_matches() -> None:
    positive = [compile_ok(f'open.file.path =~ "{TOKEN}"').analysis.expr]
    negative = [compile_ok(f'open.file.path !~ "{TOKEN}" && open.file.name == "hit"').analysis.expr]
    for d in ("/tmp/x", "/tmp/x/a", "/tmp/x/a/b"):
        assert not directory_discardable(positive, "open.file.path", d)
        # the negation must not read '**' as "every path below matches"
        assert not directory_discardable(negative, "open.file.path", d)
        assert partial_eval(negative[0], "open.file.path", PathsBelow(d)) is None
    assert directory_discardable(positive, "open.file.path", "/tmp/y")
    assert not is_discarder(positive, "open.file.path", "/tmp/x/a/b/token")
    assert is_discarder(positive, "open.file.path", "/tmp/x/a/b/other")
    assert is_discarder(positive, "open.file.path", "/tmp/token")


def test_the_rule_index_files_a_mid_path_glob_under_its_first_segment() -> None:
    keys = index_keys(compile_ok(f'open.file.path =~ "{TOKEN}"').analysis.expr)
    assert keys[("open.file.path", "top")][1] == {"tmp"}
    assert ("open.file.path", "top") not in index_keys(compile_ok('open.file.path =~ "/**/token"').analysis.expr)


def _reference(glob: list[str], path: list[str]) -> bool:
    """Segment-by-segment with backtracking: '**' (mid-path) takes zero or more segments."""
    if not glob:
        return not path
    head, rest = glob[0], glob[1:]
    if head == "**" and rest:
        return any(_reference(rest, path[k:]) for k in range(len(path) + 1))
    if head == "**":
        return len(path) >= 1
    return bool(path) and fnmatch.fnmatchcase(path[0], head) and _reference(rest, path[1:])


SEGMENTS = st.sampled_from(["a", "b", "", "*", "a*", "*b", "**"])
NAMES = st.sampled_from(["a", "b", "", "ab", "ba", "aa"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=5), st.lists(NAMES, min_size=1, max_size=6))
def test_globs_agree_with_a_backtracking_reference(glob: list[str], path: list[str]) -> None:
    text, value = "/".join(glob), "/".join(path)
    assume(glob_error(text) is None and text != "**")
    assert make_glob(text).match(value) is _reference(glob, path), (text, value)
