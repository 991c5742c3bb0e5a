/* matmul: shaders/matmul_{cpu,tiled,small}.comp.
 *
 * Variants, chosen from capabilities:
 *   cpu    texel fetches + subgroupBroadcast, ROWS x 4*LANES tiles. For
 *          SIMD-on-CPU drivers (lavapipe), where storage loads become per-lane
 *          loops and shared memory buys nothing.
 *   tiled  shared-memory tiles with register blocks, sized from shared memory
 *          and workgroup limits. GPUs.
 *   small  M <= 8 (decode): every weight read once.
 * Tensors larger than one binding may cover (maxStorageBufferRange, 128 MiB on
 * lavapipe and many phones) are split: rows of X/Y into M windows, W into N
 * windows (layout NT) or K windows accumulated into Y (layout NN). */
#include "ops.h"

#include <string.h>

typedef struct matmul_push {
    uint32_t M, N, K;
    uint32_t ldx, ldw, ldy, ldr;
    uint32_t sx, sw, sy, sr;
    uint32_t x_off, w_off, y_off, r_off, bias_off;
} matmul_push;

enum { SPEC_EPI_BIAS = 10, SPEC_EPI_ACT, SPEC_EPI_RESIDUAL, SPEC_EPI_ACCUMULATE, N_SPEC };

const char *op_matmul_variant_name(op_matmul_variant v)
{
    switch (v) {
    case OP_MATMUL_CPU: return "cpu";
    case OP_MATMUL_TILED: return "tiled";
    case OP_MATMUL_SMALL: return "small";
    default: return "auto";
    }
}

/* Lanes of the cpu kernel's subgroup: pinned to 8 where the driver allows,
 * else the driver's own size (the kernel needs one subgroup per workgroup). */
static uint32_t cpu_lanes(const vk_device *dev)
{
    if (dev->caps.subgroup_size_control && dev->real.subgroup_min <= 8 && dev->real.subgroup_max >= 8) return 8;
    return dev->real.subgroup_size;
}

op_matmul_variant op_matmul_choose(const vk_device *dev, const op_matmul_params *p)
{
    if (p->variant != OP_MATMUL_AUTO) return p->variant;
    if (dev->caps.cpu_kernels && cpu_lanes(dev) >= 8 && dev->caps.max_texel_buffer_elements >= 65536)
        return OP_MATMUL_CPU;
    return p->M <= 8 ? OP_MATMUL_SMALL : OP_MATMUL_TILED;
}

typedef struct tile_cfg {
    uint32_t bm, bn, bk, tm, tn;
} tile_cfg;

static tile_cfg tiled_config(const vk_device *dev)
{
    const vk_caps *c = &dev->caps;
    static const tile_cfg cfgs[] = {
        {128, 128, 16, 8, 8}, /* 256 invocations, 16.5 KiB: desktop GPUs */
        {64, 64, 16, 4, 4},   /* 256 invocations, 8.3 KiB */
        {64, 64, 8, 4, 4},    /* 256 invocations, 4.2 KiB */
        {32, 32, 8, 4, 4},    /* 64 invocations, 2.1 KiB */
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(cfgs); i++) {
        const tile_cfg *t = &cfgs[i];
        uint32_t threads = (t->bm / t->tm) * (t->bn / t->tn);
        uint32_t shared = (t->bm + 1 + t->bn + 1) * t->bk * 4;
        /* The big tile wants 32 KiB: with less it would halve occupancy. */
        if (i == 0 && c->shared_memory < 32768) continue;
        if (threads <= c->max_workgroup_invocations && threads <= c->max_workgroup_size[0] && shared <= c->shared_memory)
            return *t;
    }
    return cfgs[BASE_ARRAY_LEN(cfgs) - 1];
}

typedef struct plan {
    op_matmul_variant v;
    const char *shader;
    uint32_t spec[N_SPEC];
    uint32_t subgroup;
    uint32_t rows_per_group, cols_per_group; /* output tile of one workgroup */
    vk_arg_kind xw_kind;
    VkFormat xw_format;
    uint32_t vec;
} plan;

static vkf_status make_plan(vk_device *dev, const op_matmul_params *p, op_matmul_variant v, op_ref x, op_ref w,
                            plan *pl)
{
    memset(pl, 0, sizeof(*pl));
    pl->v = v;
    pl->xw_kind = VK_ARG_STORAGE;
    pl->spec[1] = pl->spec[2] = 1;
    const char *base = NULL;
    uint32_t es = op_dtype_size(p->dtype);
    if (v == OP_MATMUL_CPU) {
        base = "matmul_cpu";
        uint32_t lanes = cpu_lanes(dev);
        if (lanes < 8) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "matmul cpu variant needs 8-wide subgroups");
        uint32_t rows = BASE_MIN(p->M, 8u);
        pl->spec[0] = lanes;
        pl->spec[3] = rows;
        pl->spec[4] = p->layout == OP_W_NN;
        pl->subgroup = lanes;
        pl->rows_per_group = rows;
        pl->cols_per_group = 4 * lanes;
        pl->xw_kind = VK_ARG_TEXEL;
        /* RGBA texels need every row to start on a multiple of 4 elements. */
        bool vec4 = p->ldx % 4 == 0 && p->ldw % 4 == 0 && p->sx % 4 == 0 && p->sw % 4 == 0 &&
                    (p->layout == OP_W_NN || p->K % 4 == 0) && x.offset % (4 * es) == 0 && w.offset % (4 * es) == 0;
        pl->vec = vec4 ? 4 : 1;
        pl->spec[5] = pl->vec;
        pl->xw_format = es == 2 ? (vec4 ? VK_FORMAT_R16G16B16A16_SFLOAT : VK_FORMAT_R16_SFLOAT)
                                : (vec4 ? VK_FORMAT_R32G32B32A32_SFLOAT : VK_FORMAT_R32_SFLOAT);
    } else if (v == OP_MATMUL_TILED) {
        base = "matmul_tiled";
        tile_cfg t = tiled_config(dev);
        pl->spec[0] = (t.bm / t.tm) * (t.bn / t.tn);
        pl->spec[3] = t.bm;
        pl->spec[4] = t.bn;
        pl->spec[5] = t.bk;
        pl->spec[6] = t.tm;
        pl->spec[7] = t.tn;
        pl->spec[8] = p->layout == OP_W_NN;
        pl->rows_per_group = t.bm;
        pl->cols_per_group = t.bn;
    } else if (v == OP_MATMUL_SMALL) {
        base = "matmul_small";
        if (p->M > 8) return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "matmul small variant needs M <= 8, got %u", p->M);
        uint32_t wg = BASE_MIN(256u, BASE_MAX(64u, dev->caps.subgroup_size));
        wg = BASE_MIN(wg, dev->caps.max_workgroup_invocations);
        while (wg > 32 && p->M * wg * 4 > dev->caps.shared_memory) wg /= 2;
        uint32_t group = BASE_MIN(32u, wg);
        pl->spec[0] = wg;
        pl->spec[3] = p->M;
        pl->spec[4] = group;
        pl->spec[8] = p->layout == OP_W_NN;
        pl->rows_per_group = p->M;
        pl->cols_per_group = p->layout == OP_W_NN ? wg : wg / group;
    } else {
        return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "matmul: unknown variant %d", (int)v);
    }
    pl->spec[SPEC_EPI_BIAS] = p->bias;
    pl->spec[SPEC_EPI_ACT] = (uint32_t)p->act;
    pl->spec[SPEC_EPI_RESIDUAL] = p->residual;
    pl->shader = op_shader(base, "", p->dtype);
    if (!pl->shader) return op_no_shader(dev, base, "", p->dtype);
    return VKF_OK;
}

/* Fills defaults (dense strides) and checks that every buffer is big enough. */
static vkf_status normalise(vk_device *dev, const op_matmul_params *in, op_matmul_params *p, op_ref x, op_ref w,
                            op_ref bias, op_ref res, op_ref y)
{
    *p = *in;
    if (!p->M || !p->N || !p->K)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "matmul: empty shape %ux%ux%u", p->M, p->K, p->N);
    if (!p->batch) p->batch = 1;
    if (!p->ldx) p->ldx = p->K;
    if (!p->ldw) p->ldw = p->layout == OP_W_NT ? p->K : p->N;
    if (!p->ldy) p->ldy = p->N;
    if (!p->ldr) p->ldr = p->N;
    if (!p->sx) p->sx = (uint64_t)p->M * p->ldx;
    if (!p->sy) p->sy = (uint64_t)p->M * p->ldy;
    if (!p->sr) p->sr = (uint64_t)p->M * p->ldr;
    uint32_t wrows = p->layout == OP_W_NT ? p->N : p->K, wcols = p->layout == OP_W_NT ? p->K : p->N;
    if (p->ldx < p->K || p->ldw < wcols || p->ldy < p->N || p->ldr < p->N)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "matmul: a row stride is shorter than its row");
    uint64_t es = op_dtype_size(p->dtype), nb = p->batch;
    struct {
        const char *name;
        op_ref r;
        uint64_t need;
        bool used;
    } t[] = {
        {"X", x, ((nb - 1) * p->sx + (uint64_t)(p->M - 1) * p->ldx + p->K) * es, true},
        {"W", w, ((nb - 1) * p->sw + (uint64_t)(wrows - 1) * p->ldw + wcols) * es, true},
        {"bias", bias, p->N * es, p->bias},
        {"residual", res, ((nb - 1) * p->sr + (uint64_t)(p->M - 1) * p->ldr + p->N) * es, p->residual},
        {"Y", y, ((nb - 1) * p->sy + (uint64_t)(p->M - 1) * p->ldy + p->N) * es, true},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(t); i++)
        if (t[i].used && (t[i].r.buffer == VK_NULL_HANDLE || t[i].r.size < t[i].need))
            return base_fail(dev->diag, VKF_ERROR_SHAPE, "matmul %ux%ux%u (batch %u): %s holds %llu bytes, needs %llu",
                             p->M, p->K, p->N, p->batch, t[i].name, (unsigned long long)t[i].r.size,
                             (unsigned long long)t[i].need);
    uint64_t biggest = BASE_MAX(BASE_MAX(p->sx, p->sy), BASE_MAX(p->sr, p->sw)) * nb;
    if (biggest > UINT32_MAX)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "matmul: element offsets beyond 2^32");
    return VKF_OK;
}

/* Largest count of rows (each `row_elems` apart) whose span fits `limit` bytes. */
static uint32_t rows_fitting(uint64_t limit, uint64_t row_elems, uint32_t es, uint32_t total)
{
    uint64_t n = limit / (row_elems * es);
    return (uint32_t)BASE_MIN(n, (uint64_t)total);
}

vkf_status op_matmul(vk_device *dev, const op_matmul_params *in, op_ref x, op_ref w, op_ref bias, op_ref res,
                     op_ref y, op_list *out)
{
    op_matmul_params p;
    vkf_status st = normalise(dev, in, &p, x, w, bias, res, y);
    if (st != VKF_OK) return st;
    plan pl;
    st = make_plan(dev, &p, op_matmul_choose(dev, &p), x, w, &pl);
    if (st != VKF_OK) return st;
    uint32_t es = op_dtype_size(p.dtype);
    uint32_t tb = pl.xw_kind == VK_ARG_TEXEL ? (pl.vec == 4 ? 4 * es : es) : es;
    uint64_t lim_xw = op_bind_limit(dev, pl.xw_kind, tb), lim_s = op_bind_limit(dev, VK_ARG_STORAGE, es);

    /* Batches: all in one dispatch when every batched binding fits, else one at a time. */
    bool per_batch = p.batch > 1 && (p.sx * p.batch * es > lim_xw || p.sy * p.batch * es > lim_s ||
                                     (p.residual && p.sr * p.batch * es > lim_s) ||
                                     (p.sw && p.sw * p.batch * es > lim_xw));
    uint32_t nbatch = per_batch ? 1 : p.batch;

    /* M windows: rows of X, Y and the residual. */
    uint32_t m_rows = BASE_MIN(rows_fitting(lim_xw, p.ldx, es, p.M), rows_fitting(lim_s, p.ldy, es, p.M));
    if (p.residual) m_rows = BASE_MIN(m_rows, rows_fitting(lim_s, p.ldr, es, p.M));
    /* W windows: rows of W (N rows for NT, K rows for NN). */
    uint32_t wrows = p.layout == OP_W_NT ? p.N : p.K;
    uint32_t w_rows = rows_fitting(lim_xw, p.ldw, es, wrows);
    if (m_rows == 0 || w_rows == 0)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "matmul: one row exceeds the device's binding range");
    if (m_rows < p.M && m_rows > pl.rows_per_group) m_rows -= m_rows % pl.rows_per_group;
    if (w_rows < wrows && p.layout == OP_W_NT && w_rows > pl.cols_per_group) w_rows -= w_rows % pl.cols_per_group;
    if (w_rows < wrows && p.layout == OP_W_NN && w_rows > 4) w_rows -= w_rows % 4; /* keep K windows in vec4 steps */

    for (uint32_t b0 = 0; b0 < p.batch; b0 += nbatch) {
        for (uint32_t m0 = 0; m0 < p.M; m0 += m_rows) {
            uint32_t m1 = BASE_MIN(p.M, m0 + m_rows);
            for (uint32_t w0 = 0; w0 < wrows; w0 += w_rows) {
                uint32_t w1 = BASE_MIN(wrows, w0 + w_rows);
                bool nt = p.layout == OP_W_NT, last_k = nt || w1 == wrows;
                uint32_t n0 = nt ? w0 : 0, n1 = nt ? w1 : p.N, k0 = nt ? 0 : w0, k1 = nt ? p.K : w1;
                uint64_t xb = b0 * p.sx, yb = b0 * p.sy, rb = b0 * p.sr, wb = b0 * p.sw;
                uint64_t xe = xb + (nbatch - 1) * p.sx + (uint64_t)(m1 - 1) * p.ldx + p.K;
                uint64_t ye = yb + (nbatch - 1) * p.sy + (uint64_t)(m1 - 1) * p.ldy + p.N;
                uint64_t re = rb + (nbatch - 1) * p.sr + (uint64_t)(m1 - 1) * p.ldr + p.N;
                uint64_t wcols = nt ? p.K : p.N;
                uint64_t we = wb + (p.sw ? (nbatch - 1) * p.sw : 0) + (uint64_t)(w1 - 1) * p.ldw + wcols;

                vk_dispatch *d = op_list_add(dev, out);
                if (!d) return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
                matmul_push push = {
                    .M = m1 - m0, .N = n1 - n0, .K = k1 - k0,
                    .ldx = p.ldx, .ldw = p.ldw, .ldy = p.ldy, .ldr = p.ldr,
                    .sx = (uint32_t)p.sx, .sw = (uint32_t)p.sw, .sy = (uint32_t)p.sy, .sr = (uint32_t)p.sr,
                    .bias_off = n0,
                };
                uint32_t off;
                bool ok = op_bind(dev, x, xb + (uint64_t)m0 * p.ldx, xe, es, pl.xw_kind, pl.xw_format, false,
                                  &d->args[0], &off);
                push.x_off = off + k0;
                ok = ok && op_bind(dev, w, wb + (uint64_t)w0 * p.ldw, we, es, pl.xw_kind, pl.xw_format, false,
                                   &d->args[1], &push.w_off);
                ok = ok && op_bind(dev, p.bias ? bias : y, 0, p.bias ? p.N : 1, es, VK_ARG_STORAGE, 0, false,
                                   &d->args[2], &off);
                push.bias_off += p.bias ? off : 0;
                ok = ok && op_bind(dev, p.residual ? res : y, p.residual ? rb + (uint64_t)m0 * p.ldr : 0,
                                   p.residual ? re : 1, es, VK_ARG_STORAGE, 0, false, &d->args[3], &push.r_off);
                ok = ok && op_bind(dev, y, yb + (uint64_t)m0 * p.ldy, ye, es, VK_ARG_STORAGE, 0, true, &d->args[4],
                                   &push.y_off);
                if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "matmul: a window exceeds the binding range");
                push.r_off += n0;
                push.y_off += n0;
                d->shader = pl.shader;
                d->label = "matmul";
                memcpy(d->spec, pl.spec, sizeof pl.spec);
                if (!last_k) {
                    d->spec[SPEC_EPI_BIAS] = d->spec[SPEC_EPI_ACT] = d->spec[SPEC_EPI_RESIDUAL] = 0;
                }
                d->spec[SPEC_EPI_ACCUMULATE] = k0 > 0;
                if (pl.v == OP_MATMUL_CPU && pl.vec == 4 && (push.x_off % 4 || push.w_off % 4))
                    return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "matmul: internal error: texel window not vec4-aligned");
                d->subgroup_size = pl.subgroup;
                d->n_args = 5;
                op_set_push(d, &push, sizeof push);
                d->groups[0] = BASE_DIV_UP(push.N, pl.cols_per_group);
                d->groups[1] = BASE_DIV_UP(push.M, pl.rows_per_group);
                d->groups[2] = nbatch;
            }
        }
    }
    return VKF_OK;
}
