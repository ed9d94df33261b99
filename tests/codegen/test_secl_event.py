"""Event access protocol: Lazy values, memoization, materialization, resolvers."""
from __future__ import annotations

import json

import pytest

from agent.evaluator.event import DocumentEvent, Lazy, materialize
from codegen.fields import REGISTRY, Field


def field(name: str) -> Field:
    spec = REGISTRY.get(name)
    assert spec is not None
    return spec


def test_lazy_at_any_depth_is_resolved_once_and_written_back() -> None:
    calls: list[str] = []

    def lazy(name: str, value: object) -> Lazy:
        def make() -> object:
            calls.append(name)
            return value
        return Lazy(make)

    doc = {"type": "exec", "timestamp": 5,
           "process": lazy("process", {"ancestors": lazy("ancestors", [
               lazy("a0", {"file": lazy("file0", {"path": "/bin/bash"})}),
               {"file": {"path": lazy("path1", "/sbin/init")}}])})}
    ev = DocumentEvent(doc)
    assert ev.get(field("process.ancestors.file.name")) == ["bash", "init"]
    assert ev.get(field("process.ancestors.file.name")) == ["bash", "init"]
    assert ev.get(field("process.parent.file.path")) == "/bin/bash"
    assert sorted(calls) == ["a0", "ancestors", "file0", "path1", "process"]
    assert doc["process"]["ancestors"][0]["file"] == {"path": "/bin/bash"}  # type: ignore[index]


def test_lazy_returning_lazy_and_materialize() -> None:
    doc = {"type": "open", "open": Lazy(lambda: Lazy(lambda: {"file": Lazy(lambda: {"path": "/x"}),
                                                            "list": [Lazy(lambda: 1), 2]}))}
    assert materialize(doc) is doc
    assert json.loads(json.dumps(doc)) == {"type": "open", "open": {"file": {"path": "/x"}, "list": [1, 2]}}


def test_timestamp_defaults_to_now_and_type_to_empty() -> None:
    ev = DocumentEvent({})
    assert ev.type == "" and ev.timestamp > 1_600_000_000_000_000_000


def test_rejects_non_objects() -> None:
    with pytest.raises(TypeError):
        DocumentEvent([])  # type: ignore[arg-type]


@pytest.mark.parametrize("name, doc, value", [
    ("open.file.name", {"open": {"file": {"path": "/a/b.txt"}}}, "b.txt"),
    ("open.file.name", {"open": {"file": {"path": "/a/b", "name": "given"}}}, "given"),
    ("open.file.rights", {"open": {"file": {"mode": 0o104755}}}, 0o4755),
    ("open.file.rights", {"open": {"file": {"mode": 0o100644, "rights": 0o600}}}, 0o600),
    ("open.file.path.length", {"open": {"file": {"path": "/abc"}}}, 4),
    ("process.argv0", {"process": {"argv": ["ls", "-l"]}}, "ls"),
    ("process.args", {"process": {"argv": ["ls", "-l", "/"]}}, "-l /"),
    ("process.argc", {"process": {"argv": ["ls", "-l", "/"]}}, 3),
    ("process.envs", {"process": {"envp": ["A=1", "B=2"]}}, ["A", "B"]),
    ("container.id", {"process": {"container": {"id": "c1"}}}, "c1"),
    ("container.id", {"container": {"id": "top"}, "process": {"container": {"id": "c1"}}}, "top"),
    ("process.ancestors.length", {"process": {"ancestors": [{}, {}, {}]}}, 3),
    ("process.ancestors.argv", {"process": {"ancestors": [{"argv": ["a", "b"]}, {"argv": ["c"]}]}}, ["a", "b", "c"]),
    ("process.ancestors.file.path.length", {"process": {"ancestors": [{"file": {"path": "/ab"}}]}}, [3]),
    ("event.timestamp", {"timestamp": 42}, 42),
    ("process.pid", {"process": {"pid": True}}, 1),
])
def test_resolvers(name: str, doc: dict[str, object], value: object) -> None:
    assert DocumentEvent(doc).get(field(name)) == value
