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

/* Appends a zeroed dispatch (NULL when out of host memory). */
vk_dispatch *op_list_add(op_list *l);
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
    OP_ACT_RELU
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

#endif
