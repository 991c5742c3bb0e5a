/* Files in: safetensors and PyTorch checkpoints (mmap, strict validation), JSON configs,
 * images (decode, PIL-exact resize, HF preprocessing), audio (decode, mono, resample). Depends only on base;
 * every error names the file and what is wrong with it. */
#ifndef VKF_IO_H
#define VKF_IO_H

#include "../base/base.h"

/* ---- safetensors ------------------------------------------------------------ */

typedef enum st_dtype {
    ST_F32 = 0,
    ST_F16,
    ST_BF16,
    ST_OTHER /* valid in the file (I64 position_ids, ...) but not loadable as weights */
} st_dtype;

#define ST_MAX_RANK 8

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    char dtype_name[16];
    uint32_t rank;
    uint64_t shape[ST_MAX_RANK];
    const uint8_t *data;
    uint64_t bytes;
    uint32_t file; /* index into the checkpoint's files */
} st_tensor;

typedef struct st_file {
    char *path;
    void *map;            /* mmap'd file */
    const void *borrowed; /* or bytes handed in (vkf_model_load_memory) */
    size_t size;
} st_file;

typedef struct st_checkpoint {
    st_file *files;
    uint32_t n_files;
    st_tensor *t; /* sorted by name */
    size_t n_t;
} st_checkpoint;

/* Opens dir/model.safetensors, or the shards listed in
 * dir/model.safetensors.index.json, else dir/pytorch_model.bin, or the
 * shards listed in dir/pytorch_model.bin.index.json; or `path` itself when
 * it is a file (a PyTorch checkpoint when its name ends in .bin). A folder
 * holding only other formats (TensorFlow, Flax, ONNX, GGUF) is refused
 * naming what it holds. */
vkf_status st_open(base_diag *d, const char *path, st_checkpoint *ck);
void st_close(st_checkpoint *ck);
/* A PyTorch checkpoint (torch.save's zip format), ck->files[file] already
 * mapped: its state dict's tensors appended to ck->t (unsorted), read in
 * place. Only stored zip entries, only the pickle globals a state dict uses
 * (dicts, tensors, storages, parameters), only row-major tensors inside
 * their storage; everything else is refused with the file and the reason. */
vkf_status io_torchbin_parse(base_diag *d, st_checkpoint *ck, uint32_t file);
const st_tensor *st_find(const st_checkpoint *ck, const char *name);
uint64_t st_numel(const st_tensor *t);

/* Converts elements [first, first + count) of a float tensor to float32 or,
 * with to_f16, to IEEE half. Fails with the tensor's name for other dtypes. */
vkf_status st_convert(base_diag *d, const st_tensor *t, uint64_t first, uint64_t count, bool to_f16, void *dst);

/* ---- model paths ------------------------------------------------------------- */

/* path itself, or, when nothing is there and it reads as a Hub id
 * ("org/name"), its snapshot in the local Hugging Face cache (refs/main's
 * revision). Fails only for a Hub-id-like path found in neither place. */
vkf_status io_model_path(base_diag *d, const char *path, char *out, size_t n);
/* For a directory without `wanted` (config.json): an error saying it is not a
 * model directory and listing the folders inside it that are. VKF_OK when dir
 * is not a directory (the caller's own error says more). */
vkf_status io_not_a_model(base_diag *d, const char *dir, const char *wanted);

/* ---- JSON --------------------------------------------------------------------- */

typedef struct cJSON cJSON;

/* Parses a JSON file; a syntax error reports the line and column. */
vkf_status io_json_load(base_diag *d, const char *path, cJSON **root);
void io_json_free(cJSON *root);

/* Typed getters with HF-style defaults: a missing key (or JSON null) gives
 * the default; a present key of the wrong type or out of range is an error
 * naming the file and the key. */
vkf_status io_json_u32(base_diag *d, const char *file, const cJSON *obj, const char *key, uint32_t dflt, uint32_t min,
                       uint32_t max, uint32_t *out);
vkf_status io_json_f64(base_diag *d, const char *file, const cJSON *obj, const char *key, double dflt, double *out);
vkf_status io_json_bool(base_diag *d, const char *file, const cJSON *obj, const char *key, bool dflt, bool *out);
/* A string value or dflt (not copied). */
vkf_status io_json_str(base_diag *d, const char *file, const cJSON *obj, const char *key, const char *dflt,
                       const char **out);
/* A token setting of tokenizer_config.json: a string, or an AddedToken
 * object's "content"; NULL when neither (not copied). */
const char *io_json_token(const cJSON *obj, const char *key);
/* A list of exactly n numbers (or a single number, repeated). */
vkf_status io_json_f32n(base_diag *d, const char *file, const cJSON *obj, const char *key, const float *dflt,
                        uint32_t n, float *out);

/* ---- .npy arrays ----------------------------------------------------------------- */

#define IO_NPY_MAX_RANK 8

typedef enum io_npy_dtype { IO_NPY_F32 = 0, IO_NPY_F16, IO_NPY_I32, IO_NPY_I64 } io_npy_dtype;

typedef struct io_npy {
    io_npy_dtype dtype;
    uint32_t rank;
    uint64_t shape[IO_NPY_MAX_RANK];
    uint64_t count;   /* elements */
    void *data;       /* count elements, little-endian, C order (malloc'd) */
} io_npy;

/* Reads a .npy file: little-endian <f4, <f2, <i4 or <i8 in C order. The
 * header must describe exactly the bytes that follow it; max_bytes (0: no
 * limit) bounds the data. Errors name the file and what is wrong. */
vkf_status io_npy_load(base_diag *d, const char *path, uint64_t max_bytes, io_npy *out);
void io_npy_free(io_npy *a);
/* Writes float32 data of the given shape (format 1.0, C order). */
vkf_status io_npy_save_f32(base_diag *d, const char *path, const float *data, uint32_t rank, const uint64_t *shape);
uint32_t io_npy_dtype_size(io_npy_dtype t);
const char *io_npy_dtype_name(io_npy_dtype t);

/* ---- images -------------------------------------------------------------------- */

#define IO_MAX_PIXELS_DEFAULT (100ull * 1000 * 1000)

typedef struct io_image {
    uint32_t w, h;
    uint8_t *rgb; /* w * h * 3, row-major */
} io_image;

/* Decodes JPEG (libjpeg-turbo) and PNG (libpng) as PIL does, bit for bit, and
 * complete uncompressed BMP and GIF (first frame) files, into 8-bit RGB
 * (grayscale replicated, alpha dropped, as PIL's convert("RGB")), applying a
 * JPEG's EXIF orientation as HF pipelines do (ImageOps.exif_transpose).
 * Images over max_pixels (checked before decoding), empty, truncated (as PIL
 * refuses them) and undecodable ones are refused with a message naming the file. */
vkf_status io_image_load(base_diag *d, const char *path, uint64_t max_pixels, io_image *out);
vkf_status io_image_decode(base_diag *d, const void *data, size_t size, const char *name, uint64_t max_pixels,
                           io_image *out);
void io_image_free(io_image *img);

typedef enum io_resample { IO_NEAREST = 0, IO_LANCZOS = 1, IO_BILINEAR = 2, IO_BICUBIC = 3, IO_BOX = 4, IO_HAMMING = 5 } io_resample;

/* PIL's Image.resize for 8-bit RGB, bit for bit: separable passes
 * (horizontal first), filter support widened by the downscale factor
 * (antialiasing), 22-bit fixed-point accumulation, clipping after each pass. */
vkf_status io_image_resize(base_diag *d, const io_image *in, uint32_t w, uint32_t h, io_resample filter, io_image *out);

/* HF image processor settings (preprocessor_config.json). */
typedef struct io_preproc {
    bool do_resize;
    uint32_t height, width;     /* resize target, or 0 with shortest_edge */
    uint32_t shortest_edge;
    io_resample resample;
    bool do_center_crop;
    uint32_t crop_h, crop_w;
    bool do_rescale;
    double rescale_factor;
    bool do_normalize;
    float mean[3], std[3];
} io_preproc;

/* Reads dir/preprocessor_config.json when present; `defaults` fills what it omits. */
vkf_status io_preproc_load(base_diag *d, const char *dir, const io_preproc *defaults, io_preproc *out);

/* Whether preprocessing gives the model's out_h x out_w input at all (load
 * time: a crop or resize of another size, shortest_edge without a crop, a
 * resize target over the pixel bound are config errors). */
vkf_status io_preproc_check(base_diag *d, const char *file, const io_preproc *pp, uint32_t out_h, uint32_t out_w);

/* The model input for one image: resize, center crop, rescale, normalise
 * exactly as HF does; writes 3 * out_h * out_w floats, channel-major. */
vkf_status io_preprocess(base_diag *d, const io_image *img, const io_preproc *pp, uint32_t out_h, uint32_t out_w,
                         float *chw);

/* ---- audio ---------------------------------------------------------------------- */

#define IO_AUDIO_MAX_SECONDS_DEFAULT (4.0 * 3600)

typedef struct io_audio {
    float *samples; /* frames mono float32 samples (malloc'd): [-1, 1) from integer formats */
    uint64_t frames;
    uint32_t rate; /* Hz */
} io_audio;

/* Decodes WAV (RIFF, RIFX, WAVE_FORMAT_EXTENSIBLE, RF64), FLAC and Ogg
 * (Vorbis, Opus, FLAC) through libsndfile as float, averages the channels to
 * mono and, when rate is not 0 and differs from the file's, resamples to it
 * with libsoxr (SOXR_VHQ). Before anything is allocated: the sample rate must
 * be within [1000, 768000] Hz, the channels within [1, 64], the length known,
 * non-zero and at most max_seconds (0: IO_AUDIO_MAX_SECONDS_DEFAULT). A file
 * holding fewer frames than its header says (a WAV data chunk cut short, a
 * FLAC stream ending early), non-finite samples and every other format are
 * refused with a message naming the file. The mixdown is the mean (librosa's
 * and `datasets`' mono), not ffmpeg's (L + R) / sqrt(2): see audio.c. */
vkf_status io_audio_load(base_diag *d, const char *path, uint32_t rate, double max_seconds, io_audio *out);
vkf_status io_audio_decode(base_diag *d, const void *data, size_t size, const char *name, uint32_t rate, double max_seconds,
                           io_audio *out);
/* Mono float32 PCM from `from` Hz to `to` Hz (libsoxr, SOXR_VHQ; a copy when
 * they are equal); both rates within [1000, 768000] Hz. */
vkf_status io_audio_resample(base_diag *d, const float *in, uint64_t frames, uint32_t from, uint32_t to, io_audio *out);
void io_audio_free(io_audio *a);

#endif
