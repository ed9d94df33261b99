"""SECL constants: Linux x86_64 values, one table per family.

Families are kept apart so ``docs/fields.md`` can list them and fields can
name the family their values come from. ``CAP_*`` are bit masks
(``1 << capability``) as in the reference agent, so that
``process.cap_effective & CAP_SYS_ADMIN > 0`` reads naturally; errno names are
positive (``open.retval == -EACCES``).
"""
from __future__ import annotations

from types import MappingProxyType
from collections.abc import Mapping

from .kconstants import families_by_title, family_values

OPEN_FLAGS = {
    "O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2, "O_ACCMODE": 3, "O_CREAT": 0o100,
    "O_EXCL": 0o200, "O_NOCTTY": 0o400, "O_TRUNC": 0o1000, "O_APPEND": 0o2000,
    "O_NONBLOCK": 0o4000, "O_NDELAY": 0o4000, "O_DSYNC": 0o10000, "O_ASYNC": 0o20000,
    "O_FASYNC": 0o20000, "O_DIRECT": 0o40000, "O_LARGEFILE": 0o100000,
    "O_DIRECTORY": 0o200000, "O_NOFOLLOW": 0o400000, "O_NOATIME": 0o1000000,
    "O_CLOEXEC": 0o2000000, "O_SYNC": 0o4010000, "O_RSYNC": 0o4010000,
    "O_PATH": 0o10000000, "O_TMPFILE": 0o20200000,
}

FILE_MODES = {
    "S_IFMT": 0o170000, "S_IFSOCK": 0o140000, "S_IFLNK": 0o120000, "S_IFREG": 0o100000,
    "S_IFBLK": 0o60000, "S_IFDIR": 0o40000, "S_IFCHR": 0o20000, "S_IFIFO": 0o10000,
    "S_ISUID": 0o4000, "S_ISGID": 0o2000, "S_ISVTX": 0o1000,
    "S_IRWXU": 0o700, "S_IRUSR": 0o400, "S_IWUSR": 0o200, "S_IXUSR": 0o100,
    "S_IRWXG": 0o70, "S_IRGRP": 0o40, "S_IWGRP": 0o20, "S_IXGRP": 0o10,
    "S_IRWXO": 0o7, "S_IROTH": 0o4, "S_IWOTH": 0o2, "S_IXOTH": 0o1,
}

ERRNOS = {
    "EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EIO": 5, "ENXIO": 6, "E2BIG": 7,
    "ENOEXEC": 8, "EBADF": 9, "ECHILD": 10, "EAGAIN": 11, "EWOULDBLOCK": 11,
    "ENOMEM": 12, "EACCES": 13, "EFAULT": 14, "ENOTBLK": 15, "EBUSY": 16, "EEXIST": 17,
    "EXDEV": 18, "ENODEV": 19, "ENOTDIR": 20, "EISDIR": 21, "EINVAL": 22, "ENFILE": 23,
    "EMFILE": 24, "ENOTTY": 25, "ETXTBSY": 26, "EFBIG": 27, "ENOSPC": 28, "ESPIPE": 29,
    "EROFS": 30, "EMLINK": 31, "EPIPE": 32, "EDOM": 33, "ERANGE": 34, "EDEADLK": 35,
    "EDEADLOCK": 35, "ENAMETOOLONG": 36, "ENOLCK": 37, "ENOSYS": 38, "ENOTEMPTY": 39,
    "ELOOP": 40, "ENOMSG": 42, "EIDRM": 43, "ECHRNG": 44, "EL2NSYNC": 45, "EL3HLT": 46,
    "EL3RST": 47, "ELNRNG": 48, "EUNATCH": 49, "ENOCSI": 50, "EL2HLT": 51, "EBADE": 52,
    "EBADR": 53, "EXFULL": 54, "ENOANO": 55, "EBADRQC": 56, "EBADSLT": 57,
    "EBFONT": 59, "ENOSTR": 60, "ENODATA": 61, "ETIME": 62, "ENOSR": 63, "ENONET": 64,
    "ENOPKG": 65, "EREMOTE": 66, "ENOLINK": 67, "EADV": 68, "ESRMNT": 69, "ECOMM": 70,
    "EPROTO": 71, "EMULTIHOP": 72, "EDOTDOT": 73, "EBADMSG": 74, "EOVERFLOW": 75,
    "ENOTUNIQ": 76, "EBADFD": 77, "EREMCHG": 78, "ELIBACC": 79, "ELIBBAD": 80,
    "ELIBSCN": 81, "ELIBMAX": 82, "ELIBEXEC": 83, "EILSEQ": 84, "ERESTART": 85,
    "ESTRPIPE": 86, "EUSERS": 87, "ENOTSOCK": 88, "EDESTADDRREQ": 89, "EMSGSIZE": 90,
    "EPROTOTYPE": 91, "ENOPROTOOPT": 92, "EPROTONOSUPPORT": 93, "ESOCKTNOSUPPORT": 94,
    "ENOTSUP": 95, "EOPNOTSUPP": 95, "EPFNOSUPPORT": 96, "EAFNOSUPPORT": 97,
    "EADDRINUSE": 98, "EADDRNOTAVAIL": 99, "ENETDOWN": 100, "ENETUNREACH": 101,
    "ENETRESET": 102, "ECONNABORTED": 103, "ECONNRESET": 104, "ENOBUFS": 105,
    "EISCONN": 106, "ENOTCONN": 107, "ESHUTDOWN": 108, "ETOOMANYREFS": 109,
    "ETIMEDOUT": 110, "ECONNREFUSED": 111, "EHOSTDOWN": 112, "EHOSTUNREACH": 113,
    "EALREADY": 114, "EINPROGRESS": 115, "ESTALE": 116, "EUCLEAN": 117, "ENOTNAM": 118,
    "ENAVAIL": 119, "EISNAM": 120, "EREMOTEIO": 121, "EDQUOT": 122, "ENOMEDIUM": 123,
    "EMEDIUMTYPE": 124, "ECANCELED": 125, "ENOKEY": 126, "EKEYEXPIRED": 127,
    "EKEYREVOKED": 128, "EKEYREJECTED": 129, "EOWNERDEAD": 130, "ENOTRECOVERABLE": 131,
    "ERFKILL": 132,
}

# From the kernel's headers (codegen/kconstants.py), never copied by hand.
SIGNALS = family_values("signals")
CAPABILITIES = family_values("capabilities")
PTRACE_REQUESTS = family_values("ptrace")

MMAP_PROTECTIONS = {
    "PROT_NONE": 0, "PROT_READ": 1, "PROT_WRITE": 2, "PROT_EXEC": 4, "PROT_SEM": 8,
    "PROT_GROWSDOWN": 0x01000000, "PROT_GROWSUP": 0x02000000,
}

MMAP_FLAGS = {
    "MAP_SHARED": 0x1, "MAP_PRIVATE": 0x2, "MAP_SHARED_VALIDATE": 0x3, "MAP_FIXED": 0x10,
    "MAP_ANONYMOUS": 0x20, "MAP_ANON": 0x20, "MAP_32BIT": 0x40, "MAP_GROWSDOWN": 0x100,
    "MAP_DENYWRITE": 0x800, "MAP_EXECUTABLE": 0x1000, "MAP_LOCKED": 0x2000,
    "MAP_NORESERVE": 0x4000, "MAP_POPULATE": 0x8000, "MAP_NONBLOCK": 0x10000,
    "MAP_STACK": 0x20000, "MAP_HUGETLB": 0x40000, "MAP_SYNC": 0x80000,
    "MAP_FIXED_NOREPLACE": 0x100000, "MAP_UNINITIALIZED": 0x4000000,
}

ADDRESS_FAMILIES = {
    "AF_UNSPEC": 0, "AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_AX25": 3, "AF_IPX": 4,
    "AF_APPLETALK": 5, "AF_NETROM": 6, "AF_BRIDGE": 7, "AF_ATMPVC": 8, "AF_X25": 9,
    "AF_INET6": 10, "AF_ROSE": 11, "AF_DECnet": 12, "AF_NETBEUI": 13, "AF_SECURITY": 14,
    "AF_KEY": 15, "AF_NETLINK": 16, "AF_ROUTE": 16, "AF_PACKET": 17, "AF_ASH": 18,
    "AF_ECONET": 19, "AF_ATMSVC": 20, "AF_RDS": 21, "AF_SNA": 22, "AF_IRDA": 23,
    "AF_PPPOX": 24, "AF_WANPIPE": 25, "AF_LLC": 26, "AF_IB": 27, "AF_MPLS": 28,
    "AF_CAN": 29, "AF_TIPC": 30, "AF_BLUETOOTH": 31, "AF_IUCV": 32, "AF_RXRPC": 33,
    "AF_ISDN": 34, "AF_PHONET": 35, "AF_IEEE802154": 36, "AF_CAIF": 37, "AF_ALG": 38,
    "AF_NFC": 39, "AF_VSOCK": 40, "AF_KCM": 41, "AF_QIPCRTR": 42, "AF_SMC": 43,
    "AF_XDP": 44, "AF_MCTP": 45,
}

# Network constants under the reference agent's names (its consts_common.go).
L4_PROTOCOLS = {
    "IP_PROTO_IP": 0, "IP_PROTO_ICMP": 1, "IP_PROTO_IGMP": 2, "IP_PROTO_IPIP": 4, "IP_PROTO_TCP": 6,
    "IP_PROTO_EGP": 8, "IP_PROTO_IGP": 9, "IP_PROTO_PUP": 12, "IP_PROTO_UDP": 17, "IP_PROTO_IDP": 22,
    "IP_PROTO_TP": 29, "IP_PROTO_DCCP": 33, "IP_PROTO_IPV6": 41, "IP_PROTO_RSVP": 46, "IP_PROTO_GRE": 47,
    "IP_PROTO_ESP": 50, "IP_PROTO_AH": 51, "IP_PROTO_ICMPV6": 58, "IP_PROTO_MTP": 92, "IP_PROTO_BEETPH": 94,
    "IP_PROTO_ENCAP": 98, "IP_PROTO_PIM": 103, "IP_PROTO_COMP": 108, "IP_PROTO_SCTP": 132,
    "IP_PROTO_UDPLITE": 136, "IP_PROTO_MPLS": 137, "IP_PROTO_RAW": 255,
}

L3_PROTOCOLS = {
    "ETH_P_LOOP": 0x0060, "ETH_P_IP": 0x0800, "ETH_P_ARP": 0x0806, "ETH_P_RARP": 0x8035,
    "ETH_P_8021_Q": 0x8100, "ETH_P_IPV6": 0x86DD, "ETH_P_MPLSUC": 0x8847, "ETH_P_MPLSMC": 0x8848,
    "ETH_P_8021_AD": 0x88A8, "ETH_P_ALL": 0x0003,
}

NETWORK_DIRECTIONS = {"INGRESS": 1, "EGRESS": 2}

# process.auid when no login uid is set: (uid_t)-1, the kernel's AUDIT_UID_UNSET
# (written as a cast in linux/audit.h, so not read from the headers); the reference agent's name.
AUDIT_AUID_UNSET = 0xFFFF_FFFF
AUDIT_IDS = {"AUDIT_AUID_UNSET": AUDIT_AUID_UNSET}

DNS_QTYPES = {
    "None": 0, "A": 1, "NS": 2, "MD": 3, "MF": 4, "CNAME": 5, "SOA": 6, "MB": 7, "MG": 8, "MR": 9,
    "NULL": 10, "PTR": 12, "HINFO": 13, "MINFO": 14, "MX": 15, "TXT": 16, "RP": 17, "AFSDB": 18,
    "X25": 19, "ISDN": 20, "RT": 21, "NSAPPTR": 23, "SIG": 24, "KEY": 25, "PX": 26, "GPOS": 27,
    "AAAA": 28, "LOC": 29, "NXT": 30, "EID": 31, "NIMLOC": 32, "SRV": 33, "ATMA": 34, "NAPTR": 35,
    "KX": 36, "CERT": 37, "DNAME": 39, "OPT": 41, "APL": 42, "DS": 43, "SSHFP": 44, "RRSIG": 46,
    "NSEC": 47, "DNSKEY": 48, "DHCID": 49, "NSEC3": 50, "NSEC3PARAM": 51, "TLSA": 52, "SMIMEA": 53,
    "HIP": 55, "NINFO": 56, "RKEY": 57, "TALINK": 58, "CDS": 59, "CDNSKEY": 60, "OPENPGPKEY": 61,
    "CSYNC": 62, "ZONEMD": 63, "SVCB": 64, "HTTPS": 65, "SPF": 99, "UINFO": 100, "UID": 101,
    "GID": 102, "UNSPEC": 103, "NID": 104, "L32": 105, "L64": 106, "LP": 107, "EUI48": 108,
    "EUI64": 109, "TKEY": 249, "TSIG": 250, "IXFR": 251, "AXFR": 252, "MAILB": 253, "MAILA": 254,
    "ANY": 255, "URI": 256, "CAA": 257, "AVC": 258, "TA": 32768, "DLV": 32769, "Reserved": 65535,
}

DNS_QCLASSES = {
    "CLASS_INET": 1, "CLASS_CSNET": 2, "CLASS_CHAOS": 3, "CLASS_HESIOD": 4, "CLASS_NONE": 254,
    "CLASS_ANY": 255,
}

FAMILIES: Mapping[str, Mapping[str, int]] = MappingProxyType({
    "open flags (O_*)": OPEN_FLAGS,
    "file mode bits (S_IF*, S_I*)": FILE_MODES,
    "errno names": ERRNOS,
    "mmap protections (PROT_*)": MMAP_PROTECTIONS,
    "mmap flags (MAP_*)": MMAP_FLAGS,
    "address families (AF_*)": ADDRESS_FAMILIES,
    # SIG*, CAP_*, PTRACE_*, PR_*, CLONE_*, MFD_*, PIPE_BUF_FLAG_*: from the kernel's headers
    **families_by_title(),
    "L4 protocols (IP_PROTO_*)": L4_PROTOCOLS,
    "L3 protocols (ETH_P_*)": L3_PROTOCOLS,
    "network directions": NETWORK_DIRECTIONS,
    "audit ids": AUDIT_IDS,
    "DNS qtypes": DNS_QTYPES,
    "DNS qclasses (CLASS_*)": DNS_QCLASSES,
})

CONSTANTS: Mapping[str, int] = MappingProxyType(
    {name: value for table in FAMILIES.values() for name, value in table.items()}
)


# exit.cause: how a process ended, as the decoder writes it (agent/events/
# process_events.py) and rules name it; a string here (the reference agent
# numbers the causes: EXITED 0, COREDUMPED 1, SIGNALED 2).
EXITED, SIGNALED, COREDUMPED = "EXITED", "SIGNALED", "COREDUMPED"

# Constants of string fields, named as their values.
STRING_CONSTANTS: Mapping[str, str] = MappingProxyType({c: c for c in (EXITED, SIGNALED, COREDUMPED)})


def lookup_string(name: str) -> str | None:
    """The value of a string SECL constant (`COREDUMPED`), or None."""
    return STRING_CONSTANTS.get(name)


def lookup(name: str) -> int | None:
    """The value of a SECL constant, or None when ``name`` is not one."""
    return CONSTANTS.get(name)
