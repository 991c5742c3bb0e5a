/* Shared by the suites: contexts with validation on and messages captured,
 * float64 comparison helpers, a deterministic RNG. */
#ifndef VKF_TEST_COMMON_H
#define VKF_TEST_COMMON_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "ops/ops.h"

/* A context on the default device with validation (and synchronization
 * validation) required and the pipeline cache off. caps: VKF_CAPS syntax or NULL. */
vkf_context *tctx_create(const char *caps);
vkf_context *tctx_create_desc(vkf_context_desc desc);
/* Destroys and asserts that the validation layer reported nothing. */
void tctx_destroy(vkf_context *ctx);
static inline vk_device *tctx_dev(vkf_context *ctx) { return ctx->dev; }

/* Messages captured from every context's logger. */
uint32_t tlog_validation_messages(void);
bool tlog_contains(const char *needle);
void tlog_reset(void);

/* Capabilities variants from VKF_TEST_CAPS (set by ctest for the clamped runs). */
const char *tcaps(void);

/* Normalised mean squared error: sum (g - r)^2 / max(sum r^2, n * 1e-4). */
/* The activations in float64 (HF's definitions). */
double tref_act(op_act act, double x);

double nmse_f32(const float *got, const double *ref, size_t n);
double max_abs_diff(const float *got, const double *ref, size_t n);
/* The same against a float32 reference (HF's outputs as saved). */
double max_abs_diff_f32(const float *got, const float *ref, size_t n);

uint64_t trand_u64(uint64_t *state);
float trand_uniform(uint64_t *state, float lo, float hi);
void trand_fill(uint64_t *state, float *x, size_t n, float lo, float hi);

/* Device buffers from host floats in the given storage type, and back. */
vk_buf tbuf_upload(vk_device *dev, const float *x, size_t n, op_dtype t);
vk_buf tbuf_alloc(vk_device *dev, size_t n, op_dtype t);
void tbuf_download(vk_device *dev, const vk_buf *b, float *x, size_t n, op_dtype t);
/* An int32 device buffer (token ids, lengths, positions). */
vk_buf tbuf_upload_i32(vk_device *dev, const int32_t *x, size_t n);
/* Uploads, runs and frees an op list; downloads y. */
void trun(vkf_context *ctx, op_list *l);
/* Rounds host values through the storage type (what the device really sees). */
void tround(float *x, size_t n, op_dtype t);

/* A command-line tool run through the shell: `cmd args`, standard input from
 * in[0, in_len) (NULL: /dev/null). A crash fails the test. The result is
 * static: valid until the next call. */
typedef struct tcli_result {
    int status; /* exit code */
    char out[65536];
    char err[8192];
} tcli_result;
tcli_result *tcli_run(const char *cmd, const char *args, const void *in, size_t in_len);
/* The same on a terminal (util-linux script: a pseudo-terminal for standard
 * input, output and error): what the tool shows a user typing the command.
 * Everything it wrote is in out (with the terminal's \r\n). */
tcli_result *tcli_run_tty(const char *cmd, const char *args);

/* The first `bytes` bytes of a file (malloc'd); a missing or short file fails the test. */
void *tread_file(const char *path, size_t bytes);
/* A model loaded with the given precision; failing to load fails the test. */
vkf_model *tload_model(vkf_context *ctx, const char *dir, vkf_precision p);

/* A fresh directory (/tmp/vkf-TAG-XXXXXX) with links to the space-separated
 * files of src (ttmpdir_remove it). */
void tlinked_dir(char *dir, size_t cap, const char *tag, const char *src, const char *files);
/* The same with src's config.json copied and its `key` set to `value` (JSON text). */
void twith_config(char *dir, size_t cap, const char *src, const char *files, const char *key, const char *value);
/* A text model in a fresh directory: links to weights_dir's config.json and
 * model.safetensors, and a WordPiece vocab.txt of n tokens: [PAD] [UNK] [CLS]
 * [SEP] [MASK], a..z, then w31, w32... (ttmpdir_remove it). */
void tvocab_model(char *dir, size_t cap, const char *weights_dir, uint32_t n);
/* The real all-MiniLM-L6-v2, fetched into models/ by scripts/fetch_models.sh.
 * tminilm(): whether it is there. Missing, it fails the test, unless
 * VKF_TEST_NO_MINILM=1 says it was left out on purpose (the device bundle of
 * scripts/device-check.sh leaves the 91 MB behind): then it says so on
 * stderr and returns false, and the caller skips what needs it. */
#define TMINILM VKF_REPO_DIR "/models/all-MiniLM-L6-v2"
bool tminilm(void);
/* The real all-mpnet-base-v2 (438 MB), the same way (VKF_TEST_NO_MINILM=1 leaves both out). */
#define TMPNET VKF_REPO_DIR "/models/all-mpnet-base-v2"
bool tmpnet(void);
/* Tokenizer references: a base64 text (its raw bytes, NUL-terminated past n),
 * ids against a JSON array (the number of differing positions, the length
 * counting), the two logged side by side, and whether bytes are valid UTF-8. */
typedef struct ttext {
    char *b;
    size_t n;
} ttext;
ttext tb64(const char *s);
int tids_differ(const int32_t *got, uint32_t n, const struct cJSON *want);
void tlog_ids(const char *what, int idx, const int32_t *got, uint32_t n, const struct cJSON *want);
bool tvalid_utf8(const char *b, size_t n);
/* ids through vkf_decode_stream, the pieces concatenated (malloc'd, *len
 * bytes); *partial counts pieces that ended inside a character. */
char *tstream_decode(vkf_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, size_t *len, int *partial);
/* The hostile tokenizer corpus (tests/data/tokenizers/corpus.json) with the
 * references of refs_path: the texts decoded, freed by tcorpus_free. */
typedef struct tcorpus {
    struct cJSON *json, *refs;
    ttext *texts;
    int n;
} tcorpus;
void tcorpus_load(tcorpus *c, const char *refs_path);
void tcorpus_free(tcorpus *c);
/* A JSON file parsed (a missing or malformed file fails the test). */
struct cJSON *tread_json(const char *path);

/* Writes data[0, n) to dir/name (failing the test if it cannot). */
void twrite_file(const char *dir, const char *name, const void *data, size_t n);
/* vkf_tokenizer_load(dir) must fail with status s, no tokenizer, and a
 * message containing needle. */
void texpect_tokenizer_error(const char *dir, vkf_status s, const char *needle);

/* st_open(path) must fail with status want, no tensors, and a message
 * containing needle. */
void texpect_st_error(base_diag *d, const char *path, vkf_status want, const char *needle);

/* A fresh directory under /tmp (mkdtemp) into dir[size], and its removal. */
void ttmpdir_create(char *dir, size_t size, const char *tag);
void ttmpdir_remove(const char *dir);

#define TEST_PI 3.14159265358979323846
#define NMSE_F32 1e-10
#define NMSE_F16 1e-5

/* A model's text inputs (in) and HF's outputs (want, counts values each) again
 * as the text API runs them, packed without padding: equal within tol at the
 * real tokens; a family that packs must have run a packed graph when every
 * mask is right-padded. */
void tcheck_packed_run(vkf_model *m, const char *name, const vkf_tensor *in, uint32_t n_in, const vkf_tensor *out, float *const *want,
                       const uint64_t *counts, uint32_t n_out, double tol);

#endif
