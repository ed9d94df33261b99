"""The sinks' encoder: orjson with the JSON of resolved parts spliced, the
same ASCII-only JSON lines as the standard library's encoder."""

from __future__ import annotations

import json
from typing import Any

from agent.clock import BootClock
from agent.evaluator.event import Lazy, ResolvedList, materialize, resolved
from agent.events.process_docs import ancestor_docs
from agent.process.cache import ProcessCache
from agent.process.model import Credentials, TaskMeta
from agent.sinks.record import encode, record_of
from agent.users import UserNames


def _stdlib(doc: Any) -> bytes:
    return json.dumps(materialize(doc), ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _alert(chain: ResolvedList, path: str = "/etc/shadow") -> dict[str, Any]:
    image = resolved({"pid": 7, "comm": "cat", "file": {"path": "/usr/bin/cat", "inode": 2**64 - 1},
                      "argv": ["cat", path], "user": Lazy(lambda: "root")})
    process = image.copy()
    process["ancestors"] = Lazy(lambda: chain)
    process["tid"] = 8
    return {"rule_id": "r", "rule_tags": {"severity": "high"}, "timestamp": 5,
            "event": {"type": "open", "timestamp": 5, "process": process,
                      "open": {"file": {"path": path, "user": Lazy(lambda: Lazy(lambda: "root"))}, "flags": 0}}}


def _chain() -> ResolvedList:
    return ResolvedList([resolved({"pid": 1, "comm": "init", "file": {"path": "/sbin/init"}, "argv": ["init"]})])


def test_spliced_json_is_the_standard_librarys() -> None:
    chain = _chain()
    data = encode(_alert(chain))
    assert data == _stdlib(_alert(chain))
    # the chain's JSON is kept, and spliced as is into the next alert
    assert chain.json is not None and chain.json in data
    assert chain[0].json is not None
    assert encode(_alert(chain)) == data


def test_lazy_values_are_resolved_without_materializing() -> None:
    alert = _alert(_chain())
    doc = json.loads(encode(alert))
    assert doc["event"]["open"]["file"]["user"] == "root"
    assert doc["event"]["process"]["ancestors"][0]["comm"] == "init"


def _odd(value: Any) -> dict[str, Any]:
    alert = _alert(_chain())
    alert["event"]["open"]["extra"] = value
    return alert


def test_what_orjson_refuses_or_writes_otherwise_falls_back() -> None:
    for odd in ("/tmp/caf\u00e9\u2028x", "/tmp/\udcff", 2**70):
        data = encode(_odd(odd))
        assert data.isascii() and b"\n" not in data
        assert data == _stdlib(_odd(odd))
    assert encode({1: "x"}) == b'{"1":"x"}'
    # a resolved part with non-ASCII text keeps escaped (ASCII) JSON
    chain = ResolvedList([resolved({"comm": "\u00e9"})])
    assert encode(_alert(chain)).isascii() and chain.json == b'[{"comm":"\\u00e9"}]'


def test_record_of_an_alert() -> None:
    rec = record_of(_alert(_chain()))
    assert rec.name == "r" and rec.severity == 3 and rec.timestamp == 5
    assert json.loads(rec.data)["event"]["process"]["tid"] == 8


def test_ancestor_chain_is_kept_until_the_lineage_changes() -> None:
    cache = ProcessCache(BootClock())
    users = UserNames()
    creds, meta = Credentials(), TaskMeta()
    cache.on_fork(100, 1_000, 0, 0, creds=creds, meta=meta, parent_comm="root")
    mid = cache.on_fork(101, 2_000, 100, 1_000, creds=creds, meta=meta)
    leaf = cache.on_fork(102, 3_000, 101, 2_000, creds=creds, meta=meta)
    first = ancestor_docs(leaf, users)
    assert [d["pid"] for d in first] == [101, 100]
    assert ancestor_docs(leaf, users) is first
    mid.parent = None          # the lineage above it cut (what cache._cut_lineage does)
    mid.lineage_cut = True
    second = ancestor_docs(leaf, users)
    assert second is not first
    assert [d["pid"] for d in second] == [101] and second[-1]["truncated"] is True
