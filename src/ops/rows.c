/* Row operations: shaders/rows.comp (CLS prepend, pooling, L2 norm, KV append). */
#include "ops.h"

typedef struct rows_push {
    uint32_t rows, dim, seq;
    uint32_t x_bs, x_rs, y_bs, y_rs;
    uint32_t x_off, y_off, c_off, pos_off;
    uint32_t index, meta_index;
    float eps;
    uint32_t y_len;
} rows_push;

vkf_status op_rows(vk_device *dev, const op_rows_params *p, op_ref x, op_ref c, op_ref pos, op_ref meta, op_ref y,
                   op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype);
    if (!p->batch || !p->dim || (p->mode != OP_ROWS_L2 && !p->seq) || (p->mode == OP_ROWS_PREPEND && p->seq < 1))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "rows: empty shape");
    if (p->use_meta && !meta.buffer) return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "rows: use_meta without meta");
    if (p->mode == OP_ROWS_PREPEND && !c.buffer)
        return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "rows: PREPEND needs the row to prepend");
    uint32_t seq = p->seq ? p->seq : 1;
    bool per_row = p->mode == OP_ROWS_COPY || p->mode == OP_ROWS_PREPEND;
    rows_push push = {
        .rows = per_row ? p->batch * seq : p->batch, .dim = p->dim, .seq = seq,
        .x_rs = p->x_rs ? p->x_rs : p->dim, .y_rs = p->y_rs ? p->y_rs : p->dim,
        .index = p->index, .meta_index = p->meta_index, .eps = p->eps,
    };
    if (p->mode == OP_ROWS_COPY) {
        /* rows of y per batch: the bound no run-time position writes past */
        push.y_len = p->y_len ? p->y_len : p->y_bs ? p->y_bs / push.y_rs : p->index + seq;
        if (!p->use_meta && p->index + seq > push.y_len)
            return base_fail(dev->diag, VKF_ERROR_SHAPE, "rows: copying %u rows at %u runs past the %u rows of y", seq,
                             p->index, push.y_len);
    }
    /* Dense batch strides: sequences where the mode reads or writes them,
     * one row per batch otherwise. PREPEND's x holds seq - 1 rows. */
    uint32_t x_rows = p->mode == OP_ROWS_PREPEND ? seq - 1 : seq;
    bool x_seq = p->mode != OP_ROWS_L2, y_seq = per_row;
    push.x_bs = p->x_shared ? 0 : p->x_bs ? p->x_bs : (x_seq ? x_rows * push.x_rs : p->dim);
    push.y_bs = p->y_bs ? p->y_bs : (y_seq ? seq * push.y_rs : p->dim);
    if (p->x_shared && p->mode != OP_ROWS_GATHER) return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "rows: x_shared is for GATHER");
    uint64_t x_need = x_seq ? (uint64_t)(p->batch - 1) * push.x_bs + (x_rows ? (uint64_t)(x_rows - 1) * push.x_rs + p->dim : 0)
                            : (uint64_t)(p->batch - 1) * push.x_bs + p->dim;
    uint64_t y_need = (uint64_t)(p->batch - 1) * push.y_bs + (y_seq ? (uint64_t)(seq - 1) * push.y_rs : 0) + p->dim;
    if (p->mode == OP_ROWS_COPY && !p->use_meta) y_need += (uint64_t)p->index * push.y_rs;
    if ((x_need && x.size < x_need * es) || y.size < y_need * es || (c.buffer && c.size < p->dim * es) ||
        (pos.buffer && pos.size < (uint64_t)seq * p->dim * es))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "rows: a tensor is smaller than its shape");
    if (!x_need) x_need = 1; /* PREPEND of a lone CLS row: bind something */
    vk_dispatch *d;
    const char *suffix = p->mode == OP_ROWS_L2 ? op_reduce_suffix(dev) : "";
    vkf_status st = op_add_dispatch(dev, out, "rows", suffix, p->dtype, "rows", &d);
    if (st != VKF_OK) return st;
    uint32_t meta_off;
    /* A COPY with a run-time position may write anywhere in y. */
    uint64_t y_bind = (p->mode == OP_ROWS_COPY && p->use_meta) ? y.size / es : y_need;
    bool ok = op_bind(dev, x, 0, BASE_MIN(x_need, x.size / es), es, VK_ARG_STORAGE, 0, false, &d->args[0], &push.x_off) &&
              op_bind_all(dev, op_ref_or(c, x), es, false, &d->args[1], &push.c_off) &&
              op_bind_all(dev, op_ref_or(meta, x), meta.buffer ? 4 : es, false, &d->args[2], &meta_off) &&
              op_bind(dev, y, 0, y_bind, es, VK_ARG_STORAGE, 0, true, &d->args[3], &push.y_off) &&
              op_bind_all(dev, op_ref_or(pos, x), es, false, &d->args[4], &push.pos_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "rows: a tensor exceeds the binding range");
    push.meta_index += meta.buffer ? meta_off : 0;
    d->n_args = 5;
    d->spec[0] = op_row_workgroup(dev, p->dim);
    d->spec[3] = (uint32_t)p->mode;
    d->spec[4] = p->use_meta;
    d->spec[5] = pos.buffer != VK_NULL_HANDLE;
    op_set_push(d, &push, sizeof push);
    op_grid_rows(d, push.rows);
    return VKF_OK;
}

/* ---- top-k: shaders/topk.comp ------------------------------------------------------ */

typedef struct topk_push {
    uint32_t rows, cols, k, x_off, x_rs;
} topk_push;

vkf_status op_topk(vk_device *dev, const op_topk_params *p, op_ref x, op_ref values, op_ref indices, op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype), rs = p->x_rs ? p->x_rs : p->cols;
    if (!p->rows || !p->cols || !p->k) return base_fail(dev->diag, VKF_ERROR_SHAPE, "top-k: empty shape");
    if (p->k > OP_TOPK_MAX) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "top-k: k %u is above %u", p->k, OP_TOPK_MAX);
    uint64_t x_need = (uint64_t)(p->rows - 1) * rs + p->cols, o_need = (uint64_t)p->rows * p->k;
    if (x.size < x_need * es || values.size < o_need * 4 || indices.size < o_need * 4)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "top-k: a tensor is smaller than its shape");
    vk_dispatch *d;
    vkf_status st = op_add_dispatch(dev, out, "topk", "", p->dtype, "topk", &d);
    if (st != VKF_OK) return st;
    topk_push push = {.rows = p->rows, .cols = p->cols, .k = p->k, .x_rs = rs};
    uint32_t unused;
    bool ok = op_bind(dev, x, 0, x_need, es, VK_ARG_STORAGE, 0, false, &d->args[0], &push.x_off) &&
              op_bind(dev, values, 0, o_need, 4, VK_ARG_STORAGE, 0, true, &d->args[1], &unused) && !unused &&
              op_bind(dev, indices, 0, o_need, 4, VK_ARG_STORAGE, 0, true, &d->args[2], &unused) && !unused;
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "top-k: a tensor exceeds the binding range or is misaligned");
    d->n_args = 3;
    /* 256 lanes on every driver: llvmpipe ends any loop after 65535 iterations
     * per invocation (counted over the whole dispatch), and k rounds over a
     * 50257-entry vocabulary in one subgroup of 8 would pass that. */
    d->spec[0] = BASE_MIN(dev->caps.max_workgroup_invocations, 256u);
    op_set_push(d, &push, sizeof push);
    op_grid_rows(d, p->rows);
    return VKF_OK;
}
