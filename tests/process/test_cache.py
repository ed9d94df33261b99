"""The process cache's bookkeeping, driven directly (pure Python tier): the
kernel-facing behaviour is covered by the other tests of this directory."""

from __future__ import annotations

from typing import Any

from agent.clock import BootClock
from agent.process.cache import ExecInfo, ProcessCache
from agent.process.containers import container_id_of_name
from agent.process.model import Credentials, Source, TaskMeta

ROOT = Credentials()
META = TaskMeta()
# Synthetic pids far above pid_max, so /proc never answers for them.
BASE = 1 << 30


def _cache(**kw: Any) -> ProcessCache:
    return ProcessCache(BootClock(), **kw)


def _exec(cache: ProcessCache, pid: int, start: int, path: str) -> None:
    info = ExecInfo(comm=path.rsplit("/", 1)[-1], file={"path": path}, argv=(path,),
                    args_truncated=False, creds=ROOT, meta=META)
    cache.on_exec(pid, start, 0, info)


def _init(cache: ProcessCache) -> None:
    """A root the synthetic processes descend from: "pid 1" with a start time
    /proc does not confirm, so the image comes from the call alone."""
    root = cache.for_event(1, 1, ppid=0, comm="init", creds=lambda: ROOT)
    assert root.source is Source.PARTIAL


def test_exited_images_are_evicted_oldest_first_and_counted() -> None:
    cache = _cache(max_entries=10)
    _init(cache)
    for i in range(30):
        pid = BASE + i
        cache.on_fork(pid, 1000 + i, 1, 1, creds=ROOT, meta=META)
        cache.on_exit(pid, 1000 + i, 10 + i, 0)
        assert len(cache) <= 10
    assert cache.stats.evicted_exited == 30 + 1 - 10
    assert cache.stats.evicted_live == 0
    assert cache.peek(BASE + 29) is not None and cache.peek(BASE) is None


def test_live_images_survive_until_live_alone_exceeds_the_cap() -> None:
    cache = _cache(max_entries=5)
    _init(cache)
    for i in range(4):
        cache.on_fork(BASE + i, 1000 + i, 1, 1, creds=ROOT, meta=META)
    assert cache.live_count == 5 and cache.stats.evicted == 0
    cache.on_fork(BASE + 10, 2000, 1, 1, creds=ROOT, meta=META)
    # synthetic pids are not in /proc: pruned as stale (missed exits)
    assert len(cache) <= 5 and cache.stats.stale_live >= 1


def test_pid_reuse_is_a_new_instance() -> None:
    cache = _cache()
    _init(cache)
    pid = BASE + 1
    cache.on_fork(pid, 1000, 1, 1, creds=ROOT, meta=META)
    _exec(cache, pid, 1000, "/old")
    first = cache.peek(pid, 1000)
    # the exit was missed; the pid comes back as another process
    cache.on_fork(pid, 5000, 1, 1, creds=ROOT, meta=META)
    assert cache.stats.pid_reuse == 1
    assert cache.peek(pid, 5000) is not first and cache.peek(pid, 1000) is None


def test_orphans_keep_their_lineage_and_exec_keeps_the_parent() -> None:
    cache = _cache()
    _init(cache)
    parent, child = BASE + 1, BASE + 2
    cache.on_fork(parent, 100, 1, 1, creds=ROOT, meta=META)
    _exec(cache, parent, 100, "/parent")
    cache.on_fork(child, 200, parent, 100, creds=ROOT, meta=META)
    cache.on_exit(parent, 100, 300, 0)
    _exec(cache, child, 200, "/child")
    img = cache.peek(child, 200)
    assert img is not None and img.parent is not None
    chain, truncated = img.ancestors()
    assert [p.pid for p in chain] == [parent, 1] and not truncated
    assert chain[0].file == {"path": "/parent"} and chain[0].exited_at == 300


def test_deep_fork_chains_are_cut_to_bound_memory() -> None:
    cache = _cache(max_depth=50, ancestor_limit=20)
    _init(cache)
    ppid, pstart = 1, 1
    for i in range(200):
        pid = BASE + i
        cache.on_fork(pid, 1000 + i, ppid, pstart, creds=ROOT, meta=META)
        if i < 199:
            cache.on_exit(pid, 1000 + i, 0, 0)
        ppid, pstart = pid, 1000 + i
    last = cache.peek(BASE + 199, 1000 + 199)
    assert last is not None
    chain, truncated = last.ancestors()
    assert len(chain) <= 50 and truncated
    assert cache.stats.lineage_cuts > 0


def test_unknown_parent_marks_the_chain_truncated() -> None:
    cache = _cache()
    img = cache.for_event(BASE + 7, 123, ppid=BASE + 6, comm="x", creds=lambda: ROOT)
    assert img.source is Source.PARTIAL
    chain, truncated = img.ancestors()
    assert chain == [] and truncated


def test_container_naming_rules() -> None:
    cid = "0123456789abcdef" * 4
    assert container_id_of_name(cid) == cid
    assert container_id_of_name(f"docker-{cid}.scope") == cid
    assert container_id_of_name(f"cri-containerd-{cid}.scope") == cid
    assert container_id_of_name(f"crio-conmon-{cid}.scope") == ""
    assert container_id_of_name(cid.upper()) == ""
    assert container_id_of_name(f"docker-{cid}.slice") == ""


def test_an_event_read_after_a_later_exec_gets_the_image_it_happened_in() -> None:
    """Lifecycle and file events come on two ring buffers: an open by the old
    image can be read after the exec that replaced it. Its time picks the image."""
    cache = _cache()
    _init(cache)
    pid = BASE + 7
    cache.on_fork(pid, 100, 1, 1, creds=ROOT, meta=META)
    info = ExecInfo(comm="old", file={"path": "/old"}, argv=("/old",), args_truncated=False, creds=ROOT, meta=META)
    cache.on_exec(pid, 100, 1_000, info)
    info = ExecInfo(comm="new", file={"path": "/new"}, argv=("/new",), args_truncated=False, creds=ROOT, meta=META)
    cache.on_exec(pid, 100, 2_000, info)

    def image_at(t: int | None) -> str | None:
        img = cache.for_event(pid, 100, ppid=1, comm="", creds=lambda: ROOT, at=t)
        return img.file["path"] if img.file else None

    assert image_at(2_500) == "/new" and image_at(None) == "/new"
    assert image_at(1_500) == "/old"
    # one image back, no more: the fork's image is not kept (bounded memory)
    assert image_at(500) == "/old"


def test_a_credentials_change_shows_on_the_image_and_in_descendants_lineage() -> None:
    """setuid/setgid/capset (issue 9): the image takes the new credentials;
    a child forked earlier shows its parent's new ones as an ancestor."""
    from agent.events.process_docs import ancestor_docs
    from agent.users import UserNames

    cache = _cache()
    _init(cache)
    parent, child = BASE + 1, BASE + 2
    cache.on_fork(parent, 1000, 1, 1, creds=ROOT, meta=META)
    _exec(cache, parent, 1000, "/usr/sbin/daemon")
    kid = cache.on_fork(child, 2000, parent, 1000, creds=ROOT, meta=META)
    image = cache.peek(parent, 1000)
    assert image is not None
    users = UserNames()
    assert ancestor_docs(kid, users)[0]["uid"] == 0
    dropped = Credentials(uid=1000, gid=1000, euid=1000, egid=1000, fsuid=1000, fsgid=1000)
    assert cache.on_credentials(parent, 1000, dropped) is image and image.creds == dropped
    first = ancestor_docs(kid, users)[0]
    assert (first["pid"], first["uid"], first["euid"]) == (parent, 1000, 1000)
    assert cache.stats.credential_changes == 1
    cache.on_credentials(parent, 1000, dropped)                 # no change: not counted
    cache.on_credentials(parent, 999, ROOT)                     # another instance: ignored
    assert cache.stats.credential_changes == 1 and image.creds == dropped
    cache.on_comm(parent, 1000, "renamed")
    assert ancestor_docs(kid, users)[0]["comm"] == "renamed"
