/* What every vkformer command-line tool shares: exit codes, messages, option
 * parsing, --version, number parsing, inputs (arguments, files, standard
 * input, read in batches), the one output convention, timing and progress
 * lines, and the options and model loading of the tools that run a model.
 * Public API only.
 *
 * The convention (README, "Tools"): results on standard output, everything
 * else (messages, warnings, progress, the timing line) on standard error.
 * --json prints a JSON array with one element per input, each element what
 * the HF pipeline returns for that input, one element per line, written as
 * each batch finishes; --jsonl prints the same elements one per line without
 * the array. A progress line appears only when standard error is a terminal;
 * -q silences progress and timing. */
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
/* getopt_long that reports an unknown option or a missing value itself, once,
 * and then returns '?'. */
int tool_getopt(int argc, char *const *argv, const char *shortopts, const struct option *longopts);
/* Parses a whole decimal number in [lo, hi] into *out; 0 on failure. */
int tool_parse_u32(const char *s, unsigned lo, unsigned hi, unsigned *out);
/* A finite float; 0 on failure. */
int tool_parse_float(const char *s, float *out);
/* Reads all of a file ("-" is standard input), every byte kept. NULL with a
 * message on failure; the buffer is NUL-terminated past *size. */
char *tool_read_all(const char *path, size_t *size);
/* Seconds on a monotonic clock. */
double tool_now(void);

/* The path of `name` among the bundled models and images: under
 * $VKF_MODEL_DIR when set, else share/vkformer/models beside an installed
 * tool's bin directory, else the models link in a build tree. 0 when none
 * exists there. */
int tool_bundled_path(const char *name, char *out, size_t size);

#define TOOL_DEFAULT_MODEL "vit-tiny-patch16-224"
#define TOOL_DEFAULT_IMAGE "images/000000039769.png"

/* ---- texts and where they came from ------------------------------------------- */

typedef struct tool_texts {
    char **s;        /* copies, NUL-terminated */
    size_t *n;       /* their lengths */
    size_t *where;   /* line number (file input) or argument number, from 1 */
    int from_file;
    size_t count, cap;
} tool_texts;

int tool_texts_add(tool_texts *t, const char *s, size_t n, size_t where);
void tool_texts_clear(tool_texts *t);
void tool_texts_free(tool_texts *t);
/* "line 35" or "text 3": how messages name text i. */
const char *tool_text_name(const tool_texts *t, size_t i, char *buf, size_t size);
/* Lines of path ("-": standard input), a trailing CR dropped; empty lines
 * kept unless skip_empty. For small inputs (labels); returns an exit code. */
int tool_texts_from_file(tool_texts *t, const char *path, int skip_empty);

/* The labels of a zero-shot tool: --labels "a,b,c" (comma-separated, spaces
 * around each dropped, as HF's pipeline parses a string of labels), or one
 * per line of --labels-file ("-": standard input); exactly one of arg and
 * file. An empty label, or none, is a usage error. Returns an exit code. */
int tool_labels(const char *arg, const char *file, tool_texts *labels);
/* Their help lines, with the template's default. */
void tool_labels_usage(FILE *f, const char *default_template);

/* Texts from the arguments, or one per line of a file or standard input,
 * read a batch at a time (a 100k-line file is never in memory at once). */
typedef struct tool_input {
    char *const *args;
    size_t n_args, next_arg;
    FILE *f;
    const char *path;   /* for messages ("standard input" for -) */
    size_t line;
    int skip_empty;
    char *buf;
    size_t cap;
} tool_input;

/* args when n_args > 0, else the lines of file ("-" or NULL: standard input). */
int tool_input_open(tool_input *in, char *const *args, size_t n_args, const char *file, int skip_empty);
/* Up to max texts into t (cleared first); t->count is 0 at the end. Returns an exit code. */
int tool_input_next(tool_input *in, tool_texts *t, size_t max);
void tool_input_close(tool_input *in);

/* ---- output ---------------------------------------------------------------------- */

typedef enum tool_format { TOOL_TEXT = 0, TOOL_JSON, TOOL_JSONL } tool_format;

typedef struct tool_output {
    tool_format format;
    size_t items;
} tool_output;

typedef struct cJSON cJSON;
/* One input's element (deleted here): a line of --jsonl, or of --json's array. */
void tool_emit(tool_output *o, cJSON *item);
/* Before text results: erases a progress line drawn on the same terminal. */
void tool_results_begin(void);
/* Closes --json's array (an empty one when nothing was emitted). */
void tool_emit_end(tool_output *o);

/* ---- timing and progress (standard error) ---------------------------------------- */

/* Whether a progress line may be drawn: stderr is a terminal and not quiet. */
int tool_progress_on(int quiet);
/* "\r<what>: N <unit>" on a terminal; tool_progress_break ends the line. */
void tool_progress_count(int quiet, const char *what, size_t n, const char *unit);
void tool_progress_break(void);
/* "loading weights: N%" for models over 64 MiB (a vkf_progress_fn). */
void tool_show_progress(void *user, uint64_t done, uint64_t total);

/* ---- what every model tool takes ------------------------------------------ */

typedef struct tool_model_opts {
    const char *model;
    const char *task;          /* HF task(s) the tool runs: checked before the weights load */
    vkf_context_desc cdesc;
    vkf_model_desc mdesc;
    tool_output out;
    int quiet;
    unsigned batch;            /* --batch-size (0: the tool's default) */
    double load_s;             /* context and model load */
} tool_model_opts;

#define TOOL_MODEL_LONGOPTS                                                                                          \
    {"model", required_argument, 0, 'm'}, {"device", required_argument, 0, 1000},                                    \
        {"precision", required_argument, 0, 1001}, {"json", no_argument, 0, 'j'}, {"jsonl", no_argument, 0, 1002},   \
        {"batch-size", required_argument, 0, 1003}, {"quiet", no_argument, 0, 'q'}, {"version", no_argument, 0, 'V'}, \
        {"help", no_argument, 0, 'h'}
#define TOOL_MODEL_SHORTOPTS "m:jqVh"

/* Handles one of the common options: TOOL_CONTINUE when done, or an exit
 * code to return (0 after --help / --version, 2 on a bad value or an unknown
 * option). usage prints the tool's help. */
int tool_model_option(int c, const char *arg, tool_model_opts *o, void (*usage)(FILE *));
/* The common options' help lines. */
void tool_model_usage(FILE *f);
/* Creates the context (messages through the tool, see tool_set_batch) and
 * loads the model (o->task checked first), with a progress line on a
 * terminal. Returns an exit code. */
int tool_open_model(tool_model_opts *o, vkf_context **ctx, vkf_model **model);
/* "NAME: DIR: type (task), N parameters, fp16 on DEVICE" on stderr unless quiet. */
void tool_model_line(const tool_model_opts *o, vkf_context *ctx, const vkf_model_info *info);
/* An audio file ("-": standard input) decoded at `rate` (vkf_audio_load).
 * Returns an exit code, with a message on failure. */
int tool_load_audio(const char *path, uint32_t rate, vkf_audio *out);
/* The texts of the library call in progress: its messages about "text N"
 * then name the input ("line 35"). NULL: none. */
void tool_set_batch(const tool_texts *t);
/* tool_fail with the context's last error, its "text N" renamed likewise. */
int tool_fail_lib(const vkf_context *ctx);
/* The one timing line: "NAME: load 85 ms, 6 texts in 120.3 ms (20.05 ms per
 * text)" unless quiet. */
void tool_timing(const tool_model_opts *o, double run_s, size_t n, const char *unit);

#endif
