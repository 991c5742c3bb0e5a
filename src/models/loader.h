/* The declared weight table (llm.c's ParameterTensors idea): each family lists
 * its weights once, with the checkpoint names they come from and the shape
 * the graph sees, and that one list drives both loading (shared by every
 * family: prefixes, renames, fused parts, dtype conversion, chunked upload
 * with progress, random weights for benchmarks) and graph building. */
#ifndef VKF_MODELS_LOADER_H
#define VKF_MODELS_LOADER_H

#include "../graph/graph.h"
#include "../io/io.h"

typedef enum model_init {
    MODEL_INIT_SMALL = 0, /* random weights: small values around 0 */
    MODEL_INIT_ONES,      /* random weights: around 1 (LayerNorm scales) */
    MODEL_INIT_ZEROS,     /* zeros (also what an absent optional part gets) */
    MODEL_INIT_SINUSOIDAL, /* [positions, dim] sinusoids as Marian's positions (absent from
                           * its checkpoints: computed, sines in the first half, cosines after) */
    MODEL_INIT_REL_BUCKETS, /* [2P + 1]: T5's relative position bucket of j - i = index - P, computed
                           * as torch computes it (init_arg: num_buckets, max_distance, bidirectional) */
    MODEL_INIT_MASK_ROWS,  /* [2, n]: a row of zeros, then a row of ones (a 0/1 mask looked up as rows) */
    MODEL_INIT_DEBERTA_BUCKETS /* [2P + 1]: DeBERTa's relative position of i - j = index - P, log-bucketed
                           * as torch computes it when init_arg[0] (position_buckets) > 0
                           * (init_arg[1]: max_relative_positions) */
} model_init;

#define MODEL_MAX_PARTS 3

typedef struct model_weight {
    char name[64];                 /* the graph's name, e.g. "l3.qkv.weight" */
    char hf[MODEL_MAX_PARTS][128]; /* checkpoint names without the prefix; parts stack along dim 0;
                                    * an empty name is a part of zeros */
    uint32_t n_parts;
    uint32_t rank;                 /* checkpoint shape of one part */
    uint64_t shape[4];
    uint32_t grank;                /* graph shape of the whole */
    uint32_t gshape[GRAPH_MAX_RANK];
    model_init init;
    bool optional;                 /* may be absent from a checkpoint: zeros then */
    const char *alias_of;          /* not loaded: the graph name of another weight it shares (tied) */
    uint32_t init_arg[3];          /* parameters of a computed init */
    uint32_t deinterleave;         /* h > 0: dim 0 is stored [h][3][n] (DeBERTa's in_proj, Q K V per
                                    * head) and loaded [3][h][n] (Q, K, V of all heads) */
    bool weight_norm;              /* torch's weight_norm(dim=2) folded at load: parts {v, g} of a
                                    * [O, I, K] weight (g [1, 1, K]) load as one v * g[k] / |v[:, :, k]| */
} model_weight;

typedef struct model_decl {
    model_weight *v;
    size_t n, cap;
    bool failed;                   /* out of memory while declaring */
} model_decl;

/* Declares a weight of one part whose graph shape equals its checkpoint
 * shape (rank <= 4); returns it for adjustments, or NULL when out of memory. */
model_weight *model_decl_add(model_decl *t, const char *name, const char *hf, model_init init, uint32_t rank,
                             const uint64_t *shape);
/* The same with parts stacked along dimension 0 (e.g. Q, K, V into one). */
model_weight *model_decl_fused(model_decl *t, const char *name, const char *const *hf, uint32_t n_parts,
                               model_init init, uint32_t rank, const uint64_t *shape);
/* Another graph shape for the same elements (a conv weight as a matrix). */
void model_weight_reshape(model_weight *w, uint32_t grank, const uint32_t *gshape);
const model_weight *model_decl_find(const model_decl *t, const char *name);
/* The two shapes most families repeat: a Linear "<hf>.weight" [out, in] (and
 * "<hf>.bias" [out] when bias) as "<name>.weight" / ".bias", and a LayerNorm
 * (scale initialised around 1). */
void model_decl_linear(model_decl *t, const char *name, const char *hf, uint64_t out, uint64_t in, bool bias);
void model_decl_layernorm(model_decl *t, const char *name, const char *hf, uint64_t n);
void model_decl_free(model_decl *t);
/* Elements the table holds (aliases not counted). */
uint64_t model_decl_params(const model_decl *t);

typedef void (*model_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct model_load_opts {
    const st_checkpoint *ck;       /* NULL: random weights from seed */
    const char *prefix;            /* tried first before every name ("bert."); "" for none */
    graph_dtype dtype;
    uint64_t seed;
    model_progress_fn progress;    /* elements done / total */
    void *progress_user;
} model_load_opts;

/* The first of prefixes under which the checkpoint has `probe`, or NULL. */
const char *model_find_prefix(const st_checkpoint *ck, const char *const *prefixes, size_t n, const char *probe);
/* Whether the checkpoint has name (with the prefix or without, or in the
 * gamma/beta spelling of old checkpoints). */
bool model_ck_has(const st_checkpoint *ck, const char *prefix, const char *name);

/* DeBERTa's relative position for i - j = rel: rel itself without buckets,
 * else make_log_bucket_position(rel, buckets, max_relative) in float32 as
 * torch computes it (MODEL_INIT_DEBERTA_BUCKETS's values). */
float model_deberta_bucket(int64_t rel, uint32_t buckets, uint32_t max_relative);

/* Uploads every declared weight into w. A checkpoint tensor is found as
 * prefix + name, else name alone (heads such as "classifier.weight" carry no
 * prefix), else with "gamma"/"beta" for "weight"/"bias"; its shape must be the
 * declared one. Errors name the file, the tensor and both shapes. */
vkf_status model_load_weights(base_diag *d, graph_weights *w, const model_decl *t, const model_load_opts *o);

/* The graph tensor of a declared weight (its declared graph shape), created on first use. */
int model_graph_weight(graph *g, const model_decl *t, const char *name);

#endif
