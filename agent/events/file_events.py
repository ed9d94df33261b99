"""Decoding file activity records (struct rs_file_event): open and the other
file-integrity event types."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..paths import join_lexically

if TYPE_CHECKING:
    from .decode import Decoder, Document

FILE_EVENT_TYPES = (
    "open", "chmod", "chown", "mkdir", "rmdir", "unlink", "rename", "link",
    "utimes", "setxattr", "removexattr", "mount", "umount",
)


def register(dec: Decoder) -> None:
    for name in FILE_EVENT_TYPES:
        dec.register(dec.layout.const(f"RS_EVENT_{name.upper()}"), name, lambda d, s, dec=dec: decode_file_event(dec, d, s))


def decode_file_event(dec: Decoder, data: Any, size: int) -> Document:
    ffi = dec.ffi
    e = ffi.cast("struct rs_file_event *", data)
    name = dec.type_names[e.hdr.type]
    doc = dec.envelope(name, e.hdr, dec.task(e.proc))
    if e.file.flags & dec.layout.const("RS_FILE_PRESENT"):
        file = dec.file(data, size, e.file)
    else:
        # No kernel object (the call failed): the caller's string, joined
        # to the kernel-walked start directory and normalized lexically.
        req = dec.bytes_at(data, size, e.req_path)
        start = dec.bytes_at(data, size, e.base.path) or b"/"
        file = dec.file(data, size, e.file, path=join_lexically(start, req))
        file["filesystem"] = ffi.string(e.base.fstype).decode("utf-8", "replace")
    body: Document = {"file": file, "retval": e.retval}
    if name == "open":
        body["flags"] = e.flags
        file["destination"] = {"mode": e.mode}
    doc[name] = body
    return doc
