/* Embedding gathers, ViT patch extraction and the row ops against references. */
#include "common.h"

#include <math.h>
#include <stdlib.h>

static void check_embed(vkf_context *ctx, op_embed_params p, bool dyn, op_dtype dt)
{
    vk_device *dev = tctx_dev(ctx);
    size_t nt = p.tokens, d = p.dim;
    uint64_t rng = 21 + nt + d;
    float *wte = malloc((size_t)p.vocab * d * 4), *wpe = malloc((size_t)BASE_MAX(p.max_pos, 1u) * d * 4);
    float *wtt = malloc((size_t)BASE_MAX(p.type_vocab, 1u) * d * 4), *y = malloc(nt * d * 4);
    double *ref = malloc(nt * d * 8);
    int32_t *ids = malloc(nt * 4), *tt = malloc(nt * 4);
    trand_fill(&rng, wte, (size_t)p.vocab * d, -1, 1);
    trand_fill(&rng, wpe, (size_t)BASE_MAX(p.max_pos, 1u) * d, -1, 1);
    trand_fill(&rng, wtt, (size_t)BASE_MAX(p.type_vocab, 1u) * d, -1, 1);
    tround(wte, (size_t)p.vocab * d, dt);
    tround(wpe, (size_t)BASE_MAX(p.max_pos, 1u) * d, dt);
    tround(wtt, (size_t)BASE_MAX(p.type_vocab, 1u) * d, dt);
    for (size_t t = 0; t < nt; t++) {
        ids[t] = (int32_t)(trand_u64(&rng) % p.vocab);
        tt[t] = (int32_t)(trand_u64(&rng) % BASE_MAX(p.type_vocab, 1u));
    }
    ids[0] = -5;                        /* hostile ids are clamped, never read out of bounds */
    if (nt > 1) ids[nt - 1] = (int32_t)p.vocab + 1000;
    /* dynamic: a position per sequence, meta[1 + t / seq] */
    int32_t meta[8] = {0, 3, 9, 0, 5, 1, 2, 7};
    for (size_t t = 0; t < nt; t++) {
        uint32_t pos0 = p.pos0 + (dyn ? (uint32_t)meta[1 + t / p.seq] : 0);
        int32_t id = ids[t] < 0 ? 0 : (ids[t] >= (int32_t)p.vocab ? (int32_t)p.vocab - 1 : ids[t]);
        uint32_t pos = BASE_MIN(pos0 + (uint32_t)(t % p.seq), p.max_pos - 1);
        for (size_t j = 0; j < d; j++) {
            double v = (double)wte[(size_t)id * d + j] * (p.scale != 0 ? p.scale : 1.0f);
            if (p.pos) v += wpe[(size_t)pos * d + j];
            if (p.token_type) v += wtt[(size_t)tt[t] * d + j];
            ref[t * d + j] = v;
        }
    }
    vk_buf bte = tbuf_upload(dev, wte, (size_t)p.vocab * d, dt), bpe = tbuf_upload(dev, wpe, (size_t)BASE_MAX(p.max_pos, 1u) * d, dt);
    vk_buf btt = tbuf_upload(dev, wtt, (size_t)BASE_MAX(p.type_vocab, 1u) * d, dt), by = tbuf_alloc(dev, nt * d, dt);
    vk_buf bids = tbuf_upload_i32(dev, ids, nt), btts = tbuf_upload_i32(dev, tt, nt);
    cr_assert(!dyn || nt / p.seq <= 7);
    vk_buf bm = tbuf_upload_i32(dev, meta, 8);
    p.dyn_pos = dyn;
    p.pos_index = 1;
    p.dtype = dt;
    op_list l = {0};
    cr_assert_eq(op_embed(dev, &p, op_ref_of(&bids), op_ref_of(&btts), op_ref_of(&bte), op_ref_of(&bpe), op_ref_of(&btt),
                          op_ref_of(&bm), op_ref_of(&by), &l),
                 VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &by, y, nt * d, dt);
    double e = nmse_f32(y, ref, nt * d);
    cr_assert_leq(e, dt == OP_F16 ? NMSE_F16 : 1e-14, "embed %zu tokens dim %zu: nmse %g", nt, d, e);
    vk_buf_free(dev, &bte);
    vk_buf_free(dev, &bpe);
    vk_buf_free(dev, &btt);
    vk_buf_free(dev, &by);
    vk_buf_free(dev, &bids);
    vk_buf_free(dev, &btts);
    vk_buf_free(dev, &bm);
    free(wte);
    free(wpe);
    free(wtt);
    free(y);
    free(ref);
    free(ids);
    free(tt);
}

Test(embed, bert_and_gpt2_forms)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        /* BERT: word + position + token type, 2 sequences of 13 */
        check_embed(ctx, (op_embed_params){.tokens = 26, .seq = 13, .dim = 64, .vocab = 100, .max_pos = 32, .type_vocab = 2, .pos = true, .token_type = true}, false, dt);
        /* GPT-2 decode: one token at a run-time position */
        check_embed(ctx, (op_embed_params){.tokens = 1, .seq = 1, .dim = 48, .vocab = 77, .max_pos = 16, .pos = true}, true, dt);
        /* batched decode: each sequence at its own position (one clamped to the table) */
        check_embed(ctx, (op_embed_params){.tokens = 5, .seq = 1, .dim = 40, .vocab = 77, .max_pos = 8, .pos = true}, true, dt);
        check_embed(ctx, (op_embed_params){.tokens = 6, .seq = 2, .dim = 8, .vocab = 9, .max_pos = 12, .pos = true}, true, dt);
        check_embed(ctx, (op_embed_params){.tokens = 17, .seq = 17, .dim = 3, .vocab = 5, .max_pos = 10, .pos = true, .pos0 = 2}, false, dt);
        /* BART / Marian: scaled token rows, positions from offset 2 (static, and per sequence in decode) */
        check_embed(ctx, (op_embed_params){.tokens = 14, .seq = 7, .dim = 24, .vocab = 31, .max_pos = 12, .pos = true, .pos0 = 2, .scale = 4.0f}, false, dt);
        check_embed(ctx, (op_embed_params){.tokens = 3, .seq = 1, .dim = 20, .vocab = 31, .max_pos = 14, .pos = true, .pos0 = 2, .scale = 0.125f}, true, dt);
    }
    tctx_destroy(ctx);
}

Test(embed, table_beyond_storage_range)
{
    /* A token table larger than one storage binding goes through a texel buffer. */
    vkf_context *ctx = tctx_create("max_range=65536");
    check_embed(ctx, (op_embed_params){.tokens = 9, .seq = 9, .dim = 96, .vocab = 300, .max_pos = 9, .pos = true}, false, OP_F32);
    tctx_destroy(ctx);
}

static void check_patchify(vkf_context *ctx, uint32_t B, uint32_t C, uint32_t H, uint32_t W, uint32_t P)
{
    vk_device *dev = tctx_dev(ctx);
    size_t n = (size_t)B * C * H * W;
    float *img = malloc(n * 4), *out = malloc(n * 4);
    for (size_t i = 0; i < n; i++) img[i] = (float)i;
    vk_buf bi = tbuf_upload(dev, img, n, OP_F32), bo = tbuf_alloc(dev, n, OP_F32);
    op_list l = {0};
    op_patchify_params p = {.batch = B, .channels = C, .height = H, .width = W, .patch_h = P, .patch_w = P};
    cr_assert_eq(op_patchify(dev, &p, op_ref_of(&bi), op_ref_of(&bo), &l), VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &bo, out, n, OP_F32);
    uint32_t gw = W / P, row = C * P * P;
    for (uint32_t b = 0; b < B; b++)
        for (uint32_t pi = 0; pi < (H / P) * gw; pi++)
            for (uint32_t c = 0; c < C; c++)
                for (uint32_t ky = 0; ky < P; ky++)
                    for (uint32_t kx = 0; kx < P; kx++) {
                        size_t src = (((size_t)b * C + c) * H + (pi / gw) * P + ky) * W + (pi % gw) * P + kx;
                        size_t dst = ((size_t)b * (H / P) * gw + pi) * row + (c * P + ky) * P + kx;
                        cr_assert_eq(out[dst], img[src], "patch %u c%u (%u,%u)", pi, c, ky, kx);
                    }
    p.width = W + 1; /* not a whole number of patches */
    cr_assert_eq(op_patchify(dev, &p, op_ref_of(&bi), op_ref_of(&bo), &l), VKF_ERROR_SHAPE);
    vk_buf_free(dev, &bi);
    vk_buf_free(dev, &bo);
    free(img);
    free(out);
}

Test(patchify, matches_conv_weight_order)
{
    vkf_context *ctx = tctx_create(tcaps());
    check_patchify(ctx, 2, 3, 32, 48, 16); /* vec4 moves */
    check_patchify(ctx, 1, 3, 14, 21, 7);  /* odd patch: scalar */
    tctx_destroy(ctx);
}

/* Unfold against the gather written out on the host (exact: a copy), with
 * padding, stride, a key mask with holes (masked 1), or packed texts' segments
 * at a meta offset (masked 2: texts of 4, 1 and the rest but 2 tokens, a tail
 * in no text), in either storage type. */
static void check_unfold(vkf_context *ctx, uint32_t B, uint32_t L, uint32_t C, uint32_t K, uint32_t stride, uint32_t pad, int masked,
                         op_dtype dt)
{
    vk_device *dev = tctx_dev(ctx);
    const uint32_t seg_at = 3;
    op_unfold_params p = {.batch = B, .len = L, .channels = C, .kernel = K, .stride = stride, .pad = pad, .dtype = dt,
                          .segments = masked == 2, .seg_index = masked == 2 ? seg_at : 0};
    uint32_t Lout = op_unfold_len(&p);
    cr_assert_gt(Lout, 0);
    size_t nx = (size_t)B * L * C, ny = (size_t)B * Lout * C * K, nm = seg_at + 2 * (size_t)B * L;
    float *x = malloc(nx * 4), *y = malloc(ny * 4);
    int32_t *mask = calloc(nm, 4);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(i % 1000) + 1; /* exact in fp16 */
    for (uint32_t i = 0; i < B * L; i++) mask[i] = masked != 1 || (i % 5 != 2 && i % L < L - 2);
    for (uint32_t b = 0; masked == 2 && b < B; b++)
        for (uint32_t l = 0; l < L; l++) {
            int32_t lo = l < 4 ? 0 : l < 5 ? 4 : l < L - 2 ? 5 : (int32_t)L, hi = l < 4 ? 4 : l < 5 ? 5 : l < L - 2 ? (int32_t)L - 2 : (int32_t)L;
            mask[seg_at + 2 * (b * L + l)] = lo, mask[seg_at + 2 * (b * L + l) + 1] = hi;
        }
    vk_buf bx = tbuf_upload(dev, x, nx, dt), by = tbuf_alloc(dev, ny, dt), bm = tbuf_upload_i32(dev, mask, nm);
    op_list l = {0};
    cr_assert_eq(op_unfold(dev, &p, op_ref_of(&bx), masked ? op_ref_of(&bm) : (op_ref){0}, op_ref_of(&by), &l), VKF_OK, "%s",
                 vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &by, y, ny, dt);
    for (uint32_t b = 0; b < B; b++)
        for (uint32_t o = 0; o < Lout; o++)
            for (uint32_t c = 0; c < C; c++)
                for (uint32_t k = 0; k < K; k++) {
                    int64_t li = (int64_t)o * stride + k - pad;
                    bool in = li >= 0 && li < L;
                    if (masked == 1) in = in && mask[b * L + li];
                    if (masked == 2) in = in && li >= mask[seg_at + 2 * (b * L + o)] && li < mask[seg_at + 2 * (b * L + o) + 1];
                    float want = in ? x[((size_t)b * L + li) * C + c] : 0.0f;
                    size_t at = (((size_t)b * Lout + o) * C + c) * K + k;
                    cr_assert_eq(y[at], want, "b%u out %u c%u k%u: %g, want %g", b, o, c, k, y[at], want);
                }
    p.kernel = L + 2 * pad + 1; /* longer than the padded sequence */
    cr_assert_eq(op_unfold(dev, &p, op_ref_of(&bx), (op_ref){0}, op_ref_of(&by), &l), VKF_ERROR_SHAPE);
    if (masked == 2) { /* segments without meta, or with a stride */
        p.kernel = K;
        cr_assert_eq(op_unfold(dev, &p, op_ref_of(&bx), (op_ref){0}, op_ref_of(&by), &l), VKF_ERROR_INVALID_ARGUMENT);
        p.stride = 2;
        cr_assert_eq(op_unfold(dev, &p, op_ref_of(&bx), op_ref_of(&bm), op_ref_of(&by), &l), VKF_ERROR_INVALID_ARGUMENT);
    }
    vk_buf_free(dev, &bx), vk_buf_free(dev, &by), vk_buf_free(dev, &bm);
    op_list_free(&l);
    free(x), free(y), free(mask);
}

Test(unfold, matches_conv1d_weight_order)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        check_unfold(ctx, 2, 13, 7, 3, 1, 1, 0, dt);  /* DeBERTa's kernel 3, padding 1 */
        check_unfold(ctx, 3, 11, 5, 3, 1, 1, 1, dt);   /* padding and holes read as zeros */
        check_unfold(ctx, 1, 40, 1, 10, 5, 0, 0, dt); /* wav2vec's first layer: kernel 10, stride 5 */
        check_unfold(ctx, 2, 9, 4, 4, 2, 2, 1, dt);    /* an even kernel, stride 2 */
        check_unfold(ctx, 2, 12, 6, 3, 1, 1, 2, dt);      /* packed texts: taps within each text */
        check_unfold(ctx, 1, 16, 5, 5, 1, 2, 2, dt);      /* kernel 5 over a text of one token */
    }
    tctx_destroy(ctx);
}

/* Runs one row op over x [B, S, D] (with c, pos and meta) and compares with ref. */
static void run_rows(vkf_context *ctx, op_rows_params p, const float *x, size_t nx, const float *c, const float *pos,
                     size_t npos, const int32_t *meta, size_t nmeta, float *y_init, size_t ny, const double *ref)
{
    vk_device *dev = tctx_dev(ctx);
    vk_buf bx = tbuf_upload(dev, x, nx, p.dtype), by = tbuf_upload(dev, y_init, ny, p.dtype);
    vk_buf bc = tbuf_upload(dev, c ? c : x, c ? p.dim : 1, p.dtype), bm = tbuf_upload_i32(dev, meta, nmeta);
    vk_buf bp = tbuf_upload(dev, pos ? pos : x, pos ? npos : 1, p.dtype);
    op_list l = {0};
    cr_assert_eq(op_rows(dev, &p, op_ref_of(&bx), c ? op_ref_of(&bc) : (op_ref){0}, pos ? op_ref_of(&bp) : (op_ref){0},
                         op_ref_of(&bm), op_ref_of(&by), &l),
                 VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    float *y = malloc(ny * 4);
    tbuf_download(dev, &by, y, ny, p.dtype);
    double e = nmse_f32(y, ref, ny);
    cr_assert_leq(e, p.dtype == OP_F16 ? NMSE_F16 : NMSE_F32, "rows mode %d: nmse %g", p.mode, e);
    free(y);
    vk_buf_free(dev, &bx);
    vk_buf_free(dev, &by);
    vk_buf_free(dev, &bc);
    vk_buf_free(dev, &bp);
    vk_buf_free(dev, &bm);
}

Test(rows, all_modes)
{
    vkf_context *ctx = tctx_create(tcaps());
    enum { B = 3, S = 7, D = 771 };
    static float x[B * S * D], y0[B * S * D], c[D], pos[S * D];
    static double ref[B * S * D];
    uint64_t rng = 8;
    trand_fill(&rng, x, B * S * D, -2, 2);
    trand_fill(&rng, y0, B * S * D, -2, 2);
    trand_fill(&rng, c, D, -1, 1);
    trand_fill(&rng, pos, S * D, -1, 1);
    int32_t meta[] = {0, 5, 7, 1, 2, 4, 6};

    /* PREPEND: CLS row, then the S-1 patch rows, positions added */
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++)
            for (int j = 0; j < D; j++)
                ref[((size_t)b * S + s) * D + j] =
                    (s == 0 ? (double)c[j] : (double)x[((size_t)b * (S - 1) + s - 1) * D + j]) + pos[(size_t)s * D + j];
    run_rows(ctx, (op_rows_params){.mode = OP_ROWS_PREPEND, .batch = B, .seq = S, .dim = D}, x, B * (S - 1) * D, c, pos,
             S * D, meta, 5, y0, B * S * D, ref);

    /* GATHER fixed (CLS pooling) and last valid token from meta lengths */
    for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++) ref[(size_t)b * D + j] = x[((size_t)b * S + 2) * D + j];
    run_rows(ctx, (op_rows_params){.mode = OP_ROWS_GATHER, .batch = B, .seq = S, .dim = D, .index = 2}, x, B * S * D, NULL, NULL, 0, meta, 5, y0, B * D, ref);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++) ref[(size_t)b * D + j] = x[((size_t)b * S + meta[1 + b] - 1) * D + j];
    run_rows(ctx, (op_rows_params){.mode = OP_ROWS_GATHER, .batch = B, .seq = S, .dim = D, .use_meta = true, .meta_index = 1}, x, B * S * D, NULL, NULL, 0, meta, 5, y0, B * D, ref);

    /* GATHER of whole rows by index (x_shared: beams reorder a cache): out row r is x row meta[1 + r] - 1 of S */
    for (int r = 0; r < 5; r++)
        for (int j = 0; j < D; j++) ref[(size_t)r * D + j] = x[(size_t)(meta[1 + r] - 1) * D + j];
    run_rows(ctx, (op_rows_params){.mode = OP_ROWS_GATHER, .batch = 5, .seq = S, .dim = D, .use_meta = true, .meta_index = 1, .x_shared = true},
             x, S * D, NULL, NULL, 0, meta, 7, y0, 5 * D, ref);

    /* MEAN under the mask given by meta lengths */
    for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int t = 0; t < meta[1 + b]; t++) s += x[((size_t)b * S + t) * D + j];
            ref[(size_t)b * D + j] = s / meta[1 + b];
        }
    run_rows(ctx, (op_rows_params){.mode = OP_ROWS_MEAN, .batch = B, .seq = S, .dim = D, .use_meta = true, .meta_index = 1}, x, B * S * D, NULL, NULL, 0, meta, 5, y0, B * D, ref);

    /* L2 normalisation of B*S rows */
    for (int r = 0; r < B * S; r++) {
        double s = 0;
        for (int j = 0; j < D; j++) s += (double)x[(size_t)r * D + j] * x[(size_t)r * D + j];
        for (int j = 0; j < D; j++) ref[(size_t)r * D + j] = x[(size_t)r * D + j] / sqrt(s);
    }
    run_rows(ctx, (op_rows_params){.mode = OP_ROWS_L2, .batch = B * S, .dim = D, .eps = 1e-12f}, x, B * S * D, NULL, NULL, 0, meta, 5, y0, B * S * D, ref);

    /* COPY 2 new rows per batch into a cache of S rows, each batch at its own
     * run-time position (2, 4, 6); the row past the cache (7) is dropped */
    for (int i = 0; i < B * S * D; i++) ref[i] = y0[i];
    for (int b = 0; b < B; b++)
        for (int s = 0; s < 2 && meta[4 + b] + s < S; s++)
            for (int j = 0; j < D; j++) ref[((size_t)b * S + meta[4 + b] + s) * D + j] = x[((size_t)b * 2 + s) * D + j];
    run_rows(ctx, (op_rows_params){.mode = OP_ROWS_COPY, .batch = B, .seq = 2, .dim = D, .y_bs = S * D, .use_meta = true, .meta_index = 4}, x, B * 2 * D, NULL, NULL, 0, meta, 7, y0, B * S * D, ref);
    tctx_destroy(ctx);
}
