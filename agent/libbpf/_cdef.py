"""The C declarations (cdef) and C shim of the libbpf binding.

This module is plain data: it imports nothing from the package, so the
extension builder (``_build.py``) can load it by path while the package
itself is not importable yet. ``_ffi.py`` recomputes ``DIGEST`` at import
and refuses a compiled extension built from other declarations.
"""

from __future__ import annotations

import hashlib

MODULE_NAME = "agent._libbpf_cffi"

# Only what the binding calls. In API mode "..." lets the C compiler fill in
# struct layouts and constant values from the real libbpf headers, so nothing
# here is a hand-copied offset.
CDEF = r"""
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;

enum libbpf_print_level { LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG };

enum bpf_map_type {
    BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY,
    BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    BPF_MAP_TYPE_RINGBUF, ...
};
enum bpf_prog_type {
    BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_TRACEPOINT, BPF_PROG_TYPE_RAW_TRACEPOINT,
    BPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_LSM, BPF_PROG_TYPE_EXT, ...
};
enum bpf_attach_type {
    BPF_TRACE_RAW_TP, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, BPF_MODIFY_RETURN,
    BPF_LSM_MAC, BPF_TRACE_ITER, ...
};

#define BPF_ANY ...
#define BPF_NOEXIST ...
#define BPF_EXIST ...
#define BPF_F_LOCK ...
#define BTF_KIND_INT ...
#define BTF_KIND_ENUM ...
#define BTF_KIND_ENUM64 ...
#define BTF_KIND_ARRAY ...
#define BTF_KIND_VAR ...
#define BTF_KIND_DATASEC ...
#define BTF_INT_SIGNED ...

struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_link;
struct ring_buffer;
struct btf;

struct bpf_object_open_opts {
    size_t sz;
    const char *object_name;
    const char *btf_custom_path;
    ...;
};

struct bpf_map_info {
    __u32 type;
    __u32 id;
    __u32 key_size;
    __u32 value_size;
    __u32 max_entries;
    __u32 map_flags;
    char name[16];
    ...;
};

struct btf_type {
    __u32 name_off;
    __u32 info;
    __u32 size;
    __u32 type;
    ...;
};
struct btf_var_secinfo { __u32 type; __u32 offset; __u32 size; };
struct btf_array { __u32 type; __u32 index_type; __u32 nelems; };

/* library */
const char *libbpf_version_string(void);
__u32 libbpf_major_version(void);
__u32 libbpf_minor_version(void);
int libbpf_num_possible_cpus(void);
const char *libbpf_bpf_map_type_str(enum bpf_map_type t);
const char *libbpf_bpf_prog_type_str(enum bpf_prog_type t);
const char *libbpf_bpf_attach_type_str(enum bpf_attach_type t);

/* objects */
struct bpf_object *bpf_object__open_file(const char *path,
                                         const struct bpf_object_open_opts *opts);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
const char *bpf_object__name(const struct bpf_object *obj);
struct btf *bpf_object__btf(const struct bpf_object *obj);
struct bpf_program *bpf_object__next_program(const struct bpf_object *obj,
                                             struct bpf_program *prog);
struct bpf_map *bpf_object__next_map(const struct bpf_object *obj,
                                     const struct bpf_map *map);
struct bpf_map *bpf_object__find_map_by_name(const struct bpf_object *obj,
                                             const char *name);

/* programs */
const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
bool bpf_program__autoload(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
int bpf_program__set_log_level(struct bpf_program *prog, __u32 log_level);
int bpf_program__fd(const struct bpf_program *prog);
enum bpf_prog_type bpf_program__type(const struct bpf_program *prog);
enum bpf_attach_type bpf_program__expected_attach_type(const struct bpf_program *prog);
size_t bpf_program__insn_cnt(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach(const struct bpf_program *prog);

/* links */
int bpf_link__destroy(struct bpf_link *link);
int bpf_link__fd(const struct bpf_link *link);
int bpf_link__pin(struct bpf_link *link, const char *path);
int bpf_link__unpin(struct bpf_link *link);

/* maps (object side) */
const char *bpf_map__name(const struct bpf_map *map);
enum bpf_map_type bpf_map__type(const struct bpf_map *map);
__u32 bpf_map__key_size(const struct bpf_map *map);
__u32 bpf_map__value_size(const struct bpf_map *map);
__u32 bpf_map__max_entries(const struct bpf_map *map);
__u32 bpf_map__map_flags(const struct bpf_map *map);
int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
int bpf_map__reuse_fd(struct bpf_map *map, int fd);
int bpf_map__set_autocreate(struct bpf_map *map, bool autocreate);
int bpf_map__fd(const struct bpf_map *map);
bool bpf_map__is_internal(const struct bpf_map *map);
const void *bpf_map__initial_value(struct bpf_map *map, size_t *psize);

/* maps (fd side, bpf.h) */
int bpf_map_lookup_elem(int fd, const void *key, void *value);
int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags);
int bpf_map_delete_elem(int fd, const void *key);
int bpf_map_get_next_key(int fd, const void *key, void *next_key);
int bpf_obj_get_info_by_fd(int bpf_fd, void *info, __u32 *info_len);

/* BTF */
__s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind);
const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
__u32 btf__type_cnt(const struct btf *btf);
int btf__resolve_type(const struct btf *btf, __u32 type_id);
__u16 btf_kind(const struct btf_type *t);
__u16 btf_vlen(const struct btf_type *t);
__u8 btf_int_encoding(const struct btf_type *t);
struct btf_var_secinfo *btf_var_secinfos(const struct btf_type *t);
struct btf_array *btf_array(const struct btf_type *t);

/* ring buffers */
typedef int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size);
struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb,
                                     void *ctx, const void *opts);
void ring_buffer__free(struct ring_buffer *rb);
int ring_buffer__add(struct ring_buffer *rb, int map_fd,
                     ring_buffer_sample_fn sample_cb, void *ctx);
int ring_buffer__poll(struct ring_buffer *rb, int timeout_ms);
int ring_buffer__consume(struct ring_buffer *rb);
int ring_buffer__epoll_fd(const struct ring_buffer *rb);

/* shim (SHIM_SOURCE below) */
extern "Python" int _rsa_ringbuf_sample(void *ctx, void *data, size_t size);
extern "Python" void _rsa_print(int level, const char *msg);
void rsa_install_print(void);
int rsa_ringbuf_count(void *ctx, void *data, size_t size);
const char *rsa_binding_digest(void);
"""

# The C side of the binding: libbpf's print callback gets a va_list, which
# only C can format portably; the shim formats it with vsnprintf and hands a
# plain string to Python. rsa_ringbuf_count is a pure-C sample callback used
# by the benchmark as the "no Python at all" baseline.
SHIM_SOURCE = r"""
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

static int _rsa_ringbuf_sample(void *ctx, void *data, size_t size);
static void _rsa_print(int level, const char *msg);

static int rsa_print_shim(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    char small[512];
    va_list copy;
    int n;

    va_copy(copy, ap);
    n = vsnprintf(small, sizeof(small), fmt, copy);
    va_end(copy);
    if (n < 0)
        return n;
    if ((size_t)n < sizeof(small)) {
        _rsa_print((int)level, small);
        return n;
    }
    /* verifier logs arrive as one message of up to megabytes */
    char *big = malloc((size_t)n + 1);
    if (!big) {
        _rsa_print((int)level, small);
        return n;
    }
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    _rsa_print((int)level, big);
    free(big);
    return n;
}

static void rsa_install_print(void)
{
    libbpf_set_print(rsa_print_shim);
}

static int rsa_ringbuf_count(void *ctx, void *data, size_t size)
{
    (void)data;
    (void)size;
    ++*(unsigned long long *)ctx;
    return 0;
}

static const char *rsa_binding_digest(void)
{
    return RSA_BINDING_DIGEST;
}
"""

DIGEST = hashlib.sha256((MODULE_NAME + CDEF + SHIM_SOURCE).encode()).hexdigest()[:16]
