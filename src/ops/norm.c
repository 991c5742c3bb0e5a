/* Row-wise normalisations: softmax (shaders/softmax.comp) and LayerNorm
 * (shaders/layernorm.comp). One workgroup per row, fp32 statistics. */
#include "ops.h"

typedef struct softmax_push {
    uint32_t rows, cols, ld;
    uint32_t x_off, y_off;
    float scale;
    uint32_t q_len, q_pos, rows_per_batch, len_index;
} softmax_push;

vkf_status op_softmax(vk_device *dev, const op_softmax_params *p, op_ref x, op_ref meta, op_ref y, op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype);
    uint64_t n = (uint64_t)p->rows * p->cols;
    if (!p->rows || !p->cols) return base_fail(dev->diag, VKF_ERROR_SHAPE, "softmax: empty shape %ux%u", p->rows, p->cols);
    if (x.size < n * es || y.size < n * es)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "softmax: %ux%u needs %llu bytes per tensor", p->rows, p->cols,
                         (unsigned long long)(n * es));
    if ((p->causal && !p->q_len) || (p->key_lengths && (!p->rows_per_batch || !meta.buffer)))
        return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "softmax: a mask lacks its q_len, rows_per_batch or meta");
    vk_dispatch *d;
    vkf_status st = op_add_dispatch(dev, out, "softmax", op_reduce_suffix(dev), p->dtype, "softmax", &d);
    if (st != VKF_OK) return st;
    d->n_args = 3;
    softmax_push push = {
        .rows = p->rows, .cols = p->cols, .ld = p->cols, .scale = p->scale != 0 ? p->scale : 1.0f,
        .q_len = p->q_len ? p->q_len : 1, .q_pos = p->q_pos, .rows_per_batch = p->rows_per_batch ? p->rows_per_batch : 1,
        .len_index = p->len_index,
    };
    uint32_t meta_off;
    bool ok = op_bind_all(dev, x, es, false, &d->args[0], &push.x_off) &&
              op_bind_all(dev, op_ref_or(meta, y), meta.buffer ? 4 : es, false, &d->args[1], &meta_off) &&
              op_bind_all(dev, y, es, true, &d->args[2], &push.y_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "softmax: a tensor exceeds the binding range");
    push.len_index += meta.buffer ? meta_off : 0;
    /* Aligned vec4 reads over unaligned rows: needs x and y equally aligned,
     * and their bindings to reach the vec4 that holds the last row's end. */
    bool vec4 = (push.y_off - push.x_off) % 4 == 0 && push.y_off >= push.x_off &&
                BASE_ALIGN_UP(push.x_off + n, 4u) * es <= d->args[0].size &&
                BASE_ALIGN_UP(push.y_off + n, 4u) * es <= d->args[2].size;
    /* CPU drivers read x through an RGBA texel view (cheaper than storage
     * loads there); it must see the elements at the same indices. */
    if (vec4 && dev->caps.cpu_kernels) {
        VkFormat fmt = es == 2 ? VK_FORMAT_R16G16B16A16_SFLOAT : VK_FORMAT_R32G32B32A32_SFLOAT;
        uint32_t t_off;
        const char *texel = op_shader("softmax_texel", op_reduce_suffix(dev), p->dtype);
        if (texel && op_bind(dev, x, 0, n, es, VK_ARG_TEXEL, fmt, false, &d->args[3], &t_off) &&
            d->args[3].offset == d->args[0].offset && t_off == push.x_off) {
            d->shader = texel;
            d->n_args = 4;
        }
    }
    d->spec[0] = op_row_workgroup(dev, vec4 ? BASE_DIV_UP(p->cols, 4) : p->cols);
    d->spec[3] = p->causal;
    d->spec[4] = p->key_lengths;
    d->spec[5] = vec4;
    op_set_push(d, &push, sizeof push);
    op_grid_rows(d, p->rows);
    return VKF_OK;
}

typedef struct layernorm_push {
    uint32_t rows, cols;
    float eps;
    uint32_t x_off, r_off, s_off, y_off, w_off, b_off;
} layernorm_push;

vkf_status op_layernorm(vk_device *dev, const op_layernorm_params *p, op_ref x, op_ref res, op_ref w, op_ref b,
                        op_ref sum_out, op_ref y, op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype);
    uint64_t n = (uint64_t)p->rows * p->cols;
    if (!p->rows || !p->cols) return base_fail(dev->diag, VKF_ERROR_SHAPE, "layernorm: empty shape %ux%u", p->rows, p->cols);
    if (x.size < n * es || y.size < n * es || w.size < p->cols * es || (!p->rms && b.size < p->cols * es) ||
        (p->residual && res.size < n * es) || (p->write_sum && sum_out.size < n * es))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "layernorm %ux%u: a tensor is smaller than its shape", p->rows,
                         p->cols);
    vk_dispatch *d;
    vkf_status st = op_add_dispatch(dev, out, "layernorm", op_reduce_suffix(dev), p->dtype, "layernorm", &d);
    if (st != VKF_OK) return st;
    layernorm_push push = {.rows = p->rows, .cols = p->cols, .eps = p->eps};
    bool ok = op_bind_all(dev, x, es, false, &d->args[0], &push.x_off) &&
              op_bind_all(dev, p->residual ? res : x, es, false, &d->args[1], &push.r_off) &&
              op_bind_all(dev, w, es, false, &d->args[2], &push.w_off) &&
              op_bind_all(dev, p->rms ? w : b, es, false, &d->args[3], &push.b_off) &&
              op_bind_all(dev, p->write_sum ? sum_out : y, es, p->write_sum, &d->args[4], &push.s_off) &&
              op_bind_all(dev, y, es, true, &d->args[5], &push.y_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "layernorm: a tensor exceeds the binding range");
    bool vec4 = !p->rms && p->cols % 4 == 0 && push.x_off % 4 == 0 && push.r_off % 4 == 0 && push.w_off % 4 == 0 &&
                push.b_off % 4 == 0 && push.s_off % 4 == 0 && push.y_off % 4 == 0;
    d->n_args = 6;
    d->spec[0] = op_row_workgroup(dev, vec4 ? p->cols / 4 : p->cols);
    d->spec[3] = p->residual;
    d->spec[4] = p->write_sum;
    d->spec[5] = vec4;
    d->spec[6] = p->rms;
    op_set_push(d, &push, sizeof push);
    op_grid_rows(d, p->rows);
    return VKF_OK;
}
