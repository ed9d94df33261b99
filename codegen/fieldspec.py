"""The vocabulary of field declarations, shared by the event-type table
(codegen/eventtypes.py) and the field registry (codegen/fields.py): value
types, approver kinds, and a field template relative to its event."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class FieldType(str, enum.Enum):
    INT = "int"
    STRING = "string"
    BOOL = "bool"
    IP = "ip"


class ApproverKind(str, enum.Enum):
    """How a field can approve (docs/reference-agent.md)."""

    BASENAME = "basename"  # path fields: the basename of exact paths / literal-basename globs
    SCALAR = "scalar"      # exact values (`==`, `in`)
    BITMASK = "bitmask"    # `field & MASK > 0`: the union of masks
    PREFIX = "prefix"      # path fields: the literal directory prefix of absolute paths / globs
    # a file's path or name equal to the task's executable's (or its
    # parent's): the kernel compares basenames (codegen.approvers.exec_offer)
    EXEC_BASENAME = "exec_basename"


@dataclass(frozen=True, slots=True)
class Approver:
    kind: ApproverKind
    weight: int  # the best (highest) approvable field of a rule is chosen


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field template, relative to a prefix (``file.path`` under ``open``)."""

    suffix: str
    type: FieldType
    array: bool = False
    glob: bool = False
    time: bool = False
    resolver: str | None = None
    key: str | None = None  # document key when it differs from the suffix's last part
    approver: Approver | None = None
    constants: str | None = None
    doc: str = ""
    unavailable: str = ""  # why this agent has no value for it (always empty; a rule reading it is warned)


INT, STR, BOOL, IP = FieldType.INT, FieldType.STRING, FieldType.BOOL, FieldType.IP
BASENAME = Approver(ApproverKind.BASENAME, 15)
NAME = Approver(ApproverKind.SCALAR, 10)
FLAGS = Approver(ApproverKind.BITMASK, 5)
# Below a basename or a name (cheaper in the kernel, and as selective), above
# flags alone (the kernel ANDs a prefix with the rule's flags conjunct).
PREFIX = Approver(ApproverKind.PREFIX, 7)
SCALAR = Approver(ApproverKind.SCALAR, 5)

RETVAL = FieldSpec("retval", INT, constants="errno", doc="return value; errors are negative errno (`-EACCES`)")
