"""Named iterators (``process.ancestors[A]``), ``%{field}`` interpolation,
the ``.length`` and ``.root_domain`` helpers, file hashes (``hash`` action,
``*.file.hashes``) and freeing the variables of exited processes
(docs/secl.md "Named iterators", "Helpers", "File hashes", "Variables")."""
from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.engine import Engine
from agent.evaluator import domains
from agent.evaluator.event import Resolved
from agent.hashing import HashConfig, Hasher, parse_algorithms, set_default_hasher
from agent.metrics import Registry
from agent.replay import CollectingSink
from codegen.approvers import compute_approvers
from codegen.partial import is_discarder
from codegen.policy import load_policies
from codegen.hostinfo import host_document
from secl_helpers import NOW, errors_of, evaluate, open_event

WritePolicy = Callable[..., Path]


def exec_event(ancestors: list[dict[str, Any]], **process: Any) -> dict[str, Any]:
    proc = {"pid": 300, "comm": "sh", "argv": ["sh", "-c", "make", "all", "-j", "4"], "user": "alice",
            "file": {"path": "/usr/bin/sh"}, "ancestors": ancestors}
    proc.update(process)
    return {"type": "exec", "timestamp": NOW, "exec": copy.deepcopy(proc), "process": proc}


GIT_CLONE = [{"pid": 200, "comm": "bash", "argv": ["bash", "clone"]},
             {"pid": 100, "comm": "git", "argv": ["git", "clone", "--recursive", "u"]}]
SPLIT = [{"pid": 200, "comm": "git", "argv": ["git", "status"]},
         {"pid": 100, "comm": "bash", "argv": ["bash", "clone"]}]


# --- named iterators ----------------------------------------------------------------

CLONE = 'exec.comm == "sh" && process.ancestors[A].comm == "git" && process.ancestors[A].argv in ["clone"]'


def test_named_iterator_binds_every_clause_to_one_element() -> None:
    assert evaluate(CLONE, exec_event(GIT_CLONE))
    # each clause holds on some ancestor, never both on the same one
    assert not evaluate(CLONE, exec_event(SPLIT))
    # `[_]` (and no subscript) keep "any element" for each clause on its own
    assert evaluate(CLONE.replace("[A]", "[_]"), exec_event(SPLIT))
    assert evaluate(CLONE.replace("[A]", ""), exec_event(SPLIT))
    assert evaluate('exec.comm == "sh" && process.ancestors[A].comm == "git" && '
                    'process.ancestors[A].args_flags in ["recursive"]', exec_event(GIT_CLONE))
    assert not evaluate(CLONE, exec_event([]))


def test_named_iterator_under_negation_and_or() -> None:
    # !(A.comm == git && A.argv has clone): no single ancestor is a git clone
    neg = 'exec.comm == "sh" && !(process.ancestors[A].comm == "git" && process.ancestors[A].argv in ["clone"])'
    # the rule is tried element by element: true as soon as one element is not a git clone
    assert evaluate(neg, exec_event(GIT_CLONE))  # bash is not git
    assert not evaluate(neg, exec_event(GIT_CLONE[1:]))
    assert evaluate('exec.comm == "x" || process.ancestors[A].comm == "git" && process.ancestors[A].pid == 100',
                    exec_event(GIT_CLONE))
    assert not evaluate('exec.comm == "x" || (process.ancestors[A].comm == "git" && process.ancestors[A].pid == 200)',
                        exec_event(GIT_CLONE))


def test_named_iterator_bounded_to_the_reference_agents_100_elements() -> None:
    far = [{"pid": 1000 + i, "comm": "bash"} for i in range(100)] + [{"pid": 5, "comm": "git"}]
    assert not evaluate('exec.comm == "sh" && process.ancestors[A].comm == "git"', exec_event(far))
    assert evaluate('exec.comm == "sh" && process.ancestors[A].comm == "git"', exec_event(far[1:]))


def test_named_iterator_through_a_macro_and_in_a_policy(write_policy: WritePolicy) -> None:
    text = """
macros:
  - id: git_clone_ancestor
    expression: process.ancestors[A].comm == "git" && process.ancestors[A].argv in ["clone"]
rules:
  - id: shell_in_clone
    expression: exec.comm == "sh" && git_clone_ancestor
  - id: same_register_in_rule_and_macro
    expression: exec.comm == "sh" && git_clone_ancestor && process.ancestors[A].pid == 100
"""
    result = load_policies([write_policy(text)], host=host_document())
    assert not result.skipped, result.skipped
    assert result.ruleset.evaluate(exec_event(GIT_CLONE)) == ["shell_in_clone", "same_register_in_rule_and_macro"]
    assert result.ruleset.evaluate(exec_event(SPLIT)) == []


def test_named_iterator_errors_point_at_the_construct() -> None:
    two = 'process.ancestors[A].comm == "git" && process.ancestors[B].comm == "sh" && exec.comm == "x"'
    assert errors_of(two) == [(1, 56, "a second named iterator '[B]' (after '[A]'): a rule has at most one, "
                                      "as in the reference agent; use '[A]' or '[_]'")]
    (err,) = errors_of('process.ancestors[A].length > 2 && exec.comm == "x"')
    assert err[:2] == (1, 18) and "is not a field of each element" in err[2]
    (err,) = errors_of('exec.file[A].path == "/x"')
    assert err[:2] == (1, 10) and "only allowed after an iterator" in err[2]
    (err,) = errors_of('exec.file.path == "/x/%{process.ancestors[A].comm}"')
    assert err[:2] == (1, 23) and "cannot be interpolated" in err[2]


def test_named_iterator_keeps_kernel_filters_sound(write_policy: WritePolicy) -> None:
    """The rule still approves on its own file field; ancestors' fields never approve or discard."""
    text = """
rules:
  - id: clone_reads_ssh_key
    expression: open.file.path == "/root/.ssh/id_rsa" && process.ancestors[A].comm == "git" && process.ancestors[A].argv in ["clone"]
"""
    result = load_policies([write_policy(text)], host=host_document())
    (rule,) = result.ruleset.rules
    approvers = compute_approvers(result.ruleset)["open"].approvers
    assert approvers is not None and approvers["open.file.path"].values == frozenset({"id_rsa"})
    assert is_discarder([rule], "open.file.path", "/etc/passwd")
    assert not is_discarder([rule], "open.file.path", "/root/.ssh/id_rsa")
    assert not is_discarder([rule], "process.ancestors.comm", "bash")  # never decided by one ancestor field


# --- %{field} interpolation -------------------------------------------------------------

def test_field_interpolation_in_values_and_patterns() -> None:
    doc = open_event(open__file__path="/home/alice/.bashrc", process__user="alice")
    assert evaluate('open.file.path == "/home/%{process.user}/.bashrc"', doc)
    assert not evaluate('open.file.path == "/home/%{process.comm}/.bashrc"', doc)
    assert evaluate('open.file.path =~ "/home/%{process.user}/*"', doc)       # a glob on a path field
    assert not evaluate('open.file.path =~ "/home/%{process.user}"', doc)
    assert evaluate('open.file.path !~ "/home/%{process.comm}/*"', doc)
    assert evaluate('process.comm =~ ~"%{process.user}*"', open_event(process__user="ca"))  # a pattern
    assert evaluate('open.file.path == "/proc/%{process.pid}/x"', open_event(open__file__path="/proc/4242/x"))


def test_field_interpolation_errors() -> None:
    (err,) = errors_of('open.file.path == "/x/%{process.argv}"')
    assert err[:2] == (1, 23) and "array field '%{process.argv}'" in err[2]
    (err,) = errors_of('open.file.path == "/x/%{process.nope}"')
    assert err[:2] == (1, 25) and "unknown field 'process.nope'" in err[2]


# --- helpers: .length, .root_domain ------------------------------------------------------

def test_length_of_strings_and_lists() -> None:
    doc = exec_event([])
    assert evaluate("process.argv.length > 5", doc) and not evaluate("process.argv.length > 6", doc)
    assert evaluate("exec.file.path.length == 11", doc)
    assert evaluate("process.comm.length == 2 && process.args_flags.length == 2", doc)  # -c, -j
    assert evaluate("process.envs.length == 0", doc)
    (err,) = errors_of("process.pid.length > 1")
    assert "unknown field 'process.pid.length'" in err[2]


def test_root_domain_follows_the_public_suffix_list() -> None:
    cases = {"www.example.co.uk": "example.co.uk", "a.b.example.com": "example.com", "co.uk": "", "com": "",
             "x.y.github.io": "y.github.io", "EXAMPLE.org.": "example.org", "10.0.0.1": "", "": ""}
    if not any(p.exists() for p in domains.LIST_PATHS):
        pytest.fail("the Public Suffix List is not installed (Debian package 'publicsuffix', make setup)")
    for name, root in cases.items():
        assert domains.root_domain(name) == root, name
        doc = {"type": "dns", "timestamp": NOW, "dns": {"question": {"name": name}}, "process": {"pid": 1}}
        assert evaluate(f'dns.question.name.root_domain == "{root}"', doc), name


def test_public_suffix_rules_wildcards_and_exceptions() -> None:
    psl = domains.SuffixList.parse("// c\nuk\nco.uk\n*.ck\n!www.ck\n")
    assert psl.public_suffix("a.b.co.uk".split(".")) == 2
    assert psl.public_suffix("a.b.ck".split(".")) == 2      # *.ck: b.ck is a suffix
    assert psl.public_suffix("x.www.ck".split(".")) == 1    # !www.ck: www.ck is registrable
    assert psl.public_suffix("a.example".split(".")) == 1   # no rule: the last label


# --- file hashes ----------------------------------------------------------------------------

def test_hasher_computes_caches_and_bounds(tmp_path: Path) -> None:
    data = b"rsagent" * 1000
    f = tmp_path / "f.bin"
    f.write_bytes(data)
    hasher = Hasher(HashConfig(algorithms=("sha256", "sha1", "md5"), max_bytes=10_000, rate=2))
    first = hasher.hash_file(str(f))
    assert first.status == "computed"
    assert first.hashes == (f"sha256:{hashlib.sha256(data).hexdigest()}", f"sha1:{hashlib.sha1(data).hexdigest()}",
                            f"md5:{hashlib.md5(data).hexdigest()}")
    assert hasher.hash_file(str(f)).status == "cached"
    f.write_bytes(data + b"!")  # changed: size and mtime
    assert hasher.hash_file(str(f)).hashes[0] == f"sha256:{hashlib.sha256(data + b'!').hexdigest()}"
    assert hasher.hash_file(str(f), inode=os.stat(f).st_ino + 1).status == "error"  # replaced since the event
    big = tmp_path / "big"
    big.write_bytes(b"x" * 10_001)
    assert hasher.hash_file(str(big)).status == "too_big"
    link = tmp_path / "link"
    link.symlink_to(f)
    assert hasher.hash_file(str(link)).status == "error"  # O_NOFOLLOW
    os.mkfifo(tmp_path / "fifo")
    assert hasher.hash_file(str(tmp_path / "fifo")).status == "error"  # never read
    others = []
    for i in range(4):
        g = tmp_path / f"g{i}"
        g.write_bytes(b"%d" % i)
        others.append(hasher.hash_file(str(g)).status)
    assert "rate_limited" in others  # 2 per second
    assert hasher.counts["computed"] >= 2 and hasher.counts["cached"] == 1 and hasher.counts["too_big"] == 1
    with pytest.raises(ValueError, match="crc32"):
        parse_algorithms("sha256,crc32")
    assert parse_algorithms("SHA1, md5") == ("sha1", "md5")


def test_hash_action_reports_hashes_in_the_alert(write_policy: WritePolicy, tmp_path: Path) -> None:
    target = tmp_path / "payload"
    target.write_bytes(b"payload")
    text = f"""
rules:
  - id: hash_it
    expression: open.file.path == "{target}"
    actions:
      - hash: {{}}
  - id: by_hash
    expression: open.file.path == "{target}" && open.file.hashes in ["sha256:{hashlib.sha256(b'payload').hexdigest()}"]
"""
    result = load_policies([write_policy(text)], host=host_document())
    metrics = Registry()
    hasher = Hasher(metrics=metrics)
    set_default_hasher(hasher)
    sink = CollectingSink()
    engine = Engine(result.ruleset, [sink], hasher=hasher, metrics=metrics)
    with engine:
        engine(open_event(open__file__path=str(target), open__file__inode=os.stat(target).st_ino))
    assert sorted(a["rule_id"] for a in sink.alerts) == ["by_hash", "hash_it"]
    alert = next(a for a in sink.alerts if a["rule_id"] == "hash_it")
    digest = f"sha256:{hashlib.sha256(b'payload').hexdigest()}"
    assert alert["actions"] == [{"hash": {"field": "open.file.path", "status": "cached", "hashes": [digest]}}]
    assert alert["event"]["open"]["file"]["hashes"] == [digest]
    assert metrics.value("file_hashes_total", result="computed") == 1
    assert metrics.value("file_hashes_total", result="cached") == 1


# --- variables of exited processes ------------------------------------------------------------

def test_process_variables_are_freed_when_the_process_exits(write_policy: WritePolicy) -> None:
    text = """
rules:
  - id: mark
    expression: open.file.path == "/etc/my_secrets"
    actions:
      - set: {name: seen, value: true, scope: process}
  - id: seen_exit
    expression: exit.code == 0 && ${process.seen}
"""
    result = load_policies([write_policy(text)], host=host_document())
    metrics = Registry()
    sink = CollectingSink()
    engine = Engine(result.ruleset, [sink], metrics=metrics)
    gone = 2 ** 22 + 7  # above pid_max's default: no such process
    for pid in (os.getpid(), gone):
        engine(open_event(process__pid=pid))
    store = result.ruleset.variables
    assert len(store) == 2
    engine({"type": "exit", "timestamp": NOW + 1, "exit": {"code": 0}, "process": {"pid": os.getpid()}})
    assert [a["rule_id"] for a in sink.alerts] == ["mark", "mark", "seen_exit"]  # read before freed
    assert len(store) == 1 and metrics.value("variables_freed_total") == 1
    engine(open_event(process__pid=os.getpid(), timestamp=NOW + 20_000_000_000))  # the sweep, 10 s later
    assert len(store) == 1 and store.freed == 2  # `gone` freed; this process marked again


def test_hash_action_leaves_shared_process_images_alone(write_policy: WritePolicy, tmp_path: Path) -> None:
    """A process image's parts are shared by every document showing it: the
    hashes go on this document's own copy."""
    target = tmp_path / "tool"
    target.write_bytes(b"tool")
    text = """
rules:
  - id: hash_process_file
    expression: open.file.path == "/etc/my_secrets"
    actions:
      - hash: {field: process.file.path}
"""
    result = load_policies([write_policy(text)], host=host_document())
    shared = Resolved({"path": str(target), "name": "tool"})
    doc = open_event()
    doc["process"]["file"] = shared
    sink = CollectingSink()
    with Engine(result.ruleset, [sink], hasher=Hasher()) as engine:
        engine(doc)
    (alert,) = sink.alerts
    digest = f"sha256:{hashlib.sha256(b'tool').hexdigest()}"
    assert alert["event"]["process"]["file"]["hashes"] == [digest]
    assert "hashes" not in shared
