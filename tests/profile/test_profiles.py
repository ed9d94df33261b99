"""Profiles without the kernel: learning from a capture (the real capture
writer and reader), generalisation, the YAML round trip, diff, show (the
HTML parses, the dot output is valid for graphviz), the policy key's errors
(file:line:col) and `rulec replay` raising anomalies naming the new item."""

from __future__ import annotations

import copy
import html.parser
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.capture import CaptureWriter, header
from agent.engine import Engine
from agent.metrics import Registry
from agent.profile.learn import Learner, arg_shapes, name_patterns, path_patterns
from agent.profile.model import ProfileError, Selector, parse_profile, read_profile, write_profile
from agent.profile.show import diff, render_dot, render_html
from agent.replay import CollectingSink
from codegen.errors import Diagnostics
from codegen.policy import load_policies

BIN = Path(sys.executable).parent
W = "/opt/shop/bin/shop"
BASH = "/usr/bin/bash"


def _proc(exe: str, argv: list[str], ancestors: list[str]) -> dict[str, Any]:
    return {"pid": 100, "comm": exe.rsplit("/", 1)[1], "argv": argv, "file": {"path": exe},
            "container": {"id": ""}, "cgroup": {"id": "4242"},
            "ancestors": [{"pid": 99 - i, "file": {"path": a}} for i, a in enumerate(ancestors)]}


def _server(kind: str, body: dict[str, Any], ts: int, argv: list[str] | None = None) -> dict[str, Any]:
    return {"type": kind, "timestamp": ts, kind: body, "process": _proc(W, argv or ["shop", "--config", "/etc/shop.json"], [BASH])}


def normal() -> list[dict[str, Any]]:
    docs = [{"type": "exec", "timestamp": 1, "exec": {"file": {"path": W}, "argv": ["shop", "--config", "/etc/shop.json"]},
             "process": _proc(W, ["shop", "--config", "/etc/shop.json"], [BASH])}]
    docs += [_server("open", {"flags": 0, "file": {"path": f"/usr/lib/shop/mod{i}.py"}}, 2 + i) for i in range(8)]
    docs += [_server("open", {"flags": 0, "file": {"path": "/etc/shop.json"}}, 20),
             _server("open", {"flags": 0, "file": {"path": "/proc/100/stat"}}, 21),
             _server("open", {"flags": 0o1101, "file": {"path": "/var/log/shop/access.log"}}, 22),
             _server("dns", {"question": {"name": "db.shop.internal"}}, 23),
             _server("connect", {"addr": {"ip": "10.0.0.5", "port": 5432, "family": 2}}, 24)]
    # another program, outside the workload
    docs.append({"type": "open", "timestamp": 25, "open": {"flags": 0, "file": {"path": "/etc/shadow"}},
                 "process": _proc("/usr/bin/cat", ["cat", "/etc/shadow"], [BASH])})
    return docs


def exploits() -> list[tuple[str, dict[str, Any]]]:
    sh = _proc("/usr/bin/dash", ["sh", "-c", "id"], [W, BASH])
    return [
        ("/usr/bin/dash", {"type": "exec", "timestamp": 30, "exec": {"file": {"path": "/usr/bin/dash"},
                                                                     "argv": ["sh", "-c", "id"]}, "process": sh}),
        ("write /srv/new/x", {"type": "open", "timestamp": 31, "process": sh,
                              "open": {"flags": 0o1101, "file": {"path": "/srv/new/x"}}}),
        ("evil.example", _server("dns", {"question": {"name": "evil.example"}}, 32)),
        ("10.0.0.6:5432", _server("connect", {"addr": {"ip": "10.0.0.6", "port": 5432, "family": 2}}, 33)),
        (f"{W} --debug", {"type": "exec", "timestamp": 34, "exec": {"file": {"path": W}, "argv": ["shop", "--debug"]},
                          "process": _proc(W, ["shop", "--debug"], [BASH])}),
        ("ptrace", _server("ptrace", {"request": 16, "retval": 0}, 35)),
    ]


def _capture(path: Path, docs: list[dict[str, Any]]) -> Path:
    w = CaptureWriter(path, header(command="record", hook_set="tracepoint", event_types=None, filters=None))
    for d in docs:
        w.event(copy.deepcopy(d))
    w.close()
    return path


def _learn_cli(tmp_path: Path, *selector: str) -> Path:
    cap = _capture(tmp_path / "normal.capture", normal())
    out = tmp_path / "shop.profile"
    proc = subprocess.run([str(BIN / "rsagent"), "profile", "learn", *selector, "--from-capture", str(cap),
                           "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "14 of 15 events were the workload's" in proc.stderr, proc.stderr
    return out


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    return _learn_cli(tmp_path, "--exe", W)


def test_learn_from_capture_generalises(profile_file: Path) -> None:
    assert stat.S_IMODE(profile_file.stat().st_mode) == 0o600
    p = read_profile(profile_file)
    assert p is not None and p.selector == Selector("exe", W)
    assert [(e.path, e.parents, e.args) for e in p.processes] == [(W, [BASH], ["--config /etc/shop.json"])]
    assert p.files_read == ["/etc/shop.json", "/proc/*/stat", "/usr/lib/shop/*"]
    assert p.files_write == ["/var/log/shop/access.log"]
    assert p.dns == ["db.shop.internal"] and [d.key() for d in p.connect] == ["10.0.0.5:5432"]
    assert p.event_types == ["connect", "dns", "exec", "open"]
    assert p.learned["events"] == 14 and p.learned["source"].startswith("capture ")


def test_container_and_cgroup_selectors_scope_the_same_workload(tmp_path: Path) -> None:
    learner = Learner(Selector("cgroup", "/shop", "4242"))
    for d in normal():
        learner.add(copy.deepcopy(d))
    assert learner.events == 15   # cat is in the same cgroup here
    learner = Learner(Selector("container", "abc"))
    for d in normal():
        learner.add(copy.deepcopy(d))
    assert learner.events == 0


def test_generalisation_rules() -> None:
    assert path_patterns(["/usr/lib/py/a/x.py", "/usr/lib/py/b/x.py", "/usr/lib/py/c/x.py", "/usr/lib/py/d/x.py",
                          "/usr/lib/py/e/x.py", "/etc/a"]) == ["/etc/a", "/usr/lib/py/**"]
    assert path_patterns([f"/a/{i}x" for i in range(3)]) == ["/a/0x", "/a/1x", "/a/2x"]
    assert path_patterns([f"/srv/{i}/f" for i in range(40)]) == ["/srv/*/f"]   # numeric segments
    assert path_patterns([f"/x/y/f{i}" for i in range(5)]) == ["/x/y/*"]
    assert path_patterns([f"/etc/f{i}" for i in range(5)]) == [f"/etc/f{i}" for i in range(5)]
    assert arg_shapes(["-p 1", "-p 2"]) == ["-p 1", "-p 2"]
    assert arg_shapes([f"-p {i} -v" for i in range(9)]) == ["-p * -v"]
    assert arg_shapes([f"run {'x ' * i}" for i in range(9)]) == ["run *"]
    assert name_patterns([f"n{i}.cdn.example" for i in range(6)] + ["db.internal"]) == ["*.cdn.example", "db.internal"]


def test_yaml_round_trip(profile_file: Path, tmp_path: Path) -> None:
    p = read_profile(profile_file)
    assert p is not None
    again = tmp_path / "again.profile"
    write_profile(p, again)
    q = read_profile(again)
    assert q is not None and q.as_dict() == p.as_dict()
    assert "kind: rsagent-profile" in again.read_text() and "version: 1" in again.read_text()


@pytest.mark.parametrize("text, where, message", [
    ("kind: rsagent-profile\nversion: 2\nselector: {exe: /x}\n", ":2:10:", "format version 2"),
    ("kind: other\nversion: 1\n", ":1:7:", "not an rsagent profile"),
    ("kind: rsagent-profile\nversion: 1\nselector: {exe: /x}\nconnect:\n  - {addr: 10.0.0.300, port: 1}\n",
     ":5:12:", "invalid address"),
    ("kind: rsagent-profile\nversion: 1\nselector: {exe: /x}\ndns: [a, [b]]\n", ":4:10:", "expected a non-empty"),
    ("kind: rsagent-profile\nversion: 1\nselector: {exe: /x\n", ":4:1:", ""),
])
def test_profile_errors_have_positions(text: str, where: str, message: str) -> None:
    diags = Diagnostics()
    assert parse_profile(text, "p.profile", diags) is None
    first = diags.sorted()[0].format()
    assert first.startswith("p.profile" + where) and message in first, first


def test_diff_both_ways(profile_file: Path, tmp_path: Path) -> None:
    cap = _capture(tmp_path / "more.capture", normal() + [d for _, d in exploits()])
    other = tmp_path / "more.profile"
    subprocess.run([str(BIN / "rsagent"), "profile", "learn", "--exe", W, "--from-capture", str(cap), "-o",
                    str(other)], check=True, capture_output=True, timeout=120)
    pa, pb = read_profile(profile_file), read_profile(other)
    assert pa is not None and pb is not None
    d = diff(pa, pb)
    assert d["dns"] == {"added": ["evil.example"], "removed": []}
    assert d["processes"]["added"] == ["/usr/bin/dash"] and d["files_write"]["added"] == ["/srv/new/x"]
    assert diff(pb, pa)["dns"] == {"added": [], "removed": ["evil.example"]}
    text = subprocess.run([str(BIN / "rsagent"), "profile", "diff", str(profile_file), str(other)],
                          capture_output=True, text=True, check=True).stdout
    assert f"  + evil.example    (only in {other})" in text
    js = json.loads(subprocess.run([str(BIN / "rsagent"), "profile", "diff", str(other), str(profile_file),
                                    "--format", "json"], capture_output=True, text=True, check=True).stdout)
    assert js["sections"]["connect"]["removed"] == ["10.0.0.6:5432"]


class _Strict(html.parser.HTMLParser):
    VOID = {"meta", "br", "img", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: dict[str, list[str]] = {}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag not in ("script", "link", "img", "iframe"), tag   # self-contained, nothing fetched
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "h2":
            self._in = None
        ident = dict(attrs).get("id")
        if ident:
            self._in = ident
            self.ids[ident] = []

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, (tag, self.stack)

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.ids[self._in].append(data.strip())


def test_show_html_and_dot(profile_file: Path, tmp_path: Path) -> None:
    p = read_profile(profile_file)
    assert p is not None
    parser = _Strict()
    parser.feed(render_html(p))
    parser.close()
    assert parser.stack == []
    assert W in parser.ids["processes"] and "/usr/lib/shop/*" in parser.ids["files_read"]
    assert parser.ids["dns"] == ["db.shop.internal"]
    out = tmp_path / "p.html"
    subprocess.run([str(BIN / "rsagent"), "profile", "show", str(profile_file), "--format", "html", "-o", str(out)],
                   check=True, timeout=60)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and "<!doctype html>" in out.read_text()
    dot = render_dot(p)
    assert f'"exe:{BASH}" -> "exe:{W}"' in dot
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", "-o", str(tmp_path / "p.svg")], input=dot, text=True, check=True)
    else:   # graphviz not installed: a structural check of the language's basics
        assert dot.startswith("digraph profile {") and dot.rstrip().endswith("}")
        assert all(line.rstrip().endswith((";", "{", "}")) for line in dot.splitlines())
    text = subprocess.run([str(BIN / "rsagent"), "profile", "show", str(profile_file)], capture_output=True,
                          text=True, check=True).stdout
    assert f"{W}  (started by {BASH})" in text and "args: --config /etc/shop.json" in text


def test_show_refuses_a_bad_profile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.profile"
    bad.write_text("kind: rsagent-profile\nversion: 9\n")
    proc = subprocess.run([str(BIN / "rsagent"), "profile", "show", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and f"{bad}:2:10: error: profile format version 9" in proc.stderr


def _policy(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "p.policy"
    p.write_text("version: 1.0.0\n" + body)
    return p


def test_policy_profile_errors_are_positioned(tmp_path: Path, profile_file: Path) -> None:
    (tmp_path / "v2.profile").write_text(profile_file.read_text().replace("version: 1", "version: 2"))
    (tmp_path / "broken.profile").write_text("kind: rsagent-profile\nversion: 1\nselector: [\n")
    pol = _policy(tmp_path, "profiles:\n  - id: a\n    path: nowhere.profile\n  - id: b\n    path: v2.profile\n"
                            "  - id: c\n    path: broken.profile\n  - id: d\n")
    proc = subprocess.run([str(BIN / "rulec"), "validate", str(pol)], capture_output=True, text=True)
    assert proc.returncode == 1
    err = proc.stdout + proc.stderr
    assert f"{pol}:4:11: error: profile 'a': cannot use {tmp_path}/nowhere.profile: no such file" in err
    assert f"{pol}:6:11: error: profile 'b'" in err and f"{tmp_path}/v2.profile:4:10: error: profile format version 2" in err
    assert f"{pol}:8:11: error: profile 'c'" in err and f"{tmp_path}/broken.profile:4:1:" in err
    assert f"{pol}:9:5: error: profile 'd' needs 'path'" in err


def test_replay_raises_one_anomaly_per_new_item(tmp_path: Path, profile_file: Path) -> None:
    pol = _policy(tmp_path, f"profiles:\n  - id: shop\n    path: {profile_file.name}\n")
    result = load_policies([pol])
    assert result.ok, [d.format() for d in result.diagnostics]
    ids = {r.id for r in result.ruleset.rules}
    assert {"shop_new_executable", "shop_new_arguments", "shop_new_file", "shop_new_dns", "shop_new_connect",
            "shop_new_event_ptrace"} <= ids
    assert "shop_new_event_open" not in ids
    cap = _capture(tmp_path / "day.capture", normal() + [d for _, d in exploits()])
    alerts = tmp_path / "alerts.jsonl"
    proc = subprocess.run([str(BIN / "rulec"), "replay", str(cap), "--policy", str(pol), "--alerts", str(alerts)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(x) for x in alerts.read_text().splitlines()]
    news = sorted(a["anomaly"]["new"] for a in got)
    assert news == sorted(item for item, _ in exploits()), news   # nothing for the normal events
    for a in got:
        assert a["anomaly"]["profile"] == str(profile_file) and a["anomaly"]["profile_id"] == "shop"
        assert a["rule_id"] == "shop_" + a["anomaly"]["kind"] or a["anomaly"]["kind"] == "new_event"


def test_anomalies_are_counted_in_the_metrics(tmp_path: Path, profile_file: Path) -> None:
    pol = _policy(tmp_path, f"profiles:\n  - id: shop\n    path: {profile_file}\n")
    registry = Registry()
    sink = CollectingSink()
    engine = Engine(load_policies([pol]).ruleset, [sink], act=False, metrics=registry)
    for d in normal() + [d for _, d in exploits()]:
        engine(copy.deepcopy(d))
    assert registry.value("profile_anomalies_total", profile="shop", kind="new_dns") == 1
    assert registry.value("profile_anomalies_total", profile="shop", kind="new_executable") == 1
    samples = registry.get("profile_anomalies_total").samples()
    assert sum(v for _, v in samples) == len(sink.alerts) == 6


def test_read_profile_without_diagnostics_raises(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such file|cannot read"):
        read_profile(tmp_path / "none.profile")


def test_run_refuses_a_profile_others_can_write(tmp_path: Path, profile_file: Path) -> None:
    # checked before anything is loaded into the kernel
    tmp_path.chmod(0o700)
    pol = _policy(tmp_path, f"profiles:\n  - id: shop\n    path: {profile_file.name}\n")
    profile_file.chmod(0o666)
    proc = subprocess.run([str(BIN / "rsagent"), "run", "--policy", str(pol)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "refusing to load" in proc.stderr and str(profile_file) in proc.stderr, proc.stderr


def test_cgroup_selector_resolves_below_the_cgroup2_mount(tmp_path: Path) -> None:
    """--cgroup takes a directory relative to wherever cgroup v2 is mounted
    (/sys/fs/cgroup/unified on this hybrid host), or an absolute one below it."""
    from agent.process.cgroups import cgroup2_mount
    from agent.profile.learn import cgroup_selector

    root = cgroup2_mount()
    assert root is not None, "no cgroup2 mount on this host"
    made = Path(root) / f"rsagent-test-sel-{os.getpid()}"
    made.mkdir()
    try:
        ino = str(made.stat().st_ino)
        assert cgroup_selector(made.name) == Selector("cgroup", made.name, ino)
        assert cgroup_selector("/" + made.name).cgroup_id == ino
        assert cgroup_selector(str(made)).cgroup_id == ino
        with pytest.raises(ValueError, match=f"mounted at {root}"):
            cgroup_selector(made.name + "-missing")
    finally:
        made.rmdir()
