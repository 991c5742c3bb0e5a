/* Speech-model convolution ops, channels-last: GroupNorm (shaders/groupnorm.comp)
 * and direct grouped Conv1d (shaders/conv1d.comp). */
#include "ops.h"

typedef struct groupnorm_push {
    uint32_t B, L, C, G, cpg, blocks;
    float eps;
    uint32_t x_off, w_off, b_off, y_off;
} groupnorm_push;

vkf_status op_groupnorm(vk_device *dev, const op_groupnorm_params *p, op_ref x, op_ref w, op_ref b, op_ref y, op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype);
    if (!p->batch || !p->len || !p->channels || !p->groups || p->channels % p->groups)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "groupnorm: %u groups do not divide %u channels (or an empty shape)",
                         p->groups, p->channels);
    uint64_t n = (uint64_t)p->batch * p->len * p->channels;
    if (x.size < n * es || y.size < n * es || w.size < (uint64_t)p->channels * es || b.size < (uint64_t)p->channels * es)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "groupnorm %ux%ux%u: a tensor is smaller than its shape", p->batch,
                         p->len, p->channels);
    if (n > UINT32_MAX) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "groupnorm: more than 2^32 elements");
    uint32_t cpg = p->channels / p->groups;
    /* Columns layout for groups of few channels: LANES channels (whole groups)
     * side by side, the rest of the workgroup down the sequence. */
    uint64_t n_group = (uint64_t)p->len * cpg;
    uint32_t max_nt = BASE_MIN(256u, dev->caps.max_workgroup_invocations);
    uint32_t nt = op_row_workgroup(dev, (uint32_t)BASE_MIN(n_group, UINT32_MAX));
    /* CPU drivers: 64 channels side by side (whole cache lines of a row). */
    uint32_t want = dev->caps.cpu_kernels ? 64 : 16;
    uint32_t lanes = cpg * BASE_MAX(1u, want / cpg);
    if (cpg > want || lanes > (dev->caps.cpu_kernels ? max_nt : nt)) lanes = 0;
    /* Each thread runs three loops over its share: lavapipe stops a thread
     * after 65535 loop iterations in all, so long groups take more threads. */
    uint64_t iters = 0;
    if (lanes) {
        uint32_t rows = dev->caps.cpu_kernels ? 1 : max_nt / lanes;
        while ((rows * 2) * lanes <= max_nt && p->len / rows > 8192) rows *= 2;
        nt = dev->caps.cpu_kernels ? rows * lanes : max_nt;
        iters = BASE_DIV_UP(p->len, rows);
        /* too long for columns (a minute of wav2vec2's first conv: 192k
         * frames): a workgroup per group, every thread down its length */
        if (3 * iters > 60000) lanes = 0, nt = op_row_workgroup(dev, (uint32_t)BASE_MIN(n_group, UINT32_MAX));
    }
    if (!lanes) {
        if (n_group / nt > 8192) nt = max_nt;
        iters = BASE_DIV_UP(n_group, nt);
    }
    if (3 * iters > 60000)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "groupnorm: groups of %llu elements are too long for one workgroup",
                         (unsigned long long)n_group);
    vk_dispatch *d;
    vkf_status st = op_add_dispatch(dev, out, "groupnorm", op_reduce_suffix(dev), p->dtype, "groupnorm", &d);
    if (st != VKF_OK) return st;
    groupnorm_push push = {.B = p->batch, .L = p->len, .C = p->channels, .G = p->groups, .cpg = cpg,
                           .blocks = lanes ? BASE_DIV_UP(p->channels, lanes) : p->groups, .eps = p->eps};
    bool ok = op_bind(dev, x, 0, n, es, VK_ARG_STORAGE, 0, false, &d->args[0], &push.x_off) &&
              op_bind(dev, w, 0, p->channels, es, VK_ARG_STORAGE, 0, false, &d->args[1], &push.w_off) &&
              op_bind(dev, b, 0, p->channels, es, VK_ARG_STORAGE, 0, false, &d->args[2], &push.b_off) &&
              op_bind(dev, y, 0, n, es, VK_ARG_STORAGE, 0, true, &d->args[3], &push.y_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "groupnorm: a tensor exceeds the binding range");
    d->n_args = 4;
    d->spec[0] = nt;
    d->spec[3] = lanes;
    d->spec[4] = (uint32_t)p->act;
    op_set_push(d, &push, sizeof push);
    op_grid_rows(d, p->batch * push.blocks);
    return VKF_OK;
}

typedef struct conv1d_push {
    uint32_t B, L, Cin, Cout, K, pad, Lout, cig, cog, c_tiles;
    uint32_t x_off, w_off, b_off, y_off;
} conv1d_push;

uint32_t op_conv1d_len(const op_conv1d_params *p)
{
    uint64_t span = (uint64_t)p->len + 2ull * p->pad;
    if (!p->stride || !p->kernel || span < p->kernel) return 0;
    uint64_t n = (span - p->kernel) / p->stride + 1;
    if (p->out_len && p->out_len < n) n = p->out_len;
    return (uint32_t)BASE_MIN(n, UINT32_MAX);
}

vkf_status op_conv1d(vk_device *dev, const op_conv1d_params *p, op_ref x, op_ref w, op_ref bias, op_ref y, op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype), Lout = op_conv1d_len(p);
    if (!p->batch || !p->len || !p->in_ch || !p->out_ch || !p->groups)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "conv1d: empty shape");
    if (p->in_ch % p->groups || p->out_ch % p->groups)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "conv1d: %u groups do not divide %u input and %u output channels",
                         p->groups, p->in_ch, p->out_ch);
    if (!Lout)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "conv1d: a kernel of %u (stride %u) longer than %u positions padded by %u",
                         p->kernel, p->stride, p->len, p->pad);
    uint32_t cig = p->in_ch / p->groups, cog = p->out_ch / p->groups;
    uint64_t nx = (uint64_t)p->batch * p->len * p->in_ch, ny = (uint64_t)p->batch * Lout * p->out_ch;
    uint64_t nw = (uint64_t)p->out_ch * cig * p->kernel;
    if (x.size < nx * es || y.size < ny * es || w.size < nw * es || (bias.buffer && bias.size < (uint64_t)p->out_ch * es))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "conv1d: a tensor is smaller than its shape");
    if (nx > UINT32_MAX || ny > UINT32_MAX || nw > UINT32_MAX || p->pad > INT32_MAX / 2 || p->len > INT32_MAX / 2)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "conv1d: more than 2^32 elements");
    /* Tiles (shaders/conv1d.comp): RC channels x RO rows per thread. */
    uint32_t TC, TO, RO = 8, RC = 4, nt;
    if (dev->caps.cpu_kernels) {
        nt = dev->real.subgroup_size; /* one subgroup: barriers cost nothing */
        TC = nt * RC;
        TO = RO;
    } else {
        nt = 256;
        TC = cog <= 16 ? 16 : cog <= 32 ? 32 : 64;
        RO = 4;
        TO = nt / (TC / RC) * RO;
    }
    uint32_t CI = cig == 1 ? 1 : 2, KC = BASE_MIN(p->kernel, 16u);
    uint64_t shared = 4ull * (CI * KC * TC + CI * ((TO - 1) * (uint64_t)p->stride + KC));
    if (shared > dev->caps.shared_memory || nt > dev->caps.max_workgroup_invocations)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "conv1d: stride %u needs %llu bytes of shared memory", p->stride,
                         (unsigned long long)shared);
    /* lavapipe stops a thread after 65535 loop iterations in all: the staging
     * loops run chunks x (weights + window) / threads times. */
    uint64_t chunks = (uint64_t)BASE_DIV_UP(cig, CI) * BASE_DIV_UP(p->kernel, KC);
    uint64_t window = (TO - 1) * (uint64_t)p->stride + KC;
    uint64_t iters = chunks * (BASE_DIV_UP(CI * KC * TC, nt) + BASE_DIV_UP(CI * window, nt) + 2);
    if (iters > 60000)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "conv1d: %u taps x %u channels a group are too many for one workgroup",
                         p->kernel, cig);
    uint32_t c_tiles = BASE_DIV_UP(cog, TC), r_tiles = BASE_DIV_UP(Lout, TO);
    if ((uint64_t)c_tiles * p->groups > dev->caps.max_workgroup_count[0] || r_tiles > dev->caps.max_workgroup_count[1] ||
        p->batch > dev->caps.max_workgroup_count[2])
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "conv1d: %u outputs x %u channels exceed the grid", Lout, p->out_ch);
    vk_dispatch *d;
    vkf_status st = op_add_dispatch(dev, out, "conv1d", "", p->dtype, "conv1d", &d);
    if (st != VKF_OK) return st;
    conv1d_push push = {.B = p->batch, .L = p->len, .Cin = p->in_ch, .Cout = p->out_ch, .K = p->kernel, .pad = p->pad,
                        .Lout = Lout, .cig = cig, .cog = cog, .c_tiles = c_tiles};
    bool ok = op_bind(dev, x, 0, nx, es, VK_ARG_STORAGE, 0, false, &d->args[0], &push.x_off) &&
              op_bind(dev, w, 0, nw, es, VK_ARG_STORAGE, 0, false, &d->args[1], &push.w_off) &&
              op_bind(dev, op_ref_or(bias, w), 0, p->out_ch, es, VK_ARG_STORAGE, 0, false, &d->args[2], &push.b_off) &&
              op_bind(dev, y, 0, ny, es, VK_ARG_STORAGE, 0, true, &d->args[3], &push.y_off);
    if (!ok) return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "conv1d: a tensor exceeds the binding range");
    d->n_args = 4;
    d->spec[0] = nt;
    d->spec[3] = TO;
    d->spec[4] = TC;
    d->spec[5] = RO;
    d->spec[6] = RC;
    d->spec[7] = CI;
    d->spec[8] = KC;
    d->spec[9] = p->stride;
    d->spec[10] = (uint32_t)p->act;
    d->spec[11] = bias.buffer != VK_NULL_HANDLE;
    op_set_push(d, &push, sizeof push);
    d->groups[0] = c_tiles * p->groups;
    d->groups[1] = r_tiles;
    d->groups[2] = p->batch;
    return VKF_OK;
}
