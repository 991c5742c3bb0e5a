#define _POSIX_C_SOURCE 200809L
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void stderr_log(void *user, vkf_log_level level, const char *message)
{
    (void)user;
    fprintf(stderr, "vkformer %s: %s\n", level_names[level], message);
}

void base_diag_init(base_diag *d, vkf_log_fn fn, void *user, int desc_level)
{
    memset(d, 0, sizeof(*d));
    d->log_fn = fn ? fn : stderr_log;
    d->log_user = user;
    d->level = VKF_LOG_WARN;
    const char *env = base_getenv("VKF_LOG");
    if (desc_level > 0) {
        d->level = (vkf_log_level)BASE_MIN(desc_level - 1, (int)VKF_LOG_DEBUG);
    } else if (env) {
        for (int i = 0; i < (int)BASE_ARRAY_LEN(level_names); i++)
            if (strcasecmp(env, level_names[i]) == 0) d->level = (vkf_log_level)i;
    }
}

struct base_error_buf {
    base_diag *owner;
    base_error_buf *prev, *next;
    char text[BASE_ERROR_BYTES];
};

static void unlink_buf(base_error_buf *b)
{
    base_diag *d = b->owner;
    if (b->prev) b->prev->next = b->next;
    else d->bufs = b->next;
    if (b->next) b->next->prev = b->prev;
}

/* A thread ends: its buffer goes. */
static void free_thread_buf(void *p)
{
    base_error_buf *b = p;
    pthread_mutex_lock(&b->owner->lock);
    unlink_buf(b);
    pthread_mutex_unlock(&b->owner->lock);
    free(b);
}

bool base_diag_per_thread(base_diag *d)
{
    if (d->per_thread) return true;
    if (pthread_key_create(&d->key, free_thread_buf) != 0) return false;
    pthread_mutex_init(&d->lock, NULL);
    d->bufs = NULL;
    d->per_thread = true;
    return true;
}

void base_diag_destroy(base_diag *d)
{
    if (!d->per_thread) return;
    pthread_key_delete(d->key); /* no destructors run from here on */
    while (d->bufs) {
        base_error_buf *b = d->bufs;
        d->bufs = b->next;
        free(b);
    }
    pthread_mutex_destroy(&d->lock);
    d->per_thread = false;
}

char *base_diag_error(base_diag *d)
{
    if (!d->per_thread) return d->error;
    base_error_buf *b = pthread_getspecific(d->key);
    if (b) return b->text;
    b = calloc(1, sizeof *b);
    if (!b) return d->error;
    b->owner = d;
    pthread_mutex_lock(&d->lock);
    b->next = d->bufs;
    if (d->bufs) d->bufs->prev = b;
    d->bufs = b;
    pthread_mutex_unlock(&d->lock);
    if (pthread_setspecific(d->key, b) != 0) {
        pthread_mutex_lock(&d->lock);
        unlink_buf(b);
        pthread_mutex_unlock(&d->lock);
        free(b);
        return d->error;
    }
    return b->text;
}

base_diag *base_thread_diag(void)
{
    static _Thread_local base_diag diag;
    static _Thread_local bool ready;
    if (!ready) {
        base_diag_init(&diag, NULL, NULL, 0);
        ready = true;
    }
    return &diag;
}

static void vlog(base_diag *d, vkf_log_level level, const char *fmt, va_list ap)
{
    if (!d || level > d->level) return;
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    d->log_fn(d->log_user, level, buf);
}

void base_log(base_diag *d, vkf_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(d, level, fmt, ap);
    va_end(ap);
}

vkf_status base_fail(base_diag *d, vkf_status status, const char *fmt, ...)
{
    char *e = base_diag_error(d);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e, BASE_ERROR_BYTES, fmt, ap);
    va_end(ap);
    base_log(d, VKF_LOG_DEBUG, "failed (%s): %s", vkf_status_string(status), e);
    return status;
}

vkf_status base_fail_prefix(base_diag *d, vkf_status status, const char *fmt, ...)
{
    char *e = base_diag_error(d);
    char old[BASE_ERROR_BYTES];
    memcpy(old, e, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e, BASE_ERROR_BYTES, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < BASE_ERROR_BYTES) snprintf(e + n, BASE_ERROR_BYTES - (size_t)n, "%s", old);
    return status;
}

uint64_t base_hash64(const void *data, size_t size, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int base_open_regular(base_diag *d, const char *path)
{
    /* O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        base_fail(d, VKF_ERROR_IO, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        base_fail(d, VKF_ERROR_IO, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

bool base_is_regular(const char *path)
{
    struct stat st;
    return base_stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static _Thread_local struct {
    const vkf_memory_file *files;
    uint32_t n;
} memdir;

void base_memdir_mount(const vkf_memory_file *files, uint32_t n)
{
    memdir.files = files;
    memdir.n = files ? n : 0;
}

const vkf_memory_file *base_memdir_find(const char *path)
{
    size_t dl = strlen(BASE_MEMDIR);
    if (!memdir.files || strncmp(path, BASE_MEMDIR "/", dl + 1) != 0) return NULL;
    for (uint32_t i = 0; i < memdir.n; i++)
        if (strcmp(path + dl + 1, memdir.files[i].name) == 0) return &memdir.files[i];
    return NULL;
}

bool base_relative_path_ok(const char *name)
{
    if (!name || !*name) return false;
    for (const char *c = name;;) { /* each component */
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return false;
        if (!c[n]) return true;
        c += n + 1;
    }
}

/* Whether path (under BASE_MEMDIR) is a directory of the mounted files. */
static bool memdir_is_dir(const char *path)
{
    if (strcmp(path, BASE_MEMDIR) == 0) return true;
    size_t dl = strlen(BASE_MEMDIR) + 1, pl = strlen(path) - dl;
    for (uint32_t i = 0; i < memdir.n; i++)
        if (!strncmp(memdir.files[i].name, path + dl, pl) && memdir.files[i].name[pl] == '/') return true;
    return false;
}

int base_stat(const char *path, struct stat *st)
{
    size_t dl = strlen(BASE_MEMDIR);
    if (memdir.files && !strncmp(path, BASE_MEMDIR, dl) && (!path[dl] || path[dl] == '/')) {
        memset(st, 0, sizeof *st);
        const vkf_memory_file *f = base_memdir_find(path);
        if (f) {
            st->st_mode = S_IFREG | 0444;
            st->st_size = (off_t)f->size;
        } else if (memdir_is_dir(path)) {
            st->st_mode = S_IFDIR | 0555;
        } else {
            errno = ENOENT;
            return -1;
        }
        return 0;
    }
    return stat(path, st);
}

bool base_exists(const char *path)
{
    struct stat st;
    return base_stat(path, &st) == 0;
}

vkf_status base_read_file(base_diag *d, const char *path, void **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    const vkf_memory_file *mf = base_memdir_find(path);
    if (mf) {
        char *copy = malloc(mf->size + 1);
        if (!copy) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory reading %zu bytes", path, mf->size);
        if (mf->size) memcpy(copy, mf->data, mf->size);
        copy[mf->size] = 0;
        *data = copy;
        *size = mf->size;
        return VKF_OK;
    }
    int fd = base_open_regular(d, path);
    if (fd < 0) return VKF_ERROR_IO;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return base_fail(d, VKF_ERROR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return base_fail(d, VKF_ERROR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory reading %zu bytes", path, n);
    }
    if (n && fread(buf, 1, n, f) != n) {
        int e = errno;
        free(buf);
        fclose(f);
        return base_fail(d, VKF_ERROR_IO, "%s: read failed: %s", path, e ? strerror(e) : "short read");
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    *size = n;
    return VKF_OK;
}

int base_mkdirs_for(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return -1;
    memcpy(buf, path, n + 1);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf) return 0;
    *slash = 0;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

vkf_status base_write_file_atomic(base_diag *d, const char *path, const void *data, size_t size, bool make_dirs)
{
    /* Only a regular file is ever replaced: not a device node, a FIFO, a
     * directory, or a symbolic link (which would redirect the write). */
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return base_fail(d, VKF_ERROR_IO, "%s: exists and is not a regular file; not replaced", path);
    if (make_dirs && base_mkdirs_for(path) != 0)
        return base_fail(d, VKF_ERROR_IO, "%s: cannot create its directory: %s", path, strerror(errno));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    /* O_EXCL | O_NOFOLLOW: never through a file or link planted at the temporary name */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return base_fail(d, VKF_ERROR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        remove(tmp);
        return base_fail(d, VKF_ERROR_IO, "%s: cannot write: %s", tmp, strerror(e));
    }
    bool ok = fwrite(data, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return base_fail(d, VKF_ERROR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return VKF_OK;
}

const char *base_getenv(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

int base_parse_bool(const char *s, int dflt)
{
    if (!s) return dflt;
    static const char *const yes[] = {"1", "on", "true", "yes"};
    static const char *const no[] = {"0", "off", "false", "no"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) return 1;
        if (strcasecmp(s, no[i]) == 0) return 0;
    }
    return dflt;
}

uint16_t base_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u | ((absx >> 13) & 0x3ffu) : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* subnormal half or zero */
        if (absx < 0x33000000u) return (uint16_t)sign; /* below half of the smallest subnormal */
        uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(absx >> 23); /* 14..24: half units are 2^-24 */
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((absx >> 13) - (112u << 10));
    uint32_t rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float base_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                mant <<= 1;
                e++;
            } while (!(mant & 0x400u));
            x = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

float base_bf16_to_f32(uint16_t h)
{
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

bool base_grow(void **ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 8;
    while (n < need) n *= 2;
    void *p = realloc(*ptr, n * elem);
    if (!p) return false;
    memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
    *ptr = p;
    *cap = n;
    return true;
}

char *base_strdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

double base_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *base_fmt_bytes(uint64_t bytes, char buf[32])
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}

const char *vkf_status_string(vkf_status status)
{
    switch (status) {
    case VKF_OK: return "ok";
    case VKF_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case VKF_ERROR_NO_VULKAN: return "no Vulkan driver";
    case VKF_ERROR_NO_DEVICE: return "no such device";
    case VKF_ERROR_UNSUPPORTED: return "unsupported";
    case VKF_ERROR_OUT_OF_MEMORY: return "out of memory";
    case VKF_ERROR_VULKAN: return "Vulkan error";
    case VKF_ERROR_DEVICE_LOST: return "device lost";
    case VKF_ERROR_IO: return "I/O error";
    case VKF_ERROR_FORMAT: return "malformed input";
    case VKF_ERROR_SHAPE: return "shape mismatch";
    case VKF_ERROR_NOT_FOUND: return "not found";
    case VKF_STATUS_COUNT: break;
    }
    return "unknown status";
}

void vkf_free(void *p) { free(p); }

double base_max_f32(const float *x, size_t n)
{
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

uint32_t vkf_version(void)
{
    return VKF_VERSION_NUMBER;
}

#define BASE_STR2(x) #x
#define BASE_STR(x) BASE_STR2(x)
const char *vkf_version_string(void)
{
    return BASE_STR(VKF_VERSION_MAJOR) "." BASE_STR(VKF_VERSION_MINOR) "." BASE_STR(VKF_VERSION_PATCH);
}
