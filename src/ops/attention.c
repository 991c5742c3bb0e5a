/* Fused attention: shaders/attention.comp. */
#include "ops.h"

#include <math.h>

typedef struct attention_push {
    uint32_t B, Sq, Skv, H;
    uint32_t q_rs, k_rs, v_rs, o_rs;
    uint32_t q_bs, k_bs, v_bs, o_bs;
    uint32_t q_hs, k_hs, v_hs, o_hs;
    uint32_t q_off, k_off, v_off, o_off;
    float scale;
    uint32_t q_pos, pos_index, len_index;
    uint32_t m_off, m_bs;
    uint32_t rel_center, rt_off, rb_off;
    int32_t dis_off;
    uint32_t dis_rows;
    uint32_t seg_index;
} attention_push;

_Static_assert(sizeof(attention_push) <= 128, "push constants beyond the guaranteed 128 bytes");

/* Bytes one strided [B, S, H, D] view spans. */
static uint64_t view_end(uint32_t B, uint32_t S, uint32_t H, uint32_t D, uint64_t bs, uint32_t rs, uint32_t hs)
{
    return (uint64_t)(B - 1) * bs + (uint64_t)(S - 1) * rs + (uint64_t)(H - 1) * hs + D;
}

/* The relative bias operands' bindings (or stand-ins when there is none). */
static bool bind_rel(vk_device *dev, const op_attention_params *p, op_ref table, op_ref buckets, op_ref other, vk_arg *args,
                     uint32_t *rt_off, uint32_t *rb_off)
{
    uint32_t es = op_dtype_size(p->dtype);
    bool rel = p->rel_bias || p->dis;
    return op_bind_all(dev, rel ? table : other, es, false, &args[0], rt_off) &&
           op_bind_all(dev, rel ? buckets : other, es, false, &args[1], rb_off);
}

static vkf_status check_rel(vk_device *dev, const op_attention_params *p, op_ref table, op_ref buckets)
{
    uint32_t es = op_dtype_size(p->dtype);
    if (p->rel_bias && (!table.buffer || !buckets.buffer || buckets.size < (2ull * p->rel_center + 1) * es || table.size < (uint64_t)p->heads * es))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "attention: the relative bias needs its table and %u bucket entries",
                         2 * p->rel_center + 1);
    if (p->dis && p->rel_bias) return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "attention: a relative bias or disentangled terms, not both");
    if (p->dis && (p->dis > 3 || !p->dis_rows || !table.buffer || !buckets.buffer ||
                   buckets.size < (2ull * p->rel_center + 1) * es || table.size < (uint64_t)p->dis_rows * 2 * p->heads * p->head_dim * es))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "attention: disentangled terms need pqk [%u, 2, %u, %u] and %u bucket entries",
                         p->dis_rows, p->heads, p->head_dim, 2 * p->rel_center + 1);
    return VKF_OK;
}

vkf_status op_attention(vk_device *dev, const op_attention_params *in, op_ref q, op_ref k, op_ref v, op_ref meta,
                        op_ref mask, op_ref o, op_list *out)
{
    return op_attention_rel(dev, in, q, k, v, meta, mask, (op_ref){0}, (op_ref){0}, o, out);
}

vkf_status op_attention_rel(vk_device *dev, const op_attention_params *in, op_ref q, op_ref k, op_ref v, op_ref meta,
                            op_ref mask, op_ref rel_table, op_ref rel_buckets, op_ref o, op_list *out)
{
    op_attention_params p = *in;
    vkf_status rs = check_rel(dev, &p, rel_table, rel_buckets);
    if (rs != VKF_OK) return rs;
    uint32_t es = op_dtype_size(p.dtype), D = p.head_dim;
    if (!p.batch || !p.q_len || !p.kv_len || !p.heads || !D)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "attention: empty shape");
    if (D % 4 || D > 256)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "attention: head_dim %u is not a multiple of 4 up to 256", D);
    uint32_t hd = p.heads * D;
    if (!p.q_rs) p.q_rs = hd;
    if (!p.k_rs) p.k_rs = hd;
    if (!p.v_rs) p.v_rs = hd;
    if (!p.o_rs) p.o_rs = hd;
    if (!p.q_hs) p.q_hs = D;
    if (!p.k_hs) p.k_hs = D;
    if (!p.v_hs) p.v_hs = D;
    if (!p.o_hs) p.o_hs = D;
    if (!p.q_bs) p.q_bs = (uint64_t)p.q_len * p.q_rs;
    if (!p.k_bs) p.k_bs = (uint64_t)p.kv_len * p.k_rs;
    if (!p.v_bs) p.v_bs = (uint64_t)p.kv_len * p.v_rs;
    if (!p.o_bs) p.o_bs = (uint64_t)p.q_len * p.o_rs;
    uint64_t strides[] = {p.q_rs, p.k_rs, p.v_rs, p.o_rs, p.q_hs, p.k_hs, p.v_hs, p.o_hs, p.q_bs, p.k_bs, p.v_bs, p.o_bs};
    for (size_t i = 0; i < BASE_ARRAY_LEN(strides); i++)
        if (strides[i] % 4 || strides[i] > UINT32_MAX)
            return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "attention: strides must be multiples of 4 elements");
    if (mask.buffer && mask.size < (uint64_t)p.batch * p.kv_len * 4)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "attention: the key mask holds %llu bytes, [%u, %u] int32 needs %llu",
                         (unsigned long long)mask.size, p.batch, p.kv_len, (unsigned long long)p.batch * p.kv_len * 4);
    if ((p.dyn_pos || p.key_lengths || p.segments) && !meta.buffer)
        return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "attention: dynamic position, key lengths or segments need meta");
    if (p.segments && meta.size < ((uint64_t)p.seg_index + 2ull * p.batch * p.q_len) * 4)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "attention: meta holds %llu bytes, the segments of %u x %u queries need %llu",
                         (unsigned long long)meta.size, p.batch, p.q_len,
                         (unsigned long long)(((uint64_t)p.seg_index + 2ull * p.batch * p.q_len) * 4));
    if (p.kv_cache && !p.dyn_pos && p.q_pos + p.q_len > p.kv_len)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "attention: %u cached + %u new keys exceed the cache of %u",
                         p.q_pos, p.q_len, p.kv_len);
    struct {
        const char *name;
        op_ref r;
        uint64_t end;
    } views[] = {
        {"Q", q, view_end(p.batch, p.q_len, p.heads, D, p.q_bs, p.q_rs, p.q_hs)},
        {"K", k, view_end(p.batch, p.kv_len, p.heads, D, p.k_bs, p.k_rs, p.k_hs)},
        {"V", v, view_end(p.batch, p.kv_len, p.heads, D, p.v_bs, p.v_rs, p.v_hs)},
        {"O", o, view_end(p.batch, p.q_len, p.heads, D, p.o_bs, p.o_rs, p.o_hs)},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(views); i++)
        if (views[i].r.size < views[i].end * es)
            return base_fail(dev->diag, VKF_ERROR_SHAPE, "attention: %s holds %llu bytes, its view needs %llu",
                             views[i].name, (unsigned long long)views[i].r.size,
                             (unsigned long long)(views[i].end * es));

    vk_dispatch *d;
    vkf_status st = op_add_dispatch(dev, out, "attention", "", p.dtype, "attention", &d);
    if (st != VKF_OK) return st;
    attention_push push = {
        .B = p.batch, .Sq = p.q_len, .Skv = p.kv_len, .H = p.heads,
        .q_rs = p.q_rs, .k_rs = p.k_rs, .v_rs = p.v_rs, .o_rs = p.o_rs,
        .q_bs = (uint32_t)p.q_bs, .k_bs = (uint32_t)p.k_bs, .v_bs = (uint32_t)p.v_bs, .o_bs = (uint32_t)p.o_bs,
        .q_hs = p.q_hs, .k_hs = p.k_hs, .v_hs = p.v_hs, .o_hs = p.o_hs,
        .scale = p.scale != 0 ? p.scale : 1.0f / sqrtf((float)D),
        .q_pos = p.q_pos, .pos_index = p.pos_index, .len_index = p.len_index, .m_bs = p.kv_len, .rel_center = p.rel_center,
        .dis_off = p.dis_off, .dis_rows = p.dis_rows, .seg_index = p.seg_index,
    };
    uint32_t meta_off = 0;
    bool ok = op_bind(dev, q, 0, views[0].end, es, VK_ARG_STORAGE, 0, false, &d->args[0], &push.q_off) &&
              op_bind(dev, k, 0, views[1].end, es, VK_ARG_STORAGE, 0, false, &d->args[1], &push.k_off) &&
              op_bind(dev, v, 0, views[2].end, es, VK_ARG_STORAGE, 0, false, &d->args[2], &push.v_off) &&
              op_bind_all(dev, op_ref_or(meta, o), meta.buffer ? 4 : es, false, &d->args[3], &meta_off) &&
              op_bind(dev, o, 0, views[3].end, es, VK_ARG_STORAGE, 0, true, &d->args[4], &push.o_off) &&
              op_bind_all(dev, op_ref_or(mask, op_ref_or(meta, o)), mask.buffer ? 4 : meta.buffer ? 4 : es, false, &d->args[5], &push.m_off) &&
              bind_rel(dev, &p, rel_table, rel_buckets, q, &d->args[6], &push.rt_off, &push.rb_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "attention: a tensor exceeds the binding range");
    if (push.q_off % 4 || push.k_off % 4 || push.v_off % 4 || push.o_off % 4)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "attention: views must start on 4-element boundaries");
    if (meta.buffer) {
        push.pos_index += meta_off;
        push.len_index += meta_off;
        push.seg_index += meta_off;
    }
    d->n_args = 8;
    /* GPUs: a workgroup of queries shares K/V tiles through shared memory.
     * CPU drivers: direct reads, shared memory only adds per-lane loops. */
    uint32_t wg, tile = 0;
    if (dev->caps.cpu_kernels) {
        wg = dev->real.subgroup_size;
    } else {
        wg = BASE_MIN(64u, dev->caps.max_workgroup_invocations);
        wg = BASE_MAX(wg, BASE_MIN(dev->caps.subgroup_size, dev->caps.max_workgroup_invocations));
        uint32_t per_key = 2 * D * 4; /* K and V rows in fp32 */
        tile = 32;
        while (tile > 4 && tile * per_key > dev->caps.shared_memory / 2) tile /= 2;
        if (tile * per_key > dev->caps.shared_memory) tile = 0;
    }
    d->spec[0] = wg;
    d->spec[3] = D;
    d->spec[4] = p.causal;
    d->spec[5] = p.key_lengths;
    d->spec[6] = p.dyn_pos;
    d->spec[7] = p.kv_cache;
    d->spec[8] = tile;
    d->spec[9] = mask.buffer != VK_NULL_HANDLE;
    d->spec[10] = p.rel_bias;
    d->spec[11] = p.dis;
    d->spec[12] = p.segments;
    op_set_push(d, &push, sizeof push);
    d->groups[0] = BASE_DIV_UP(p.q_len, wg);
    d->groups[1] = p.heads;
    d->groups[2] = p.batch;
    return VKF_OK;
}

/* ---- decode attention, split over keys ---------------------------------------- */

typedef struct split_push {
    uint32_t B, H, kv_len, splits;
    uint32_t q_bs, q_hs, k_bs, k_rs, k_hs, v_bs, v_rs, v_hs, o_bs, o_hs;
    uint32_t q_off, k_off, v_off, o_off, part_off, len_index;
    float scale;
    uint32_t rel_center, rt_off, rb_off;
} split_push;

_Static_assert(sizeof(split_push) <= 128, "push constants beyond the guaranteed 128 bytes");

uint32_t op_attention_split_chunk(const vk_device *dev, uint32_t kv_len)
{
    (void)kv_len;
    /* CPU drivers: longer chunks, fewer workgroups (each costs a dispatch of
     * its own there); GPUs: 64 keys per workgroup of 64 lanes. */
    return dev->caps.cpu_kernels ? 256 : 64;
}

uint64_t op_attention_split_scratch(const vk_device *dev, const op_attention_params *p)
{
    uint32_t splits = BASE_DIV_UP(p->kv_len, op_attention_split_chunk(dev, p->kv_len));
    return (uint64_t)p->batch * p->heads * splits * (p->head_dim + 2);
}

vkf_status op_attention_split(vk_device *dev, const op_attention_params *in, op_ref q, op_ref k, op_ref v, op_ref meta,
                              op_ref scratch, op_ref o, op_list *out)
{
    return op_attention_split_rel(dev, in, q, k, v, meta, (op_ref){0}, (op_ref){0}, scratch, o, out);
}

vkf_status op_attention_split_rel(vk_device *dev, const op_attention_params *in, op_ref q, op_ref k, op_ref v, op_ref meta,
                                  op_ref rel_table, op_ref rel_buckets, op_ref scratch, op_ref o, op_list *out)
{
    op_attention_params p = *in;
    vkf_status rs = check_rel(dev, &p, rel_table, rel_buckets);
    if (rs != VKF_OK) return rs;
    uint32_t es = op_dtype_size(p.dtype), D = p.head_dim;
    if (!p.batch || p.q_len != 1 || !p.kv_len || !p.heads || !D)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "split attention: one query per sequence and a non-empty cache");
    if (D > 256) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "split attention: head_dim %u is above 256", D);
    if (!p.key_lengths || !meta.buffer)
        return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "split attention: the key counts come from meta");
    uint32_t hd = p.heads * D;
    if (!p.k_rs) p.k_rs = hd;
    if (!p.v_rs) p.v_rs = hd;
    if (!p.q_hs) p.q_hs = D;
    if (!p.k_hs) p.k_hs = D;
    if (!p.v_hs) p.v_hs = D;
    if (!p.o_hs) p.o_hs = D;
    if (!p.q_bs) p.q_bs = p.q_rs ? p.q_rs : hd;
    if (!p.o_bs) p.o_bs = p.o_rs ? p.o_rs : hd;
    if (!p.k_bs) p.k_bs = (uint64_t)p.kv_len * p.k_rs;
    if (!p.v_bs) p.v_bs = (uint64_t)p.kv_len * p.v_rs;
    uint64_t strides[] = {p.k_rs, p.v_rs, p.q_hs, p.k_hs, p.v_hs, p.o_hs, p.q_bs, p.k_bs, p.v_bs, p.o_bs};
    for (size_t i = 0; i < BASE_ARRAY_LEN(strides); i++)
        if (strides[i] > UINT32_MAX) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "split attention: a stride beyond 32 bits");
    uint32_t chunk = op_attention_split_chunk(dev, p.kv_len), splits = BASE_DIV_UP(p.kv_len, chunk);
    uint64_t qe = view_end(p.batch, 1, p.heads, D, p.q_bs, 0, p.q_hs), oe = view_end(p.batch, 1, p.heads, D, p.o_bs, 0, p.o_hs);
    uint64_t ke = view_end(p.batch, p.kv_len, p.heads, D, p.k_bs, p.k_rs, p.k_hs);
    uint64_t ve = view_end(p.batch, p.kv_len, p.heads, D, p.v_bs, p.v_rs, p.v_hs);
    uint64_t pe = op_attention_split_scratch(dev, &p);
    if (q.size < qe * es || o.size < oe * es || k.size < ke * es || v.size < ve * es || scratch.size < pe * 4)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "split attention: a tensor is smaller than its view");
    split_push push = {
        .B = p.batch, .H = p.heads, .kv_len = p.kv_len, .splits = splits,
        .q_bs = (uint32_t)p.q_bs, .q_hs = p.q_hs, .k_bs = (uint32_t)p.k_bs, .k_rs = p.k_rs, .k_hs = p.k_hs,
        .v_bs = (uint32_t)p.v_bs, .v_rs = p.v_rs, .v_hs = p.v_hs, .o_bs = (uint32_t)p.o_bs, .o_hs = p.o_hs,
        .len_index = p.len_index, .scale = p.scale != 0 ? p.scale : 1.0f / sqrtf((float)D), .rel_center = p.rel_center,
    };
    /* CPU drivers: K and V as RGBA texels when every row starts on 4 elements */
    VkFormat f4 = es == 2 ? VK_FORMAT_R16G16B16A16_SFLOAT : VK_FORMAT_R32G32B32A32_SFLOAT;
    bool texel = dev->caps.cpu_kernels && D % 4 == 0 && p.k_rs % 4 == 0 && p.v_rs % 4 == 0 && p.k_hs % 4 == 0 &&
                 p.v_hs % 4 == 0 && p.k_bs % 4 == 0 && p.v_bs % 4 == 0 && k.offset % (4 * es) == 0 && v.offset % (4 * es) == 0 &&
                 BASE_DIV_UP(ke, 4) * 4 * es <= op_bind_limit(dev, VK_ARG_TEXEL, 4 * es) &&
                 BASE_DIV_UP(ve, 4) * 4 * es <= op_bind_limit(dev, VK_ARG_TEXEL, 4 * es);
    vk_dispatch *d1, *d2;
    vkf_status st = op_add_dispatch(dev, out, texel ? "attention_split_texel" : "attention_split", op_reduce_suffix(dev), p.dtype,
                                    "attention_split", &d1);
    if (st != VKF_OK) return st;
    uint32_t meta_off = 0;
    bool ok = op_bind(dev, q, 0, qe, es, VK_ARG_STORAGE, 0, false, &d1->args[0], &push.q_off) &&
              op_bind_all(dev, meta, 4, false, &d1->args[3], &meta_off) &&
              op_bind(dev, scratch, 0, pe, 4, VK_ARG_STORAGE, 0, true, &d1->args[4], &push.part_off) &&
              bind_rel(dev, &p, rel_table, rel_buckets, q, &d1->args[5], &push.rt_off, &push.rb_off);
    if (texel)
        ok = ok && op_bind(dev, k, 0, BASE_DIV_UP(ke, 4), 4 * es, VK_ARG_TEXEL, f4, false, &d1->args[1], &push.k_off) &&
             op_bind(dev, v, 0, BASE_DIV_UP(ve, 4), 4 * es, VK_ARG_TEXEL, f4, false, &d1->args[2], &push.v_off);
    else
        ok = ok && op_bind(dev, k, 0, ke, es, VK_ARG_STORAGE, 0, false, &d1->args[1], &push.k_off) &&
             op_bind(dev, v, 0, ve, es, VK_ARG_STORAGE, 0, false, &d1->args[2], &push.v_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "split attention: a tensor exceeds the binding range");
    push.len_index += meta_off;
    uint32_t wg = dev->caps.cpu_kernels ? dev->real.subgroup_size : BASE_MIN(64u, dev->caps.max_workgroup_invocations);
    wg = BASE_MIN(wg, 256u);
    d1->n_args = 7;
    d1->spec[0] = wg;
    d1->spec[3] = D;
    d1->spec[4] = chunk;
    d1->spec[5] = p.rel_bias;
    d1->groups[0] = splits;
    d1->groups[1] = p.heads;
    d1->groups[2] = p.batch;
    /* The merge binds the same Q, K, V, meta and reads the partials. */
    st = op_add_dispatch(dev, out, "attention_merge", "", p.dtype, "attention_merge", &d2);
    if (st != VKF_OK) return st;
    d1 = &out->d[out->n - 2]; /* adding d2 may have moved the list */
    d2->args[0] = d1->args[4]; /* the partials, read */
    d2->args[0].write = false;
    if (!op_bind(dev, o, 0, oe, es, VK_ARG_STORAGE, 0, true, &d2->args[1], &push.o_off))
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "split attention: the output exceeds the binding range");
    d2->n_args = 2;
    d2->spec[0] = BASE_MIN(wg, D);
    d2->spec[3] = D;
    d2->spec[4] = chunk;
    d2->groups[0] = p.heads;
    d2->groups[1] = p.batch;
    d2->groups[2] = 1;
    op_set_push(d1, &push, sizeof push);
    op_set_push(d2, &push, sizeof push);
    return VKF_OK;
}
