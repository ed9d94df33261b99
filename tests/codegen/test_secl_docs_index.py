"""docs/fields.md is generated and up to date; the rule index never changes results."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Callable

from codegen import fieldsdoc
from agent.evaluator.index import Bucket, index_keys, top_segment
from codegen.policy import load_policies


def test_fields_md_is_up_to_date() -> None:
    assert fieldsdoc.DEFAULT_OUTPUT.read_text(encoding="utf-8") == fieldsdoc.render(), \
        "docs/fields.md is stale: run python -m codegen.fieldsdoc"
    assert fieldsdoc.main(["--check"]) == 0


def test_fields_md_check_detects_drift(tmp_path: Path) -> None:
    out = tmp_path / "fields.md"
    out.write_text("old", encoding="utf-8")
    assert fieldsdoc.main(["--check", "--output", str(out)]) == 1
    assert fieldsdoc.main(["--output", str(out)]) == 0 and fieldsdoc.main(["--check", "--output", str(out)]) == 0


def test_top_segment() -> None:
    assert [top_segment(p) for p in ("/etc/x", "/etc", "/", "rel/x", 3)] == ["etc", "etc", "", None, None]


def test_index_files_rules_and_keeps_policy_order(write_policy: Callable[..., Path]) -> None:
    lines = ["rules:"]
    exprs = ['open.file.path == "/etc/a"', 'open.file.name in ["b", "c"] && open.flags > 0',
             'open.file.path =~ "/etc/*"', "open.flags & O_RDWR > 0", 'open.file.path == "/etc/b"',
             'open.file.path in ["/var/x", ~"/etc/*/b"]', 'open.file.path == "/etc/a" || open.flags == 7']
    for i, e in enumerate(exprs):
        lines += [f"  - id: r{i}", f"    expression: '{e}'"]
    rs = load_policies([write_policy("\n".join(lines) + "\n")]).ruleset
    bucket = Bucket(rs.rules_for("open"))
    assert len(bucket.always) == 2  # r3 (flags only), r6 (an OR)
    assert set(index_keys(rs.rules[0].ir)) == {("open.file.path", "exact"), ("open.file.path", "top")}
    def doc(path: str, flags: int = 0) -> dict:
        return {"type": "open", "open": {"flags": flags, "file": {"path": path}}}
    assert rs.evaluate(doc("/etc/a", 2)) == ["r0", "r2", "r3", "r6"]
    assert rs.evaluate(doc("/etc/x/b", 1)) == ["r1", "r5"]
    assert rs.evaluate(doc("/var/x", 7)) == ["r3", "r5", "r6"]
    assert rs.evaluate(doc("/tmp/c", 1)) == ["r1"]
