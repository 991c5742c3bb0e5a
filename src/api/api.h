/* The public handles' insides, shared by the files that implement vkformer.h. */
#ifndef VKF_API_H
#define VKF_API_H

#include "../base/base.h"
#include "../runtime/runtime.h"
#include "../vk/vk.h"

struct vkf_context {
    base_diag diag;
    vk_device *dev;
};

struct vkf_model {
    vkf_context *ctx;
    vk_device *dev;
    model m;             /* any family, through src/models/model.h */
    io_preproc pp;       /* image models: preprocessor_config.json over the family's defaults */
    rt_variants run;     /* the compiled variants */
    vkf_precision precision;
    vkf_tokenizer *tok;  /* text models: the directory's tokenizer (NULL when it has none) */
    struct api_speech *speech; /* audio models: the feature extractor and the CTC vocabulary */
    struct {             /* inputs and outputs, read once at load (vkf_model_get_info) */
        uint32_t n_inputs, n_outputs;
        vkf_tensor_info inputs[8], outputs[8];
    } sig;
};

/* x / max(||x||, 1e-12) per row of n (torch.nn.functional.normalize). */
void api_l2_rows(float *x, uint32_t rows, uint32_t n);

/* CLIP: logits_per_image [ni, nt] (and per text, its transpose, when
 * per_text is not NULL) from normalised embeddings, exp(logit_scale) applied. */
void api_clip_logits(const model *mm, const float *img, uint32_t ni, const float *txt, uint32_t nt, float *per_image,
                     float *per_text);

/* Loads dir's tokenizer into m->tok when dir has tokenizer files, and checks
 * that its ids fit the model's embedding table. */
vkf_status api_load_tokenizer(vkf_model *m, const char *dir);

/* Sequence classifiers: the raw logits [n, num_labels] of texts (and, when
 * pairs is not NULL, pairs), batched; each truncated to the model's positions
 * (with a warning) as `strategy` says. `what` names the caller in messages,
 * `noun` the inputs ("text 3: ..."). */
vkf_status api_text_logits(vkf_model *m, const char *what, const char *noun, const char *const *texts, const char *const *pairs, uint32_t n,
                           vkf_truncation strategy, float *logits);

/* The hypothesis of each label: tmpl with its one "{}" replaced by the label
 * (HF's hypothesis_template.format(label)). *texts: n malloc'd strings in a
 * malloc'd array; free with api_free_texts. */
vkf_status api_fill_template(base_diag *d, const char *tmpl, const char *const *labels, uint32_t n, char ***texts);
void api_free_texts(char **texts, uint32_t n);

/* Audio models: preprocessor_config.json (Wav2Vec2FeatureExtractor: rate,
 * do_normalize, return_attention_mask) and, for CTC heads, vocab.json and
 * tokenizer_config.json (Wav2Vec2CTCTokenizer: word_delimiter_token,
 * pad_token, do_lower_case) into m->speech. */
vkf_status api_load_speech(vkf_model *m, const char *dir);
void api_free_speech(struct api_speech *s);
/* The rate an audio model's input is at (preprocessor_config.json's sampling_rate). */
uint32_t api_speech_rate(const vkf_model *m);

/* A vkf_model around an already loaded internal model (benchmarks: presets
 * with random weights); takes ownership of *mm's contents. */
vkf_status api_model_wrap(vkf_context *ctx, model *mm, vkf_model **out);

/* Generation sessions: decode steps run and the time spent waiting for the
 * device (the rest of a step's wall time is host work). */
typedef struct api_gen_stats {
    uint64_t runs, decode_runs;
    double wait_s, decode_wait_s;
} api_gen_stats;
void api_session_stats(const vkf_session *s, api_gen_stats *st);
/* Per-node GPU times of the session's graphs (VKF_PROFILE=1), as a table. */
vkf_status api_session_profile(vkf_session *s, char **table);

#endif
