/* Checkpoints: which files a model folder has (safetensors, else PyTorch's
 * pytorch_model.bin, read by torchbin.c), shard indexes, and the tensor
 * table both formats fill. safetensors: 8-byte little-endian header length,
 * a JSON header, then the data section. Nothing in a file is trusted: the header length is bounded by
 * the file, every tensor's span must be exactly shape x dtype size and lie in
 * the data section, and no two tensors may overlap. */
#define _POSIX_C_SOURCE 200809L
#include "io.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* HF's safetensors refuses headers above 100 MB; so do we. */
#define MAX_HEADER (100ull << 20)

static const struct {
    const char *name;
    st_dtype dtype;
    uint32_t size;
} dtypes[] = {
    {"F32", ST_F32, 4},    {"F16", ST_F16, 2},    {"BF16", ST_BF16, 2},   {"F64", ST_OTHER, 8},
    {"I64", ST_OTHER, 8},  {"I32", ST_OTHER, 4},  {"I16", ST_OTHER, 2},   {"I8", ST_OTHER, 1},
    {"U64", ST_OTHER, 8},  {"U32", ST_OTHER, 4},  {"U16", ST_OTHER, 2},   {"U8", ST_OTHER, 1},
    {"BOOL", ST_OTHER, 1}, {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
};

uint64_t st_numel(const st_tensor *t)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

static bool is_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double x = v->valuedouble;
    if (!(x >= 0) || x > 9007199254740992.0 || x != (double)(uint64_t)x) return false;
    *out = (uint64_t)x;
    return true;
}

typedef struct span {
    uint64_t begin, end;
    size_t t;
} span;

static int by_begin(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* Parses and validates one file's header, appending its tensors. */
static vkf_status parse_file(base_diag *d, st_checkpoint *ck, uint32_t fi)
{
    st_file *f = &ck->files[fi];
    const char *path = f->path;
    if (f->size < 8)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: %zu bytes is too short for a safetensors file (truncated?)", path,
                         f->size);
    const uint8_t *p = f->map ? f->map : f->borrowed;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > f->size - 8)
        return base_fail(d, VKF_ERROR_FORMAT,
                         "%s: header length %llu is larger than the file (%zu bytes): truncated or not safetensors",
                         path, (unsigned long long)hlen, f->size);
    if (hlen > MAX_HEADER)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: header length %llu exceeds the 100 MB safetensors limit", path,
                         (unsigned long long)hlen);
    if (hlen < 2) return base_fail(d, VKF_ERROR_FORMAT, "%s: empty safetensors header", path);
    const char *hdr = (const char *)p + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return base_fail(d, VKF_ERROR_FORMAT, "%s: the safetensors header is not a JSON object", path);
    }
    /* after the JSON value only the padding (spaces) safetensors writes */
    for (const char *c = end; c && c < hdr + hlen; c++)
        if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r') {
            cJSON_Delete(root);
            return base_fail(d, VKF_ERROR_FORMAT, "%s: data after the JSON value inside the safetensors header (byte %zu)", path,
                             (size_t)(c - hdr));
        }
    /* a NUL inside a name or dtype would cut it short where C reads it */
    for (uint64_t i = 0; i + 6 <= hlen; i++)
        if (hdr[i] == '\\' && (hdr[i + 1] == 'u' || hdr[i + 1] == 'U') && !memcmp(hdr + i + 2, "0000", 4)) {
            cJSON_Delete(root);
            return base_fail(d, VKF_ERROR_FORMAT, "%s: a NUL character (\\u0000) in the safetensors header", path);
        }
    uint64_t data_size = f->size - 8 - hlen;
    const uint8_t *data = p + 8 + hlen;
    size_t count = 0;
    for (cJSON *it = root->child; it; it = it->next) count++;
    span *spans = calloc(count ? count : 1, sizeof(*spans));
    size_t ns = 0;
    st_tensor *grown = realloc(ck->t, (ck->n_t + count + 1) * sizeof(*ck->t));
    if (!spans || !grown) {
        free(spans);
        cJSON_Delete(root);
        if (grown) ck->t = grown;
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    ck->t = grown;
    vkf_status s = VKF_OK;
    for (cJSON *it = root->child; it && s == VKF_OK; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) s = base_fail(d, VKF_ERROR_FORMAT, "%s: __metadata__ is not an object", path);
            continue;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsObject(it) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
            cJSON_GetArraySize(offs) != 2) {
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: tensor %s lacks a valid dtype, shape or data_offsets", path, name);
            break;
        }
        st_tensor *t = &ck->t[ck->n_t];
        memset(t, 0, sizeof(*t));
        int known = -1;
        for (size_t i = 0; i < BASE_ARRAY_LEN(dtypes); i++)
            if (strcmp(dt->valuestring, dtypes[i].name) == 0) known = (int)i;
        if (known < 0) {
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: tensor %s has unknown dtype \"%.15s\"", path, name, dt->valuestring);
            break;
        }
        t->dtype = dtypes[known].dtype;
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtypes[known].name);
        int rank = cJSON_GetArraySize(shape);
        if (rank > ST_MAX_RANK) {
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: tensor %s has rank %d (at most %d)", path, name, rank, ST_MAX_RANK);
            break;
        }
        t->rank = (uint32_t)rank;
        uint64_t numel = 1;
        bool ok = true;
        for (int i = 0; i < rank && ok; i++) {
            ok = is_uint(cJSON_GetArrayItem(shape, i), &t->shape[i]);
            if (ok && t->shape[i] && numel > UINT64_MAX / t->shape[i]) ok = false;
            if (ok) numel *= t->shape[i];
        }
        uint64_t b = 0, e = 0;
        if (!ok || !is_uint(cJSON_GetArrayItem(offs, 0), &b) || !is_uint(cJSON_GetArrayItem(offs, 1), &e) || b > e) {
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: tensor %s has an invalid shape or data_offsets", path, name);
            break;
        }
        uint32_t es = dtypes[known].size;
        if (numel > UINT64_MAX / es || numel * es != e - b) {
            s = base_fail(d, VKF_ERROR_FORMAT,
                          "%s: tensor %s spans %llu bytes but its shape and dtype %s need %llu", path, name,
                          (unsigned long long)(e - b), t->dtype_name, (unsigned long long)(numel * es));
            break;
        }
        if (e > data_size) {
            s = base_fail(d, VKF_ERROR_FORMAT,
                          "%s: tensor %s (data_offsets %llu..%llu) runs past the end of the data section (%llu bytes): "
                          "truncated file?",
                          path, name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size);
            break;
        }
        t->name = base_strdup(name);
        if (!t->name) {
            s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
        t->data = data + b;
        t->bytes = e - b;
        t->file = fi;
        spans[ns++] = (span){b, e, ck->n_t};
        ck->n_t++;
    }
    if (s == VKF_OK) {
        qsort(spans, ns, sizeof(*spans), by_begin);
        for (size_t i = 1; i < ns && s == VKF_OK; i++)
            if (spans[i].begin < spans[i - 1].end)
                s = base_fail(d, VKF_ERROR_FORMAT, "%s: tensors %s and %s overlap in the data section", path,
                              ck->t[spans[i - 1].t].name, ck->t[spans[i].t].name);
        /* HF's rule: the tensors cover the data section exactly, no gaps (a
         * header length off by a byte shifts every tensor and shows here) */
        uint64_t at = 0;
        for (size_t i = 0; i < ns && s == VKF_OK; i++) {
            if (spans[i].begin != at)
                s = base_fail(d, VKF_ERROR_FORMAT, "%s: bytes %llu..%llu of the data section belong to no tensor (before %s): "
                              "a wrong header length or a corrupt file",
                              path, (unsigned long long)at, (unsigned long long)spans[i].begin, ck->t[spans[i].t].name);
            at = spans[i].end;
        }
        if (s == VKF_OK && at != data_size)
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: the data section has %llu bytes, its tensors cover %llu: a wrong header length "
                          "or a corrupt file", path, (unsigned long long)data_size, (unsigned long long)at);
    }
    free(spans);
    cJSON_Delete(root);
    return s;
}

static vkf_status map_file(base_diag *d, const char *path, st_file *f)
{
    memset(f, 0, sizeof(*f));
    f->path = base_strdup(path);
    if (!f->path) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    const vkf_memory_file *mf = base_memdir_find(path);
    if (mf) { /* the app's bytes, read in place (not unmapped at close) */
        f->borrowed = mf->data;
        f->size = mf->size;
        return VKF_OK;
    }
    int fd = base_open_regular(d, path);
    if (fd < 0) return VKF_ERROR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return base_fail(d, VKF_ERROR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            close(fd);
            return base_fail(d, VKF_ERROR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
    }
    close(fd);
    return VKF_OK;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return base_stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static vkf_status add_file(base_diag *d, st_checkpoint *ck, const char *path)
{
    st_file *files = realloc(ck->files, (ck->n_files + 1) * sizeof(*files));
    if (!files) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    ck->files = files;
    vkf_status s = map_file(d, path, &ck->files[ck->n_files]);
    ck->n_files++;
    size_t len = strlen(path);
    bool torch = len >= 4 && strcmp(path + len - 4, ".bin") == 0;
    if (s == VKF_OK) s = torch ? io_torchbin_parse(d, ck, ck->n_files - 1) : parse_file(d, ck, ck->n_files - 1);
    return s;
}

/* model.safetensors.index.json or pytorch_model.bin.index.json:
 * {"weight_map": {tensor: shard file}} */
static vkf_status open_sharded(base_diag *d, const char *dir, const char *index, st_checkpoint *ck)
{
    cJSON *root;
    vkf_status s = io_json_load(d, index, &root);
    if (s != VKF_OK) return s;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        io_json_free(root);
        return base_fail(d, VKF_ERROR_FORMAT, "%s: no \"weight_map\" object", index);
    }
    for (const cJSON *it = map->child; it && s == VKF_OK; it = it->next) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/') || strcmp(it->valuestring, "..") == 0) {
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: tensor %s maps to an invalid shard name", index, it->string);
            break;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, it->valuestring);
        bool seen = false;
        for (uint32_t i = 0; i < ck->n_files; i++) seen = seen || strcmp(ck->files[i].path, path) == 0;
        if (!seen) s = add_file(d, ck, path);
    }
    if (s == VKF_OK && ck->n_files == 0) s = base_fail(d, VKF_ERROR_FORMAT, "%s: the weight map is empty", index);
    if (s == VKF_OK) {
        qsort(ck->t, ck->n_t, sizeof(*ck->t), by_name);
        for (const cJSON *it = map->child; it && s == VKF_OK; it = it->next) {
            const st_tensor *t = st_find(ck, it->string);
            const char *file = t ? strrchr(ck->files[t->file].path, '/') : NULL;
            if (!t || strcmp(file ? file + 1 : ck->files[t->file].path, it->valuestring))
                s = base_fail(d, VKF_ERROR_FORMAT, "%s: tensor %s is not in its shard %s", index, it->string,
                              it->valuestring);
        }
    }
    io_json_free(root);
    return s;
}

/* A folder without safetensors or PyTorch weights: what it has instead. */
static vkf_status no_checkpoint(base_diag *d, const char *dir)
{
    static const char *const others[] = {"tf_model.h5", "flax_model.msgpack", "model.onnx", "onnx/model.onnx"};
    char found[512] = "", path[4096];
    for (size_t i = 0; i < BASE_ARRAY_LEN(others); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, others[i]);
        if (base_exists(path)) snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s", found[0] ? ", " : "", others[i]);
    }
    DIR *dp = opendir(dir);
    for (struct dirent *e; dp && (e = readdir(dp));) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".gguf") == 0 && strlen(found) + n + 8 < sizeof found)
            snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s", found[0] ? ", " : "", e->d_name);
    }
    if (dp) closedir(dp);
    if (found[0])
        return base_fail(d, VKF_ERROR_FORMAT,
                         "%s: no model.safetensors or pytorch_model.bin in it, only %s: only safetensors and PyTorch "
                         "(pytorch_model.bin) checkpoints are read",
                         dir, found);
    return base_fail(d, VKF_ERROR_IO,
                     "%s: no model.safetensors or model.safetensors.index.json in it (nor pytorch_model.bin or "
                     "pytorch_model.bin.index.json)",
                     dir);
}

vkf_status st_open(base_diag *d, const char *path, st_checkpoint *ck)
{
    memset(ck, 0, sizeof(*ck));
    vkf_status s;
    if (is_dir(path)) {
        /* HF's order: safetensors first, then the PyTorch pickle */
        static const char *const names[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                            "pytorch_model.bin.index.json"};
        char file[4096];
        size_t k = 0;
        for (; k < BASE_ARRAY_LEN(names); k++) {
            snprintf(file, sizeof file, "%s/%s", path, names[k]);
            if (base_exists(file)) break;
        }
        if (k == 0 || k == 2)
            s = add_file(d, ck, file);
        else if (k == 1 || k == 3)
            s = open_sharded(d, path, file, ck);
        else
            s = no_checkpoint(d, path);
    } else if (base_exists(path)) {
        s = add_file(d, ck, path);
    } else {
        s = base_fail(d, VKF_ERROR_IO, "%s: no such file or directory", path);
    }
    if (s == VKF_OK) {
        qsort(ck->t, ck->n_t, sizeof(*ck->t), by_name);
        for (size_t i = 1; i < ck->n_t && s == VKF_OK; i++)
            if (strcmp(ck->t[i - 1].name, ck->t[i].name) == 0)
                s = base_fail(d, VKF_ERROR_FORMAT, "%s: tensor %s appears twice", path, ck->t[i].name);
    }
    if (s != VKF_OK) st_close(ck);
    return s;
}

void st_close(st_checkpoint *ck)
{
    for (size_t i = 0; i < ck->n_t; i++) free(ck->t[i].name);
    for (uint32_t i = 0; i < ck->n_files; i++) {
        if (ck->files[i].map) munmap(ck->files[i].map, ck->files[i].size);
        free(ck->files[i].path);
    }
    free(ck->t);
    free(ck->files);
    memset(ck, 0, sizeof(*ck));
}

const st_tensor *st_find(const st_checkpoint *ck, const char *name)
{
    size_t lo = 0, hi = ck->n_t;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(ck->t[mid].name, name);
        if (c == 0) return &ck->t[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

vkf_status st_convert(base_diag *d, const st_tensor *t, uint64_t first, uint64_t count, bool to_f16, void *dst)
{
    if (t->dtype == ST_OTHER)
        return base_fail(d, VKF_ERROR_FORMAT, "tensor %s: unsupported dtype %s (F32, F16 and BF16 load as weights)",
                         t->name, t->dtype_name);
    if (first + count > st_numel(t))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "tensor %s: elements beyond its end", t->name);
    const uint8_t *src = t->data;
    if (t->dtype == ST_F32) {
        if (!to_f16) {
            memcpy(dst, src + first * 4, count * 4);
        } else {
            uint16_t *o = dst;
            for (uint64_t i = 0; i < count; i++) {
                float v;
                memcpy(&v, src + (first + i) * 4, 4);
                o[i] = base_f32_to_f16(v);
            }
        }
    } else {
        for (uint64_t i = 0; i < count; i++) {
            uint16_t h;
            memcpy(&h, src + (first + i) * 2, 2);
            if (t->dtype == ST_F16 && to_f16) {
                ((uint16_t *)dst)[i] = h;
                continue;
            }
            float v = t->dtype == ST_F16 ? base_f16_to_f32(h) : base_bf16_to_f32(h);
            if (to_f16)
                ((uint16_t *)dst)[i] = base_f32_to_f16(v);
            else
                ((float *)dst)[i] = v;
        }
    }
    return VKF_OK;
}
