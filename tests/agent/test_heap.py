"""agent/heap.py: the collector settings the event loop starts with."""

from __future__ import annotations

import gc

from agent import heap
from agent.evaluator.event import child
from agent.events.documents import file_doc
from agent.users import UserNames


def test_settle_spaces_young_collections() -> None:
    before = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_threshold()[0] >= heap.YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        # cyclic garbage made after it is still collected
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.set_threshold(*before)


def test_file_documents_share_one_lazy_name_per_id() -> None:
    users = UserNames()
    docs = [file_doc(b"/etc/passwd", inode=1, mount_id=2, mode=0o100644, uid=0, gid=0, fs_type="ext4", flags=1,
                     ctime_ns=0, mtime_ns=0, users=users) for _ in range(2)]
    assert docs[0]["user"] is docs[1]["user"]
    assert child(docs[0], "user") == "root" and child(docs[0], "group") == "root"
    assert docs[0]["user"] == "root" and docs[1]["user"].__class__ is not str  # resolved in its own document only
    assert docs[0]["path"] == "/etc/passwd" and docs[0]["name"] == "passwd"


def test_file_document_name_and_raw_path() -> None:
    users = UserNames()

    def doc(path: bytes) -> dict[str, object]:
        return file_doc(path, inode=1, mount_id=2, mode=0, uid=0, gid=0, fs_type="", flags=0, ctime_ns=0,
                        mtime_ns=0, users=users)
    assert doc(b"/")["name"] == "/"
    assert doc(b"")["name"] == ""
    assert doc(b"/a/b/")["name"] == "b"
    odd = doc(b"/tmp/\xff")
    assert odd["name"] == "\\xff" and odd["path_raw_b64"] == "L3RtcC//"
