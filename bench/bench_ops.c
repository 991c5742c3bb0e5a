/* vkformer-bench ops: every op and variant on the shapes real models use. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef VKF_HAVE_BLAS
#include <cblas.h>
#endif

/* Device buffers for one entry, filled with small random values. */
typedef struct bufs {
    vk_buf b[6];
    int n;
} bufs;

static vkf_status make_buf(vk_device *dev, bufs *bs, uint64_t elems, op_dtype t, op_ref *ref)
{
    vk_buf *b = &bs->b[bs->n];
    size_t bytes = elems * op_dtype_size(t);
    vkf_status st = vk_buf_alloc(dev, bytes, VK_MEM_DEVICE, "bench tensor", b);
    if (st != VKF_OK) return st;
    bs->n++;
    void *host = malloc(bytes);
    if (!host) return VKF_ERROR_OUT_OF_MEMORY;
    uint64_t s = 0x2545f4914f6cdd1dull + elems;
    for (uint64_t i = 0; i < elems; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        float v = ((float)(s >> 40) / 16777216.0f - 0.5f) * 0.2f;
        if (t == OP_F16)
            ((uint16_t *)host)[i] = base_f32_to_f16(v);
        else
            ((float *)host)[i] = v;
    }
    st = vk_upload(dev, b, 0, host, bytes);
    free(host);
    *ref = op_ref_of(b);
    return st;
}

static void free_bufs(vk_device *dev, bufs *bs)
{
    for (int i = 0; i < bs->n; i++) vk_buf_free(dev, &bs->b[i]);
    bs->n = 0;
}

/* OpenBLAS sgemm on the same shape and layout, median of repeats (microseconds). */
static double blas_us(const bench_opts *o, uint32_t M, uint32_t K, uint32_t N, op_w_layout layout)
{
#ifdef VKF_HAVE_BLAS
    if (!o->blas) return 0;
    float *a = calloc((size_t)M * K, 4), *b = calloc((size_t)K * N, 4), *c = calloc((size_t)M * N, 4);
    double *times = calloc((size_t)o->repeat, sizeof(double));
    double med = 0;
    if (a && b && c && times) {
        for (int i = 0; i < o->warmup + o->repeat; i++) {
            double t0 = base_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, layout == OP_W_NT ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                        (int)K, 1.0f, a, (int)K, b, layout == OP_W_NT ? (int)K : (int)N, 0.0f, c, (int)N);
            if (i >= o->warmup) times[i - o->warmup] = (base_now() - t0) * 1e6;
        }
        med = bench_median(times, o->repeat);
    }
    free(a);
    free(b);
    free(c);
    free(times);
    return med;
#else
    (void)o, (void)M, (void)K, (void)N, (void)layout;
    return 0;
#endif
}

static const char *dtype_name(op_dtype t) { return t == OP_F16 ? "f16" : "f32"; }

/* Times the list and appends the row; frees the list. */
static int finish(vk_device *dev, const bench_opts *o, bench_table *t, bench_row *r, op_list *l, vkf_status built)
{
    int rc = 0;
    if (built == VKF_OK) {
        r->dispatches = (int)l->n;
        if (bench_time_list(dev, l, o, &r->us, &r->min_us) == VKF_OK) {
            bench_table_add(t, r);
        } else {
            fprintf(stderr, "vkformer-bench: %s %s %s: %s\n", r->op, r->variant, r->shape, base_diag_error(dev->diag));
            rc = 1;
        }
    } else {
        fprintf(stderr, "vkformer-bench: %s %s %s: %s\n", r->op, r->variant, r->shape, base_diag_error(dev->diag));
        rc = 1;
    }
    op_list_free(l);
    return rc;
}

typedef struct mm_shape {
    const char *what;
    uint32_t M, K, N;
    op_w_layout layout;
    op_act act;
} mm_shape;

static const mm_shape mm_shapes[] = {
    {"vit-b qkv", 197, 768, 2304, OP_W_NT, OP_ACT_NONE},
    {"vit-b proj", 197, 768, 768, OP_W_NT, OP_ACT_NONE},
    {"vit-b fc1", 197, 768, 3072, OP_W_NT, OP_ACT_GELU},
    {"vit-b fc2", 197, 3072, 768, OP_W_NT, OP_ACT_NONE},
    {"bert fc1", 128, 768, 3072, OP_W_NT, OP_ACT_GELU},
    {"clip-b32 fc1", 50, 768, 3072, OP_W_NT, OP_ACT_QUICK_GELU},
    {"clip-b32 fc2", 50, 3072, 768, OP_W_NT, OP_ACT_NONE},
    {"gpt2 qkv", 1, 768, 2304, OP_W_NN, OP_ACT_NONE},
    {"gpt2 head", 1, 768, 50257, OP_W_NT, OP_ACT_NONE},
};

static int bench_matmul(vk_device *dev, const bench_opts *o, bench_table *t, op_dtype dt)
{
    int rc = 0;
    for (size_t s = 0; s < BASE_ARRAY_LEN(mm_shapes); s++) {
        const mm_shape *ms = &mm_shapes[s];
        op_matmul_params p = {.M = ms->M, .N = ms->N, .K = ms->K, .layout = ms->layout, .bias = true,
                              .act = ms->act, .dtype = dt};
        op_matmul_variant auto_v = op_matmul_choose(dev, &p);
        double blas = -1;
        for (int v = OP_MATMUL_CPU; v <= OP_MATMUL_SMALL; v++) {
            if (!o->all_variants && v != (int)auto_v) continue;
            if (v == OP_MATMUL_SMALL && ms->M > 8) continue;
            if (v == OP_MATMUL_CPU && dev->real.subgroup_max < 8) continue;
            bench_row r = {.op = "matmul", .flops = 2.0 * ms->M * ms->N * ms->K,
                           .bytes = (double)(ms->M * ms->K + ms->K * ms->N + ms->M * ms->N) * op_dtype_size(dt)};
            snprintf(r.variant, sizeof r.variant, "%s%s", op_matmul_variant_name((op_matmul_variant)v),
                     v == (int)auto_v ? "*" : "");
            snprintf(r.shape, sizeof r.shape, "%ux%ux%u %s", ms->M, ms->K, ms->N, ms->layout == OP_W_NT ? "nt" : "nn");
            snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
            if (!bench_selected(o, &r)) continue;
            p.variant = (op_matmul_variant)v;
            bufs bs = {0};
            op_ref x, w, b, y;
            op_list l = {0};
            vkf_status st = make_buf(dev, &bs, (uint64_t)ms->M * ms->K, dt, &x);
            if (st == VKF_OK) st = make_buf(dev, &bs, (uint64_t)ms->K * ms->N, dt, &w);
            if (st == VKF_OK) st = make_buf(dev, &bs, ms->N, dt, &b);
            if (st == VKF_OK) st = make_buf(dev, &bs, (uint64_t)ms->M * ms->N, dt, &y);
            if (st == VKF_OK) st = op_matmul(dev, &p, x, w, b, (op_ref){0}, y, &l);
            if (dt == OP_F32) {
                if (blas < 0) blas = blas_us(o, ms->M, ms->K, ms->N, ms->layout);
                r.blas_us = blas;
            }
            rc |= finish(dev, o, t, &r, &l, st);
            free_bufs(dev, &bs);
        }
    }
    return rc;
}

static int bench_rowwise(vk_device *dev, const bench_opts *o, bench_table *t, op_dtype dt)
{
    int rc = 0;
    uint32_t es = op_dtype_size(dt);
    struct {
        const char *op, *shape;
        uint32_t rows, cols;
        int kind; /* 0 softmax, 1 layernorm, 2 layernorm + residual, 3 gelu, 4 rmsnorm (T5) */
    } cases[] = {
        {"softmax", "12x197x197", 12 * 197, 197, 0},
        {"softmax", "12x128x128", 12 * 128, 128, 0},
        {"layernorm", "197x768", 197, 768, 1},
        {"layernorm", "197x768 +res", 197, 768, 2},
        {"rmsnorm", "128x512 +res", 128, 512, 4},
        {"gelu", "197x3072", 197, 3072, 3},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) {
        bench_row r = {0};
        snprintf(r.op, sizeof r.op, "%s", cases[i].op);
        snprintf(r.variant, sizeof r.variant, "%s", op_reduce_suffix(dev)[0] ? "nosg" : "auto");
        snprintf(r.shape, sizeof r.shape, "%s", cases[i].shape);
        snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
        if (!bench_selected(o, &r)) continue;
        uint64_t n = (uint64_t)cases[i].rows * cases[i].cols;
        bufs bs = {0};
        op_ref x, y, res, w, b;
        op_list l = {0};
        vkf_status st = make_buf(dev, &bs, n, dt, &x);
        if (st == VKF_OK) st = make_buf(dev, &bs, n, dt, &y);
        if (st == VKF_OK) st = make_buf(dev, &bs, n, dt, &res);
        if (st == VKF_OK) st = make_buf(dev, &bs, cases[i].cols, dt, &w);
        if (st == VKF_OK) st = make_buf(dev, &bs, cases[i].cols, dt, &b);
        if (st == VKF_OK) {
            switch (cases[i].kind) {
            case 0: {
                op_softmax_params p = {.rows = cases[i].rows, .cols = cases[i].cols, .scale = 0.125f, .dtype = dt};
                st = op_softmax(dev, &p, x, (op_ref){0}, y, &l);
                r.bytes = 2.0 * n * es;
                break;
            }
            case 1:
            case 2:
            case 4: {
                bool resid = cases[i].kind != 1;
                op_layernorm_params p = {.rows = cases[i].rows, .cols = cases[i].cols, .eps = 1e-6f,
                                         .residual = resid, .write_sum = resid, .rms = cases[i].kind == 4, .dtype = dt};
                st = op_layernorm(dev, &p, x, res, w, b, resid ? x : (op_ref){0}, y, &l);
                r.bytes = (resid ? 4.0 : 2.0) * n * es;
                break;
            }
            default: {
                op_eltwise_params p = {.kind = OP_ACT, .act = OP_ACT_GELU, .n = n, .dtype = dt};
                st = op_eltwise(dev, &p, x, (op_ref){0}, y, &l);
                r.bytes = 2.0 * n * es;
            }
            }
        }
        rc |= finish(dev, o, t, &r, &l, st);
        free_bufs(dev, &bs);
    }
    return rc;
}

static int bench_attention(vk_device *dev, const bench_opts *o, bench_table *t, op_dtype dt)
{
    int rc = 0;
    struct {
        const char *shape;
        uint32_t B, Sq, Skv, H, D;
        bool causal, cache, rel;
        uint32_t dis; /* DeBERTa's disentangled terms */
    } cases[] = {
        {"vit-b 197 h12", 1, 197, 197, 12, 64, false, false, false, 0},
        {"bert 128 h12", 1, 128, 128, 12, 64, false, false, false, 0},
        {"gpt2 1/1024 h12", 1, 1, 1024, 12, 64, true, true, false, 0},
        {"gpt2 64/64 h12", 1, 64, 64, 12, 64, true, false, false, 0},
        {"t5-small 128 h8 rel", 1, 128, 128, 8, 64, false, false, true, 0}, /* T5's relative position bias */
        /* DeBERTa-v3-base: c2p and p2c over the 255 projected relative rows 128 tokens reach */
        {"deberta-v3 128 h12 c2p|p2c", 1, 128, 128, 12, 64, false, false, false, 3},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) {
        bench_row r = {.op = "attention", .variant = "auto"};
        snprintf(r.shape, sizeof r.shape, "%s", cases[i].shape);
        snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
        if (!bench_selected(o, &r)) continue;
        uint32_t HD = cases[i].H * cases[i].D;
        uint64_t keys = cases[i].cache ? cases[i].Skv : cases[i].Sq;
        bufs bs = {0};
        op_ref q, k, v, out;
        op_list l = {0};
        vkf_status st = make_buf(dev, &bs, (uint64_t)cases[i].B * cases[i].Sq * HD, dt, &q);
        if (st == VKF_OK) st = make_buf(dev, &bs, (uint64_t)cases[i].B * cases[i].Skv * HD, dt, &k);
        if (st == VKF_OK) st = make_buf(dev, &bs, (uint64_t)cases[i].B * cases[i].Skv * HD, dt, &v);
        if (st == VKF_OK) st = make_buf(dev, &bs, (uint64_t)cases[i].B * cases[i].Sq * HD, dt, &out);
        op_ref rt = {0}, rb = {0}; /* relative bias: a [32, H] table, bucket ids (zeros: bucket 0) */
        if (st == VKF_OK && cases[i].rel) st = make_buf(dev, &bs, 32ull * cases[i].H, dt, &rt);
        if (st == VKF_OK && cases[i].rel) st = make_buf(dev, &bs, 2ull * cases[i].Skv + 1, dt, &rb);
        uint32_t rows = 2 * cases[i].Skv - 1; /* bucket ids zero: every score reads row Skv - 1 */
        if (st == VKF_OK && cases[i].dis) st = make_buf(dev, &bs, (uint64_t)rows * 2 * HD, dt, &rt);
        if (st == VKF_OK && cases[i].dis) st = make_buf(dev, &bs, 2ull * cases[i].Skv + 1, dt, &rb);
        op_attention_params p = {
            .batch = cases[i].B, .q_len = cases[i].Sq, .kv_len = cases[i].Skv, .heads = cases[i].H,
            .head_dim = cases[i].D, .causal = cases[i].causal, .kv_cache = cases[i].cache,
            .q_pos = cases[i].cache ? cases[i].Skv - 1 : 0, .rel_bias = cases[i].rel,
            .rel_center = cases[i].rel || cases[i].dis ? cases[i].Skv : 0, .dis = cases[i].dis,
            .dis_off = (int32_t)cases[i].Skv - 1, .dis_rows = cases[i].dis ? rows : 0, .dtype = dt,
        };
        if (st == VKF_OK) st = op_attention_rel(dev, &p, q, k, v, (op_ref){0}, (op_ref){0}, rt, rb, out, &l);
        double pairs = (double)cases[i].Sq * keys * (cases[i].causal && !cases[i].cache ? 0.5 : 1.0);
        r.flops = (4.0 + 2.0 * ((cases[i].dis & 1) + (cases[i].dis >> 1))) * cases[i].B * cases[i].H * pairs * cases[i].D;
        rc |= finish(dev, o, t, &r, &l, st);
        free_bufs(dev, &bs);
    }
    /* a MiniLM batch of 32 texts of 8 to 64 tokens: padded to 64 (key lengths), and
       packed into one token dimension (segments); GFLOP/s count the texts' own work */
    uint32_t lens[32], total = 0;
    double pairs = 0;
    for (uint32_t i = 0; i < 32; i++) lens[i] = 8 + (i * 37) % 57, total += lens[i], pairs += (double)lens[i] * lens[i];
    for (int packed = 0; packed < 2; packed++) {
        const uint32_t H = 12, D = 32, HD = H * D, B = packed ? 1 : 32, S = packed ? total : 64;
        bench_row r = {.op = "attention", .variant = "auto"};
        snprintf(r.shape, sizeof r.shape, "minilm 32x8..64 h12 %s", packed ? "packed" : "padded");
        snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
        if (!bench_selected(o, &r)) continue;
        uint32_t n_meta = packed ? 2 * total : 32;
        int32_t *meta_v = malloc(n_meta * sizeof *meta_v);
        for (uint32_t i = 0, at = 0; meta_v && i < 32; at += lens[i], i++)
            for (uint32_t j = 0; packed && j < lens[i]; j++) meta_v[2 * (at + j)] = (int32_t)at, meta_v[2 * (at + j) + 1] = (int32_t)(at + lens[i]);
        for (uint32_t i = 0; meta_v && !packed && i < 32; i++) meta_v[i] = (int32_t)lens[i];
        bufs bs = {0};
        op_ref q, k, v, meta, out;
        op_list l = {0};
        vkf_status st = meta_v ? make_buf(dev, &bs, (uint64_t)B * S * HD, dt, &q) : VKF_ERROR_OUT_OF_MEMORY;
        if (st == VKF_OK) st = make_buf(dev, &bs, (uint64_t)B * S * HD, dt, &k);
        if (st == VKF_OK) st = make_buf(dev, &bs, (uint64_t)B * S * HD, dt, &v);
        if (st == VKF_OK) st = make_buf(dev, &bs, (uint64_t)B * S * HD, dt, &out);
        if (st == VKF_OK) st = make_buf(dev, &bs, n_meta, OP_F32, &meta);
        if (st == VKF_OK) st = vk_upload(dev, &bs.b[bs.n - 1], 0, meta_v, n_meta * sizeof *meta_v);
        op_attention_params p = {.batch = B, .q_len = S, .kv_len = S, .heads = H, .head_dim = D, .key_lengths = !packed,
                                 .segments = packed != 0, .dtype = dt};
        if (st == VKF_OK) st = op_attention(dev, &p, q, k, v, meta, (op_ref){0}, out, &l);
        r.flops = 4.0 * H * D * pairs;
        rc |= finish(dev, o, t, &r, &l, st);
        free_bufs(dev, &bs);
        free(meta_v);
    }
    /* decode attention split over keys, over GPT-2's cache layout ([P, K|V]) */
    static const uint32_t contexts[] = {128, 1024};
    for (size_t i = 0; i < BASE_ARRAY_LEN(contexts); i++) {
        const uint32_t H = 12, D = 64, P = 1024, HD = H * D, n = contexts[i];
        bench_row r = {.op = "attention", .variant = "split"};
        snprintf(r.shape, sizeof r.shape, "gpt2 decode %u/%u h12", n, P);
        snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
        if (!bench_selected(o, &r)) continue;
        op_attention_params p = {.batch = 1, .q_len = 1, .kv_len = P, .heads = H, .head_dim = D, .k_rs = 2 * HD, .v_rs = 2 * HD,
                                 .key_lengths = true, .len_index = 0, .dtype = dt};
        bufs bs = {0};
        op_ref q, kv, meta, part, out;
        op_list l = {0};
        vkf_status st = make_buf(dev, &bs, HD, dt, &q);
        if (st == VKF_OK) st = make_buf(dev, &bs, (uint64_t)P * 2 * HD, dt, &kv);
        if (st == VKF_OK) st = make_buf(dev, &bs, 4, OP_F32, &meta);
        if (st == VKF_OK) st = vk_upload(dev, &bs.b[bs.n - 1], 0, (int32_t[]){(int32_t)n, 0, 0, 0}, 16);
        if (st == VKF_OK) st = make_buf(dev, &bs, op_attention_split_scratch(dev, &p), OP_F32, &part);
        if (st == VKF_OK) st = make_buf(dev, &bs, HD, dt, &out);
        uint64_t es = op_dtype_size(dt);
        op_ref v = op_ref_sub(kv, HD * es, kv.size - HD * es);
        if (st == VKF_OK) st = op_attention_split(dev, &p, q, kv, v, meta, part, out, &l);
        r.flops = 4.0 * H * n * D;
        r.bytes = 2.0 * n * HD * es;
        rc |= finish(dev, o, t, &r, &l, st);
        free_bufs(dev, &bs);
    }
    return rc;
}

static int bench_misc(vk_device *dev, const bench_opts *o, bench_table *t, op_dtype dt)
{
    int rc = 0;
    uint32_t es = op_dtype_size(dt);
    {
        bench_row r = {.op = "patchify", .variant = "auto", .shape = "1x3x224x224 p16"};
        snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
        if (bench_selected(o, &r)) {
            bufs bs = {0};
            op_ref img, out;
            op_list l = {0};
            vkf_status st = make_buf(dev, &bs, 3 * 224 * 224, dt, &img);
            if (st == VKF_OK) st = make_buf(dev, &bs, 3 * 224 * 224, dt, &out);
            op_patchify_params p = {1, 3, 224, 224, 16, 16, dt};
            if (st == VKF_OK) st = op_patchify(dev, &p, img, out, &l);
            r.bytes = 2.0 * 3 * 224 * 224 * es;
            rc |= finish(dev, o, t, &r, &l, st);
            free_bufs(dev, &bs);
        }
    }
    {
        bench_row r = {.op = "unfold", .variant = "auto", .shape = "deberta 128x1536 k3"}; /* deberta-v2-xlarge's convolution */
        snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
        if (bench_selected(o, &r)) {
            bufs bs = {0};
            op_ref x, out;
            op_list l = {0};
            vkf_status st = make_buf(dev, &bs, 128 * 1536, dt, &x);
            if (st == VKF_OK) st = make_buf(dev, &bs, 3 * 128 * 1536, dt, &out);
            op_unfold_params p = {.batch = 1, .len = 128, .channels = 1536, .kernel = 3, .stride = 1, .pad = 1, .dtype = dt};
            if (st == VKF_OK) st = op_unfold(dev, &p, x, (op_ref){0}, out, &l);
            r.bytes = 4.0 * 128 * 1536 * es;
            rc |= finish(dev, o, t, &r, &l, st);
            free_bufs(dev, &bs);
        }
    }
    /* wav2vec2-base on 10 s of 16 kHz audio: conv0 (1 -> 512, k10 s5) gives
     * 31999 frames, GroupNorm(512 groups), and the encoder's positional
     * convolution over the 499 frames the feature encoder ends with. */
    static const struct {
        const char *shape;
        op_conv1d_params p;
    } convs[] = {
        {"wav2vec2 pos_conv 500x768 k128 g16", {1, 499, 768, 768, 128, 1, 64, 16, 499, OP_ACT_GELU, OP_F32}},
        {"wav2vec2 conv0 160000x1 k10 s5 ->512", {1, 160000, 1, 512, 10, 5, 0, 1, 0, OP_ACT_NONE, OP_F32}},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(convs); i++) {
        bench_row r = {.op = "conv1d", .variant = "auto"};
        snprintf(r.shape, sizeof r.shape, "%s", convs[i].shape);
        snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
        if (!bench_selected(o, &r)) continue;
        op_conv1d_params p = convs[i].p;
        p.dtype = dt;
        uint32_t Lout = op_conv1d_len(&p);
        uint64_t nx = (uint64_t)p.len * p.in_ch, nw = (uint64_t)p.out_ch * (p.in_ch / p.groups) * p.kernel;
        uint64_t ny = (uint64_t)Lout * p.out_ch;
        bufs bs = {0};
        op_ref x, w, b, y;
        op_list l = {0};
        vkf_status st = make_buf(dev, &bs, nx, dt, &x);
        if (st == VKF_OK) st = make_buf(dev, &bs, nw, dt, &w);
        if (st == VKF_OK) st = make_buf(dev, &bs, p.out_ch, dt, &b);
        if (st == VKF_OK) st = make_buf(dev, &bs, ny, dt, &y);
        if (st == VKF_OK) st = op_conv1d(dev, &p, x, w, b, y, &l);
        r.flops = 2.0 * ny * (p.in_ch / p.groups) * p.kernel;
        r.bytes = (double)(nx + nw + ny) * es;
        rc |= finish(dev, o, t, &r, &l, st);
        free_bufs(dev, &bs);
    }
    {
        bench_row r = {.op = "groupnorm", .variant = "auto", .shape = "31999x512 g512"};
        snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
        if (bench_selected(o, &r)) {
            bufs bs = {0};
            op_ref x, w, b, y;
            op_list l = {0};
            vkf_status st = make_buf(dev, &bs, 31999ull * 512, dt, &x);
            if (st == VKF_OK) st = make_buf(dev, &bs, 512, dt, &w);
            if (st == VKF_OK) st = make_buf(dev, &bs, 512, dt, &b);
            if (st == VKF_OK) st = make_buf(dev, &bs, 31999ull * 512, dt, &y);
            op_groupnorm_params p = {1, 31999, 512, 512, 1e-5f, OP_ACT_GELU, dt};
            if (st == VKF_OK) st = op_groupnorm(dev, &p, x, w, b, y, &l);
            r.bytes = 4.0 * 31999 * 512 * es; /* three reads, one write */
            rc |= finish(dev, o, t, &r, &l, st);
            free_bufs(dev, &bs);
        }
    }
    {
        bench_row r = {.op = "embed", .variant = "auto", .shape = "bert 128 tokens"};
        snprintf(r.dtype, sizeof r.dtype, "%s", dtype_name(dt));
        if (bench_selected(o, &r)) {
            bufs bs = {0};
            op_ref wte, wpe, wtt, y, ids;
            op_list l = {0};
            vkf_status st = make_buf(dev, &bs, 30522ull * 768, dt, &wte);
            if (st == VKF_OK) st = make_buf(dev, &bs, 512 * 768, dt, &wpe);
            if (st == VKF_OK) st = make_buf(dev, &bs, 2 * 768, dt, &wtt);
            if (st == VKF_OK) st = make_buf(dev, &bs, 128 * 768, dt, &y);
            /* ids: zeros are valid token ids */
            if (st == VKF_OK) st = make_buf(dev, &bs, 128, OP_F32, &ids);
            if (st == VKF_OK) {
                int32_t zeros[128] = {0};
                st = vk_upload(dev, &bs.b[bs.n - 1], 0, zeros, sizeof zeros);
            }
            op_embed_params p = {.tokens = 128, .seq = 128, .dim = 768, .vocab = 30522, .max_pos = 512,
                                 .type_vocab = 2, .pos = true, .token_type = true, .dtype = dt};
            if (st == VKF_OK) st = op_embed(dev, &p, ids, ids, wte, wpe, wtt, (op_ref){0}, y, &l);
            r.bytes = 4.0 * 128 * 768 * es;
            rc |= finish(dev, o, t, &r, &l, st);
            free_bufs(dev, &bs);
        }
    }
    return rc;
}

int bench_ops(vkf_context *ctx, const bench_opts *o, bench_table *t)
{
    vk_device *dev = ctx->dev;
    int rc = 0;
    for (int d = 0; d < 2; d++) {
        op_dtype dt = (op_dtype)d;
        if (!(o->dtypes & (1 << d))) continue;
        if (dt == OP_F16 && !dev->caps.storage16) {
            if (!o->json) printf("(no 16-bit storage on this device: fp16 entries skipped)\n");
            continue;
        }
        rc |= bench_matmul(dev, o, t, dt);
        rc |= bench_rowwise(dev, o, t, dt);
        rc |= bench_attention(dev, o, t, dt);
        rc |= bench_misc(dev, o, t, dt);
    }
    return rc;
}
