/* The floor for bench_fim: empty programs on exactly the hooks the file-integrity
 * event types attach (agent/hooksets.py, TRACEPOINT: open + the 12 FIM types). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_exit_chmod") int empty_exit_chmod(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_fchmod") int empty_exit_fchmod(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_fchmodat") int empty_exit_fchmodat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_fchmodat2") int empty_exit_fchmodat2(void *ctx) { return 0; }
SEC("tp_btf/ctime_ns_xchg") int BPF_PROG(empty_ctime_ns_xchg) { return 0; }
SEC("tp_btf/ctime_xchg_skip") int BPF_PROG(empty_ctime_xchg_skip) { return 0; }
SEC("tp_btf/inode_set_ctime_to_ts") int BPF_PROG(empty_inode_set_ctime) { return 0; }
SEC("tracepoint/syscalls/sys_exit_chown") int empty_exit_chown(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_fchown") int empty_exit_fchown(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_lchown") int empty_exit_lchown(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_fchownat") int empty_exit_fchownat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_link") int empty_exit_link(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_linkat") int empty_exit_linkat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_mkdir") int empty_exit_mkdir(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_mkdirat") int empty_exit_mkdirat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_mount") int empty_exit_mount(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_open") int empty_exit_open(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_openat") int empty_exit_openat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_openat2") int empty_exit_openat2(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_creat") int empty_exit_creat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_removexattr") int empty_exit_removexattr(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_lremovexattr") int empty_exit_lremovexattr(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_fremovexattr") int empty_exit_fremovexattr(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_removexattrat") int empty_exit_removexattrat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_rename") int empty_exit_rename(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_renameat") int empty_exit_renameat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_renameat2") int empty_exit_renameat2(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_rmdir") int empty_exit_rmdir(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_unlinkat") int empty_exit_unlinkat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_setxattr") int empty_exit_setxattr(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_lsetxattr") int empty_exit_lsetxattr(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_fsetxattr") int empty_exit_fsetxattr(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_setxattrat") int empty_exit_setxattrat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_umount") int empty_exit_umount(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_unlink") int empty_exit_unlink(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_utime") int empty_exit_utime(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_utimes") int empty_exit_utimes(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_utimensat") int empty_exit_utimensat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_futimesat") int empty_exit_futimesat(void *ctx) { return 0; }
