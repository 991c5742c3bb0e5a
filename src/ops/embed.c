/* Token embeddings (shaders/embed.comp) and ViT patch extraction
 * (shaders/patchify.comp). */
#include "ops.h"

typedef struct embed_push {
    uint32_t tokens, seq, dim, vocab, max_pos, type_vocab;
    uint32_t pos0, pos_index;
    float scale;
    uint32_t wte_off, wpe_off, wtt_off, ids_off, tt_off, y_off;
} embed_push;

vkf_status op_embed(vk_device *dev, const op_embed_params *p, op_ref ids, op_ref tt_ids, op_ref wte, op_ref wpe,
                    op_ref wtt, op_ref meta, op_ref y, op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype);
    if (!p->tokens || !p->seq || !p->dim || !p->vocab || (p->pos && !p->max_pos) || (p->token_type && !p->type_vocab))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "embed: empty shape");
    if (ids.size < p->tokens * 4ull || y.size < (uint64_t)p->tokens * p->dim * es ||
        wte.size < (uint64_t)p->vocab * p->dim * es || (p->pos && wpe.size < (uint64_t)p->max_pos * p->dim * es) ||
        (p->token_type && (wtt.size < (uint64_t)p->type_vocab * p->dim * es || tt_ids.size < p->tokens * 4ull)))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "embed: a tensor is smaller than its shape");
    if (p->dyn_pos && !meta.buffer)
        return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "embed: a dynamic position needs meta");
    /* The token table through a texel buffer when it is beyond the storage range. */
    bool texel = wte.size > op_bind_limit(dev, VK_ARG_STORAGE, es);
    vk_dispatch *d;
    vkf_status st = op_add_dispatch(dev, out, texel ? "embed_texel" : "embed", "", p->dtype, "embed", &d);
    if (st != VKF_OK) return st;
    embed_push push = {
        .tokens = p->tokens, .seq = p->seq, .dim = p->dim, .vocab = p->vocab, .max_pos = p->max_pos ? p->max_pos : 1,
        .type_vocab = p->type_vocab ? p->type_vocab : 1, .pos0 = p->pos0, .pos_index = p->pos_index,
        .scale = p->scale != 0 ? p->scale : 1.0f,
    };
    uint32_t meta_off;
    VkFormat fmt = es == 2 ? VK_FORMAT_R16_SFLOAT : VK_FORMAT_R32_SFLOAT;
    bool ok = op_bind(dev, wte, 0, (uint64_t)p->vocab * p->dim, es, texel ? VK_ARG_TEXEL : VK_ARG_STORAGE, fmt, false,
                      &d->args[0], &push.wte_off) &&
              op_bind_all(dev, p->pos ? wpe : y, es, false, &d->args[1], &push.wpe_off) &&
              op_bind_all(dev, p->token_type ? wtt : y, es, false, &d->args[2], &push.wtt_off) &&
              op_bind_all(dev, ids, 4, false, &d->args[3], &push.ids_off) &&
              op_bind_all(dev, p->token_type ? tt_ids : ids, 4, false, &d->args[4], &push.tt_off) &&
              op_bind_all(dev, op_ref_or(meta, ids), 4, false, &d->args[5], &meta_off) &&
              op_bind_all(dev, y, es, true, &d->args[6], &push.y_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "embed: a tensor exceeds the binding range");
    push.pos_index += meta_off;
    d->n_args = 7;
    d->spec[0] = op_row_workgroup(dev, p->dim);
    d->spec[3] = p->pos;
    d->spec[4] = p->token_type;
    d->spec[5] = p->dyn_pos;
    op_set_push(d, &push, sizeof push);
    op_grid_rows(d, p->tokens);
    return VKF_OK;
}

typedef struct patchify_push {
    uint32_t B, C, H, W, ph, pw, gh, gw;
    uint32_t x_off, y_off;
} patchify_push;

vkf_status op_patchify(vk_device *dev, const op_patchify_params *p, op_ref image, op_ref patches, op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype);
    if (!p->batch || !p->channels || !p->patch_h || !p->patch_w || p->height < p->patch_h || p->width < p->patch_w)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "patchify: empty shape or image smaller than a patch");
    if (p->height % p->patch_h || p->width % p->patch_w)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "patchify: %ux%u image is not a whole number of %ux%u patches",
                         p->height, p->width, p->patch_h, p->patch_w);
    uint64_t n = (uint64_t)p->batch * p->channels * p->height * p->width;
    if (image.size < n * es || patches.size < n * es)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "patchify: a tensor is smaller than %llu elements",
                         (unsigned long long)n);
    if (n > UINT32_MAX) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "patchify: more than 2^32 elements");
    vk_dispatch *d;
    vkf_status st = op_add_dispatch(dev, out, "patchify", "", p->dtype, "patchify", &d);
    if (st != VKF_OK) return st;
    patchify_push push = {p->batch, p->channels, p->height, p->width, p->patch_h, p->patch_w,
                          p->height / p->patch_h, p->width / p->patch_w, 0, 0};
    bool ok = op_bind(dev, image, 0, n, es, VK_ARG_STORAGE, 0, false, &d->args[0], &push.x_off) &&
              op_bind(dev, patches, 0, n, es, VK_ARG_STORAGE, 0, true, &d->args[1], &push.y_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "patchify: a tensor exceeds the binding range");
    bool vec4 = p->patch_w % 4 == 0 && p->width % 4 == 0 && push.x_off % 4 == 0 && push.y_off % 4 == 0;
    d->n_args = 2;
    d->spec[0] = 256;
    d->spec[3] = vec4;
    op_set_push(d, &push, sizeof push);
    d->groups[0] = (uint32_t)BASE_MIN(BASE_DIV_UP(vec4 ? n / 4 : n, 256u), 65535u);
    return VKF_OK;
}

/* ---- unfold (shaders/unfold.comp) ------------------------------------------------ */

typedef struct unfold_push {
    uint32_t B, L, C, K, stride, pad, Lout;
    uint32_t x_off, y_off, m_off;
} unfold_push;

uint32_t op_unfold_len(const op_unfold_params *p)
{
    uint64_t span = (uint64_t)p->len + 2ull * p->pad;
    return p->stride && p->kernel && span >= p->kernel ? (uint32_t)((span - p->kernel) / p->stride + 1) : 0;
}

vkf_status op_unfold(vk_device *dev, const op_unfold_params *p, op_ref x, op_ref mask, op_ref y, op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype), Lout = op_unfold_len(p);
    if (!p->batch || !p->len || !p->channels || !Lout)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "unfold: empty shape, or a kernel of %u longer than %u positions padded by %u",
                         p->kernel, p->len, p->pad);
    uint64_t nx = (uint64_t)p->batch * p->len * p->channels, ny = (uint64_t)p->batch * Lout * p->channels * p->kernel;
    if (p->segments && (!mask.buffer || p->stride != 1 || Lout != p->len))
        return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "unfold: segments need meta, stride 1 and one output per position");
    uint64_t nm = p->segments ? p->seg_index + 2ull * p->batch * p->len : (uint64_t)p->batch * p->len;
    if (x.size < nx * es || y.size < ny * es || (mask.buffer && mask.size < nm * 4))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "unfold: a tensor is smaller than its shape");
    if (ny > UINT32_MAX) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "unfold: more than 2^32 elements");
    vk_dispatch *d;
    vkf_status st = op_add_dispatch(dev, out, "unfold", "", p->dtype, "unfold", &d);
    if (st != VKF_OK) return st;
    unfold_push push = {p->batch, p->len, p->channels, p->kernel, p->stride, p->pad, Lout, 0, 0, 0};
    bool ok = op_bind(dev, x, 0, nx, es, VK_ARG_STORAGE, 0, false, &d->args[0], &push.x_off) &&
              op_bind(dev, y, 0, ny, es, VK_ARG_STORAGE, 0, true, &d->args[1], &push.y_off) &&
              op_bind_all(dev, op_ref_or(mask, x), mask.buffer ? 4 : es, false, &d->args[2], &push.m_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "unfold: a tensor exceeds the binding range");
    d->n_args = 3;
    d->spec[0] = 256;
    d->spec[3] = p->segments ? 2 : mask.buffer != VK_NULL_HANDLE;
    if (p->segments) push.m_off += p->seg_index;
    op_set_push(d, &push, sizeof push);
    d->groups[0] = (uint32_t)BASE_MIN(BASE_DIV_UP(ny, 256u), 65535u);
    return VKF_OK;
}
