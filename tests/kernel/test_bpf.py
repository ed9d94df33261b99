"""bpf events from real bpf(2) calls: a program loaded (its type, name, tag,
id and the helpers its instructions call), a load the kernel refuses (what
the caller asked for, retval -errno), a map created and used (its type and
name from the kernel's struct bpf_map)."""

from __future__ import annotations

import os
import re

import pytest
from kutil import EXIT, MOV_R0_0, assert_context, call, map_create, map_lookup, mine, prog_load

from codegen.constants import lookup

pytestmark = pytest.mark.root

C = lookup


def _const(name: str) -> int:
    value = C(name)
    assert value is not None, name
    return value


EINVAL = 22


def test_prog_load_reports_the_kernel_program_and_its_helpers(tracer) -> None:
    insns = [call(_const("BPF_GET_PRANDOM_U32")), call(_const("BPF_KTIME_GET_NS")), MOV_R0_0, EXIT]
    with tracer.collect() as col:
        fd = prog_load(insns, _const("BPF_PROG_TYPE_SOCKET_FILTER"), b"rs_test_prog")
    assert fd >= 0, os.strerror(-fd)
    try:
        docs = [d for d in mine(col, "bpf") if d["bpf"]["cmd"] == _const("BPF_PROG_LOAD")]
        assert len(docs) == 1, [d["bpf"] for d in mine(col, "bpf")]
        doc = docs[0]
        assert_context(doc)
        bpf = doc["bpf"]
        assert bpf["retval"] == fd
        prog = bpf["prog"]
        assert prog["source"] == "kernel"
        assert prog["type"] == _const("BPF_PROG_TYPE_SOCKET_FILTER")
        assert prog["name"] == "rs_test_prog"
        assert prog["helpers"] == sorted([_const("BPF_GET_PRANDOM_U32"), _const("BPF_KTIME_GET_NS")])
        assert prog["insn_count"] == len(insns)
        assert re.fullmatch(r"[0-9a-f]{16}", prog["tag"]) and prog["tag"] != "0" * 16
        # the kernel's id of the program: the same as /proc/self/fdinfo says
        fdinfo = open(f"/proc/self/fdinfo/{fd}").read()
        assert f"prog_id:\t{prog['id']}" in fdinfo
        assert f"prog_tag:\t{prog['tag']}" in fdinfo
    finally:
        os.close(fd)


def test_refused_prog_load_reports_the_request_and_negative_errno(tracer) -> None:
    with tracer.collect() as col:
        rc = prog_load([MOV_R0_0, EXIT], 0x7FFF, b"rs_bad_type")   # no such program type
    assert rc == -EINVAL
    doc = [d for d in mine(col, "bpf") if d["bpf"]["cmd"] == _const("BPF_PROG_LOAD")][0]
    assert_context(doc)
    assert doc["bpf"]["retval"] == -EINVAL
    prog = doc["bpf"]["prog"]
    assert prog["source"] == "user" and prog["type"] == 0x7FFF and prog["name"] == "rs_bad_type"
    assert prog["helpers"] == []
    assert "id" not in prog


def test_map_create_and_lookup_name_the_kernel_map(tracer) -> None:
    with tracer.collect() as col:
        fd = map_create(_const("BPF_MAP_TYPE_ARRAY"), b"rs_test_map")
        assert fd >= 0, os.strerror(-fd)
        try:
            assert map_lookup(fd, 0) == 0
            assert map_lookup(fd, 99) < 0      # out of range: -ENOENT
        finally:
            os.close(fd)
    docs = mine(col, "bpf")
    by_cmd: dict[int, list[dict]] = {}
    for d in docs:
        by_cmd.setdefault(d["bpf"]["cmd"], []).append(d["bpf"])
    create = by_cmd[_const("BPF_MAP_CREATE")][0]
    assert create["retval"] == fd
    assert create["map"] == {"type": _const("BPF_MAP_TYPE_ARRAY"), "name": "rs_test_map", "source": "kernel",
                             "id": create["map"]["id"]}
    # (the in-process tracer reads its own counters map now and then: lookups of this map only)
    lookups = [x for x in by_cmd[_const("BPF_MAP_LOOKUP_ELEM")] if x["map"].get("id") == create["map"]["id"]]
    assert [x["retval"] for x in lookups] == [0, -2]
    for x in lookups:
        assert x["map"]["name"] == "rs_test_map"


def test_failed_map_create(tracer) -> None:
    with tracer.collect() as col:
        rc = map_create(_const("BPF_MAP_TYPE_ARRAY"), b"rs_zero_keys", key_size=0)
    assert rc == -EINVAL
    doc = [d for d in mine(col, "bpf") if d["bpf"]["cmd"] == _const("BPF_MAP_CREATE")][0]
    assert doc["bpf"]["retval"] == -EINVAL
    assert doc["bpf"]["map"]["source"] == "user" and doc["bpf"]["map"]["name"] == "rs_zero_keys"
