/* What every vkformer command-line tool shares: exit codes, messages,
 * --version, number parsing and reading whole inputs. Public API only. */
#ifndef VKF_TOOL_H
#define VKF_TOOL_H

#include <stddef.h>
#include <stdio.h>

enum { TOOL_OK = 0, TOOL_FAIL = 1, TOOL_USAGE = 2 };

/* The tool's name for messages ("vkformer-tokenize"). */
extern const char *tool_name;

/* "name: message\n" on stderr; returns TOOL_FAIL. */
int tool_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* A usage error: the message, a hint to --help; returns TOOL_USAGE. */
int tool_usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void tool_print_version(void);
/* Parses a whole decimal number in [lo, hi] into *out; 0 on failure. */
int tool_parse_u32(const char *s, unsigned lo, unsigned hi, unsigned *out);
/* Reads all of a file ("-" is standard input), every byte kept. NULL with a
 * message on failure; the buffer is NUL-terminated past *size. */
char *tool_read_all(const char *path, size_t *size);

#endif
