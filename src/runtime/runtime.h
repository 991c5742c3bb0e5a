/* The runtime layer: what every model's runs share, under the public API and
 * over the family table. It owns a model's compiled variants (a graph_cache
 * keyed by graph_key {kind, batch, seq, k}, each built by the family), the
 * sequence buckets, padding a text batch up to its bucket and cropping the
 * outputs back, inputs, meta values and outputs by name, the signature and
 * profiling. The API never reads a graph; a family never sees a run.
 *
 * One run is: take the variant, write the named inputs and meta slots,
 * submit, wait, read the named outputs, release. */
#ifndef VKF_RUNTIME_H
#define VKF_RUNTIME_H

#include "../models/model.h"

/* The compiled variants of one model (and, for a generation session, of its
 * graphs over the session's state). */
typedef struct rt_variants {
    const model *m;
    graph_cache cache;
} rt_variants;

/* state: what the graphs' GRAPH_STATE tensors bind to (NULL: none); max:
 * variants kept compiled. */
void rt_variants_init(rt_variants *v, vk_device *dev, const model *m, const graph_weights *state, const graph_compile_opts *opts,
                      uint32_t max);
void rt_variants_destroy(rt_variants *v);
/* Compiles the variant now (vkf_model_prepare). */
vkf_status rt_prepare(rt_variants *v, const graph_key *key);

/* The sequence bucket a text of n tokens runs in: 8, 16, 32, ... up to the
 * model's maximum, so a handful of recorded variants serve every length. */
uint32_t rt_seq_bucket(const model *m, uint32_t n);
/* The same for an encoder-decoder's decoder tokens. */
uint32_t rt_seq_bucket_target(const model *m, uint32_t n);

/* A whole input tensor from the host: float32 for float tensors, int32 for ids. */
typedef struct rt_input {
    const char *name;
    const void *data;
} rt_input;

/* All values of one of the graph's named meta slots. */
typedef struct rt_meta {
    const char *name;
    const int32_t *values;
} rt_meta;

/* An output read as float32 (int32 for ids) into data; NULL data: only
 * checked to exist. */
typedef struct rt_output {
    const char *name;
    void *data;
} rt_output;

typedef struct rt_run_desc {
    graph_key key;
    const rt_input *in;
    uint32_t n_in;
    uint32_t optional_in; /* bit i: a graph without input in[i] runs (packed texts' position_ids) */
    const rt_meta *meta;
    uint32_t n_meta;
    const rt_output *out;
    uint32_t n_out;
    uint32_t keep;   /* > 0: outputs [batch, key.seq, X] cropped to their first keep tokens */
    uint32_t keep_tgt; /* > 0: the decoder's outputs [batch, key.tgt, X] (graph_output_target) cropped to keep_tgt */
    double *waited;  /* optional: seconds spent waiting for the device are added here */
} rt_run_desc;

vkf_status rt_run(rt_variants *v, const rt_run_desc *d);

/* An output's shape in a variant ([batch, seq, X] ones with keep tokens when
 * keep > 0); an unknown name is an error listing the outputs. */
vkf_status rt_output_shape(rt_variants *v, const graph_key *key, uint32_t keep, uint32_t keep_tgt, const char *name,
                           uint32_t *rank, uint32_t shape[4]);

/* A text batch as int32 [B, S] arrays (mask, tt, pos may be NULL: all ones,
 * zeros, the family's positions): padded to the bucket, the family's
 * prepare_text hook, one TEXT run, [B, S, X] outputs cropped to S. An
 * encoder-decoder also takes the decoder's [B, T] ids (and mask, NULL: all
 * ones), padded to their own bucket, its outputs cropped to T. */
typedef struct rt_text {
    uint32_t B, S;
    const int32_t *ids, *mask, *tt, *pos;
    uint32_t T;
    const int32_t *dec_ids, *dec_mask;
    /* Pack the texts into one token dimension (no compute on padding) where the
     * family's graph comes packed (encoder-decoders excepted) and each mask is ones then zeros; outputs are
     * the padded path's, with zeros at padding tokens. VKF_TEXT_PACKING=off turns
     * it off. */
    bool packed;
} rt_text;

/* The token count a packed batch of n tokens runs at: n rounded up to a
 * sixteenth of its power of two (at most 6.25% more), from 16. */
uint32_t rt_packed_bucket(uint32_t n);

vkf_status rt_run_text(rt_variants *v, const rt_text *t, const rt_output *out, uint32_t n_out);
/* A batch of clips through the AUDIO graph: samples [B, L] (each clip's
 * real samples first, then padding), frame_mask [B, frames] and each clip's
 * frame count (meta "frames"). */
vkf_status rt_run_audio(rt_variants *v, uint32_t B, uint32_t L, const float *samples, const int32_t *frame_mask, const int32_t *frames,
                        const rt_output *out, uint32_t n_out);
/* A batch of images through the VISION graph. */
vkf_status rt_run_images(rt_variants *v, uint32_t batch, const float *pixels, const rt_output *out, uint32_t n_out);

/* The model's inputs and outputs (at most max of each), read off the graphs
 * of a small batch (built, not compiled): the batch and, for texts, the token
 * count are chosen per run (0). */
vkf_status rt_signature(const model *m, vkf_tensor_info *in, uint32_t *n_in, vkf_tensor_info *out, uint32_t *n_out, uint32_t max);

/* Per-node GPU times of every compiled variant, one table each under its
 * label (model_graph_label); VKF_ERROR_NOT_FOUND when none was profiled. */
vkf_status rt_profile(rt_variants *v, char **table);

#endif
