/* The shared helpers of the command-line tools (see tool.h). */
#include "tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "vkformer.h"

int tool_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return TOOL_FAIL;
}

int tool_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see %s --help)\n", tool_name);
    va_end(ap);
    return TOOL_USAGE;
}

void tool_print_version(void)
{
    printf("%s (vkformer) %d.%d.%d\n", tool_name, VKF_VERSION_MAJOR, VKF_VERSION_MINOR, VKF_VERSION_PATCH);
}

int tool_parse_u32(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || s[0] == '-' || v < lo || v > hi) return 0;
    *out = (unsigned)v;
    return 1;
}

char *tool_read_all(const char *path, size_t *size)
{
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        tool_fail("%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
        if (n == cap) {
            char *nb = cap < ((size_t)1 << 31) ? realloc(buf, cap * 2 + 1) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int err = ferror(f);
    if (!is_stdin) fclose(f);
    if (!buf || err) {
        free(buf);
        tool_fail("%s: %s", is_stdin ? "standard input" : path, buf ? "read failed" : "too large to read (2 GiB limit)");
        return NULL;
    }
    buf[n] = 0;
    *size = n;
    return buf;
}
