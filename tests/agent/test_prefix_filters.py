"""The user-space side of path-prefix approvers: the map entries the agent
writes (agent/kfilters.py: struct rs_prefix_key bytes, prefixes cut to the
key, masks folded into the longer prefixes so that the kernel's longest
match alone decides) and what `rulec explain` says of the check."""

from __future__ import annotations

from pathlib import Path

from codegen.policy import load_policies

from agent.events.layout import layout
from agent.explain import explain
from agent.kfilters import _longest_mask, prefix_entries

ANY = (1 << 64) - 1


def _decoded(entries: dict[bytes, int]) -> dict[tuple[int, bytes], int]:
    lay = layout()
    out = {}
    for raw, mask in entries.items():
        key = lay.ffi.cast("struct rs_prefix_key *", lay.ffi.from_buffer(raw))
        n = key.prefixlen // 8 - 1
        out[(key.type, lay.ffi.buffer(key.path)[:n])] = mask
        assert lay.ffi.buffer(key.path)[n:] == b"\0" * (len(key.path) - n)
    return out


def test_keys_carry_the_type_and_the_prefix_bits() -> None:
    entries = prefix_entries(7, {"/etc/": 0o3}, layout())
    assert _decoded(entries) == {(7, b"/etc/"): 0o3}
    raw = next(iter(entries))
    assert int.from_bytes(raw[:4], "little") == 8 * (1 + len("/etc/"))


def test_a_shorter_prefix_s_mask_is_folded_into_the_longer_ones() -> None:
    entries = prefix_entries(7, {"/etc/": 0o3, "/etc/cron.d/": 0o1000, "/root/": ANY, "/etcx/": 0o100}, layout())
    assert _decoded(entries) == {(7, b"/etc/"): 0o3, (7, b"/etc/cron.d/"): 0o1003, (7, b"/root/"): ANY,
                                 (7, b"/etcx/"): 0o100}


def test_a_prefix_longer_than_the_key_is_cut_to_it() -> None:
    long = "/" + "d" * 300 + "/"
    lay = layout()
    limit = lay.const("RS_PREFIX_MAX")
    entries = _decoded(prefix_entries(3, {long: 0o1}, lay))
    assert entries == {(3, long.encode()[:limit]): 0o1}


def test_the_longest_match_of_another_map() -> None:
    lay = layout()
    old = prefix_entries(7, {"/etc/": 0o3, "/var/": 0o1}, lay)
    new = prefix_entries(7, {"/etc/cron.d/": 0o1000}, lay)
    (key,) = new
    assert _longest_mask(key, old) == 0o3            # /etc/cron.d/ paths were approved by /etc/
    assert _longest_mask(key, new) == 0o1000
    other_type = prefix_entries(8, {"/etc/cron.d/": 0o1000}, lay)
    assert _longest_mask(next(iter(other_type)), old) == 0   # the type is part of the key


def _open(path: str, flags: int) -> dict[str, object]:
    return {"type": "open", "open": {"flags": flags, "retval": 3, "file": {"path": path, "name": path.rsplit("/", 1)[1]}},
            "process": {"comm": "sh"}}


def test_explain_names_the_prefix_and_its_flags(tmp_path: Path) -> None:
    policy = tmp_path / "p.policy"
    policy.write_text("rules:\n  - id: written\n    expression: "
                      "open.flags & (O_WRONLY | O_RDWR) > 0 && open.file.path =~ \"/etc/**\"\n"
                      "  - id: truncated\n    expression: open.flags & O_TRUNC > 0 && open.file.path =~ \"/var/**\"\n")
    ruleset = load_policies([policy]).ruleset
    outside = explain(ruleset, _open("/usr/x", 1)).kernel
    assert not outside.sent and "'/usr/x' has none of the 2 approved prefixes" in outside.approvers
    read = explain(ruleset, _open("/etc/x", 0)).kernel
    assert not read.sent and "open.flags 0o0 has no bit of any prefix's mask (0o1003): no path walked" in read.approvers
    trunc = explain(ruleset, _open("/etc/x", 0o1000)).kernel
    assert not trunc.sent and "is below '/etc/' but open.flags 0o1000 has no bit of its mask 0o3" in trunc.approvers
    write = explain(ruleset, _open("/etc/x", 2)).kernel
    assert write.sent and "approved: open.file.path '/etc/x' is below '/etc/'" in write.approvers


def test_explain_of_a_call_without_an_object(tmp_path: Path) -> None:
    """The kernel walked no path (path_source "user"): flags alone decide."""
    policy = tmp_path / "p.policy"
    policy.write_text("rules:\n  - id: written\n    expression: "
                      "open.flags & O_CREAT > 0 && open.file.path =~ \"/etc/**\"\n")
    ruleset = load_policies([policy]).ruleset
    read, write = _open("/var/missing", 0), _open("/var/missing", 0o101)
    for doc in (read, write):
        doc["open"]["retval"] = -2  # type: ignore[index]
        doc["open"]["file"]["path_source"] = "user"  # type: ignore[index]
    dropped = explain(ruleset, read).kernel
    assert not dropped.sent and "has no bit of any prefix's mask (0o100): no path walked" in dropped.approvers
    sent = explain(ruleset, write).kernel
    assert sent.sent and "not a path the kernel walks" in sent.approvers
