/* What every vkformer command-line tool shares: exit codes, messages,
 * --version, number parsing, reading whole inputs and lists of texts, and
 * the options and model loading of the tools that run a model. Public API only. */
#ifndef VKF_TOOL_H
#define VKF_TOOL_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "vkformer.h"

#if defined(__GNUC__)
#define TOOL_PRINTF __attribute__((format(printf, 1, 2)))
#else
#define TOOL_PRINTF
#endif

enum { TOOL_OK = 0, TOOL_FAIL = 1, TOOL_USAGE = 2 };
#define TOOL_CONTINUE (-1)

/* The tool's name for messages ("vkformer-tokenize"). */
extern const char *tool_name;

/* "name: message\n" on stderr; returns TOOL_FAIL. */
int tool_fail(const char *fmt, ...) TOOL_PRINTF;
/* A usage error: the message, a hint to --help; returns TOOL_USAGE. */
int tool_usage_error(const char *fmt, ...) TOOL_PRINTF;
void tool_print_version(void);
/* Parses a whole decimal number in [lo, hi] into *out; 0 on failure. */
int tool_parse_u32(const char *s, unsigned lo, unsigned hi, unsigned *out);
/* Reads all of a file ("-" is standard input), every byte kept. NULL with a
 * message on failure; the buffer is NUL-terminated past *size. */
char *tool_read_all(const char *path, size_t *size);

/* The path of `name` among the bundled models and images: under
 * $VKF_MODEL_DIR when set, else share/vkformer/models beside an installed
 * tool's bin directory, else the models link in a build tree. 0 when none
 * exists there. */
int tool_bundled_path(const char *name, char *out, size_t size);

#define TOOL_DEFAULT_MODEL "vit-tiny-patch16-224"
#define TOOL_DEFAULT_IMAGE "images/000000039769.png"

/* ---- texts: arguments, one per line of a file, or standard input ---------- */

typedef struct tool_texts {
    const char **s;
    size_t *n;
    size_t count, cap;
    char *buffer;   /* the file's contents the texts point into */
} tool_texts;

int tool_texts_add(tool_texts *t, const char *s, size_t n);
/* Lines of path ("-": standard input), a trailing CR dropped, each
 * NUL-terminated; empty lines kept unless skip_empty. Returns an exit code. */
int tool_texts_from_file(tool_texts *t, const char *path, int skip_empty);
void tool_texts_free(tool_texts *t);

/* ---- what every model tool takes ------------------------------------------ */

typedef struct tool_model_opts {
    const char *model;
    vkf_context_desc cdesc;
    vkf_model_desc mdesc;
    int json, quiet;
} tool_model_opts;

#define TOOL_MODEL_LONGOPTS                                                                                          \
    {"model", required_argument, 0, 'm'}, {"device", required_argument, 0, 1000},                                    \
        {"precision", required_argument, 0, 1001}, {"json", no_argument, 0, 'j'}, {"quiet", no_argument, 0, 'q'},    \
        {"version", no_argument, 0, 'V'}, {"help", no_argument, 0, 'h'}
#define TOOL_MODEL_SHORTOPTS "m:jqVh"

/* Handles one of the common options: TOOL_CONTINUE when done, or an exit
 * code to return (0 after --help / --version, 2 on a bad value or an unknown
 * option). usage prints the tool's help. */
int tool_model_option(int c, const char *arg, tool_model_opts *o, void (*usage)(FILE *));
/* The common options' help lines. */
void tool_model_usage(FILE *f);
/* The "loading weights: N%" line on stderr for models over 64 MiB (a
 * vkf_progress_fn), and its end when loading fails halfway. */
void tool_show_progress(void *user, uint64_t done, uint64_t total);
void tool_progress_break(void);
/* Creates the context and loads the model, with a progress line on stderr
 * for big models (unless quiet or json). Returns an exit code. */
int tool_open_model(tool_model_opts *o, vkf_context **ctx, vkf_model **model);

#endif
