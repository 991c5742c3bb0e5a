/* The model-family seam: every family (vit.c today; bert.c, gpt2.c, clip.c
 * as they arrive) is one entry of a table that says which HF model_type
 * values it accepts, how to read its config, which weights it has (the
 * declared table of loader.h) and how to build its graph for a shape.
 * api/model.c loads and runs any model through this and nothing else.
 * Knows nothing about Vulkan beyond the device handle it passes on. */
#ifndef VKF_MODELS_MODEL_H
#define VKF_MODELS_MODEL_H

#include "loader.h"

typedef enum model_task {
    MODEL_TASK_FEATURES = 0,          /* a base model: hidden states */
    MODEL_TASK_IMAGE_CLASSIFICATION,
    MODEL_TASK_TEXT_CLASSIFICATION,
    MODEL_TASK_FILL_MASK,
    MODEL_TASK_TEXT_GENERATION,       /* a causal LM: generation sessions */
    MODEL_TASK_ZERO_SHOT_IMAGE,       /* a dual encoder (CLIP): images against texts */
    MODEL_TASK_TEXT2TEXT,             /* an encoder-decoder with an LM head: translation, summarization */
    MODEL_TASK_SPEECH_RECOGNITION,    /* a CTC head over audio frames */
    MODEL_TASK_AUDIO_CLASSIFICATION,  /* a classifier over a clip's pooled frames */
    MODEL_TASK_COUNT
} model_task;

const char *model_task_name(model_task t); /* HF pipeline names */

typedef struct model_family model_family;

typedef enum model_pooling { MODEL_POOL_MEAN = 0, MODEL_POOL_CLS, MODEL_POOL_MAX, MODEL_POOL_MEAN_SQRT } model_pooling;

/* A sentence-transformers folder's modules.json, 1_Pooling/config.json and
 * sentence_bert_config.json (what vkf_embed does by default). */
typedef struct model_sentence {
    bool present;             /* the directory is a sentence-transformers model */
    model_pooling pooling;
    bool normalize;           /* a Normalize module follows the pooling */
    uint32_t max_seq_length;  /* 0: the model's maximum */
} model_sentence;

/* A loaded model of any family. */
/* The generation settings a checkpoint carries (generation_config.json, else
 * config.json, as transformers resolves them); HF's defaults where absent. */
typedef struct model_gen_config {
    uint32_t num_beams;       /* 1 */
    float length_penalty;     /* 1 */
    int early_stopping;       /* 0 false, 1 true, 2 "never" */
    uint32_t no_repeat_ngram; /* 0 */
    uint32_t min_length;      /* 0 (total length: the decoder's start token or the prompt counts) */
    uint32_t max_length;      /* 0: not set */
    uint32_t max_new_tokens;  /* 0: not set */
} model_gen_config;

/* One entry of config.json's task_specific_params (T5: "translation_en_to_de",
 * "summarization"): the prompt prefix and the generation settings HF's pipeline
 * of that task puts over the generation config. */
typedef struct model_task_params {
    char *task, *prefix;
    model_gen_config gen;     /* starting from the model's, then the entry's keys */
} model_task_params;

/* How HF's text- and image-classification pipelines turn logits into scores:
 * regression the raw logit, multi-label or one label a sigmoid each, else a softmax. */
typedef enum model_score { MODEL_SCORE_SOFTMAX, MODEL_SCORE_SIGMOID, MODEL_SCORE_NONE } model_score;

typedef struct model {
    const model_family *family;
    base_diag *diag;
    char model_type[32];      /* as config.json says */
    void *cfg;                /* the family's own config */
    graph_dtype dtype;
    graph_weights w;
    model_decl decl;
    uint64_t params;
    /* filled by the family, read by the API */
    model_task task;
    uint32_t num_labels;
    char **labels;            /* num_labels names (owned by cfg) */
    uint32_t hidden, layers;
    uint32_t seq_len;         /* image models: tokens per image */
    uint32_t image_size, channels; /* image models */
    io_preproc preproc;       /* image models: HF's image processor defaults */
    /* text models */
    uint32_t vocab_size, max_positions; /* tokens a text may have */
    uint32_t type_vocab;      /* token types (0: no token_type_ids input) */
    uint32_t pad_id;
    bool position_ids;        /* takes position_ids (RoBERTa: padding_idx + 1 + count of real tokens) */
    model_score score;        /* classification scores from logits, as HF's pipelines choose */
    char rerank_act[96];      /* CrossEncoder's activation_fn as config.json names it ("" : none named) */
    model_sentence sentence;
    /* causal LMs and encoder-decoders (sessions hold the state the family declares) */
    int32_t bos_id, eos_id;
    bool encoder_decoder;     /* generation encodes the prompt once, then decodes from decoder_start_id */
    uint32_t max_target;      /* encoder-decoders: decoder positions (max_positions: the encoder's) */
    int32_t decoder_start_id, forced_bos_id, forced_eos_id; /* -1: none (generation_config.json over config.json) */
    int32_t eos_ids[8];       /* every id that ends a sequence (eos_token_id as a list; [0] = eos_id) */
    uint32_t n_eos;
    int32_t *bad_words;       /* generation config's bad_words_ids, each list as [length, ids...] (owned) */
    uint32_t n_bad_words, bad_words_len;
    model_gen_config gen;
    model_task_params *task_params; /* config.json's task_specific_params (owned) */
    uint32_t n_task_params;
    /* embedding models: floats per embedding; the text graph pools its own
     * embedding (CLIP: text_embeds, at each text's EOS); CLIP: exp(logit_scale) */
    uint32_t embed_dim;
    bool text_pooled;
    float logit_scale;
    /* audio models: the feature extractor's rate, whether it gives an
     * attention mask, the feature encoder's convolutions (frames of a clip),
     * the CTC blank (the tokenizer's pad id) */
    uint32_t sampling_rate;
    bool audio_mask;
    uint32_t audio_convs, audio_kernel[16], audio_stride[16];
    uint32_t ctc_pad, ctc_vocab;
} model;

/* Frames an audio model's feature encoder makes of n samples (0: too few). */
uint32_t model_audio_frames(const model *m, uint64_t n);
/* Samples per frame: the product of its strides (HF's inputs_to_logits_ratio). */
uint32_t model_audio_hop(const model *m);

/* Which graph of a model a variant is (graph_key.kind); the batch, the
 * sequence bucket and the candidates k complete the key. */
typedef enum model_graph_kind {
    MODEL_GRAPH_VISION = 0, /* images in (pixel_values [batch, C, H, W]); seq unused */
    MODEL_GRAPH_TEXT,       /* token ids in, [batch, seq]: the tensor API's forward pass */
    MODEL_GRAPH_PREFILL,    /* generation: prompts right-padded to seq, into the session's state */
    MODEL_GRAPH_DECODE,     /* generation: one new token per sequence (seq 1) */
    MODEL_GRAPH_ENCODE,     /* encoder-decoders' generation: the sources padded to seq, the
                             * decoder's cross-attention keys and values into the session's state */
    MODEL_GRAPH_REORDER,    /* beam search: every state that follows the beams gathered by
                             * row (meta "beam_rows"): built by the runtime, not the family */
    MODEL_GRAPH_AUDIO,      /* speech in (input_values [batch, seq samples]; a frame_mask
                             * [batch, frames] when the model takes one, meta "frames") */
    MODEL_GRAPH_KINDS
} model_graph_kind;

/* "batch 4", "text 4x32", "prefill 32", "decode 1": profile tables and messages. */
void model_graph_label(const graph_key *key, char *buf, size_t size);

/* What a preset configuration may be asked for (benchmarks: sizes of image models). */
typedef struct model_preset_opts {
    uint32_t image_size, patch_size; /* 0: the preset's own */
} model_preset_opts;

/* A text batch on its way to a TEXT graph, after the runtime padded it to the
 * sequence bucket: families with their own input rules fill what they need
 * (RoBERTa its position ids, CLIP the row each text pools at). */
typedef struct model_text_batch {
    uint32_t B, S, Sb;        /* texts, tokens given, the bucket padded to */
    const int32_t *ids;       /* [B, Sb]: padded with pad_id */
    const int32_t *raw_ids;   /* [B, S]: as given */
    int32_t *positions;       /* [B, Sb]: the position_ids input (family's with positions_given false) */
    bool positions_given;
    int32_t *meta;            /* [B]: the values of the graph's meta slot `meta_name` */
    const char *meta_name;    /* set by the hook when it filled meta */
} model_text_batch;

/* A persistent tensor a generation session owns (graph state), as the family's
 * graphs name and shape it. */
typedef struct model_state {
    char name[32];
    uint32_t rank, shape[3];  /* [batch, positions, row] */
    bool beams;               /* follows the sequence (a self-attention cache): beam search reorders it */
} model_state;

#define MODEL_MAX_STATES 512

typedef struct model_encdec model_encdec;

struct model_family {
    const char *name;
    const char *const *model_types;   /* NULL-terminated */
    /* The family's config: cfg_size bytes model.c allocates (zeroed) into
     * m->cfg, filled from config.json (root) or from a named preset with
     * random weights (benchmarks); on failure the fill releases what it took.
     * release (optional) frees what a config owns; describe sets the generic
     * fields of m from m->cfg. */
    size_t cfg_size;
    vkf_status (*config_parse)(base_diag *d, const char *path, const cJSON *root, const char *model_type, void *cfg);
    vkf_status (*config_preset)(base_diag *d, const char *preset, const model_preset_opts *o, void *cfg);
    void (*config_release)(void *cfg);
    void (*describe)(model *m);
    /* Declares the weights; with a checkpoint, also finds its prefix and
     * which heads it has. */
    vkf_status (*declare)(model *m, const st_checkpoint *ck, const char **prefix, model_decl *t);
    /* The graph of one variant (a kind the family does not have: a graph
     * holding the error). Generation graphs (PREFILL, DECODE) read and write
     * the states declare_state names and return top-k candidates (key->k). */
    graph *(*build)(const model *m, const graph_key *key);
    /* Optional hooks. prepare_text: the family's input rules for a padded
     * text batch. declare_state: the session state of a batch of `batch`
     * sequences (the first max entries written); returns how many there are. */
    vkf_status (*prepare_text)(const model *m, model_text_batch *b);
    /* The TEXT graph also comes packed (key.packed > 0): the texts of a batch in
     * one token dimension of key.seq without padding, inputs input_ids,
     * token_type_ids and position_ids [1, seq] (positions within each text;
     * where the graph has them: DeBERTa-v2/v3 and T5 have no position_ids),
     * meta "segments" (each token's text as [start, end), op_attention's
     * segments) and "starts" (key.packed values: each text's first token + 1);
     * a meta slot prepare_text fills (a token of each text + 1) holds the packed
     * row + 1 instead; per-token outputs [1, seq, X], pooled ones [key.packed, X]. */
    bool packed_text;
    uint32_t (*declare_state)(const model *m, uint32_t batch, model_state *out, uint32_t max);
    /* Encoder-decoders instead of build and declare_state: what the shared
     * skeleton (encdec.c) needs to build every graph and declare the state. */
    void (*encdec)(const model *m, struct model_encdec *e);
};

/* Reads dir/config.json and finds the family of its model_type; an unknown
 * one is an error naming the supported types. m is left ready to load. */
vkf_status model_open(base_diag *d, const char *dir, model *m);
/* A preset configuration of the named family ("vit": tiny, small, base, large). */
vkf_status model_open_preset(base_diag *d, const char *family, const char *preset, const model_preset_opts *o, model *m);
/* Weights from the checkpoint in dir, or random ones from seed with dir NULL.
 * tasks (NULL: any): HF task names, comma-separated; a checkpoint that can do
 * none of them fails before any weight is read. */
vkf_status model_load(vk_device *dev, model *m, const char *dir, const char *tasks, graph_dtype dtype, uint64_t seed,
                      model_progress_fn progress, void *progress_user);
graph *model_build(const model *m, const graph_key *key);
/* A graph for a kind the family lacks: holds the error (compiling it reports it). */
graph *model_no_graph(const model *m, const graph_key *key);
/* The family's input rules for a padded text batch (none: nothing to do). */
vkf_status model_prepare_text(const model *m, model_text_batch *b);
/* The session state of `batch` sequences: the first max entries into out
 * (NULL with max 0: only counted); 0 entries: the model does not generate. */
uint32_t model_declare_state(const model *m, uint32_t batch, model_state *out, uint32_t max);
void model_close(model *m);

/* Shared config pieces (config.c): hidden_act by HF name; id2label with
 * num_labels (HF's LABEL_i names where id2label is absent). */
vkf_status model_parse_act(base_diag *d, const char *file, const char *name, op_act *act);
/* id2label / num_labels, and problem_type's choice of scores (an unknown problem_type is an error). */
vkf_status model_parse_labels(base_diag *d, const char *file, const cJSON *root, uint32_t *num_labels, char ***labels,
                              model_score *score);
void model_free_labels(uint32_t n, char **labels);
/* sentence-transformers' CrossEncoder activation as config.json names it
 * (sentence_transformers.activation_fn, or the older
 * sbert_ce_default_activation_function) into m->rerank_act. */
vkf_status model_rerank_activation(base_diag *d, const char *file, const cJSON *root, model *m);
/* Reads the sentence-transformers files of dir when present (absent: not present, no error). */
vkf_status model_sentence_load(base_diag *d, const char *dir, model_sentence *out);

/* One transformer block, in model terms. Sub-layers: self-attention, then
 * cross-attention (encoder-decoder decoders, when `cross` is set), then the
 * feed-forward FC2(act(FC1(x))).
 *   pre-LN  (ViT, CLIP, GPT-2, T5):       h = h + sublayer(LN(h)), residuals fused into the matmuls
 *   post-LN (BERT, BART, Marian):         h = LN(h + sublayer(h)), residuals fused into the norms
 * Weights: the declared "<w>.ln1 / qkv (Q, K, V packed) / o / ln2 / fc1 / fc2"
 * .weight and .bias, and for cross-attention "<w>.xq / xo / lnx" (its K and
 * V come from the encoder, projected once: the cross hook's business). ln1
 * goes with self-attention, lnx with cross-attention, ln2 with the
 * feed-forward. Nodes are named "<node>.<part>"; the block's last node is
 * `out_name` when set (BERT's last layer is last_hidden_state).
 * attend (optional) replaces the attention over the packed qkv [B, S, 3H]
 * (a generation cache); without it, `at` (strides for the packed layout are
 * filled in) with the key mask `mask`. cross gets the projected queries
 * [B, S, H] and returns the attention over the encoder's keys and values. */
typedef struct model_block {
    const char *w, *node, *out_name;
    op_w_layout layout;
    op_act act;
    float eps;
    bool post_ln;
    /* T5: RMS norms without bias, no linear biases, a gated feed-forward
     * (act(x fc1) * (x fcg), "<w>.fcg"), and the relative position bias
     * (at.rel_bias) from these tensors */
    bool rms, no_bias, gated;
    int rel_table, rel_buckets;
    op_attention_params at;
    int mask;
    int (*attend)(void *user, graph *g, int qkv, const char *node);
    int (*cross)(void *user, graph *g, int q, const char *node);
    void *user;
} model_block;

int model_block_build(graph *g, const model_decl *t, const model_block *b, int h);

/* A TEXT graph's batch, padded or packed (key->packed: model_family.packed_text's
 * contract): inputs input_ids [B, S] and, padded, attention_mask (else mask -1);
 * packed, B 1 and meta "segments" and "starts" (seg, starts: their indices). */
typedef struct model_text_in {
    uint32_t B, NB, S; /* graph batch, text slots, tokens */
    int ids, mask;
    uint32_t seg, starts;
    bool packed;
} model_text_in;

model_text_in model_text_inputs(graph *g, const graph_key *key);

/* Each text's first token of h [B, S, H] (packed: at meta "starts"): [NB, H]. */
int model_first_tokens(graph *g, const char *name, int h, const model_text_in *in, uint32_t H);

/* Token embeddings (with token types when tt >= 0; wtt -1 without) plus the
 * position embeddings wpe (none when -1): of each row's index, or looked up
 * from the position_ids input pos_ids (>= 0: RoBERTa's, packed texts'). */
int model_embed_tokens(graph *g, const char *name, int ids, int tt, int wte, int wpe, int wtt, int pos_ids);

/* Self-attention through a generation cache: state [B, positions, 2H], K then
 * V per position. K and V of the new tokens (adjacent in the packed qkv row
 * [B, S, 3H]) are stored at their positions (a prefill from 0, a decode step
 * at meta "positions"), then a prefill attends causally over the prompt itself
 * (right padding comes after every real token, so the causal mask alone
 * excludes it) and a decode step over the cache up to meta "counts", split
 * over keys. GPT-2 and the encoder-decoders' decoders. */
typedef struct model_cache_attn {
    uint32_t B, S, heads, head_dim;
    const model_state *state;
    bool decode;
    uint32_t positions, counts;   /* decode: the meta slots' first indices */
    float scale;
    bool rel_bias;                /* T5: the relative position bias (table, buckets, centre) */
    int rel_table, rel_buckets;
    uint32_t rel_center;
} model_cache_attn;

int model_cache_attention(graph *g, const model_cache_attn *a, int qkv, const char *node);

/* A generation graph's outputs, as the sessions read them: the logits
 * [B, vocab], "top_ids" (the k best, k 0: 1) and "top_ids.values". */
void model_generation_outputs(graph *g, int logits, uint32_t k);

/* ---- the encoder-decoder skeleton (encdec.c): BART, Marian, T5 --------------------------------------- */

/* One graph being built: its kind and sizes, the encoder's output (TEXT), the
 * decoder layer being built and the meta slots (DECODE). Families hand it to
 * their blocks as the hooks' user pointer. */
typedef struct model_encdec_run {
    const model_encdec *e;
    model_graph_kind kind;
    uint32_t B, S, T, layer;
    int enc, enc_mask;
    uint32_t positions, counts, src_counts;
    int rel_table, rel_buckets; /* the decoder's relative bias (T5), set by the family */
    uint32_t seg;               /* an encoder alone over packed texts: 1 + the meta index of their segments */
} model_encdec_run;

/* What a family tells the skeleton. The decoder's cross-attention weights are
 * "d<l>.xkv.weight" (and ".bias" with xkv_bias); the session state per decoder
 * layer is "kv.<l>" and "xkv.<l>", [B, positions, 2 * heads * head_dim]. */
struct model_encdec {
    const model *m;
    uint32_t dec_layers, heads, head_dim, positions;
    float scale;             /* of the decoder's attention scores */
    bool xkv_bias;
    bool rel_bias;           /* the decoder's self-attention: T5's relative bias (centre = positions) */
    int (*encoder)(const model_encdec_run *r, graph *g, int ids, int mask);
    int (*decoder)(model_encdec_run *r, graph *g, int ids, int mask); /* NULL: an encoder alone */
    int (*lm_head)(const model *m, graph *g, int h); /* NULL: no head (a base model) */
};

/* The TEXT, ENCODE and DECODE graphs of an encoder-decoder (others: a graph holding the error). */
graph *model_encdec_build(const model_encdec *e, const graph_key *key);
uint32_t model_encdec_declare_state(const model_encdec *e, uint32_t B, model_state *out, uint32_t max);
/* model_block hooks for a decoder layer (user: the model_encdec_run): the
 * cross-attention over the encoder's output (TEXT) or the state (DECODE), and
 * the self-attention through the cache (DECODE). */
int model_encdec_cross(void *user, graph *g, int q, const char *node);
int model_encdec_attend(void *user, graph *g, int qkv, const char *node);

/* generation_config.json's token ids over the model's (decoder_start, forced
 * BOS/EOS, eos, bos), as transformers prefers it to config.json, and the
 * generation settings (m->gen) from it, else from config.json (root). */
vkf_status model_generation_config(base_diag *d, const char *dir, const cJSON *root, model *m);
/* Whether id ends a sequence (one of eos_token_id's ids). */
bool model_is_eos(const model *m, int32_t id);

/* The entry of task_specific_params for an HF task name, or NULL. */
const model_task_params *model_task_params_find(const model *m, const char *task);
void model_free_task_params(model *m);

/* A token id setting of a config: absent or null leaves *out, a list gives its first. */
vkf_status model_parse_token_id(base_diag *d, const char *path, const cJSON *root, const char *key, uint32_t vocab, int32_t *out);

/* The families, for messages and tests. */
const model_family *const *model_families(size_t *n);

#endif
