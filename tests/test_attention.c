/* Fused attention against float64: head dims, packed QKV views, masks, KV cache. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct att_case {
    uint32_t B, S, H, D;
    bool causal, lengths;
    const int32_t *lens;
    const int32_t *mask;   /* [B, S] 0/1 key mask, or NULL */
    const int32_t *segs;   /* [B, S, 2] packed sequences: each query's key range, or NULL */
} att_case;

/* T5's relative position bias for the reference (NULL: none): score + table[buckets[clamp(j - i + center)] * H + h]. */
typedef struct rel_ref {
    const float *table, *buckets;
    uint32_t center;
} rel_ref;
static const rel_ref *g_rel;
/* Packed sequences for the reference (NULL: none): query i of batch b sees keys [g_seg[2(b Sq + i)], g_seg[.. + 1]). */
static const int32_t *g_seg;

static double rel_of(uint32_t j, uint32_t ipos, uint32_t h, uint32_t H)
{
    if (!g_rel) return 0;
    int64_t at = (int64_t)j - ipos + g_rel->center;
    at = at < 0 ? 0 : at > 2 * (int64_t)g_rel->center ? 2 * (int64_t)g_rel->center : at;
    return g_rel->table[(size_t)g_rel->buckets[at] * H + h];
}

/* Reference over [B, S, H*D] views q, k, v with token strides qs/ks/vs; query i
 * sits at position qpos + i (the causal limit and the relative bias). */
static void ref_attention(const float *q, const float *k, const float *v, uint32_t B, uint32_t Sq, uint32_t Skv,
                          uint32_t H, uint32_t D, uint32_t qrs, uint32_t krs, uint32_t qpos, bool causal,
                          const int32_t *lens, const int32_t *mask, double *o)
{
    double *s = malloc(Skv * sizeof(double));
    for (uint32_t b = 0; b < B; b++)
        for (uint32_t h = 0; h < H; h++)
            for (uint32_t i = 0; i < Sq; i++) {
                uint32_t n = Skv, j0 = 0;
                if (causal) n = BASE_MIN(n, qpos + i + 1);
                if (lens) n = BASE_MIN(n, (uint32_t)BASE_MAX(lens[b], 0));
                if (g_seg) j0 = (uint32_t)g_seg[2 * (b * Sq + i)], n = BASE_MIN(n, (uint32_t)g_seg[2 * (b * Sq + i) + 1]);
                double m = -INFINITY, sum = 0;
                for (uint32_t j = 0; j < n; j++) {
                    if (j < j0 || (mask && !mask[b * Skv + j])) {
                        s[j] = -INFINITY;
                        continue;
                    }
                    double d = 0;
                    for (uint32_t t = 0; t < D; t++)
                        d += (double)q[((size_t)b * Sq + i) * qrs + h * D + t] * k[((size_t)b * Skv + j) * krs + h * D + t];
                    s[j] = d / sqrt((double)D) + rel_of(j, qpos + i, h, H);
                    if (s[j] > m) m = s[j];
                }
                for (uint32_t j = 0; j < n; j++) sum += (s[j] = m == -INFINITY ? 0.0 : exp(s[j] - m));
                for (uint32_t t = 0; t < D; t++) {
                    double acc = 0;
                    for (uint32_t j = 0; j < n; j++) acc += s[j] * v[((size_t)b * Skv + j) * krs + h * D + t];
                    o[((size_t)b * Sq + i) * H * D + h * D + t] = sum > 0 ? acc / sum : 0.0;
                }
            }
    free(s);
}

/* Q, K, V read straight from one packed QKV projection output [B, S, 3*H*D]. */
static void check_packed(vkf_context *ctx, att_case c, op_dtype dt)
{
    vk_device *dev = tctx_dev(ctx);
    uint32_t HD = c.H * c.D, rs = 3 * HD;
    size_t nqkv = (size_t)c.B * c.S * rs, no = (size_t)c.B * c.S * HD;
    uint64_t rng = 3 + c.S * 7 + c.D;
    float *qkv = malloc(nqkv * 4), *o = malloc(no * 4);
    double *ref = malloc(no * 8);
    trand_fill(&rng, qkv, nqkv, -2, 2);
    tround(qkv, nqkv, dt);
    g_seg = c.segs;
    ref_attention(qkv, qkv + HD, qkv + 2 * HD, c.B, c.S, c.S, c.H, c.D, rs, rs, 0, c.causal, c.lengths ? c.lens : NULL, c.mask,
                  ref);
    g_seg = NULL;
    vk_buf bqkv = tbuf_upload(dev, qkv, nqkv, dt), bo = tbuf_alloc(dev, no, dt);
    /* meta: the key lengths, or the segments */
    vk_buf bm = c.segs ? tbuf_upload_i32(dev, c.segs, 2 * c.B * c.S) : tbuf_upload_i32(dev, c.lens ? c.lens : (int32_t[]){0}, c.lens ? c.B : 1);
    vk_buf bk = tbuf_upload_i32(dev, c.mask ? c.mask : (int32_t[]){0}, c.mask ? c.B * c.S : 1);
    op_ref all = op_ref_of(&bqkv);
    uint32_t es = op_dtype_size(dt);
    op_attention_params p = {
        .batch = c.B, .q_len = c.S, .kv_len = c.S, .heads = c.H, .head_dim = c.D,
        .q_rs = rs, .k_rs = rs, .v_rs = rs, .causal = c.causal, .key_lengths = c.lengths, .segments = c.segs != NULL, .dtype = dt,
    };
    op_list l = {0};
    vkf_status s = op_attention(dev, &p, all, op_ref_sub(all, HD * es, all.size - HD * es),
                                op_ref_sub(all, 2 * HD * es, all.size - 2 * HD * es), op_ref_of(&bm),
                                c.mask ? op_ref_of(&bk) : (op_ref){0}, op_ref_of(&bo), &l);
    cr_assert_eq(s, VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &bo, o, no, dt);
    double e = nmse_f32(o, ref, no);
    cr_assert_leq(e, dt == OP_F16 ? NMSE_F16 : NMSE_F32, "attention B%u S%u H%u D%u causal %d lengths %d segments %d %s: nmse %g",
                  c.B, c.S, c.H, c.D, c.causal, c.lengths, c.segs != NULL, dt == OP_F16 ? "f16" : "f32", e);
    vk_buf_free(dev, &bqkv);
    vk_buf_free(dev, &bo);
    vk_buf_free(dev, &bm);
    vk_buf_free(dev, &bk);
    free(qkv);
    free(o);
    free(ref);
}

Test(attention, head_dims_and_lengths)
{
    vkf_context *ctx = tctx_create(tcaps());
    static const uint32_t dims[] = {32, 64, 80, 128};
    static const uint32_t seqs[] = {1, 3, 17, 197};
    for (size_t d = 0; d < BASE_ARRAY_LEN(dims); d++)
        for (size_t s = 0; s < BASE_ARRAY_LEN(seqs); s++) {
            att_case c = {.B = 2, .S = seqs[s], .H = s % 2 ? 3 : 1, .D = dims[d]};
            check_packed(ctx, c, OP_F32);
            if (ctx->dev->caps.storage16 && s % 2) check_packed(ctx, c, OP_F16);
        }
    /* ViT-B/16: 12 heads of 64 over 197 tokens */
    check_packed(ctx, (att_case){.B = 1, .S = 197, .H = 12, .D = 64}, OP_F32);
    tctx_destroy(ctx);
}

Test(attention, masks)
{
    vkf_context *ctx = tctx_create(tcaps());
    int32_t lens[] = {13, 4, 0};
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        check_packed(ctx, (att_case){.B = 2, .S = 37, .H = 2, .D = 64, .causal = true}, dt);
        check_packed(ctx, (att_case){.B = 3, .S = 13, .H = 2, .D = 32, .lengths = true, .lens = lens}, dt);
        check_packed(ctx, (att_case){.B = 3, .S = 13, .H = 2, .D = 32, .causal = true, .lengths = true, .lens = lens}, dt);
        /* HF attention_mask: right and left padding, holes, one key, none */
        int32_t mask[4 * 17];
        for (int b = 0; b < 4; b++)
            for (int j = 0; j < 17; j++)
                mask[b * 17 + j] = b == 0 ? j < 11 : b == 1 ? j >= 6 : b == 2 ? (j % 3 != 1) : j == 16;
        check_packed(ctx, (att_case){.B = 4, .S = 17, .H = 3, .D = 64, .mask = mask}, dt);
        check_packed(ctx, (att_case){.B = 4, .S = 17, .H = 1, .D = 32, .causal = true, .mask = mask}, dt);
        int32_t none[17] = {0};
        check_packed(ctx, (att_case){.B = 1, .S = 17, .H = 1, .D = 32, .mask = none}, dt);
    }
    tctx_destroy(ctx);
}

/* Sequences of the given lengths packed into one token dimension of S (the
 * rest, if any, a tail of padding queries with no keys): segs [B, S, 2]. */
static int32_t *pack_segments(uint32_t B, uint32_t S, const uint32_t *lens, uint32_t n)
{
    int32_t *segs = malloc(2 * sizeof *segs * B * S);
    for (uint32_t b = 0; b < B; b++)
        for (uint32_t i = 0, k = 0, start = 0; i < S; i++) {
            while (k < n && i >= start + lens[k]) start += lens[k++];
            int32_t *s = segs + 2 * ((size_t)b * S + i);
            s[0] = k < n ? (int32_t)start : (int32_t)S;
            s[1] = k < n ? (int32_t)(start + lens[k]) : (int32_t)S;
        }
    return segs;
}

Test(attention, packed_sequences)
{
    vkf_context *ctx = tctx_create(tcaps());
    /* MiniLM-like: texts of 8 to 64 tokens, and a sequence of one token, packed without padding */
    static const uint32_t lens[] = {13, 1, 64, 8, 37, 22};
    uint32_t S = 0;
    for (size_t i = 0; i < BASE_ARRAY_LEN(lens); i++) S += lens[i];
    int32_t *segs = pack_segments(1, S, lens, BASE_ARRAY_LEN(lens));
    /* two batches, each packed differently, with padding queries at the end of the second */
    static const uint32_t lens2[] = {5, 17, 3};
    int32_t *segs2 = pack_segments(2, 29, lens2, BASE_ARRAY_LEN(lens2));
    int32_t *first = pack_segments(1, 29, (const uint32_t[]){29}, 1);
    memcpy(segs2, first, 2 * 29 * sizeof *segs2); /* batch 0: one sequence of all 29 */
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        check_packed(ctx, (att_case){.B = 1, .S = S, .H = 12, .D = 32, .segs = segs}, dt);
        check_packed(ctx, (att_case){.B = 1, .S = S, .H = 2, .D = 64, .segs = segs}, dt);
        /* CLIP's text tower: causal within each sequence */
        check_packed(ctx, (att_case){.B = 1, .S = S, .H = 3, .D = 64, .causal = true, .segs = segs}, dt);
        check_packed(ctx, (att_case){.B = 2, .S = 29, .H = 2, .D = 32, .segs = segs2}, dt);
    }
    free(segs), free(segs2), free(first);
    tctx_destroy(ctx);
}

/* n new queries at positions past..past+n-1 attend to a cache of past + n
 * keys; the position either baked into the dispatch or read from meta. */
static void check_kv_cache(vkf_context *ctx, uint32_t past, uint32_t n, bool dyn, op_dtype dt)
{
    vk_device *dev = tctx_dev(ctx);
    const uint32_t B = 2, H = 3, D = 64, CAP = 40, HD = H * D;
    size_t nc = (size_t)B * CAP * HD, nq = (size_t)B * n * HD;
    uint64_t rng = 11 + past * 3 + n;
    float *kc = malloc(nc * 4), *vc = malloc(nc * 4), *q = malloc(nq * 4), *o = malloc(nq * 4);
    double *ref = malloc(nq * 8);
    trand_fill(&rng, kc, nc, -2, 2);
    trand_fill(&rng, vc, nc, -2, 2);
    trand_fill(&rng, q, nq, -2, 2);
    tround(kc, nc, dt);
    tround(vc, nc, dt);
    tround(q, nq, dt);
    /* The reference sees exactly past + n keys per batch of the cache. */
    float *k = malloc((size_t)B * (past + n) * HD * 4), *v = malloc((size_t)B * (past + n) * HD * 4);
    for (uint32_t b = 0; b < B; b++)
        for (uint32_t j = 0; j < past + n; j++)
            for (uint32_t t = 0; t < HD; t++) {
                k[((size_t)b * (past + n) + j) * HD + t] = kc[((size_t)b * CAP + j) * HD + t];
                v[((size_t)b * (past + n) + j) * HD + t] = vc[((size_t)b * CAP + j) * HD + t];
            }
    ref_attention(q, k, v, B, n, past + n, H, D, HD, HD, past, true, NULL, NULL, ref);
    vk_buf bk = tbuf_upload(dev, kc, nc, dt), bv = tbuf_upload(dev, vc, nc, dt), bq = tbuf_upload(dev, q, nq, dt);
    vk_buf bo = tbuf_alloc(dev, nq, dt);
    int32_t meta[3] = {-1, (int32_t)past, -1};
    vk_buf bm = tbuf_upload_i32(dev, meta, 3);
    op_attention_params p = {
        .batch = B, .q_len = n, .kv_len = CAP, .heads = H, .head_dim = D, .causal = true, .kv_cache = true,
        .q_pos = dyn ? 0 : past, .dyn_pos = dyn, .pos_index = 1, .dtype = dt,
    };
    op_list l = {0};
    cr_assert_eq(op_attention(dev, &p, op_ref_of(&bq), op_ref_of(&bk), op_ref_of(&bv), op_ref_of(&bm), (op_ref){0}, op_ref_of(&bo), &l),
                 VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &bo, o, nq, dt);
    double e = nmse_f32(o, ref, nq);
    cr_assert_leq(e, dt == OP_F16 ? NMSE_F16 : NMSE_F32, "kv cache past %u n %u dyn %d: nmse %g", past, n, dyn, e);
    vk_buf_free(dev, &bk);
    vk_buf_free(dev, &bv);
    vk_buf_free(dev, &bq);
    vk_buf_free(dev, &bo);
    vk_buf_free(dev, &bm);
    free(kc);
    free(vc);
    free(q);
    free(o);
    free(k);
    free(v);
    free(ref);
}

Test(attention, kv_cache)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        check_kv_cache(ctx, 0, 10, false, dt);  /* prompt */
        check_kv_cache(ctx, 10, 1, false, dt);  /* decode step */
        check_kv_cache(ctx, 17, 1, true, dt);   /* decode, position from meta */
        check_kv_cache(ctx, 30, 4, true, dt);
        check_kv_cache(ctx, 39, 1, true, dt);   /* the last cache slot */
    }
    tctx_destroy(ctx);
}

Test(attention, rejects_bad_arguments)
{
    vkf_context *ctx = tctx_create(NULL);
    vk_device *dev = tctx_dev(ctx);
    vk_buf b = tbuf_alloc(dev, 1024, OP_F32);
    op_ref r = op_ref_of(&b);
    op_list l = {0};
    op_attention_params p = {.batch = 1, .q_len = 4, .kv_len = 4, .heads = 2, .head_dim = 30};
    cr_assert_eq(op_attention(dev, &p, r, r, r, (op_ref){0}, (op_ref){0}, r, &l), VKF_ERROR_UNSUPPORTED);
    p.head_dim = 64;
    p.q_len = 100;
    cr_assert_eq(op_attention(dev, &p, r, r, r, (op_ref){0}, (op_ref){0}, r, &l), VKF_ERROR_SHAPE);
    cr_assert_eq(l.n, 0);
    vk_buf_free(dev, &b);
    tctx_destroy(ctx);
}

/* Decode attention split over keys: one query per sequence against a cache
 * laid out [B, CAP, 2, H*D] (K then V per position, as GPT-2's session keeps
 * it), each sequence with its own key count, some past a chunk boundary. */
static void check_split(vkf_context *ctx, uint32_t B, uint32_t H, uint32_t D, uint32_t CAP, const int32_t *lens, op_dtype dt)
{
    /* with g_rel: the query sits at its sequence's last position (lens[b] - 1) */
    vk_device *dev = tctx_dev(ctx);
    uint32_t HD = H * D;
    size_t nc = (size_t)B * CAP * 2 * HD, nq = (size_t)B * HD;
    uint64_t rng = 5 + CAP + D;
    float *kv = malloc(nc * 4), *q = malloc(nq * 4), *o = malloc(nq * 4);
    double *ref = malloc(nq * 8);
    trand_fill(&rng, kv, nc, -2, 2);
    trand_fill(&rng, q, nq, -2, 2);
    tround(kv, nc, dt);
    tround(q, nq, dt);
    for (uint32_t b = 0; b < B; b++) /* the reference: one batch at a time, its own key count */
        ref_attention(q + (size_t)b * HD, kv + (size_t)b * CAP * 2 * HD, kv + (size_t)b * CAP * 2 * HD + HD, 1, 1,
                      (uint32_t)lens[b], H, D, HD, 2 * HD, g_rel ? (uint32_t)lens[b] - 1 : 0, false, NULL, NULL, ref + (size_t)b * HD);
    op_attention_params p = {.batch = B, .q_len = 1, .kv_len = CAP, .heads = H, .head_dim = D, .k_rs = 2 * HD,
                             .v_rs = 2 * HD, .key_lengths = true, .len_index = 2, .rel_bias = g_rel != NULL,
                             .rel_center = g_rel ? g_rel->center : 0, .dtype = dt};
    vk_buf brt = {0}, brb = {0};
    if (g_rel) brt = tbuf_upload(tctx_dev(ctx), g_rel->table, 32 * H, dt), brb = tbuf_upload(tctx_dev(ctx), g_rel->buckets, 2 * g_rel->center + 1, dt);
    uint64_t ns = op_attention_split_scratch(dev, &p);
    vk_buf bkv = tbuf_upload(dev, kv, nc, dt), bq = tbuf_upload(dev, q, nq, dt), bo = tbuf_alloc(dev, nq, dt);
    vk_buf bs = tbuf_alloc(dev, ns, OP_F32);
    int32_t meta[16] = {7, 7};
    for (uint32_t b = 0; b < B; b++) meta[2 + b] = lens[b];
    vk_buf bm = tbuf_upload_i32(dev, meta, 16);
    op_ref rkv = op_ref_of(&bkv);
    op_list l = {0};
    cr_assert_eq(op_attention_split_rel(dev, &p, op_ref_of(&bq), rkv, op_ref_sub(rkv, (uint64_t)HD * op_dtype_size(dt), rkv.size - (uint64_t)HD * op_dtype_size(dt)),
                                        op_ref_of(&bm), g_rel ? op_ref_of(&brt) : (op_ref){0}, g_rel ? op_ref_of(&brb) : (op_ref){0},
                                        op_ref_of(&bs), op_ref_of(&bo), &l),
                 VKF_OK, "%s", vkf_last_error(ctx));
    if (g_rel) vk_buf_free(dev, &brt), vk_buf_free(dev, &brb);
    trun(ctx, &l);
    tbuf_download(dev, &bo, o, nq, dt);
    double e = nmse_f32(o, ref, nq);
    cr_assert_leq(e, dt == OP_F16 ? NMSE_F16 : NMSE_F32, "split attention B %u D %u cap %u: nmse %g", B, D, CAP, e);
    vk_buf_free(dev, &bkv);
    vk_buf_free(dev, &bq);
    vk_buf_free(dev, &bo);
    vk_buf_free(dev, &bs);
    vk_buf_free(dev, &bm);
    free(kv);
    free(q);
    free(o);
    free(ref);
}

Test(attention, split_decode)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        check_split(ctx, 1, 4, 16, 64, (int32_t[]){10}, dt);
        check_split(ctx, 3, 2, 64, 300, (int32_t[]){1, 129, 300}, dt);   /* chunk edges, a full cache */
        check_split(ctx, 2, 3, 12, 520, (int32_t[]){257, 64}, dt);       /* head size not a multiple of 8 */
        check_split(ctx, 2, 1, 256, 40, (int32_t[]){40, 39}, dt);
    }
    tctx_destroy(ctx);
}

/* T5's relative position bias: a random [32, H] table and bucket ids, rounded
 * to the storage type; full attention (bidirectional and causal, a key mask,
 * relative positions past the table's centre clamped) and split decode. */
static void check_rel_full(vkf_context *ctx, uint32_t B, uint32_t S, uint32_t H, uint32_t D, bool causal, uint32_t center, op_dtype dt)
{
    vk_device *dev = tctx_dev(ctx);
    uint32_t HD = H * D;
    size_t n = (size_t)B * S * HD;
    uint64_t rng = 17 + S + center;
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o = malloc(n * 4);
    double *ref = malloc(n * 8);
    trand_fill(&rng, q, n, -1, 1), trand_fill(&rng, k, n, -1, 1), trand_fill(&rng, v, n, -1, 1);
    tround(q, n, dt), tround(k, n, dt), tround(v, n, dt);
    int32_t mask[64];
    for (uint32_t i = 0; i < B * S; i++) mask[i] = (i % S) != 3 || i < S; /* a hole in every sequence but the first */
    ref_attention(q, k, v, B, S, S, H, D, HD, HD, 0, causal, NULL, mask, ref);
    op_attention_params p = {.batch = B, .q_len = S, .kv_len = S, .heads = H, .head_dim = D, .causal = causal, .rel_bias = true,
                             .rel_center = center, .dtype = dt};
    vk_buf bq = tbuf_upload(dev, q, n, dt), bk = tbuf_upload(dev, k, n, dt), bv = tbuf_upload(dev, v, n, dt), bo = tbuf_alloc(dev, n, dt);
    vk_buf bm = tbuf_upload_i32(dev, mask, B * S);
    vk_buf brt = tbuf_upload(dev, g_rel->table, 32 * H, dt), brb = tbuf_upload(dev, g_rel->buckets, 2 * center + 1, dt);
    op_list l = {0};
    cr_assert_eq(op_attention_rel(dev, &p, op_ref_of(&bq), op_ref_of(&bk), op_ref_of(&bv), (op_ref){0}, op_ref_of(&bm), op_ref_of(&brt),
                                  op_ref_of(&brb), op_ref_of(&bo), &l),
                 VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &bo, o, n, dt);
    double e = nmse_f32(o, ref, n);
    cr_assert_leq(e, dt == OP_F16 ? NMSE_F16 : NMSE_F32, "relative bias S %u causal %d centre %u: nmse %g", S, causal, center, e);
    vk_buf_free(dev, &bq), vk_buf_free(dev, &bk), vk_buf_free(dev, &bv), vk_buf_free(dev, &bo), vk_buf_free(dev, &bm);
    vk_buf_free(dev, &brt), vk_buf_free(dev, &brb);
    free(q), free(k), free(v), free(o), free(ref);
}

Test(attention, relative_bias)
{
    vkf_context *ctx = tctx_create(tcaps());
    static float table[32 * 4], buckets[2 * 300 + 1];
    uint64_t rng = 77;
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        trand_fill(&rng, table, 32 * 4, -3, 3);
        tround(table, 32 * 4, dt);
        for (uint32_t i = 0; i < 2 * 300 + 1; i++) buckets[i] = (float)(trand_u64(&rng) % 32);
        for (uint32_t c = 0; c < 2; c++) {
            uint32_t center = c ? 6 : 300; /* 6: positions past the centre clamp to the table's ends */
            rel_ref r = {table, buckets + (c ? 0 : 0), center};
            g_rel = &r;
            check_rel_full(ctx, 2, 13, 3, 16, false, center, dt);
            check_rel_full(ctx, 2, 13, 3, 16, true, center, dt);
            check_split(ctx, 3, 4, 16, 300, (int32_t[]){1, 129, 300}, dt);
            g_rel = NULL;
        }
    }
    tctx_destroy(ctx);
}

/* DeBERTa's relative position of i - j: itself, or log-bucketed (HF's
 * make_log_bucket_position, in double). */
static int deb_bucket(int rel, int bucket_size, int max_pos)
{
    if (bucket_size <= 0) return rel;
    int mid = bucket_size / 2, sign = rel > 0 ? 1 : rel < 0 ? -1 : 0;
    int abs_pos = rel < mid && rel > -mid ? mid - 1 : abs(rel);
    if (abs_pos <= mid) return rel;
    return sign * (int)(ceil(log((double)abs_pos / mid) / log((double)(max_pos - 1) / mid) * (mid - 1)) + mid);
}

/* Disentangled attention (DeBERTa) against float64 written as HF writes it:
 * scores q.k + q.pk[c2p(i, j)] + k_j.pq[p2c(j, i)], all over sqrt(D * (1 +
 * terms)), c2p = clamp(rel(i, j) + span), p2c = clamp(-rel(j, i) + span), a
 * key mask with a hole; the op sees only the projected rows the sequence
 * reaches (lo..hi) when narrow. */
static void check_disentangled(vkf_context *ctx, uint32_t terms, int buckets, int max_pos, int span, bool narrow, op_dtype dt)
{
    vk_device *dev = tctx_dev(ctx);
    const uint32_t B = 2, S = 19, H = 3, D = 12, HD = H * D;
    size_t n = (size_t)B * S * HD, nt = (size_t)2 * span * 2 * HD;
    uint64_t rng = 91 + terms * 7 + (uint64_t)span + narrow;
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o = malloc(n * 4), *pqk = malloc(nt * 4);
    double *ref = malloc(n * 8), sc[19];
    trand_fill(&rng, q, n, -1, 1), trand_fill(&rng, k, n, -1, 1), trand_fill(&rng, v, n, -1, 1), trand_fill(&rng, pqk, nt, -1, 1);
    tround(q, n, dt), tround(k, n, dt), tround(v, n, dt), tround(pqk, nt, dt);
    int32_t mask[2 * 19];
    for (uint32_t i = 0; i < B * S; i++) mask[i] = i != S + 4;
    double scale = 1.0 / sqrt((double)D * (1 + (terms & 1) + (terms >> 1)));
    for (uint32_t b = 0; b < B; b++)
        for (uint32_t h = 0; h < H; h++)
            for (uint32_t i = 0; i < S; i++) {
                double m = -INFINITY, sum = 0;
                const float *qi = q + ((size_t)b * S + i) * HD + h * D;
                for (uint32_t j = 0; j < S; j++) {
                    const float *kj = k + ((size_t)b * S + j) * HD + h * D;
                    int c2p = deb_bucket((int)i - (int)j, buckets, max_pos) + span, p2c = -deb_bucket((int)j - (int)i, buckets, max_pos) + span;
                    c2p = c2p < 0 ? 0 : c2p > 2 * span - 1 ? 2 * span - 1 : c2p;
                    p2c = p2c < 0 ? 0 : p2c > 2 * span - 1 ? 2 * span - 1 : p2c;
                    double d = 0;
                    for (uint32_t t = 0; t < D; t++) {
                        d += (double)qi[t] * kj[t];
                        if (terms & 1) d += (double)qi[t] * pqk[(size_t)c2p * 2 * HD + HD + h * D + t];
                        if (terms & 2) d += (double)kj[t] * pqk[(size_t)p2c * 2 * HD + h * D + t];
                    }
                    sc[j] = mask[b * S + j] ? d * scale : -INFINITY;
                    if (sc[j] > m) m = sc[j];
                }
                for (uint32_t j = 0; j < S; j++) sum += (sc[j] = exp(sc[j] - m));
                for (uint32_t t = 0; t < D; t++) {
                    double acc = 0;
                    for (uint32_t j = 0; j < S; j++) acc += sc[j] * v[((size_t)b * S + j) * HD + h * D + t];
                    ref[((size_t)b * S + i) * HD + h * D + t] = acc / sum;
                }
            }
    /* the bucket table of i - j over [-P, P], and the rows the graph would project */
    const int P = 40;
    float table[2 * 40 + 1];
    for (int x = -P; x <= P; x++) table[x + P] = (float)deb_bucket(x, buckets, max_pos);
    int lo = 0, hi = 2 * span - 1;
    if (narrow) {
        lo = deb_bucket(-(int)(S - 1), buckets, max_pos) + span, hi = deb_bucket((int)S - 1, buckets, max_pos) + span;
        lo = lo < 0 ? 0 : lo, hi = hi > 2 * span - 1 ? 2 * span - 1 : hi;
    }
    op_attention_params p = {.batch = B, .q_len = S, .kv_len = S, .heads = H, .head_dim = D, .scale = (float)scale, .dis = terms,
                             .rel_center = P, .dis_off = span - lo, .dis_rows = (uint32_t)(hi - lo + 1), .dtype = dt};
    vk_buf bq = tbuf_upload(dev, q, n, dt), bk = tbuf_upload(dev, k, n, dt), bv = tbuf_upload(dev, v, n, dt), bo = tbuf_alloc(dev, n, dt);
    vk_buf bm = tbuf_upload_i32(dev, mask, B * S);
    vk_buf bt = tbuf_upload(dev, pqk + (size_t)lo * 2 * HD, (size_t)(hi - lo + 1) * 2 * HD, dt), bb = tbuf_upload(dev, table, 2 * P + 1, dt);
    op_list l = {0};
    cr_assert_eq(op_attention_rel(dev, &p, op_ref_of(&bq), op_ref_of(&bk), op_ref_of(&bv), (op_ref){0}, op_ref_of(&bm), op_ref_of(&bt),
                                  op_ref_of(&bb), op_ref_of(&bo), &l),
                 VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &bo, o, n, dt);
    double e = nmse_f32(o, ref, n);
    cr_assert_leq(e, dt == OP_F16 ? NMSE_F16 : NMSE_F32, "disentangled terms %u buckets %d span %d narrow %d: nmse %g", terms, buckets,
                  span, narrow, e);
    vk_buf_free(dev, &bq), vk_buf_free(dev, &bk), vk_buf_free(dev, &bv), vk_buf_free(dev, &bo), vk_buf_free(dev, &bm);
    vk_buf_free(dev, &bt), vk_buf_free(dev, &bb);
    free(q), free(k), free(v), free(o), free(pqk), free(ref);
}

Test(attention, disentangled)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        for (uint32_t terms = 1; terms <= 3; terms++) {
            check_disentangled(ctx, terms, -1, 0, 8, false, dt);  /* v1: span 8 < 19 tokens: positions clamp */
            check_disentangled(ctx, terms, -1, 0, 32, true, dt);  /* v1 span 32: only the rows reached */
            check_disentangled(ctx, terms, 8, 32, 8, false, dt);  /* v2: log buckets */
            check_disentangled(ctx, terms, 8, 32, 8, true, dt);
        }
    }
    /* both a relative bias and disentangled terms: refused */
    op_attention_params p = {.batch = 1, .q_len = 4, .kv_len = 4, .heads = 1, .head_dim = 4, .dis = 3, .rel_bias = true,
                             .rel_center = 4, .dis_rows = 2};
    vk_device *dev = tctx_dev(ctx);
    vk_buf b = tbuf_alloc(dev, 64, OP_F32);
    op_list l = {0};
    cr_expect_neq(op_attention_rel(dev, &p, op_ref_of(&b), op_ref_of(&b), op_ref_of(&b), (op_ref){0}, (op_ref){0}, op_ref_of(&b),
                                   op_ref_of(&b), op_ref_of(&b), &l),
                  VKF_OK);
    vk_buf_free(dev, &b);
    op_list_free(&l);
    tctx_destroy(ctx);
}

/* Top-k against a sort on the host: ties to the lower index, NaN skipped. */
Test(attention, topk)
{
    vkf_context *ctx = tctx_create(tcaps());
    vk_device *dev = tctx_dev(ctx);
    enum { R = 3, C = 50257, K = 50 };
    static float x[R * C], vals[R * K];
    static int32_t idx[R * K];
    uint64_t rng = 99;
    trand_fill(&rng, x, R * C, -8, 8);
    for (int i = 0; i < C; i += 1000) x[C + i] = 9.0f;  /* row 1: 51 ties above the rest: 50 by index */
    x[2 * C + 5] = NAN, x[2 * C + 6] = 100.0f;           /* row 2: NaN skipped */
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !dev->caps.storage16) continue;
        static float xr[R * C];
        memcpy(xr, x, sizeof x);
        tround(xr, R * C, dt);
        vk_buf bx = tbuf_upload(dev, xr, R * C, dt), bv = tbuf_alloc(dev, R * K, OP_F32), bi = tbuf_alloc(dev, R * K, OP_F32);
        op_list l = {0};
        op_topk_params p = {.rows = R, .cols = C, .k = K, .dtype = dt};
        cr_assert_eq(op_topk(dev, &p, op_ref_of(&bx), op_ref_of(&bv), op_ref_of(&bi), &l), VKF_OK, "%s", vkf_last_error(ctx));
        trun(ctx, &l);
        tbuf_download(dev, &bv, vals, R * K, OP_F32);
        cr_assert_eq(vk_download(dev, &bi, 0, idx, sizeof idx), VKF_OK);
        for (int r = 0; r < R; r++) {
            bool *used = calloc(C, 1);
            for (int j = 0; j < K; j++) {
                int best = -1;
                for (int i = 0; i < C; i++) {
                    float v = xr[r * C + i];
                    if (used[i] || isnan(v)) continue;
                    if (best < 0 || v > xr[r * C + best]) best = i;
                }
                used[best] = true;
                cr_assert_eq(idx[r * K + j], best, "row %d pick %d: index %d (%.9g), expected %d (%.9g)", r, j, idx[r * K + j], idx[r * K + j] >= 0 ? xr[r * C + idx[r * K + j]] : 0.0, best, xr[r * C + best]);
                cr_assert_eq(vals[r * K + j], xr[r * C + best]);
            }
            free(used);
        }
        vk_buf_free(dev, &bx);
        vk_buf_free(dev, &bv);
        vk_buf_free(dev, &bi);
    }
    tctx_destroy(ctx);
}
