/* PyTorch checkpoints (pytorch_model.bin and its shards): torch.save's zip
 * archive (<folder>/data.pkl, <folder>/data/<key>, ...) read in place from the
 * mapping. The zip's central directory is parsed here with every offset and
 * size bounded by the file (zip64 records where torch writes them); only
 * stored entries are read (torch.save stores, never compresses), and a
 * compressed or encrypted entry is refused by name. data.pkl is read by a
 * small pickle machine that knows only what torch.load(weights_only=True)
 * allows in a state dict: dicts, OrderedDict, tensors rebuilt from storages,
 * parameters. Any other global is refused by name before anything is built,
 * and nothing is ever called: the machine only builds values. Every count
 * (objects, stack, memo keys, bytes) is bounded; there is no recursion. */
#define _POSIX_C_SOURCE 200809L
#include "io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PICKLE (64ull << 20) /* data.pkl; a 7B model's is under 1 MiB */
#define MAX_VALUES (1u << 21)    /* objects, stack entries and memo keys */

/* ---- zip ------------------------------------------------------------------------ */

typedef struct zentry {
    const char *name;
    uint32_t name_len;
    uint16_t method, flags;
    uint64_t data, size; /* offset of the bytes in the file, their count (compressed) */
} zentry;

typedef struct zip {
    const char *path;
    const uint8_t *p;
    uint64_t size;
    zentry *e; /* sorted by name */
    size_t n;
    const char *folder; /* the archive's top folder: data.pkl's */
    uint32_t folder_len;
} zip;

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* A name from the file made safe to print: at most 80 bytes, controls as '?'. */
static const char *shown(char buf[96], const char *s, size_t n)
{
    size_t k = 0;
    for (; k < n && k < 80; k++) buf[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
    if (n > 80) memcpy(buf + k, "...", 3), k += 3;
    buf[k] = 0;
    return buf;
}

static int entry_cmp(const char *a, uint32_t an, const char *b, uint32_t bn)
{
    int c = memcmp(a, b, BASE_MIN(an, bn));
    return c ? c : (an > bn) - (an < bn);
}

static int by_entry_name(const void *a, const void *b)
{
    const zentry *x = a, *y = b;
    return entry_cmp(x->name, x->name_len, y->name, y->name_len);
}

static const zentry *zip_find(const zip *z, const char *name, uint32_t len)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = entry_cmp(z->e[mid].name, z->e[mid].name_len, name, len);
        if (c == 0) return &z->e[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

#define ZFAIL(...) base_fail(d, VKF_ERROR_FORMAT, __VA_ARGS__)

/* The end of central directory record (and torch's zip64 record beside it). */
static vkf_status zip_end(base_diag *d, zip *z, uint64_t *count, uint64_t *cd_off, uint64_t *cd_size, uint64_t *cd_limit)
{
    const uint8_t *p = z->p;
    if (z->size < 22) return ZFAIL("%s: %llu bytes is too short for a PyTorch checkpoint (truncated?)", z->path, (unsigned long long)z->size);
    uint64_t at = UINT64_MAX;
    for (uint64_t i = z->size - 22, stop = z->size - 22 > 65535 ? z->size - 22 - 65535 : 0;; i--) {
        if (rd32(p + i) == 0x06054b50 && rd16(p + i + 20) == z->size - 22 - i) {
            at = i;
            break;
        }
        if (i == stop) break;
    }
    if (at == UINT64_MAX)
        return ZFAIL("%s: not a zip archive (no end of central directory record): truncated, or not a PyTorch checkpoint", z->path);
    const uint8_t *e = p + at;
    if (rd16(e + 4) || rd16(e + 6) || rd16(e + 8) != rd16(e + 10))
        return ZFAIL("%s: a zip archive split over several disks is not read", z->path);
    *count = rd16(e + 10), *cd_size = rd32(e + 12), *cd_off = rd32(e + 16), *cd_limit = at;
    if (at >= 20 && rd32(p + at - 20) == 0x07064b50) { /* zip64 locator */
        const uint8_t *l = p + at - 20;
        uint64_t z64 = rd64(l + 8);
        if (rd32(l + 4) || rd32(l + 16) > 1 || z64 > at - 20 || at - 20 - z64 < 56 || rd32(p + z64) != 0x06064b50)
            return ZFAIL("%s: the zip64 end of central directory locator points at no zip64 record", z->path);
        const uint8_t *r = p + z64;
        if (rd32(r + 16) || rd32(r + 20) || rd64(r + 24) != rd64(r + 32))
            return ZFAIL("%s: a zip archive split over several disks is not read", z->path);
        *count = rd64(r + 32), *cd_size = rd64(r + 40), *cd_off = rd64(r + 48), *cd_limit = z64;
    } else if (*count == 0xffff || *cd_size == 0xffffffffu || *cd_off == 0xffffffffu) {
        return ZFAIL("%s: the zip end record says zip64 but there is no zip64 record", z->path);
    }
    if (*cd_off > *cd_limit || *cd_size > *cd_limit - *cd_off)
        return ZFAIL("%s: the zip central directory (%llu bytes at %llu) lies outside the archive: truncated file?", z->path,
                     (unsigned long long)*cd_size, (unsigned long long)*cd_off);
    if (*count > *cd_size / 46)
        return ZFAIL("%s: the zip central directory claims %llu entries in %llu bytes", z->path, (unsigned long long)*count,
                     (unsigned long long)*cd_size);
    return VKF_OK;
}

/* One central directory record at *q (advanced past it) into e. */
static vkf_status zip_entry(base_diag *d, const zip *z, uint64_t *q, uint64_t cd_end, uint64_t cd_off, zentry *e)
{
    const uint8_t *c = z->p + *q;
    if (cd_end - *q < 46 || rd32(c) != 0x02014b50) return ZFAIL("%s: a corrupt zip central directory record", z->path);
    uint32_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    if (cd_end - *q - 46 < (uint64_t)nlen + xlen + clen) return ZFAIL("%s: a zip central directory record runs past its end", z->path);
    e->name = (const char *)c + 46, e->name_len = nlen;
    e->flags = rd16(c + 8), e->method = rd16(c + 10);
    uint64_t vals[3] = {rd32(c + 24), rd32(c + 20), rd32(c + 42)}; /* size, compressed size, local header */
    char nb[96];
    const uint8_t *x = c + 46 + nlen, *xend = x + xlen;
    while (xend - x >= 4) { /* the zip64 extra field: the 0xffffffff values in order */
        uint16_t id = rd16(x), len = rd16(x + 2);
        if ((uint64_t)(xend - x - 4) < len) return ZFAIL("%s: entry %s: a zip extra field runs past its record", z->path, shown(nb, e->name, nlen));
        if (id == 1) {
            const uint8_t *v = x + 4;
            for (int i = 0; i < 3; i++)
                if (vals[i] == 0xffffffffu) {
                    if (v + 8 > x + 4 + len) return ZFAIL("%s: entry %s: a short zip64 extra field", z->path, shown(nb, e->name, nlen));
                    vals[i] = rd64(v), v += 8;
                }
        }
        x += 4 + len;
    }
    if (memchr(e->name, 0, nlen)) return ZFAIL("%s: a zip entry name holds a NUL byte", z->path);
    if (e->flags & 1) return ZFAIL("%s: entry %s is encrypted", z->path, shown(nb, e->name, nlen));
    uint64_t lh = vals[2];
    if (lh > cd_off || cd_off - lh < 30 || rd32(z->p + lh) != 0x04034b50)
        return ZFAIL("%s: entry %s: its local header (at %llu) is not inside the archive: truncated or corrupt file", z->path,
                     shown(nb, e->name, nlen), (unsigned long long)lh);
    const uint8_t *l = z->p + lh;
    uint64_t data = lh + 30 + rd16(l + 26) + rd16(l + 28);
    if (data > cd_off || cd_off - data < vals[1])
        return ZFAIL("%s: entry %s (%llu bytes at %llu) runs into the central directory: truncated or corrupt file", z->path,
                     shown(nb, e->name, nlen), (unsigned long long)vals[1], (unsigned long long)data);
    if (rd16(l + 26) != nlen || memcmp(l + 30, e->name, nlen) != 0)
        return ZFAIL("%s: entry %s: its local header names another file", z->path, shown(nb, e->name, nlen));
    if (e->method == 0 && vals[0] != vals[1])
        return ZFAIL("%s: entry %s is stored but its sizes differ (%llu and %llu)", z->path, shown(nb, e->name, nlen),
                     (unsigned long long)vals[0], (unsigned long long)vals[1]);
    e->data = data, e->size = vals[1];
    *q += 46 + (uint64_t)nlen + xlen + clen;
    return VKF_OK;
}

static vkf_status zip_open(base_diag *d, zip *z)
{
    uint64_t count = 0, cd_off = 0, cd_size = 0, cd_limit = 0;
    vkf_status s = zip_end(d, z, &count, &cd_off, &cd_size, &cd_limit);
    if (s != VKF_OK) return s;
    z->e = calloc(count ? count : 1, sizeof *z->e);
    if (!z->e) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    uint64_t q = cd_off;
    for (z->n = 0; z->n < count; z->n++)
        if ((s = zip_entry(d, z, &q, cd_off + cd_size, cd_off, &z->e[z->n])) != VKF_OK) return s;
    qsort(z->e, z->n, sizeof *z->e, by_entry_name);
    char nb[96];
    for (size_t i = 1; i < z->n; i++)
        if (!by_entry_name(&z->e[i - 1], &z->e[i]))
            return ZFAIL("%s: entry %s appears twice in the zip archive", z->path, shown(nb, z->e[i].name, z->e[i].name_len));
    /* the folder holding data.pkl (torch names it after the file it saved) */
    for (size_t i = 0; i < z->n; i++) {
        const zentry *e = &z->e[i];
        const char *slash = memchr(e->name, '/', e->name_len);
        if (!slash || slash == e->name || e->name + e->name_len - slash != 9 || memcmp(slash, "/data.pkl", 9)) continue;
        char nb2[96];
        if (z->folder)
            return ZFAIL("%s: two data.pkl in the archive (in %s and %s)", z->path, shown(nb, z->folder, z->folder_len),
                         shown(nb2, e->name, (size_t)(slash - e->name)));
        z->folder = e->name, z->folder_len = (uint32_t)(slash - e->name);
    }
    if (!z->folder) return ZFAIL("%s: no <folder>/data.pkl in the zip archive: not a PyTorch checkpoint", z->path);
    return VKF_OK;
}

/* The bytes of folder/rest, stored (not compressed). */
static vkf_status zip_get(base_diag *d, const zip *z, const char *rest, size_t rest_len, const zentry **out)
{
    char name[320], nb[96];
    if (z->folder_len + 1 + rest_len >= sizeof name)
        return ZFAIL("%s: the archive entry %s is not there", z->path, shown(nb, rest, rest_len));
    memcpy(name, z->folder, z->folder_len);
    name[z->folder_len] = '/';
    memcpy(name + z->folder_len + 1, rest, rest_len);
    uint32_t len = z->folder_len + 1 + (uint32_t)rest_len;
    const zentry *e = zip_find(z, name, len);
    if (!e) return ZFAIL("%s: the archive has no entry %s", z->path, shown(nb, name, len));
    if (e->method != 0)
        return ZFAIL("%s: entry %s is compressed (zip method %u): only stored entries are read, as torch.save writes them "
                     "(re-save the checkpoint with torch.save)",
                     z->path, shown(nb, name, len), e->method);
    *out = e;
    return VKF_OK;
}

/* ---- pickle ------------------------------------------------------------------------ */

typedef enum pkind { P_NONE, P_BOOL, P_INT, P_FLOAT, P_STR, P_TUPLE, P_LIST, P_DICT, P_GLOBAL, P_STORAGE, P_TENSOR } pkind;

static const char *const kind_names[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor"};

typedef struct pval {
    uint8_t kind;
    uint32_t n, cap; /* string bytes, or items (a dict's: key, value, key, value...) */
    int64_t i;       /* int, bool; the global, storage or tensor index */
    const char *s;
    uint32_t *items;
} pval;

enum { G_ODICT, G_TENSOR, G_PARAM, G_PARAM_STATE, G_STORAGE };

static const struct {
    const char *module, *name;
    int what;
    st_dtype dtype;
    const char *dtype_name;
    uint32_t size;
} globals[] = {
    {"collections", "OrderedDict", G_ODICT, 0, NULL, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_TENSOR, 0, NULL, 0},
    {"torch._utils", "_rebuild_parameter", G_PARAM, 0, NULL, 0},
    {"torch._utils", "_rebuild_parameter_with_state", G_PARAM_STATE, 0, NULL, 0},
    {"torch", "FloatStorage", G_STORAGE, ST_F32, "F32", 4},
    {"torch", "HalfStorage", G_STORAGE, ST_F16, "F16", 2},
    {"torch", "BFloat16Storage", G_STORAGE, ST_BF16, "BF16", 2},
    {"torch", "DoubleStorage", G_STORAGE, ST_OTHER, "F64", 8},
    {"torch", "LongStorage", G_STORAGE, ST_OTHER, "I64", 8},
    {"torch", "IntStorage", G_STORAGE, ST_OTHER, "I32", 4},
    {"torch", "ShortStorage", G_STORAGE, ST_OTHER, "I16", 2},
    {"torch", "CharStorage", G_STORAGE, ST_OTHER, "I8", 1},
    {"torch", "ByteStorage", G_STORAGE, ST_OTHER, "U8", 1},
    {"torch", "BoolStorage", G_STORAGE, ST_OTHER, "BOOL", 1},
};

typedef struct pstorage {
    int g;            /* its class in globals[] */
    uint64_t numel;
    const uint8_t *data;
} pstorage;

typedef struct ptensor {
    uint32_t storage, rank;
    uint64_t offset, numel, shape[ST_MAX_RANK];
    bool contiguous;
} ptensor;

typedef struct vm {
    base_diag *d;
    const zip *z;
    const uint8_t *p;
    size_t n, at;
    pval *v;
    size_t nv, cap_v;
    uint32_t *stack;
    size_t ns, cap_s;
    size_t *marks;
    size_t nm, cap_m;
    uint32_t *memo; /* value index + 1; 0: unset */
    size_t cap_memo;
    pstorage *st;
    size_t nst, cap_st;
    ptensor *t;
    size_t nt, cap_t;
} vm;

#define OOM() base_fail(m->d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory")
#define PFAIL(...) base_fail(m->d, VKF_ERROR_FORMAT, __VA_ARGS__)

static vkf_status new_value(vm *m, pkind kind, uint32_t *out)
{
    if (m->nv >= MAX_VALUES) return PFAIL("%s: data.pkl builds more than %u objects", m->z->path, MAX_VALUES);
    if (!base_grow((void **)&m->v, &m->cap_v, m->nv + 1, sizeof *m->v)) return OOM();
    memset(&m->v[m->nv], 0, sizeof *m->v);
    m->v[m->nv].kind = (uint8_t)kind;
    *out = (uint32_t)m->nv++;
    return VKF_OK;
}

static vkf_status push(vm *m, uint32_t v)
{
    if (m->ns >= MAX_VALUES) return PFAIL("%s: the pickle stack grows past %u entries", m->z->path, MAX_VALUES);
    if (!base_grow((void **)&m->stack, &m->cap_s, m->ns + 1, sizeof *m->stack)) return OOM();
    m->stack[m->ns++] = v;
    return VKF_OK;
}

static vkf_status push_new(vm *m, pkind kind, int64_t i)
{
    uint32_t v = 0;
    vkf_status s = new_value(m, kind, &v);
    if (s == VKF_OK) m->v[v].i = i, s = push(m, v);
    return s;
}

/* Items above the last mark (the mark is dropped): *first indexes the stack. */
static vkf_status pop_mark(vm *m, size_t *first)
{
    if (!m->nm) return PFAIL("%s: pickle opcode at byte %zu needs a MARK and there is none", m->z->path, m->at);
    *first = m->marks[--m->nm];
    return VKF_OK;
}

static vkf_status need(vm *m, size_t k)
{
    size_t floor = m->nm ? m->marks[m->nm - 1] : 0;
    if (m->ns - floor < k) return PFAIL("%s: pickle opcode at byte %zu pops an empty stack", m->z->path, m->at);
    return VKF_OK;
}

static vkf_status add_items(vm *m, uint32_t target, const uint32_t *items, size_t k)
{
    pval *t = &m->v[target];
    if (k > UINT32_MAX - t->n) return PFAIL("%s: a pickle container is too large", m->z->path);
    size_t cap = t->cap;
    if (!base_grow((void **)&t->items, &cap, (size_t)t->n + k, sizeof *t->items)) return OOM();
    t->cap = (uint32_t)cap;
    if (k) memcpy(t->items + t->n, items, k * sizeof *items);
    t->n += (uint32_t)k;
    return VKF_OK;
}

/* TUPLE, TUPLE1-3: the top k stack items become a tuple. */
static vkf_status make_tuple(vm *m, size_t first)
{
    uint32_t v = 0;
    vkf_status s = new_value(m, P_TUPLE, &v);
    if (s == VKF_OK && m->ns > first) s = add_items(m, v, m->stack + first, m->ns - first); /* the stack may be unallocated */
    if (s == VKF_OK) m->ns = first, s = push(m, v);
    return s;
}

static bool int_arg(const vm *m, uint32_t v, int64_t lo, int64_t *out)
{
    if (m->v[v].kind != P_INT || m->v[v].i < lo) return false;
    *out = m->v[v].i;
    return true;
}

/* BINPERSID ('storage', <storage class>, key, location, numel) -> archive entry data/<key>. */
static vkf_status persid(vm *m)
{
    vkf_status s = need(m, 1);
    if (s != VKF_OK) return s;
    const pval *pid = &m->v[m->stack[m->ns - 1]];
    char nb[96];
    if (pid->kind != P_TUPLE || pid->n != 5 || m->v[pid->items[0]].kind != P_STR || m->v[pid->items[0]].n != 7 ||
        memcmp(m->v[pid->items[0]].s, "storage", 7) != 0)
        return PFAIL("%s: a persistent id in data.pkl that is not ('storage', type, key, location, size)", m->z->path);
    const pval *cls = &m->v[pid->items[1]], *key = &m->v[pid->items[2]], *loc = &m->v[pid->items[3]];
    int64_t numel;
    if (cls->kind != P_GLOBAL || globals[cls->i].what != G_STORAGE)
        return PFAIL("%s: a storage's type in data.pkl is not a torch storage class", m->z->path);
    if (key->kind != P_STR || !key->n || loc->kind != P_STR || !int_arg(m, pid->items[4], 0, &numel))
        return PFAIL("%s: a storage in data.pkl lacks a valid key, location or size", m->z->path);
    char rest[128];
    if (key->n > 100 || memchr(key->s, '/', key->n) || memchr(key->s, 0, key->n))
        return PFAIL("%s: data.pkl names storage \"%s\", which is not a storage key", m->z->path, shown(nb, key->s, key->n));
    int len = snprintf(rest, sizeof rest, "data/%.*s", (int)key->n, key->s);
    const zentry *e;
    if ((s = zip_get(m->d, m->z, rest, (size_t)len, &e)) != VKF_OK) return s;
    uint32_t es = globals[cls->i].size;
    if ((uint64_t)numel > e->size / es)
        return PFAIL("%s: storage %s (%s of %lld elements) needs %llu bytes, its entry has %llu", m->z->path, shown(nb, key->s, key->n),
                     globals[cls->i].name, (long long)numel, (unsigned long long)numel * es, (unsigned long long)e->size);
    if (!base_grow((void **)&m->st, &m->cap_st, m->nst + 1, sizeof *m->st)) return OOM();
    m->st[m->nst] = (pstorage){(int)cls->i, (uint64_t)numel, m->z->p + e->data};
    m->ns--;
    return push_new(m, P_STORAGE, (int64_t)m->nst++);
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static vkf_status rebuild_tensor(vm *m, const pval *args, uint32_t *out)
{
    if (args->n != 6 && args->n != 7) return PFAIL("%s: _rebuild_tensor_v2 with %u arguments in data.pkl", m->z->path, args->n);
    const pval *stg = &m->v[args->items[0]], *size = &m->v[args->items[2]], *stride = &m->v[args->items[3]];
    ptensor t = {0};
    int64_t off;
    if (stg->kind != P_STORAGE || !int_arg(m, args->items[1], 0, &off) || size->kind != P_TUPLE || stride->kind != P_TUPLE ||
        size->n != stride->n)
        return PFAIL("%s: a tensor in data.pkl lacks a valid storage, offset, size or stride", m->z->path);
    if (size->n > ST_MAX_RANK) return PFAIL("%s: a tensor in data.pkl has rank %u (at most %d)", m->z->path, size->n, ST_MAX_RANK);
    t.storage = (uint32_t)stg->i, t.offset = (uint64_t)off, t.rank = size->n, t.numel = 1, t.contiguous = true;
    for (uint32_t i = 0; i < t.rank; i++) {
        int64_t dim;
        if (!int_arg(m, size->items[i], 0, &dim)) return PFAIL("%s: a tensor in data.pkl has a negative or non-integer size", m->z->path);
        t.shape[i] = (uint64_t)dim;
        if (dim && t.numel > UINT64_MAX / (uint64_t)dim) return PFAIL("%s: a tensor in data.pkl has too many elements", m->z->path);
        t.numel *= (uint64_t)dim;
    }
    uint64_t want = 1; /* row-major strides; a dimension of size 1 may have any stride, as in torch */
    for (uint32_t i = t.rank; i-- > 0;) {
        const pval *st = &m->v[stride->items[i]];
        if (st->kind != P_INT) return PFAIL("%s: a tensor in data.pkl has a non-integer stride", m->z->path);
        if (t.shape[i] != 1 && (st->i < 0 || (uint64_t)st->i != want)) t.contiguous = false;
        want *= t.shape[i];
    }
    if (t.numel == 0) t.contiguous = true;
    if (!base_grow((void **)&m->t, &m->cap_t, m->nt + 1, sizeof *m->t)) return OOM();
    m->t[m->nt] = t;
    vkf_status s = new_value(m, P_TENSOR, out);
    if (s == VKF_OK) m->v[*out].i = (int64_t)m->nt++;
    return s;
}

/* REDUCE: only the allowed callables, each building a value (nothing runs). */
static vkf_status reduce(vm *m)
{
    vkf_status s = need(m, 2);
    if (s != VKF_OK) return s;
    const pval *f = &m->v[m->stack[m->ns - 2]], *args = &m->v[m->stack[m->ns - 1]];
    if (f->kind != P_GLOBAL) return PFAIL("%s: data.pkl calls a %s", m->z->path, kind_names[f->kind]);
    if (args->kind != P_TUPLE) return PFAIL("%s: data.pkl calls %s.%s without an argument tuple", m->z->path, globals[f->i].module, globals[f->i].name);
    uint32_t r = 0;
    switch (globals[f->i].what) {
    case G_ODICT:
        if (args->n) return PFAIL("%s: data.pkl builds an OrderedDict from arguments (only the empty one is read)", m->z->path);
        s = new_value(m, P_DICT, &r);
        break;
    case G_TENSOR:
        s = rebuild_tensor(m, args, &r);
        break;
    case G_PARAM:
    case G_PARAM_STATE:
        if (args->n != (globals[f->i].what == G_PARAM ? 3u : 4u) || m->v[args->items[0]].kind != P_TENSOR)
            return PFAIL("%s: %s in data.pkl without a tensor and its flags", m->z->path, globals[f->i].name);
        r = args->items[0];
        break;
    default:
        return PFAIL("%s: data.pkl calls %s.%s (only tensors and dicts are built)", m->z->path, globals[f->i].module, globals[f->i].name);
    }
    if (s != VKF_OK) return s;
    m->ns -= 2;
    return push(m, r);
}

static vkf_status global(vm *m, const char *mod, size_t mod_len, const char *name, size_t name_len)
{
    for (size_t i = 0; i < BASE_ARRAY_LEN(globals); i++)
        if (strlen(globals[i].module) == mod_len && !memcmp(globals[i].module, mod, mod_len) && strlen(globals[i].name) == name_len &&
            !memcmp(globals[i].name, name, name_len))
            return push_new(m, P_GLOBAL, (int64_t)i);
    char a[96], b[96];
    return PFAIL("%s: pickle global %s.%s is not allowed: only torch tensors and dicts are read", m->z->path, shown(a, mod, mod_len),
                 shown(b, name, name_len));
}

static bool take(vm *m, size_t k, const uint8_t **out)
{
    if (m->n - m->at < k) return false;
    *out = m->p + m->at;
    m->at += k;
    return true;
}

static vkf_status memo_put(vm *m, uint64_t key)
{
    vkf_status s = need(m, 1);
    if (s != VKF_OK) return s;
    if (key >= MAX_VALUES) return PFAIL("%s: pickle memo key %llu is too large", m->z->path, (unsigned long long)key);
    size_t cap = m->cap_memo;
    if (key >= cap) {
        if (!base_grow((void **)&m->memo, &cap, (size_t)key + 1, sizeof *m->memo)) return OOM();
        memset(m->memo + m->cap_memo, 0, (cap - m->cap_memo) * sizeof *m->memo);
        m->cap_memo = cap;
    }
    m->memo[key] = m->stack[m->ns - 1] + 1;
    return VKF_OK;
}

static vkf_status memo_get(vm *m, uint64_t key)
{
    if (key >= m->cap_memo || !m->memo[key]) return PFAIL("%s: pickle memo key %llu is not set", m->z->path, (unsigned long long)key);
    return push(m, m->memo[key] - 1);
}

/* Runs data.pkl; *result: the value STOP returns. */
static vkf_status run(vm *m, uint32_t *result)
{
    const uint8_t *a;
    vkf_status s = VKF_OK;
    while (s == VKF_OK) {
        size_t op_at = m->at;
        if (m->at >= m->n) return PFAIL("%s: data.pkl ends without STOP (truncated?)", m->z->path);
        uint8_t op = m->p[m->at++];
#define ARG(k)                                                                                          \
    do {                                                                                                \
        if (!take(m, (k), &a)) return PFAIL("%s: data.pkl ends inside an opcode (truncated?)", m->z->path); \
    } while (0)
        switch (op) {
        case 0x80: /* PROTO */
            ARG(1);
            if (a[0] < 2 || a[0] > 5) return PFAIL("%s: data.pkl is pickle protocol %u (2 to 5 are read)", m->z->path, a[0]);
            break;
        case '.': /* STOP */
            if (m->nm || m->ns != 1) return PFAIL("%s: data.pkl stops with %zu values and %zu marks on its stack", m->z->path, m->ns, m->nm);
            if (m->at != m->n) return PFAIL("%s: %zu bytes after the end of data.pkl's pickle", m->z->path, m->n - m->at);
            *result = m->stack[0];
            return VKF_OK;
        case '}': s = push_new(m, P_DICT, 0); break;
        case ']': s = push_new(m, P_LIST, 0); break;
        case ')': s = push_new(m, P_TUPLE, 0); break;
        case 'N': s = push_new(m, P_NONE, 0); break;
        case 0x88: s = push_new(m, P_BOOL, 1); break;
        case 0x89: s = push_new(m, P_BOOL, 0); break;
        case 'K': ARG(1); s = push_new(m, P_INT, a[0]); break;
        case 'M': ARG(2); s = push_new(m, P_INT, rd16(a)); break;
        case 'J': ARG(4); s = push_new(m, P_INT, (int32_t)rd32(a)); break;
        case 0x8a: { /* LONG1: little-endian two's complement, at most 8 bytes here */
            ARG(1);
            uint8_t k = a[0];
            if (k > 8) return PFAIL("%s: an integer of %u bytes in data.pkl (at most 8)", m->z->path, k);
            ARG(k);
            uint64_t u = 0;
            for (int i = k - 1; i >= 0; i--) u = u << 8 | a[i];
            if (k && k < 8 && (a[k - 1] & 0x80)) u |= UINT64_MAX << (8 * k);
            s = push_new(m, P_INT, (int64_t)u);
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            ARG(8);
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | a[i];
            s = push_new(m, P_FLOAT, (int64_t)u);
            break;
        }
        case 'X': case 0x8c: { /* BINUNICODE, SHORT_BINUNICODE */
            size_t width = op == 'X' ? 4 : 1;
            ARG(width);
            uint64_t len = width == 4 ? rd32(a) : a[0];
            if (len > m->n - m->at) return PFAIL("%s: a string in data.pkl runs past its end (truncated?)", m->z->path);
            ARG((size_t)len);
            uint32_t v = 0;
            if ((s = new_value(m, P_STR, &v)) != VKF_OK) return s;
            m->v[v].s = (const char *)a, m->v[v].n = (uint32_t)len;
            s = push(m, v);
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *mod = m->p + m->at, *nl1 = memchr(mod, '\n', BASE_MIN(m->n - m->at, (size_t)256));
            const uint8_t *name = nl1 ? nl1 + 1 : NULL;
            const uint8_t *nl2 = nl1 ? memchr(name, '\n', BASE_MIN(m->n - (size_t)(name - m->p), (size_t)256)) : NULL;
            if (!nl2) return PFAIL("%s: a GLOBAL in data.pkl without its two lines", m->z->path);
            m->at = (size_t)(nl2 + 1 - m->p);
            s = global(m, (const char *)mod, (size_t)(nl1 - mod), (const char *)name, (size_t)(nl2 - name));
            break;
        }
        case 'q': ARG(1); s = memo_put(m, a[0]); break;
        case 'r': ARG(4); s = memo_put(m, rd32(a)); break;
        case 'h': ARG(1); s = memo_get(m, a[0]); break;
        case 'j': ARG(4); s = memo_get(m, rd32(a)); break;
        case '(':
            if (!base_grow((void **)&m->marks, &m->cap_m, m->nm + 1, sizeof *m->marks)) return OOM();
            m->marks[m->nm++] = m->ns;
            break;
        case 't': {
            size_t first = 0;
            if ((s = pop_mark(m, &first)) == VKF_OK) s = make_tuple(m, first);
            break;
        }
        case 0x85: case 0x86: case 0x87: {
            size_t k = (size_t)(op - 0x84);
            if ((s = need(m, k)) == VKF_OK) s = make_tuple(m, m->ns - k);
            break;
        }
        case 'Q': s = persid(m); break;
        case 'R': s = reduce(m); break;
        case 'b': { /* BUILD: an OrderedDict's attributes (_metadata) or a tensor's state: ignored */
            if ((s = need(m, 2)) != VKF_OK) return s;
            pkind k = m->v[m->stack[m->ns - 2]].kind;
            if (k != P_DICT && k != P_TENSOR) return PFAIL("%s: data.pkl sets the state of a %s", m->z->path, kind_names[k]);
            m->ns--;
            break;
        }
        case 's': case 'u': case 'a': case 'e': { /* SETITEM(S), APPEND(S) */
            bool dict = op == 's' || op == 'u';
            size_t first = m->ns - (dict ? 2 : 1);
            if (op == 'u' || op == 'e') s = pop_mark(m, &first);
            else s = need(m, dict ? 3 : 2);
            if (s != VKF_OK) return s;
            if (first == 0 || (dict && (m->ns - first) % 2))
                return PFAIL("%s: a pickle %s at byte %zu without its container", m->z->path, dict ? "SETITEM" : "APPEND", op_at);
            uint32_t target = m->stack[first - 1];
            if (m->v[target].kind != (dict ? P_DICT : P_LIST))
                return PFAIL("%s: data.pkl adds items to a %s", m->z->path, kind_names[m->v[target].kind]);
            s = add_items(m, target, m->stack + first, m->ns - first);
            m->ns = first;
            break;
        }
        default:
            return PFAIL("%s: pickle opcode 0x%02x at byte %zu of data.pkl is not read (not one torch.save writes)", m->z->path, op, op_at);
        }
#undef ARG
    }
    return s;
}

static void vm_free(vm *m)
{
    for (size_t i = 0; i < m->nv; i++) free(m->v[i].items);
    free(m->v), free(m->stack), free(m->marks), free(m->memo), free(m->st), free(m->t);
}

/* The tensors of the state dict into the checkpoint (names unsorted). */
static vkf_status collect(vm *m, uint32_t root, st_checkpoint *ck, uint32_t fi)
{
    const pval *dict = &m->v[root];
    if (dict->kind != P_DICT) return PFAIL("%s: data.pkl holds a %s, not a dict of tensors", m->z->path, kind_names[dict->kind]);
    uint32_t pairs = dict->n / 2;
    st_tensor *grown = realloc(ck->t, (ck->n_t + pairs + 1) * sizeof *ck->t);
    if (!grown) return OOM();
    ck->t = grown;
    char nb[96];
    for (uint32_t i = 0; i < pairs; i++) {
        const pval *key = &m->v[dict->items[2 * i]], *val = &m->v[dict->items[2 * i + 1]];
        if (val->kind != P_TENSOR) continue; /* buffers of other kinds, metadata */
        if (key->kind != P_STR || !key->n || memchr(key->s, 0, key->n))
            return PFAIL("%s: a tensor in data.pkl under a key that is not a name", m->z->path);
        const ptensor *pt = &m->t[val->i];
        const pstorage *ps = &m->st[pt->storage];
        const char *name = shown(nb, key->s, key->n);
        if (!pt->contiguous)
            return PFAIL("%s: tensor %s is not contiguous (its strides are not row-major): save it after .contiguous()", m->z->path, name);
        if (pt->offset > ps->numel || pt->numel > ps->numel - pt->offset)
            return PFAIL("%s: tensor %s (elements %llu..%llu of its storage) runs past its storage of %llu elements", m->z->path, name,
                         (unsigned long long)pt->offset, (unsigned long long)(pt->offset + pt->numel), (unsigned long long)ps->numel);
        st_tensor *t = &ck->t[ck->n_t];
        memset(t, 0, sizeof *t);
        t->name = malloc((size_t)key->n + 1);
        if (!t->name) return OOM();
        memcpy(t->name, key->s, key->n);
        t->name[key->n] = 0;
        uint32_t es = globals[ps->g].size;
        t->dtype = globals[ps->g].dtype;
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", globals[ps->g].dtype_name);
        t->rank = pt->rank;
        memcpy(t->shape, pt->shape, sizeof t->shape);
        t->data = ps->data + pt->offset * es;
        t->bytes = pt->numel * es;
        t->file = fi;
        ck->n_t++;
    }
    return VKF_OK;
}

vkf_status io_torchbin_parse(base_diag *d, st_checkpoint *ck, uint32_t fi)
{
    const st_file *f = &ck->files[fi];
    zip z = {f->path, f->map ? f->map : f->borrowed, f->size, NULL, 0, NULL, 0};
    if (z.size >= 2 && z.p[0] == 0x80 && z.p[1] == 0x02)
        return ZFAIL("%s: a PyTorch checkpoint in the legacy format (before torch 1.6) is not read: re-save it with torch.save "
                     "from a newer torch",
                     z.path);
    vkf_status s = zip_open(d, &z);
    const zentry *pkl = NULL;
    if (s == VKF_OK) s = zip_get(d, &z, "data.pkl", 8, &pkl);
    if (s == VKF_OK && pkl->size > MAX_PICKLE)
        s = ZFAIL("%s: data.pkl has %llu bytes (at most 64 MiB are read)", z.path, (unsigned long long)pkl->size);
    if (s == VKF_OK) {
        vm m = {.d = d, .z = &z, .p = z.p + pkl->data, .n = (size_t)pkl->size};
        uint32_t root = 0;
        s = run(&m, &root);
        if (s == VKF_OK) s = collect(&m, root, ck, fi);
        vm_free(&m);
    }
    free(z.e);
    return s;
}
