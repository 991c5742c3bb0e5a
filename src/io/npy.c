#define _POSIX_C_SOURCE 200809L
/* NumPy .npy files (format versions 1, 2 and 3): little-endian float32,
 * float16, int32 and int64 arrays in C order, read with the header checked
 * against the file (a header that lies about the shape or the length is an
 * error, never a short or long read), and float32 arrays written. */
#include "io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static const struct {
    const char *descr;
    io_npy_dtype dtype;
    uint32_t size;
} DTYPES[] = {{"<f4", IO_NPY_F32, 4}, {"<f2", IO_NPY_F16, 2}, {"<i4", IO_NPY_I32, 4}, {"<i8", IO_NPY_I64, 8}};

uint32_t io_npy_dtype_size(io_npy_dtype t)
{
    for (size_t i = 0; i < BASE_ARRAY_LEN(DTYPES); i++)
        if (DTYPES[i].dtype == t) return DTYPES[i].size;
    return 0;
}

const char *io_npy_dtype_name(io_npy_dtype t)
{
    static const char *const names[] = {"float32", "float16", "int32", "int64"};
    return (unsigned)t < BASE_ARRAY_LEN(names) ? names[t] : "?";
}

void io_npy_free(io_npy *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * NumPy takes exactly these three keys (another is an error; a repeated one,
 * which Python's dict would take the last of, is refused here): their values' starts. */
static const char *dict_keys(const char *h, const char *vals[3])
{
    static const char *const names[3] = {"descr", "fortran_order", "shape"};
    vals[0] = vals[1] = vals[2] = NULL;
    const char *p = h;
    while (*p == ' ') p++;
    if (*p++ != '{') return "is not a dict";
    for (;;) {
        while (*p == ' ') p++;
        if (*p == '}') break;
        char q = *p;
        if (q != '\'' && q != '"') return "has a key that is not a string";
        const char *k = ++p;
        while (*p && *p != q) p++;
        if (!*p) return "has an unterminated key";
        size_t kl = (size_t)(p++ - k);
        int which = -1;
        for (int i = 0; i < 3; i++)
            if (kl == strlen(names[i]) && !memcmp(k, names[i], kl)) which = i;
        if (which < 0) return "has a key other than 'descr', 'fortran_order' and 'shape'";
        if (vals[which]) return "repeats a key";
        while (*p == ' ') p++;
        if (*p++ != ':') return "has a key without a value";
        while (*p == ' ') p++;
        vals[which] = p;
        /* skip the value: a string, a tuple, or a word */
        if (*p == '\'' || *p == '"') {
            char vq = *p++;
            while (*p && *p != vq) p++;
            if (*p) p++;
        } else if (*p == '(') {
            while (*p && *p != ')') p++;
            if (*p) p++;
        } else {
            while (*p && *p != ',' && *p != '}' && *p != ' ') p++;
        }
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p != '}') return "is not a dict of simple values";
    }
    return NULL;
}

static vkf_status parse_header(base_diag *d, const char *path, const char *h, io_npy *a)
{
    const char *vals[3];
    const char *why = dict_keys(h, vals);
    if (why) return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy header %s", path, why);
    const char *v = vals[0];
    if (!v || (*v != '\'' && *v != '"')) return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy header has no 'descr'", path);
    char q = *v++, descr[32];
    size_t n = 0;
    while (v[n] && v[n] != q && n < sizeof descr - 1) n++;
    if (v[n] != q) return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy header's 'descr' is malformed", path);
    memcpy(descr, v, n);
    descr[n] = 0;
    bool found = false;
    for (size_t i = 0; i < BASE_ARRAY_LEN(DTYPES) && !found; i++)
        if (!strcmp(descr, DTYPES[i].descr) || (descr[0] == '|' && !strcmp(descr + 1, DTYPES[i].descr + 1)))
            a->dtype = DTYPES[i].dtype, found = true;
    if (!found)
        return base_fail(d, VKF_ERROR_FORMAT,
                         "%s: dtype '%s' is not supported (little-endian float32, float16, int32 or int64: <f4, <f2, <i4, <i8)",
                         path, descr);
    v = vals[1];
    if (!v || (strncmp(v, "False", 5) && strncmp(v, "True", 4)))
        return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy header has no 'fortran_order'", path);
    if (!strncmp(v, "True", 4)) return base_fail(d, VKF_ERROR_FORMAT, "%s: Fortran-order arrays are not supported (save in C order)", path);
    v = vals[2];
    if (!v || *v != '(') return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy header has no 'shape' tuple", path);
    v++;
    a->rank = 0;
    a->count = 1;
    for (;;) {
        while (*v == ' ') v++;
        if (*v == ')') break;
        if (*v < '0' || *v > '9') return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy shape is not a tuple of sizes", path);
        char *end;
        errno = 0;
        unsigned long long dim = strtoull(v, &end, 10);
        if (errno || dim > (1ull << 40)) return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy shape has a dimension of %s", path, "absurd size");
        if (a->rank == IO_NPY_MAX_RANK) return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy array has more than %d dimensions", path, IO_NPY_MAX_RANK);
        a->shape[a->rank++] = dim;
        if (dim && a->count > UINT64_MAX / 16 / dim) return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy shape's element count overflows", path);
        a->count *= dim;
        v = end;
        while (*v == ' ') v++;
        if (*v == ',') v++;
        else if (*v != ')') return base_fail(d, VKF_ERROR_FORMAT, "%s: .npy shape is not a tuple of sizes", path);
    }
    return VKF_OK;
}

vkf_status io_npy_load(base_diag *d, const char *path, uint64_t max_bytes, io_npy *a)
{
    memset(a, 0, sizeof *a);
    int fd = base_open_regular(d, path);
    if (fd < 0) return VKF_ERROR_IO;
    struct stat st;
    FILE *f = fstat(fd, &st) == 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        close(fd);
        return base_fail(d, VKF_ERROR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t pre[12];
    vkf_status s = VKF_OK;
    if (size < 10 || fread(pre, 1, 10, f) != 10 || memcmp(pre, MAGIC, 6))
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
    uint64_t hlen = 0, hstart = 10;
    if (s == VKF_OK) {
        if (pre[6] == 1) {
            hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
        } else if ((pre[6] == 2 || pre[6] == 3) && size >= 12 && fread(pre + 10, 1, 2, f) == 2) {
            hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
            hstart = 12;
        } else {
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: .npy format version %u.%u is not supported", path, pre[6], pre[7]);
        }
    }
    if (s == VKF_OK && (hlen == 0 || hlen > 1u << 20 || hstart + hlen > size))
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: .npy header length %llu does not fit the %llu-byte file", path,
                      (unsigned long long)hlen, (unsigned long long)size);
    char *h = NULL;
    if (s == VKF_OK) {
        h = malloc(hlen + 1);
        if (!h) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        else if (fread(h, 1, hlen, f) != hlen) s = base_fail(d, VKF_ERROR_IO, "%s: read failed", path);
        else h[hlen] = 0;
    }
    if (s == VKF_OK && strlen(h) != hlen) s = base_fail(d, VKF_ERROR_FORMAT, "%s: .npy header holds a NUL byte", path);
    if (s == VKF_OK) s = parse_header(d, path, h, a);
    free(h);
    uint64_t bytes = a->count * io_npy_dtype_size(a->dtype);
    if (s == VKF_OK && bytes != size - hstart - hlen)
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: the header's shape needs %llu bytes of data, the file has %llu", path,
                      (unsigned long long)bytes, (unsigned long long)(size - hstart - hlen));
    if (s == VKF_OK && max_bytes && bytes > max_bytes)
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: %llu bytes of data is over the limit of %llu", path, (unsigned long long)bytes,
                      (unsigned long long)max_bytes);
    if (s == VKF_OK) {
        a->data = malloc(bytes ? bytes : 1);
        if (!a->data) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory for %llu bytes", path, (unsigned long long)bytes);
        else if (bytes && fread(a->data, 1, bytes, f) != bytes) s = base_fail(d, VKF_ERROR_IO, "%s: read failed", path);
    }
    fclose(f);
    if (s != VKF_OK) io_npy_free(a);
    return s;
}

vkf_status io_npy_save_f32(base_diag *d, const char *path, const float *data, uint32_t rank, const uint64_t *shape)
{
    char dims[256] = "";
    uint64_t count = 1;
    for (uint32_t i = 0; i < rank; i++) {
        size_t l = strlen(dims);
        snprintf(dims + l, sizeof dims - l, "%llu%s", (unsigned long long)shape[i], rank == 1 ? "," : i + 1 < rank ? ", " : "");
        count *= shape[i];
    }
    char h[512];
    int n = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    /* pad with spaces so that the data starts at a multiple of 64, newline last */
    size_t total = BASE_ALIGN_UP(10 + (size_t)n + 1, 64), hlen = total - 10;
    memset(h + n, ' ', hlen - (size_t)n);
    h[hlen - 1] = '\n';
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xFF), (uint8_t)(hlen >> 8)};
    size_t bytes = (size_t)count * 4;
    uint8_t *buf = malloc(total + bytes);
    if (!buf) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    memcpy(buf, pre, 10);
    memcpy(buf + 10, h, hlen);
    memcpy(buf + total, data, bytes);
    vkf_status s = base_write_file_atomic(d, path, buf, total + bytes, false);
    free(buf);
    return s;
}
