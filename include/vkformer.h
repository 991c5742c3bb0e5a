/*
 * vkformer: Hugging Face transformer models on any Vulkan GPU.
 *
 * Usage, step by step:
 *
 *   1. Create a context. A zero-initialised desc picks the best device
 *      (discrete, then integrated, virtual, CPU) and sensible defaults:
 *
 *          vkf_context *ctx;
 *          if (vkf_context_create(&(vkf_context_desc){0}, &ctx) != VKF_OK) {
 *              fprintf(stderr, "%s\n", vkf_last_error(NULL));
 *              return 1;
 *          }
 *
 *   2. Every call returns a vkf_status. On failure, vkf_last_error(ctx) holds a
 *      message naming the file, tensor or Vulkan call and what was wrong. Calls
 *      that have no context yet (vkf_context_create, vkf_list_devices) leave
 *      their message in vkf_last_error(NULL), which is per thread.
 *
 *   3. Destroy what you created: vkf_context_destroy(ctx).
 *
 * Environment variables (a desc field, where set, wins):
 *   VKF_DEVICE=N|name       device index, or a substring of its name
 *   VKF_VALIDATION=1        enable the Khronos validation layer, with
 *                           synchronization validation
 *   VKF_CAPS="k=v,..."      clamp what the library believes about the device,
 *                           e.g. "subgroup=64,shared=16384,fp16=0,max_range=134217728"
 *   VKF_PIPELINE_CACHE=PATH|off   pipeline cache file (default
 *                           $XDG_CACHE_HOME/vkformer/pipelines-<vendor>-<device>.bin)
 *   VKF_LOG=error|warn|info|debug   log level of the default stderr logger
 *
 * Threading: contexts are independent (no global state), so two contexts on
 * two GPUs work side by side. One context may be shared between threads; the
 * library serialises its queue submissions internally. A model and a
 * tokenizer may be used from several threads at once (each call has its own
 * buffers). A session may not: it holds the sequences' cache, so it is for
 * one call at a time, and a second call while one runs (another thread, or
 * an on_token callback calling back in) fails with an error instead of mixing
 * their tokens; give each thread its own session. Nothing may be destroyed
 * (a context, a model, a tokenizer, a session) while another thread uses it.
 */
#ifndef VKFORMER_H
#define VKFORMER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version this header describes; vkf_version() says which library
 * runs. The shared library's SONAME changes with every 0.x minor version,
 * as public structs may still change between them. */
#define VKF_VERSION_MAJOR 0
#define VKF_VERSION_MINOR 3
#define VKF_VERSION_PATCH 0
#define VKF_VERSION_NUMBER (VKF_VERSION_MAJOR * 10000 + VKF_VERSION_MINOR * 100 + VKF_VERSION_PATCH)

/* Marks the exported API. The library is built with hidden visibility, so
 * nothing else is exported from libvkformer.so; define VKF_STATIC when linking
 * the static library on Windows. */
#if defined(_WIN32) && !defined(VKF_STATIC)
#ifdef VKF_BUILD
#define VKF_API __declspec(dllexport)
#else
#define VKF_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define VKF_API __attribute__((visibility("default")))
#else
#define VKF_API
#endif

/* The library's version as VKF_VERSION_NUMBER encodes it (0.3.0: 300), and
 * as a string ("0.2.0"): compare with the header's to catch a mismatch. */
VKF_API uint32_t vkf_version(void);
VKF_API const char *vkf_version_string(void);

typedef enum vkf_status {
    VKF_OK = 0,
    VKF_ERROR_INVALID_ARGUMENT, /* a NULL pointer, an out-of-range value */
    VKF_ERROR_NO_VULKAN,        /* no Vulkan loader, or no driver (ICD) */
    VKF_ERROR_NO_DEVICE,        /* no device, or the one asked for does not exist */
    VKF_ERROR_UNSUPPORTED,      /* the device or build lacks something needed */
    VKF_ERROR_OUT_OF_MEMORY,    /* device memory (or its budget) or host memory exhausted */
    VKF_ERROR_VULKAN,           /* a Vulkan call failed */
    VKF_ERROR_DEVICE_LOST,      /* the GPU was lost (driver reset, timeout) */
    VKF_ERROR_IO,               /* a file is missing or unreadable */
    VKF_ERROR_FORMAT,           /* a file's content is malformed */
    VKF_ERROR_SHAPE,            /* tensor shapes or dtypes do not fit */
    VKF_ERROR_NOT_FOUND,        /* a named thing (tensor, shader, label) is missing */
    VKF_STATUS_COUNT
} vkf_status;

/* A short fixed description of a status code ("out of memory"). */
VKF_API const char *vkf_status_string(vkf_status status);

typedef struct vkf_context vkf_context;

typedef enum vkf_log_level {
    VKF_LOG_ERROR = 0,
    VKF_LOG_WARN,
    VKF_LOG_INFO,
    VKF_LOG_DEBUG
} vkf_log_level;

typedef void (*vkf_log_fn)(void *user, vkf_log_level level, const char *message);

typedef enum vkf_toggle {
    VKF_DEFAULT = 0, /* the environment variable decides, else the built-in default */
    VKF_ON,
    VKF_OFF
} vkf_toggle;

typedef struct vkf_context_desc {
    /* With use_device_index set, the device at device_index as listed by
     * vkf_list_devices; unset: VKF_DEVICE, else the best device. */
    int use_device_index;
    uint32_t device_index;
    vkf_toggle validation;         /* Khronos validation + synchronization validation */
    const char *caps_override;     /* same syntax as VKF_CAPS; NULL: use VKF_CAPS */
    vkf_toggle pipeline_cache;     /* persist the VkPipelineCache to disk (default on) */
    const char *pipeline_cache_path; /* NULL: VKF_PIPELINE_CACHE, else the XDG default */
    uint64_t memory_budget;        /* cap on device memory in bytes; 0: the heap size */
    vkf_log_fn log_fn;             /* NULL: stderr */
    void *log_user;
    int log_level;                 /* 0: VKF_LOG or warn; else vkf_log_level + 1 */
} vkf_context_desc;

VKF_API vkf_status vkf_context_create(const vkf_context_desc *desc, vkf_context **out);
VKF_API void vkf_context_destroy(vkf_context *ctx);

/* The last error message of this thread's calls on ctx (and its models);
 * with ctx NULL, of this thread's context-less calls. Each thread has its own
 * message, so threads sharing a model read their own errors. Never NULL; ""
 * when there was none. */
VKF_API const char *vkf_last_error(const vkf_context *ctx);

typedef enum vkf_device_type {
    VKF_DEVICE_OTHER = 0,
    VKF_DEVICE_INTEGRATED,
    VKF_DEVICE_DISCRETE,
    VKF_DEVICE_VIRTUAL,
    VKF_DEVICE_CPU
} vkf_device_type;

typedef struct vkf_device_info {
    uint32_t index;
    char name[256];
    vkf_device_type type;
    uint32_t vendor_id, device_id;
    char driver[256];              /* driver name and version as the driver reports them */
    uint32_t api_version;          /* VK_MAKE_API_VERSION encoding */
    uint32_t subgroup_size;
    uint32_t shared_memory;        /* bytes per workgroup */
    uint64_t max_storage_buffer_range;
    uint64_t device_local_bytes;   /* size of the largest device-local heap */
    int fp16;                      /* fp16 arithmetic in shaders */
    int storage16;                 /* 16-bit storage buffers */
    char caps_line[1024];          /* every capability on one line */
} vkf_device_info;

/* Lists the Vulkan devices. Fills up to `capacity` entries of `infos` (which may
 * be NULL with capacity 0) and sets *count to the number of devices. The desc's
 * caps_override applies; its device_index is ignored. */
VKF_API vkf_status vkf_list_devices(const vkf_context_desc *desc, vkf_device_info *infos,
                            uint32_t capacity, uint32_t *count);

/* Every device with every capability as a JSON array. Free with vkf_free. */
VKF_API vkf_status vkf_list_devices_json(const vkf_context_desc *desc, char **json);

/* The device the context runs on, its capabilities as the library believes them. */
VKF_API vkf_status vkf_context_device(const vkf_context *ctx, vkf_device_info *info);

typedef struct vkf_memory_stats {
    uint64_t device_bytes_in_use;   /* bytes handed out to buffers now */
    uint64_t device_bytes_peak;     /* the most ever in use at once */
    uint64_t device_bytes_reserved; /* VkDeviceMemory held in blocks */
    uint32_t allocations;           /* live sub-allocations */
    uint32_t vk_allocations;        /* live VkDeviceMemory objects */
} vkf_memory_stats;

VKF_API void vkf_context_memory_stats(const vkf_context *ctx, vkf_memory_stats *stats);

/* Validation messages received since the context was created (0 when the
 * validation layer is off). */
VKF_API void vkf_context_validation_counts(const vkf_context *ctx, uint32_t *errors, uint32_t *warnings);

/* Writes the pipeline cache now (it is also written at destroy when it changed). */
VKF_API vkf_status vkf_context_save_pipeline_cache(vkf_context *ctx);

/* ---- models ----------------------------------------------------------------
 *
 *   vkf_model *m;
 *   vkf_model_load(ctx, "models/vit-tiny-patch16-224", &(vkf_model_desc){0}, &m);
 *   vkf_class_score top[5];
 *   vkf_classify_file(m, "cat.jpg", top, 5);
 *   printf("%s %.3f\n", top[0].label, top[0].prob);
 *   vkf_model_destroy(m);
 *
 * A model directory is a Hugging Face checkpoint as saved: config.json,
 * model.safetensors (or shards with model.safetensors.index.json), else
 * PyTorch's pytorch_model.bin (or shards with pytorch_model.bin.index.json),
 * and, for image models, preprocessor_config.json. No conversion step. A path that
 * does not exist but reads as a Hub id ("sentence-transformers/all-MiniLM-L6-v2")
 * is looked up in the local Hugging Face cache, as transformers does offline:
 * $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub; models--ORG--NAME/snapshots/<the revision refs/main
 * names>. Nothing is downloaded. */

typedef struct vkf_model vkf_model;
typedef struct vkf_tokenizer vkf_tokenizer; /* see "tokenizers" below */

typedef enum vkf_precision {
    VKF_PRECISION_DEFAULT = 0, /* fp16 storage where the device has 16-bit storage, else fp32 */
    VKF_FP32,
    VKF_FP16                   /* fp16 storage, fp32 arithmetic */
} vkf_precision;

/* Loading progress: bytes of weights uploaded so far out of total. */
typedef void (*vkf_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct vkf_model_desc {
    vkf_precision precision;
    vkf_progress_fn progress;
    void *progress_user;
    uint32_t max_in_flight;   /* inferences in flight at once per shape (default 2) */
    uint32_t max_variants;    /* recorded batch-size variants kept (default 4) */
    int profile;              /* per-node GPU timestamps (also VKF_PROFILE=1) */
    /* NULL: any. Else the HF task name(s) the caller will run, comma-separated
     * ("fill-mask", "text-classification,image-classification"): a checkpoint
     * that can do none of them fails the load before any weight is read.
     * "feature-extraction" accepts every model (hidden states). */
    const char *task;
} vkf_model_desc;

VKF_API vkf_status vkf_model_load(vkf_context *ctx, const char *dir, const vkf_model_desc *desc, vkf_model **out);
VKF_API void vkf_model_destroy(vkf_model *model);

/* One file of a model directory handed in from memory: its name as in the
 * Hugging Face directory ("config.json", "model.safetensors" or
 * "pytorch_model.bin", "preprocessor_config.json", "tokenizer.json", shards
 * and their index...)
 * and its bytes. */
typedef struct vkf_memory_file {
    const char *name;
    const void *data;
    size_t size;
} vkf_memory_file;

/* Loads a model from files in memory instead of a directory (e.g. an Android
 * app's assets, read with AAsset_getBuffer), with the same checks and results
 * as vkf_model_load. The bytes are only read during the call: the caller may
 * free them when it returns. Error messages name the files "(memory)/NAME". */
VKF_API vkf_status vkf_model_load_memory(vkf_context *ctx, const vkf_memory_file *files, uint32_t n_files,
                                         const vkf_model_desc *desc, vkf_model **out);

/* One input or output of a model: its HF name, element type and shape, with
 * 0 for the sizes a run chooses (the batch; the tokens of a text). */
typedef struct vkf_tensor_info {
    char name[32];
    int dtype;                /* a vkf_dtype: what vkf_model_run takes (inputs may also be
                                 int64 where this says int32) or gives (float32) */
    uint32_t rank;
    uint32_t shape[4];
} vkf_tensor_info;

typedef struct vkf_model_info {
    const char *type;         /* HF model_type as config.json says ("vit", "deit") */
    const char *family;       /* the implementation it runs on ("vit") */
    const char *task;         /* HF pipeline name: "image-classification", "feature-extraction", ... */
    vkf_precision precision;  /* VKF_FP32 or VKF_FP16 as loaded */
    uint32_t image_height, image_width, channels; /* image models: the model input */
    uint32_t num_labels;      /* 0 without a classification head */
    uint32_t hidden_size, num_layers, seq_len;
    uint32_t vocab_size;      /* text models: token ids below this */
    uint32_t max_positions;   /* text models: the most tokens a text may have */
    uint64_t parameters;
    uint64_t weight_bytes;    /* device memory the weights take */
    uint32_t n_inputs, n_outputs;
    vkf_tensor_info inputs[8], outputs[8];
    uint32_t embedding_size;  /* floats per vkf_embed / vkf_embed_image_files vector
                                 (hidden_size for encoders, projection_dim for CLIP) */
    uint32_t sampling_rate;   /* audio models: the rate their input is at (Hz); else 0 */
    uint32_t frame_samples;   /* audio models: samples per output frame (inputs_to_logits_ratio) */
} vkf_model_info;

VKF_API vkf_status vkf_model_get_info(const vkf_model *model, vkf_model_info *info);

/* Records the command buffer for a batch size (and, for text models, a
 * sequence length: its bucket) now (pipelines, memory plan, descriptor sets)
 * instead of at its first run. seq 0: image models, or the model's maximum. */
VKF_API vkf_status vkf_model_prepare(vkf_model *model, uint32_t batch, uint32_t seq);
/* The label of a class index, or NULL when out of range. */
VKF_API const char *vkf_model_label(const vkf_model *model, uint32_t index);

typedef struct vkf_class_score {
    uint32_t index;
    const char *label;   /* owned by the model */
    float prob;          /* the pipeline's score: softmax over all classes, or sigmoid, or the logit (see vkf_classify_texts) */
    float logit;
} vkf_class_score;

/* Decodes, preprocesses as the model's preprocessor_config.json says, and
 * classifies; `top` receives k scores, best first. */
VKF_API vkf_status vkf_classify_file(vkf_model *model, const char *path, vkf_class_score *top, uint32_t k);
/* n images in batched inferences (up to 32 per inference); top holds n * k scores. */
VKF_API vkf_status vkf_classify_files(vkf_model *model, const char *const *paths, uint32_t n, vkf_class_score *top, uint32_t k);
/* Scores from logits (one image). */
VKF_API vkf_status vkf_top_k(const vkf_model *model, const float *logits, vkf_class_score *top, uint32_t k);

/* Already-decoded pixels, as a camera frame or a bitmap holds them: 8 bits
 * per channel, rows `stride` bytes apart (0: width * bytes per pixel). Alpha
 * is dropped, as PIL's convert("RGB") drops it. */
typedef enum vkf_pixel_format {
    VKF_PIXELS_RGB8 = 0,
    VKF_PIXELS_RGBA8,
    VKF_PIXELS_BGRA8  /* Android's ARGB_8888 bitmaps on little-endian, Windows DIBs */
} vkf_pixel_format;

typedef struct vkf_image {
    const void *data;
    uint32_t width, height;
    size_t stride;
    vkf_pixel_format format;
} vkf_image;

/* Preprocesses each image as the model's preprocessor_config.json says (the
 * same resize and normalisation as for files) and classifies them in batched
 * inferences; `top` receives n * k scores, best first. */
VKF_API vkf_status vkf_classify_images(vkf_model *model, const vkf_image *images, uint32_t n, vkf_class_score *top,
                                       uint32_t k);
/* The preprocessed model input of one decoded image, or of one encoded image
 * file's bytes in memory (JPEG, PNG, BMP, GIF): channels * height * width floats. */
VKF_API vkf_status vkf_image_preprocess(vkf_model *model, const vkf_image *image, float *pixels);
VKF_API vkf_status vkf_image_preprocess_memory(vkf_model *model, const void *data, size_t size, float *pixels);

/* The preprocessed model input of one image: channels * height * width floats. */
VKF_API vkf_status vkf_image_preprocess_file(vkf_model *model, const char *path, float *pixels);

typedef enum vkf_dtype {
    VKF_F32 = 0,  /* float32 (the zero default) */
    VKF_F16,
    VKF_I32,
    VKF_I64
} vkf_dtype;

/* Tensor level: named inputs in, named outputs out, row-major. ViT: input
 * "pixel_values" [N, C, H, W] float32; outputs "logits" [N, labels], "pooled"
 * [N, hidden], "last_hidden_state" [N, seq, hidden], float32. The caller sets
 * each output's name and data (with room for the shape); shape and dtype are
 * filled in. */
typedef struct vkf_tensor {
    const char *name;
    uint32_t rank;
    uint32_t shape[4];
    void *data;
    uint64_t capacity;   /* outputs: bytes available at data */
    vkf_dtype dtype;     /* inputs: the element type of data; outputs: filled in */
} vkf_tensor;

VKF_API vkf_status vkf_model_run(vkf_model *model, const vkf_tensor *inputs, uint32_t n_inputs, vkf_tensor *outputs,
                         uint32_t n_outputs);

/* ---- text tasks ----------------------------------------------------------------
 *
 * For text models (BERT, DistilBERT, RoBERTa, MiniLM / sentence-transformers
 * folders) loaded with vkf_model_load. The directory's tokenizer is loaded
 * with the model; texts are tokenized, truncated to the model's positions
 * (with a warning, as HF pipelines do with truncation=True) and batched
 * internally, up to 32 texts per inference. Warnings and errors about one
 * text begin "text N" (N: its 0-based index in the call's array), so a caller
 * can name the input it came from. */

/* The model's tokenizer (owned by the model), or NULL when the directory has none. */
VKF_API const vkf_tokenizer *vkf_model_tokenizer(const vkf_model *model);

/* HF text-classification: k best labels per text, scored as HF's pipeline
 * scores them: a softmax over the labels; a sigmoid per label when
 * config.json's problem_type is multi_label_classification or the model has
 * one label (cross-encoders, STS heads); the raw logit when problem_type is
 * regression. pairs may be NULL, or a second text per text. top holds n * k scores. */
VKF_API vkf_status vkf_classify_texts(vkf_model *model, const char *const *texts, const char *const *pairs, uint32_t n,
                              vkf_class_score *top, uint32_t k);

typedef enum vkf_pooling {
    VKF_POOL_DEFAULT = 0, /* what the folder's 1_Pooling/config.json says, else mean */
    VKF_POOL_MEAN,        /* mean over the tokens the attention mask keeps */
    VKF_POOL_CLS,         /* the first token */
    VKF_POOL_MAX,         /* per feature, the maximum over the kept tokens */
    VKF_POOL_MEAN_SQRT    /* sum / sqrt(tokens) */
} vkf_pooling;

typedef struct vkf_embed_options {
    vkf_pooling pooling;
    vkf_toggle normalize;   /* L2-normalise; VKF_DEFAULT: when the folder has a Normalize module */
    uint32_t max_tokens;    /* 0: sentence_bert_config.json's max_seq_length, else the model's maximum */
} vkf_embed_options;

/* Sentence embeddings (sentence-transformers semantics): out receives n *
 * hidden_size floats (vkf_model_info.hidden_size). opt may be NULL. */
VKF_API vkf_status vkf_embed(vkf_model *model, const char *const *texts, uint32_t n, const vkf_embed_options *opt, float *out);

typedef struct vkf_fill_mask_result {
    uint32_t mask;          /* which mask token of the text (0 for the first) */
    int32_t token;          /* the predicted token id */
    char token_str[64];     /* its text (HF tokenizer.decode([token])) */
    float score;            /* softmax over the vocabulary */
} vkf_fill_mask_result;

/* HF fill-mask: the k best tokens for every mask token of text (k per mask,
 * best first). *count receives masks * k; capacity is the room in out. A text
 * without a mask token is an error naming the mask token. */
VKF_API vkf_status vkf_fill_mask(vkf_model *model, const char *text, uint32_t k, vkf_fill_mask_result *out, uint32_t capacity,
                         uint32_t *count);

/* ---- zero-shot text classification (NLI models) --------------------------------
 *
 * HF's zero-shot-classification pipeline: a sequence classifier trained on NLI
 * (BERT, RoBERTa, DistilBERT ...ForSequenceClassification on MNLI) scores
 * every label as the hypothesis of the text: (text, template with the label)
 * pairs, all in one batched run. The entailment logit is the label whose
 * id2label name starts with "entail" in any case (HF's entailment_id; with
 * none, a warning and the last logit, as HF does); the contradiction logit is
 * the first, or the last when entailment is the first. */

/* HF's default hypothesis template for texts. */
#define VKF_ZERO_SHOT_TEXT_TEMPLATE "This example is {}."

/* out receives n_labels scores, best first (index: the label's place in
 * labels, label points into labels, logit: the entailment logit). Single-label
 * (multi_label 0): a softmax of the entailment logits over the labels;
 * multi_label, or a single label: per label, the softmax of [contradiction,
 * entailment], its entailment share. template_ may be NULL
 * (VKF_ZERO_SHOT_TEXT_TEMPLATE); a template without one "{}" is an error, as
 * in HF. Too long pairs lose tokens from the text only (HF's only_first), with
 * a warning; a hypothesis too long by itself is an error. */
VKF_API vkf_status vkf_zero_shot_text(vkf_model *model, const char *text, const char *const *labels, uint32_t n_labels,
                                      const char *template_, int multi_label, vkf_class_score *out);

/* ---- reranking (cross-encoders) --------------------------------------------------
 *
 * sentence-transformers' CrossEncoder.predict and .rank on a sequence
 * classifier: each (query, document) pair in batched runs, truncated
 * longest-first to the model's positions. Scores go through the activation
 * config.json names (sentence_transformers.activation_fn: Sigmoid, Identity,
 * Softmax, Tanh), else CrossEncoder's default: a sigmoid for one-logit models,
 * the raw logits for more. */

/* scores: n * num_labels floats (n for a one-logit cross-encoder), document by document. */
VKF_API vkf_status vkf_rerank(vkf_model *model, const char *query, const char *const *docs, uint32_t n, float *scores);

typedef struct vkf_rank_result {
    uint32_t corpus_id;  /* the document's index in docs */
    float score;
} vkf_rank_result;

/* CrossEncoder.rank: the top_k (0: all n) documents by score, best first
 * (equal scores in document order); out has room for min(top_k, n). One-logit
 * models only, as in sentence-transformers. */
VKF_API vkf_status vkf_rank(vkf_model *model, const char *query, const char *const *docs, uint32_t n, uint32_t top_k,
                            vkf_rank_result *out);

/* ---- zero-shot image classification (CLIP) ------------------------------------
 *
 * A CLIPModel folder (both towers) classifies an image against labels it was
 * never trained on, as HF's zero-shot-image-classification pipeline does:
 * each label goes into a hypothesis template, the texts and the image are
 * embedded, and the softmax over exp(logit_scale) * image . text gives the
 * probabilities. To score many images against the same labels, embed the
 * labels once (vkf_embed) and each image (vkf_embed_image_files), then call
 * vkf_zero_shot_scores. vkf_model_info.embedding_size is the vectors' length. */

/* HF's default hypothesis template. */
#define VKF_ZERO_SHOT_TEMPLATE "This is a photo of {}."

/* One image against n labels; out receives n scores, best first (label
 * points into labels; logit is exp(logit_scale) * cosine). template_ may be
 * NULL (VKF_ZERO_SHOT_TEMPLATE); its "{}" is replaced by each label. Texts
 * longer than the model's context are truncated as HF does (with a warning). */
VKF_API vkf_status vkf_zero_shot(vkf_model *model, const char *image_path, const char *const *labels, uint32_t n_labels,
                         const char *template_, vkf_class_score *out);
/* Image embeddings: n * embedding_size floats (L2-normalised for CLIPModel;
 * what the checkpoint's class returns for a single tower). */
VKF_API vkf_status vkf_embed_image_files(vkf_model *model, const char *const *paths, uint32_t n, float *out);
/* probs[i * n_texts + j]: image i's softmax over the texts (n_images * n_texts floats). */
VKF_API vkf_status vkf_zero_shot_scores(const vkf_model *model, const float *image_embeds, uint32_t n_images, const float *text_embeds,
                                uint32_t n_texts, float *probs);

/* ---- audio (wav2vec 2.0, HuBERT) ---------------------------------------------------
 *
 *   vkf_audio a;
 *   vkf_model_info info;
 *   vkf_model_get_info(model, &info);
 *   if (vkf_audio_load("speech.flac", info.sampling_rate, &a) == VKF_OK) {
 *       vkf_transcription t;
 *       if (vkf_transcribe_audio(model, a.samples, a.frames, a.rate, &(vkf_transcribe_desc){.chunk_length_s = 30}, &t) == VKF_OK)
 *           puts(t.text);
 *       vkf_transcription_free(&t);
 *       vkf_audio_free(&a);
 *   }
 */

/* Mono float32 samples at `rate` Hz. */
typedef struct vkf_audio {
    float *samples;
    uint64_t frames;
    uint32_t rate;
} vkf_audio;

/* Decodes WAV (PCM, float, RF64), FLAC or Ogg (Vorbis, Opus, FLAC) with
 * libsndfile, averages the channels to mono (as HF's examples and `datasets`
 * do) and, when rate is not 0 and differs from the file's, resamples with
 * libsoxr at very high quality. HF's pipeline reads files with ffmpeg instead:
 * audio already at the model's rate is bit-identical; resampled audio differs
 * from soxr's by under 1e-6 and from ffmpeg's by the two resamplers' own
 * difference (see README, "Speech"). Files must be 1,000 to 768,000 Hz, 1 to 64
 * channels and at most 4 hours long; a truncated or malformed file is refused. */
VKF_API vkf_status vkf_audio_load(const char *path, uint32_t rate, vkf_audio *out);
/* The same from an encoded file in memory (name is for messages; may be NULL). */
VKF_API vkf_status vkf_audio_load_memory(const void *data, size_t size, const char *name, uint32_t rate, vkf_audio *out);
VKF_API void vkf_audio_free(vkf_audio *audio);

/* HF's automatic-speech-recognition pipeline with a CTC head: the clip (mono
 * samples at the model's rate, vkf_model_info.sampling_rate) normalised as
 * Wav2Vec2FeatureExtractor does (do_normalize), run, each frame's argmax
 * decoded as Wav2Vec2CTCTokenizer does (vocab.json: repeats collapsed, the pad
 * token dropped as the CTC blank, the word delimiter "|" a space). */
typedef struct vkf_transcribe_desc {
    /* 0: the whole clip in one run (the pipeline's default; attention grows
     * with the square of its length). Else chunks of this many seconds, each
     * normalised and run alone, overlapping by the strides, whose frames are
     * dropped before the argmax ids are joined: the pipeline's chunk_length_s
     * and stride_length_s, rounded to whole frames as it rounds them. */
    double chunk_length_s;
    double stride_left_s, stride_right_s; /* 0: chunk_length_s / 6 (HF's default); negative: none */
    int word_timestamps;                  /* fill words (return_timestamps="word") */
    vkf_progress_fn progress;             /* samples done of the clip's, after each chunk (may be NULL) */
    void *progress_user;
} vkf_transcribe_desc;

typedef struct vkf_word {
    const char *text;     /* the word's characters as the tokenizer's offsets give them (not lower-cased) */
    double start, end;    /* seconds: its first and past its last frame, times the frame's samples */
} vkf_word;

typedef struct vkf_transcription {
    char *text;           /* the pipeline's "text" */
    vkf_word *words;      /* with word_timestamps: its "chunks" */
    uint32_t n_words;
} vkf_transcription;

/* desc may be NULL (the whole clip, no timestamps). out is zeroed first; free
 * it with vkf_transcription_free, also after a failure. */
VKF_API vkf_status vkf_transcribe_audio(vkf_model *model, const float *samples, uint64_t n, uint32_t rate,
                                        const vkf_transcribe_desc *desc, vkf_transcription *out);
VKF_API void vkf_transcription_free(vkf_transcription *t);
/* The whole clip in one run, the text only. *text: malloc'd (vkf_free). */
VKF_API vkf_status vkf_transcribe(vkf_model *model, const float *samples, uint64_t n, uint32_t rate, char **text);

/* HF's audio-classification pipeline (Wav2Vec2ForSequenceClassification,
 * HubertForSequenceClassification): the normalised clip run once, the scores
 * as vkf_top_k gives them (softmax; sigmoid for multi-label problem types);
 * top receives min(k, num_labels) scores, best first. */
VKF_API vkf_status vkf_classify_audio(vkf_model *model, const float *samples, uint64_t n, uint32_t rate, vkf_class_score *top,
                                      uint32_t k);

/* ---- text generation (causal LMs: GPT-2) ---------------------------------------
 *
 *   vkf_generate_desc d = {.max_new_tokens = 40};           // zero: greedy, 50 tokens
 *   vkf_generation g;
 *   const char *prompt = "The capital of France is";
 *   if (vkf_generate(model, &prompt, 1, &d, &g) == VKF_OK) puts(g.text);
 *   vkf_generation_free(&g, 1);
 *
 * A session keeps the sequences' KV cache on the device between calls, so a
 * text can be continued; its prefill and decode command buffers are recorded
 * once and replayed for every token (nothing created, updated or recorded per
 * token). Greedy picks the argmax on the device and reads back one id. */

typedef struct vkf_session vkf_session;

/* Called per generated token of sequence `seq` with the text it completes
 * (held back while a UTF-8 character is unfinished, so possibly empty).
 * Return nonzero to stop that sequence. */
typedef int (*vkf_token_fn)(void *user, uint32_t seq, int32_t id, const char *text, size_t len);

/* HF's early_stopping for beam search: stop a prompt once num_beams
 * hypotheses finished (TRUE), when the best running one cannot beat them
 * (FALSE: HF's heuristic), or only when none can in any length (NEVER). */
typedef enum vkf_early_stopping {
    VKF_EARLY_STOPPING_DEFAULT = 0, /* the model's generation_config (else FALSE) */
    VKF_EARLY_STOPPING_TRUE,
    VKF_EARLY_STOPPING_FALSE,
    VKF_EARLY_STOPPING_NEVER
} vkf_early_stopping;

typedef struct vkf_generate_desc {
    uint32_t max_new_tokens; /* 0: the model's generation_config max_length / max_new_tokens, else 50 */
    float temperature;       /* 0: greedy (argmax); > 0: sampling with this temperature */
    uint32_t top_k;          /* sampling: keep the k most likely tokens (0: all) */
    float top_p;             /* sampling: keep the smallest set with this much probability (0: 1, off) */
    uint64_t seed;           /* sampling: the same seed gives the same text */
    int ignore_eos;          /* 1: do not stop at eos_token_id */
    vkf_token_fn on_token;   /* streaming (may be NULL) */
    void *user;
    float *logits_out;       /* optional (HF output_logits): [batch][max_new_tokens][vocab], the
                                raw logits each generated token was chosen from */
    float repetition_penalty; /* HF's: > 1 discourages every token the sequence holds (prompt
                                and generated; logit / p when positive, * p when negative);
                                0 or 1: off. Reads all logits back per token. */
    const char *const *stop_strings; /* HF's stop_strings: a sequence stops once its generated text
                                has one of these ending in the token just generated; the text and
                                ids keep that token whole. Needs the tokenizer. */
    uint32_t n_stop_strings;
    /* Beam search (encoder-decoders), as HF's generate: num_beams hypotheses per
     * prompt on the device as one batch (caches reordered there), scored by
     * summed log-probabilities / length^length_penalty; the best is returned.
     * Zero fields take the model's generation_config.json (else HF's
     * defaults: 1 beam, length_penalty 1, early_stopping false); a zero
     * that is meant (length_penalty 0) is marked in `explicit_fields`. */
    uint32_t num_beams;      /* 0: the model's; 1: greedy / sampling */
    float length_penalty;
    vkf_early_stopping early_stopping;
    uint32_t no_repeat_ngram_size; /* HF's: no n-gram of this size twice in a sequence (0: the model's) */
    uint32_t min_new_tokens; /* EOS refused before this many new tokens (0: the model's min_length) */
    uint32_t explicit_fields; /* VKF_GEN_* bits: these fields' zeros are values, not "the model's" */
    const char *task;        /* an HF pipeline task ("translation_en_to_de", "summarization"): its
                                entry of config.json's task_specific_params (T5) prefixes text
                                prompts and sets the defaults above, as HF's pipeline does (NULL: none) */
} vkf_generate_desc;

#define VKF_GEN_NUM_BEAMS (1u << 0)
#define VKF_GEN_LENGTH_PENALTY (1u << 1)
#define VKF_GEN_NO_REPEAT_NGRAM (1u << 2)
#define VKF_GEN_MIN_NEW_TOKENS (1u << 3)
#define VKF_GEN_MAX_NEW_TOKENS (1u << 4)

typedef enum vkf_stop_reason {
    VKF_STOP_EOS = 0,        /* generated eos_token_id (included in ids, not in text) */
    VKF_STOP_MAX_TOKENS,     /* max_new_tokens generated */
    VKF_STOP_CONTEXT,        /* the sequence filled the model's n_positions */
    VKF_STOP_CALLBACK,       /* on_token asked to stop */
    VKF_STOP_STRING          /* the text reached one of stop_strings */
} vkf_stop_reason;

typedef struct vkf_generation {
    int32_t *ids;            /* the generated ids */
    uint32_t n_ids;
    char *text;              /* their text (special tokens skipped); NULL without a tokenizer */
    size_t text_len;
    uint32_t prompt_tokens;  /* tokens this call fed before generating */
    vkf_stop_reason stop;
} vkf_generation;

/* A session of `batch` sequences (1..64) over a causal LM's cache. */
VKF_API vkf_status vkf_session_create(vkf_model *model, uint32_t batch, vkf_session **out);
VKF_API void vkf_session_destroy(vkf_session *s);
/* Forgets every sequence (the cache is reused); during a generation of this
 * session (from its on_token callback, another thread) it does nothing and
 * sets the error message. */
VKF_API void vkf_session_reset(vkf_session *s);
/* Tokens sequence `seq` holds (prompt and generated; the last generated one
 * counts too, though it is fed only when the text continues). */
VKF_API uint32_t vkf_session_length(const vkf_session *s, uint32_t seq);
/* Appends a prompt to each of the session's sequences and generates; out has
 * `batch` entries (free with vkf_generation_free). A fresh sequence with an
 * empty prompt starts from BOS, as HF does; a continued one may add nothing
 * and just go on. Texts go through the model's tokenizer. */
VKF_API vkf_status vkf_session_generate(vkf_session *s, const char *const *prompts, const vkf_generate_desc *desc, vkf_generation *out);
/* The same from token ids: ids[i] has lens[i] ids (checked against the vocabulary). */
VKF_API vkf_status vkf_session_generate_ids(vkf_session *s, const int32_t *const *ids, const uint32_t *lens,
                                    const vkf_generate_desc *desc, vkf_generation *out);
/* One-shot: n prompts generated together in a session of n. */
VKF_API vkf_status vkf_generate(vkf_model *model, const char *const *prompts, uint32_t n, const vkf_generate_desc *desc,
                        vkf_generation *out);
VKF_API void vkf_generation_free(vkf_generation *g, uint32_t n);

/* .npy files (NumPy's format) for tensor-level runs: reads a C-order array of
 * float32, float16 (converted to float32), int32 or int64 into *out (name
 * NULL, data allocated: free it with vkf_free); writes a float32 tensor. */
VKF_API vkf_status vkf_npy_load(const char *path, vkf_tensor *out);
VKF_API vkf_status vkf_npy_save(const char *path, const vkf_tensor *t);

/* Per-node GPU times of the runs so far (desc.profile or VKF_PROFILE=1), as a
 * text table. Free with vkf_free. */
VKF_API vkf_status vkf_model_profile(vkf_model *model, char **table);

/* ---- tokenizers ----------------------------------------------------------------
 *
 *   vkf_tokenizer *tok;
 *   if (vkf_tokenizer_load("models/bert", &tok) != VKF_OK) puts(vkf_last_error(NULL));
 *   vkf_encoding enc;
 *   vkf_tokenizer_encode(tok, "Hello world", VKF_TEXT_NUL, NULL, 0, NULL, &enc);
 *   for (uint32_t i = 0; i < enc.length; i++) printf("%d ", enc.ids[i]);   // 101 7592 2088 102
 *   vkf_encoding_free(&enc);
 *   vkf_tokenizer_destroy(tok);
 *
 * The ids equal what Hugging Face `AutoTokenizer.from_pretrained(dir)(text)`
 * gives: tokenizer.json is read when the directory has one, else the legacy
 * files (vocab.txt for BERT-style WordPiece; vocab.json + merges.txt for GPT-2,
 * RoBERTa and CLIP byte-level BPE), with the class from tokenizer_config.json
 * or config.json's model_type. Texts are bytes: invalid UTF-8 is read as
 * Python's bytes.decode("utf-8", "replace") would. Special-token strings in
 * the text ("[SEP]", "<|endoftext|>") become their ids, as in HF. As in
 * `transformers`, the truncation and padding stored in tokenizer.json are not
 * applied; vkf_encode_options says what to do.
 *
 * No Vulkan context is needed. Errors leave their message in
 * vkf_last_error(NULL) of the calling thread. A tokenizer may be used from
 * several threads at once. */

/* `dir`: a model directory, or the path of a tokenizer.json. */
VKF_API vkf_status vkf_tokenizer_load(const char *dir, vkf_tokenizer **out);
VKF_API void vkf_tokenizer_destroy(vkf_tokenizer *tok);

typedef struct vkf_tokenizer_info {
    const char *model;          /* "wordpiece" or "bpe" */
    const char *source;         /* "tokenizer.json", "vocab.txt" or "vocab.json+merges.txt" */
    uint32_t vocab_size;        /* ids run from 0 to vocab_size - 1, added tokens included */
    uint32_t model_max_length;  /* from tokenizer_config.json; 0 when it does not say */
    /* special tokens by role, -1 when the tokenizer has none */
    int32_t pad_id, unk_id, cls_id, sep_id, mask_id, bos_id, eos_id;
} vkf_tokenizer_info;

VKF_API vkf_status vkf_tokenizer_get_info(const vkf_tokenizer *tok, vkf_tokenizer_info *info);
/* The id of a token string as the vocabulary spells it ("##ing", "Ġworld"), or -1. */
VKF_API int32_t vkf_tokenizer_token_to_id(const vkf_tokenizer *tok, const char *token);
/* The token string of an id (owned by the tokenizer), or NULL when out of range. */
VKF_API const char *vkf_tokenizer_id_to_token(const vkf_tokenizer *tok, int32_t id);

/* Pass as a text length: the text is NUL-terminated. */
#define VKF_TEXT_NUL ((size_t)-1)

typedef enum vkf_padding {
    VKF_PAD_NONE = 0,    /* no padding (a batch's encodings differ in length) */
    VKF_PAD_LONGEST,     /* pad a batch to its longest encoding */
    VKF_PAD_MAX_LENGTH   /* pad every encoding to max_length */
} vkf_padding;

/* Which text of a pair loses tokens when it exceeds max_length (HF's truncation=). */
typedef enum vkf_truncation {
    VKF_TRUNCATE_LONGEST_FIRST = 0, /* the longer text first (HF's longest_first, truncation=True) */
    VKF_TRUNCATE_ONLY_FIRST,        /* the first text alone (only_first; a single text too) */
    VKF_TRUNCATE_ONLY_SECOND        /* the second text alone (only_second) */
} vkf_truncation;

typedef struct vkf_encode_options {
    int no_special_tokens;  /* 1: no [CLS]/[SEP]/<s>... (HF add_special_tokens=False) */
    uint32_t max_length;    /* > 0: truncate to this many tokens, special tokens included;
                               pairs lose tokens as `truncation` says */
    vkf_padding padding;
    int pad_left;           /* pad on the left (as for decoder-only models) */
    vkf_truncation truncation; /* only_first / only_second fail, as HF's fast tokenizers
                               do, when that text would be left with no token */
} vkf_encode_options;

typedef struct vkf_encoding {
    uint32_t length;          /* tokens, padding included */
    int32_t *ids;
    int32_t *type_ids;        /* token_type_ids: 0 first text, 1 second (BERT pairs) */
    int32_t *attention_mask;  /* 1 for tokens, 0 for padding */
    int32_t *special_mask;    /* 1 for the special tokens the post-processor added and padding */
    int32_t *sequence_ids;    /* 0: from the first text, 1: from the second, -1: special or padding */
    uint32_t (*offsets)[2];   /* [start, end) byte offsets into the text the token came from; 0,0 for specials */
} vkf_encoding;

/* Encodes text (len bytes, or VKF_TEXT_NUL) and, when pair is not NULL, the
 * second text of a pair. opt may be NULL: special tokens, no truncation.
 * Texts up to 2 GiB; free the result with vkf_encoding_free. */
VKF_API vkf_status vkf_tokenizer_encode(const vkf_tokenizer *tok, const char *text, size_t len, const char *pair, size_t pair_len,
                                const vkf_encode_options *opt, vkf_encoding *out);
/* n texts (lens may be NULL: all NUL-terminated; pairs may be NULL) into out[n],
 * padded as opt says with the pad token (or, when the tokenizer has none, the
 * end-of-text token, as GPT-2 users do). */
VKF_API vkf_status vkf_tokenizer_encode_batch(const vkf_tokenizer *tok, const char *const *texts, const size_t *lens,
                                      const char *const *pairs, const size_t *pair_lens, uint32_t n,
                                      const vkf_encode_options *opt, vkf_encoding *out);
/* Frees the arrays of an encoding (not the struct itself). */
VKF_API void vkf_encoding_free(vkf_encoding *enc);

/* Ids back to text (HF tokenizer.decode). *text is NUL-terminated and *len
 * (when len is not NULL) its length, which counts NUL characters the text may
 * hold; free it with vkf_free. Invalid UTF-8 that byte-level tokens spell is
 * replaced by U+FFFD. */
VKF_API vkf_status vkf_tokenizer_decode(const vkf_tokenizer *tok, const int32_t *ids, size_t n, int skip_special_tokens,
                                char **text, size_t *len);

/* Streaming decoder for generation: feed ids one at a time and print what
 * each completes. A token that ends inside a UTF-8 character (byte-level
 * BPE splits emoji and CJK into several tokens) yields nothing until a later
 * token completes it. The pieces concatenate to what vkf_tokenizer_decode
 * gives for the whole sequence. */
typedef struct vkf_decode_stream vkf_decode_stream;

VKF_API vkf_status vkf_decode_stream_create(const vkf_tokenizer *tok, int skip_special_tokens, vkf_decode_stream **out);
/* *piece: the new text (not NUL-terminated, *len bytes, possibly 0), valid
 * until the next call on the stream. */
VKF_API vkf_status vkf_decode_stream_step(vkf_decode_stream *s, int32_t id, const char **piece, size_t *len);
/* What is still held back at the end of generation (an unfinished character
 * comes out as U+FFFD). */
VKF_API vkf_status vkf_decode_stream_finish(vkf_decode_stream *s, const char **piece, size_t *len);
VKF_API void vkf_decode_stream_destroy(vkf_decode_stream *s);

/* Frees memory the library returned to the caller (JSON strings, decoded text). */
VKF_API void vkf_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
