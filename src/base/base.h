/* Lowest layer: diagnostics (log + last error), hashing, files, fp16, small
 * containers. Everything above may include this; it includes only vkformer.h. */
#ifndef VKF_BASE_H
#define VKF_BASE_H

#include "vkformer.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BASE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BASE_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BASE_MAX(a, b) ((a) > (b) ? (a) : (b))
#define BASE_ALIGN_UP(x, a) ((((x) + (a) - 1) / (a)) * (a))
#define BASE_DIV_UP(x, a) (((x) + (a) - 1) / (a))

#if defined(__GNUC__)
#define BASE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BASE_PRINTF(f, a)
#endif

#define BASE_ERROR_BYTES 2048

typedef struct base_error_buf base_error_buf;

/* Where a layer reports: the owner's logger and its last-error message. A
 * diag shared by threads (a context's) keeps one message per thread, so a
 * thread reads its own calls' errors, never another thread's half-written one. */
typedef struct base_diag {
    vkf_log_fn log_fn;
    void *log_user;
    vkf_log_level level;
    char error[BASE_ERROR_BYTES]; /* the message, for a diag of one thread */
    bool per_thread;              /* base_diag_per_thread() was called */
    pthread_key_t key;
    pthread_mutex_t lock;         /* guards bufs */
    base_error_buf *bufs;         /* every thread's buffer, freed by base_diag_destroy */
} base_diag;

/* Fills a diag from the desc fields, VKF_LOG, and the stderr default. */
void base_diag_init(base_diag *d, vkf_log_fn fn, void *user, int desc_level);
/* From now on, one message per thread (contexts, which threads share). */
bool base_diag_per_thread(base_diag *d);
void base_diag_destroy(base_diag *d);
/* The calling thread's message buffer (BASE_ERROR_BYTES; the shared one when
 * the diag is not per thread, or when no buffer can be had). */
char *base_diag_error(base_diag *d);

/* This thread's diag for calls that have no context yet. */
base_diag *base_thread_diag(void);

void base_log(base_diag *d, vkf_log_level level, const char *fmt, ...) BASE_PRINTF(3, 4);

/* Records the message as the last error, logs it at debug level, returns status. */
vkf_status base_fail(base_diag *d, vkf_status status, const char *fmt, ...) BASE_PRINTF(3, 4);

/* Prefixes the current error message ("loading x: " + old message). */
vkf_status base_fail_prefix(base_diag *d, vkf_status status, const char *fmt, ...) BASE_PRINTF(3, 4);

/* FNV-1a, 64-bit; chain by passing the previous result as seed. */
#define BASE_HASH_SEED 0xcbf29ce484222325ull
uint64_t base_hash64(const void *data, size_t size, uint64_t seed);

/* Whole-file read (malloc'd, NUL-terminated beyond size). */
vkf_status base_read_file(base_diag *d, const char *path, void **data, size_t *size);
/* Opens a regular file for reading, or fails (VKF_ERROR_IO, message naming
 * the path) without blocking: a FIFO or a device is refused, never opened for
 * a blocking read. Returns a file descriptor, or -1. */
int base_open_regular(base_diag *d, const char *path);
/* Whether path names a regular file (stat, nothing opened). */
bool base_is_regular(const char *path);
/* Writes via a temporary file and rename, so readers never see a partial file.
 * Only a regular file (or nothing) at path is replaced; the directory is
 * created only with make_dirs (the default cache directory), else it must exist. */
vkf_status base_write_file_atomic(base_diag *d, const char *path, const void *data, size_t size, bool make_dirs);
/* mkdir -p of the directory part of path. */
int base_mkdirs_for(const char *path);

/* ---- a model directory in memory (vkf_model_load_memory) ----------------------
 * While mounted on a thread, the readers above (base_read_file, base_stat,
 * and base_memdir_find for mappings) see BASE_MEMDIR/NAME as the app's bytes. */
#define BASE_MEMDIR "(memory)"
void base_memdir_mount(const vkf_memory_file *files, uint32_t n); /* NULL, 0: unmount */
const vkf_memory_file *base_memdir_find(const char *path);
/* A path below a directory: non-empty components, none "." or "..", no leading '/'. */
bool base_relative_path_ok(const char *name);
/* stat(2), with the mounted files as read-only regular files and BASE_MEMDIR
 * as their directory; -1 with errno ENOENT for what is not there. */
struct stat;
int base_stat(const char *path, struct stat *st);
/* Whether anything is at path (base_stat). */
bool base_exists(const char *path);

/* Environment: NULL when unset or empty. */
const char *base_getenv(const char *name);
/* "1", "on", "true", "yes" -> 1; "0", "off", "false", "no" -> 0; else dflt. */
int base_parse_bool(const char *s, int dflt);

/* IEEE half <-> float with round-to-nearest-even, infinities and NaN kept. */
uint16_t base_f32_to_f16(float f);
/* The largest of x[0..n), NaNs skipped as fmax skips them; -INFINITY when
 * n is 0. (A compare loop: GCC 12 for aarch64 crashes vectorising an fmax
 * reduction at -O3, "internal compiler error in vect_transform_reduction".) */
double base_max_f32(const float *x, size_t n);
float base_f16_to_f32(uint16_t h);
float base_bf16_to_f32(uint16_t h);

/* Grows *ptr (array of elem-sized items, capacity *cap) to hold need items.
 * Returns false when out of memory (the old array is kept). */
bool base_grow(void **ptr, size_t *cap, size_t need, size_t elem);

char *base_strdup(const char *s);
/* Seconds from a monotonic clock. */
double base_now(void);
/* Human-readable size: "23.4 MiB". */
const char *base_fmt_bytes(uint64_t bytes, char buf[32]);

#endif
