/* Operators: each family turns its parameters into vk_dispatch descriptions
 * (pipeline choice from capabilities, push constants, bindings, grid) appended
 * to an op_list. Recording, descriptor sets and barriers are the stream's job;
 * an op knows nothing about graphs or models. */
#ifndef VKF_OPS_H
#define VKF_OPS_H

#include "../vk/vk.h"

typedef enum op_dtype { OP_F32 = 0, OP_F16 = 1 } op_dtype;

static inline uint32_t op_dtype_size(op_dtype t) { return t == OP_F16 ? 2 : 4; }

/* A byte range of a buffer holding a tensor. */
typedef struct op_ref {
    VkBuffer buffer;
    VkDeviceSize offset, size;
} op_ref;

static inline op_ref op_ref_of(const vk_buf *b) { return (op_ref){b->buffer, b->offset, b->size}; }
static inline op_ref op_ref_sub(op_ref r, VkDeviceSize offset, VkDeviceSize size)
{
    return (op_ref){r.buffer, r.offset + offset, size};
}

typedef struct op_list {
    vk_dispatch *d;
    size_t n, cap;
} op_list;

/* Appends a zeroed dispatch (NULL when out of host memory) with the
 * device-wide specialization constants set (15: polynomial exp on CPU drivers). */
vk_dispatch *op_list_add(const vk_device *dev, op_list *l);
#define OP_SPEC_POLY_EXP 15
void op_list_free(op_list *l);
/* Records every dispatch of the list into the stream. */
vkf_status op_list_record(vk_stream *s, const op_list *l);
/* Eager: record, submit, wait. */
vkf_status op_list_run(vk_device *dev, const op_list *l);

/* Helpers for op implementations. */
vk_arg op_arg(op_ref r, bool write);
/* Binds elements [begin, end) of t (element size es) as a storage or texel
 * argument. The descriptor starts at the nearest aligned offset at or below
 * the first element; *elem_off is where the range starts inside it. Returns
 * false when the range exceeds the device's limit for that kind of binding. */
bool op_bind(const vk_device *dev, op_ref t, uint64_t begin, uint64_t end, uint32_t es, vk_arg_kind kind,
             VkFormat format, bool write, vk_arg *arg, uint32_t *elem_off);
/* Largest byte span one binding of that kind may cover (alignment slack kept). */
uint64_t op_bind_limit(const vk_device *dev, vk_arg_kind kind, uint32_t texel_bytes);
/* Binds the whole of t as a storage buffer; false when it exceeds the range. */
bool op_bind_all(const vk_device *dev, op_ref t, uint32_t es, bool write, vk_arg *arg, uint32_t *elem_off);
/* a when it is set, else b: optional bindings still need some valid buffer. */
static inline op_ref op_ref_or(op_ref a, op_ref b) { return a.buffer ? a : b; }
/* A 2-D grid of `rows` workgroups (x at most 65535); shaders fold it back. */
void op_grid_rows(vk_dispatch *d, uint32_t rows);
/* Workgroup size for kernels with one workgroup per row. */
uint32_t op_row_workgroup(const vk_device *dev, uint32_t row_len);
/* "" with subgroup arithmetic, "_nosg" without (kernels built both ways). */
const char *op_reduce_suffix(const vk_device *dev);
/* Adds a dispatch of `shader` (base name + suffix + dtype), or fails naming it. */
vkf_status op_add_dispatch(vk_device *dev, op_list *out, const char *base, const char *suffix, op_dtype t,
                           const char *label, vk_dispatch **d);
void op_set_push(vk_dispatch *d, const void *push, uint32_t size);
/* The registry's (static) name of a shader variant "<base><suffix>[_f16]", or
 * NULL when the build has no such variant. */
const char *op_shader(const char *base, const char *suffix, op_dtype t);
/* Fails with a message naming the variant when op_shader found none. */
vkf_status op_no_shader(vk_device *dev, const char *base, const char *suffix, op_dtype t);

/* ---- elementwise ----------------------------------------------------------- */

typedef enum op_act {
    OP_ACT_NONE = 0,
    OP_ACT_GELU,       /* erf form (HF "gelu") */
    OP_ACT_GELU_TANH,  /* HF "gelu_new", "gelu_pytorch_tanh" */
    OP_ACT_QUICK_GELU, /* CLIP */
    OP_ACT_TANH,
    OP_ACT_RELU,
    OP_ACT_SILU        /* HF "silu", "swish" (Marian) */
} op_act;

typedef enum op_eltwise_kind {
    OP_FILL = 0, /* y = value */
    OP_ADD,      /* y = a + b */
    OP_MUL,      /* y = a * b */
    OP_ACT,      /* y = act(a) */
    OP_SCALE     /* y = a * value */
} op_eltwise_kind;

typedef struct op_eltwise_params {
    op_eltwise_kind kind;
    op_act act;
    float value;
    uint64_t n;  /* elements */
    op_dtype dtype;
} op_eltwise_params;

/* a and b may be empty refs where the kind does not read them. */
vkf_status op_eltwise(vk_device *dev, const op_eltwise_params *p, op_ref a, op_ref b, op_ref y, op_list *out);

/* ---- matmul ---------------------------------------------------------------- */

typedef enum op_w_layout {
    OP_W_NT = 0, /* W[N, K]: HF Linear, Y = X W^T */
    OP_W_NN = 1  /* W[K, N]: GPT-2 Conv1D, Y = X W */
} op_w_layout;

typedef enum op_matmul_variant {
    OP_MATMUL_AUTO = 0,
    OP_MATMUL_CPU,   /* texel fetches + subgroup broadcast: SIMD-on-CPU drivers */
    OP_MATMUL_TILED, /* shared-memory tiles, register blocks: GPUs */
    OP_MATMUL_SMALL  /* M <= 8: weights streamed once */
} op_matmul_variant;

const char *op_matmul_variant_name(op_matmul_variant v);

/* Y[b, m, n] = act(sum_k X[b, m, k] W(b, k, n) + bias[n]) + R[b, m, n] */
typedef struct op_matmul_params {
    uint32_t M, N, K;
    uint32_t batch;          /* 0 or 1: one matrix */
    op_w_layout layout;
    uint32_t ldx, ldw, ldy, ldr; /* row strides in elements; 0: dense */
    uint64_t sx, sy, sr;     /* batch strides in elements; 0: dense */
    uint64_t sw;             /* W batch stride; 0: one W for the whole batch */
    bool bias, residual;
    op_act act;
    op_dtype dtype;
    op_matmul_variant variant; /* AUTO: from the device's capabilities */
} op_matmul_params;

/* Which variant AUTO picks for these parameters on this device. */
op_matmul_variant op_matmul_choose(const vk_device *dev, const op_matmul_params *p);

/* bias and res may be empty refs when not used. Tensors larger than a binding
 * may cover are split into windows, transparently. */
vkf_status op_matmul(vk_device *dev, const op_matmul_params *p, op_ref x, op_ref w, op_ref bias, op_ref res,
                     op_ref y, op_list *out);

/* ---- softmax, layernorm ------------------------------------------------------- */

/* y = softmax(scale * x) over rows of `cols`, masked keys excluded. */
typedef struct op_softmax_params {
    uint32_t rows, cols;
    float scale;             /* 0 means 1 */
    bool causal;             /* row r is query r % q_len at absolute position q_pos + r % q_len */
    uint32_t q_len, q_pos;
    bool key_lengths;        /* keys >= meta[len_index + r / rows_per_batch] masked */
    uint32_t rows_per_batch, len_index;
    op_dtype dtype;
} op_softmax_params;

vkf_status op_softmax(vk_device *dev, const op_softmax_params *p, op_ref x, op_ref meta, op_ref y, op_list *out);

/* h = x (+ res); sum_out = h (optional); y = (h - mean(h)) / sqrt(var(h) + eps) * w + b;
 * rms (T5): y = h / sqrt(mean(h^2) + eps) * w, b unused (may be empty) */
typedef struct op_layernorm_params {
    uint32_t rows, cols;
    float eps;
    bool residual, write_sum, rms;
    op_dtype dtype;
} op_layernorm_params;

vkf_status op_layernorm(vk_device *dev, const op_layernorm_params *p, op_ref x, op_ref res, op_ref w, op_ref b,
                        op_ref sum_out, op_ref y, op_list *out);

/* ---- attention ------------------------------------------------------------------ */

/* O = softmax(scale * Q K^T + masks) V per (batch, head), fused, online softmax.
 * Strides are in elements; zeros mean dense [B, S, H, D] layouts. */
typedef struct op_attention_params {
    uint32_t batch, q_len, kv_len, heads, head_dim;
    uint32_t q_rs, k_rs, v_rs, o_rs;       /* between tokens; 0: heads * head_dim */
    uint64_t q_bs, k_bs, v_bs, o_bs;       /* between batches; 0: len * token stride */
    uint32_t q_hs, k_hs, v_hs, o_hs;       /* between heads; 0: head_dim */
    float scale;                            /* 0: 1 / sqrt(head_dim) */
    bool causal;
    uint32_t q_pos;                         /* absolute position of query 0 (past length) */
    bool dyn_pos;                           /* q_pos = meta[pos_index] at run time */
    uint32_t pos_index;
    bool kv_cache;                          /* keys counted: q_pos + q_len (at most kv_len) */
    bool key_lengths;                       /* keys >= meta[len_index + b] masked */
    uint32_t len_index;
    bool rel_bias;                          /* T5: + table[buckets[j - i + rel_center], h] per score */
    uint32_t rel_center;                    /* buckets holds 2 * rel_center + 1 entries */
    /* DeBERTa's disentangled attention (op_attention_rel, not with rel_bias):
     * bit 1 content-to-position, bit 2 position-to-content. rel_table is then
     * pqk [dis_rows, 2, heads, head_dim]: each relative embedding's query and
     * key projections; rel_buckets [2 * rel_center + 1] the relative position
     * of i - j (index i - j + rel_center) as DeBERTa buckets it; a score gains
     * scale * (q_i . pk[c] + k_j . pq[c]) with c = clamp(bucket + dis_off, 0,
     * dis_rows - 1). */
    uint32_t dis;
    int32_t dis_off;
    uint32_t dis_rows;
    /* Packed sequences (texts of different lengths in one token dimension, no
     * padding): query i of batch b attends to keys [meta[seg_index + 2 * (b *
     * q_len + i)], meta[... + 1]) only (intersected with the other limits).
     * Relative terms use i - j, so they hold within a packed sequence as they
     * do in a padded one. */
    bool segments;
    uint32_t seg_index;
    op_dtype dtype;
} op_attention_params;

/* mask (optional): int32 [batch, kv_len]; keys whose entry is 0 are ignored. */
vkf_status op_attention(vk_device *dev, const op_attention_params *p, op_ref q, op_ref k, op_ref v, op_ref meta,
                        op_ref mask, op_ref o, op_list *out);
/* With rel_bias: rel_table [buckets, heads] and rel_buckets [2 * rel_center + 1]
 * (bucket ids as floats) of the storage type; query i sits at position q_pos + i. */
vkf_status op_attention_rel(vk_device *dev, const op_attention_params *p, op_ref q, op_ref k, op_ref v, op_ref meta,
                            op_ref mask, op_ref rel_table, op_ref rel_buckets, op_ref o, op_list *out);

/* Decode attention (flash-decoding): one query per sequence (q_len 1) over
 * the first meta[len_index + b] keys (key_lengths required) of a cache of
 * kv_len, split into chunks a workgroup each, then a merge of the partial
 * softmaxes. scratch: fp32, op_attention_split_scratch elements. Strides as
 * op_attention (q_bs / o_bs: between sequences). */
uint32_t op_attention_split_chunk(const vk_device *dev, uint32_t kv_len);
uint64_t op_attention_split_scratch(const vk_device *dev, const op_attention_params *p);
vkf_status op_attention_split(vk_device *dev, const op_attention_params *p, op_ref q, op_ref k, op_ref v, op_ref meta,
                              op_ref scratch, op_ref o, op_list *out);
/* The same with rel_bias (the query at position count - 1). */
vkf_status op_attention_split_rel(vk_device *dev, const op_attention_params *p, op_ref q, op_ref k, op_ref v, op_ref meta,
                                  op_ref rel_table, op_ref rel_buckets, op_ref scratch, op_ref o, op_list *out);

/* ---- top-k ------------------------------------------------------------------------- */

/* The k largest values of each row of x [rows, cols] (row stride x_rs, 0:
 * cols), largest first, ties to the lower index, NaN skipped: values fp32
 * [rows, k], indices int32 [rows, k] (-1 where a row has fewer than k). */
typedef struct op_topk_params {
    uint32_t rows, cols, k, x_rs;
    op_dtype dtype;
} op_topk_params;

#define OP_TOPK_MAX 256
vkf_status op_topk(vk_device *dev, const op_topk_params *p, op_ref x, op_ref values, op_ref indices, op_list *out);

/* ---- embeddings, patches, rows ------------------------------------------------------ */

/* y[t, :] = scale * wte[ids[t]] (+ wpe[pos0 + t % seq]) (+ wtt[tt[t]]); ids are int32.
 * dyn_pos: pos0 + meta[pos_index + t / seq], a position per sequence. */
typedef struct op_embed_params {
    uint32_t tokens, seq, dim, vocab, max_pos, type_vocab;
    bool pos, token_type;
    uint32_t pos0;
    bool dyn_pos;            /* pos0 + meta[pos_index + t / seq] at run time */
    uint32_t pos_index;
    float scale;             /* of the token row (0: 1; BART/Marian's scale_embedding: sqrt(d_model)) */
    op_dtype dtype;
} op_embed_params;

vkf_status op_embed(vk_device *dev, const op_embed_params *p, op_ref ids, op_ref tt_ids, op_ref wte, op_ref wpe,
                    op_ref wtt, op_ref meta, op_ref y, op_list *out);

/* image [B, C, H, W] -> patches [B, (H/ph)*(W/pw), C*ph*pw] in conv-weight order. */
typedef struct op_patchify_params {
    uint32_t batch, channels, height, width, patch_h, patch_w;
    op_dtype dtype;
} op_patchify_params;

vkf_status op_patchify(vk_device *dev, const op_patchify_params *p, op_ref image, op_ref patches, op_list *out);

/* 1-D unfold (im2col along the sequence): x [B, len, C] -> y [B, out_len,
 * C*kernel] in Conv1d weight order (c, k), out_len = (len + 2 pad - kernel) /
 * stride + 1: a Conv1d (groups 1) is then a matmul with its weight as [Cout,
 * C*kernel]. Positions outside the sequence, and with a mask (int32 [B, len])
 * those whose entry is 0, read as zeros. */
typedef struct op_unfold_params {
    uint32_t batch, len, channels, kernel, stride, pad;
    op_dtype dtype;
    /* segments (packed texts; stride 1, out_len = len): the mask operand is
     * the meta buffer, and output row l of batch b reads only positions in
     * [meta[seg_index + 2 (b len + l)], meta[.. + 1]), its own text's */
    bool segments;
    uint32_t seg_index;
} op_unfold_params;

uint32_t op_unfold_len(const op_unfold_params *p);
vkf_status op_unfold(vk_device *dev, const op_unfold_params *p, op_ref x, op_ref mask, op_ref y, op_list *out);

typedef enum op_rows_mode { OP_ROWS_PREPEND = 0, OP_ROWS_GATHER, OP_ROWS_MEAN, OP_ROWS_L2, OP_ROWS_COPY } op_rows_mode;

/* Row operations; a "row" is `dim` consecutive elements, tensors are
 * [batch, seq, dim] with the given strides (0: dense).
 *   PREPEND y[b, 0, :] = c + pos[0]; y[b, s, :] = x[b, s-1, :] + pos[s]
 *                                               x: [batch, seq-1, dim], pos optional [seq, dim]
 *   GATHER  y[b, :] = x[b, idx, :]                  idx = index, or meta[meta_index + b] - 1
 *                                                   (x_shared: y[b, :] = x[idx, :], one x [seq, dim]
 *                                                   for every b: rows gathered by index, as beams
 *                                                   reorder a cache)
 *   MEAN    y[b, :] = mean over s < n of x[b, s, :] n = seq, or meta[meta_index + b]
 *   L2      y[r, :] = x[r, :] / max(|x[r, :]|, eps) rows = batch
 *   COPY    y[b, pos + s, :] = x[b, s, :]           pos = index, or meta[meta_index + b];
 *                                                   rows at or past y_len are dropped */
typedef struct op_rows_params {
    op_rows_mode mode;
    uint32_t batch, seq, dim;
    uint32_t x_bs, x_rs, y_bs, y_rs;
    uint32_t index;
    bool use_meta;
    uint32_t meta_index;
    float eps;
    uint32_t y_len;          /* COPY: rows per batch of y (0: y_bs / y_rs) */
    bool x_shared;           /* GATHER: x is one [seq, dim] every output row gathers from */
    op_dtype dtype;
} op_rows_params;

/* c: the PREPEND row; pos: PREPEND's position table (may be empty). */
vkf_status op_rows(vk_device *dev, const op_rows_params *p, op_ref x, op_ref c, op_ref pos, op_ref meta, op_ref y,
                   op_list *out);

/* ---- speech: group norm, 1-D convolution (channels-last) ------------------------------ */

/* x, y [batch, len, channels]: for each (batch, group) the mean and biased
 * variance over len x channels/groups elements (torch GroupNorm on [B, C, L]),
 * y = act((x - mean) / sqrt(var + eps) * w[c] + b[c]); fp32 two-pass statistics. */
typedef struct op_groupnorm_params {
    uint32_t batch, len, channels, groups;
    float eps;
    op_act act;
    op_dtype dtype;
} op_groupnorm_params;

vkf_status op_groupnorm(vk_device *dev, const op_groupnorm_params *p, op_ref x, op_ref w, op_ref b, op_ref y, op_list *out);

/* Direct grouped Conv1d: x [batch, len, in_ch], w [out_ch, in_ch/groups,
 * kernel] (torch's layout), bias [out_ch] (may be empty), y [batch, out_len,
 * out_ch]; zero padding, act after the bias. out_len: (len + 2 pad - kernel) /
 * stride + 1, or p->out_len when set and not larger (wav2vec2's SamePad drops
 * the last output of its even-kernel positional convolution). */
typedef struct op_conv1d_params {
    uint32_t batch, len, in_ch, out_ch, kernel, stride, pad, groups, out_len;
    op_act act;
    op_dtype dtype;
} op_conv1d_params;

uint32_t op_conv1d_len(const op_conv1d_params *p);
vkf_status op_conv1d(vk_device *dev, const op_conv1d_params *p, op_ref x, op_ref w, op_ref bias, op_ref y, op_list *out);

#endif
