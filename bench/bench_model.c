/* vkformer-bench model: whole-model latency and throughput of any family
 * (ViT images; BERT-style texts at a fixed length for batch 1 and mixed
 * lengths of 8 to 64 tokens for larger batches; causal LMs: prefill and
 * decode through a generation session, against the device's measured
 * memory bandwidth; audio models: one clip of 10 and 60 s, the real-time
 * factor), from a checkpoint or a preset with random weights. */
#include "bench.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/model.h"
#include "runtime/runtime.h"

typedef struct bench_in {
    int tensor;
    const void *data;
    size_t bytes;
} bench_in;

typedef struct vit_row {
    const char *precision;
    uint32_t batch;
    double wall_ms, wall_min_ms, gpu_ms, host_ms, img_s, img_s_overlap;
    int runs;
} vit_row;

static graph *build(void *user, const graph_key *key) { return model_build(user, key); }

/* Bytes of a batch-1 session's state (the KV cache) and the part of it one
 * position holds (states [1, positions, row]). */
static uint64_t state_bytes(const model *m, uint64_t *per_position)
{
    model_state *st = malloc(MODEL_MAX_STATES * sizeof *st);
    uint32_t n = st ? BASE_MIN(model_declare_state(m, 1, st, MODEL_MAX_STATES), MODEL_MAX_STATES) : 0;
    uint64_t total = 0, es = graph_dtype_size(m->dtype);
    *per_position = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t b = es;
        for (uint32_t k = 0; k < st[i].rank; k++) b *= st[i].shape[k];
        total += b;
        if (st[i].rank == 3) *per_position += (uint64_t)st[i].shape[2] * es;
    }
    free(st);
    return total;
}

/* Median wall time of `runs` inferences at batch b, and the GPU/host split. */
static vkf_status write_inputs(graph_exec *e, uint32_t slot, const bench_in *in, int n_in)
{
    vkf_status s = VKF_OK;
    for (int i = 0; i < n_in && s == VKF_OK; i++) s = graph_exec_write(e, slot, in[i].tensor, in[i].data, in[i].bytes);
    return s;
}

static vkf_status measure(graph_exec *e, const bench_in *in, int n_in, const bench_opts *o, int runs, vit_row *r)
{
    double *wall = calloc((size_t)runs, sizeof(double)), *gpu = calloc((size_t)runs, sizeof(double));
    vkf_status s = wall && gpu ? VKF_OK : VKF_ERROR_OUT_OF_MEMORY;
    for (int i = 0; i < o->warmup + runs && s == VKF_OK; i++) {
        uint32_t slot;
        double t0 = base_now();
        graph_exec_acquire(e, &slot);
        s = write_inputs(e, slot, in, n_in);
        if (s == VKF_OK) s = graph_exec_submit(e, slot);
        if (s == VKF_OK) s = graph_exec_wait(e, slot);
        double t1 = base_now();
        double g = 0;
        if (s == VKF_OK && graph_exec_gpu_time(e, slot, &g) != VKF_OK) g = 0;
        graph_exec_release(e, slot);
        if (i >= o->warmup) {
            wall[i - o->warmup] = (t1 - t0) * 1e3;
            gpu[i - o->warmup] = g * 1e-3;
        }
    }
    if (s == VKF_OK) {
        double host = 0;
        for (int i = 0; i < runs; i++) host += wall[i] - gpu[i];
        r->gpu_ms = bench_median(gpu, runs);
        r->wall_ms = bench_median(wall, runs);
        r->wall_min_ms = wall[0];
        r->host_ms = host / runs;
        r->img_s = r->batch / (r->wall_ms * 1e-3);
        r->runs = runs;
    }
    free(wall);
    free(gpu);
    return s;
}

/* Throughput with two inferences in flight: one slot's host work overlaps
 * the other's device work. */
static vkf_status overlapped(graph_exec *e, const bench_in *in, int n_in, int runs, vit_row *r)
{
    uint32_t slots[2];
    graph_exec_acquire(e, &slots[0]);
    graph_exec_acquire(e, &slots[1]);
    vkf_status s = VKF_OK;
    double t0 = base_now();
    for (int i = 0; i < runs + 2 && s == VKF_OK; i++) {
        uint32_t sl = slots[i % 2];
        if (i >= 2) s = graph_exec_wait(e, sl);
        if (i < runs && s == VKF_OK) {
            s = write_inputs(e, sl, in, n_in);
            if (s == VKF_OK) s = graph_exec_submit(e, sl);
        }
    }
    double t = base_now() - t0;
    graph_exec_release(e, slots[0]);
    graph_exec_release(e, slots[1]);
    if (s == VKF_OK) r->img_s_overlap = (double)runs * r->batch / t;
    return s;
}

/* Inputs for one shape: pixels, or texts of the given lengths (padded to the
 * longest; the graph's bucket). Returns the tensors' host buffers in *bufs. */
static vkf_status make_inputs(const model *m, const graph *g, uint32_t b, uint32_t seq, const uint32_t *lens, bench_in *in, int *n_in,
                              void **buf)
{
    *n_in = 0;
    if (graph_find(g, "pixel_values") >= 0) {
        size_t n = (size_t)b * m->channels * m->image_size * m->image_size;
        float *px = malloc(n * sizeof(float));
        if (!px) return VKF_ERROR_OUT_OF_MEMORY;
        for (size_t i = 0; i < n; i++) px[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
        in[(*n_in)++] = (bench_in){graph_find(g, "pixel_values"), px, n * 4};
        *buf = px;
        return VKF_OK;
    }
    size_t n = (size_t)b * seq;
    int32_t *ids = calloc(4 * n, sizeof(int32_t));
    if (!ids) return VKF_ERROR_OUT_OF_MEMORY;
    int32_t *mask = ids + n, *tt = ids + 2 * n, *pos = ids + 3 * n;
    for (uint32_t i = 0; i < b; i++)
        for (uint32_t j = 0; j < seq; j++) {
            size_t k = (size_t)i * seq + j;
            bool real = j < lens[i];
            ids[k] = real ? (int32_t)(1000 + (k * 7919) % (m->vocab_size - 1000)) : (int32_t)m->pad_id;
            mask[k] = real;
            pos[k] = real ? (int32_t)(m->pad_id + 1 + j) : (int32_t)m->pad_id;
        }
    const char *names[4] = {"input_ids", "attention_mask", "token_type_ids", "position_ids"};
    int32_t *data[4] = {ids, mask, tt, pos};
    for (int i = 0; i < 4; i++) {
        int t = graph_find(g, names[i]);
        if (t >= 0) in[(*n_in)++] = (bench_in){t, data[i], n * 4};
    }
    *buf = ids;
    return VKF_OK;
}

/* The same texts packed into one token dimension (the family's packed graph):
 * input_ids, position_ids (0.. per text) and token_type_ids [1, T], and the
 * meta "segments" and "starts" written into every slot. */
static vkf_status make_packed_inputs(const model *m, graph_exec *e, uint32_t b, uint32_t T, uint32_t NB, const uint32_t *lens, bench_in *in,
                                     int *n_in, void **bufs)
{
    const graph *g = graph_exec_graph(e);
    int32_t *ids = calloc(5 * (size_t)T + NB, sizeof(int32_t));
    if (!ids) return VKF_ERROR_OUT_OF_MEMORY;
    int32_t *pos = ids + T, *tt = ids + 2 * (size_t)T, *segs = ids + 3 * (size_t)T, *starts = ids + 5 * (size_t)T;
    uint32_t at = 0;
    for (uint32_t i = 0; i < b; i++) {
        starts[i] = (int32_t)at + 1;
        for (uint32_t j = 0; j < lens[i]; j++, at++) {
            ids[at] = (int32_t)(1000 + ((size_t)i * 64 + j) * 7919 % (m->vocab_size - 1000));
            pos[at] = m->position_ids ? (int32_t)(m->pad_id + 1 + j) : (int32_t)j;
            segs[2 * at] = (int32_t)(at - j), segs[2 * at + 1] = (int32_t)(at - j + lens[i]);
        }
    }
    for (uint32_t i = b; i < NB; i++) starts[i] = 1;
    for (; at < T; at++) ids[at] = (int32_t)m->pad_id, pos[at] = m->position_ids ? (int32_t)m->pad_id : 0, segs[2 * at] = segs[2 * at + 1] = (int32_t)T;
    const char *names[3] = {"input_ids", "position_ids", "token_type_ids"};
    int32_t *data[3] = {ids, pos, tt};
    *n_in = 0;
    for (int i = 0; i < 3; i++) {
        int t = graph_find(g, names[i]);
        if (t >= 0) in[(*n_in)++] = (bench_in){t, data[i], (size_t)T * 4};
    }
    *bufs = ids;
    vkf_status s = VKF_OK;
    struct {
        const char *name;
        const int32_t *v;
    } metas[2] = {{"segments", segs}, {"starts", starts}};
    for (uint32_t slot = 0; slot < 2; slot++)
        for (int k = 0; k < 2; k++) {
            uint32_t count = 0;
            int first = graph_find_meta(g, metas[k].name, &count);
            if (first < 0) return VKF_ERROR_NOT_FOUND;
            for (uint32_t i = 0; i < count && s == VKF_OK; i++) s = graph_exec_set_meta(e, slot, (uint32_t)first + i, metas[k].v[i]);
        }
    return s;
}

/* ---- causal LMs: a generation session ------------------------------------------------ */

typedef struct token_times {
    double first, last;
    uint32_t n;
} token_times;

static int on_token(void *user, uint32_t seq, int32_t id, const char *text, size_t len)
{
    token_times *t = user;
    (void)seq, (void)text, (void)len;
    if (id >= 0) {
        t->last = base_now();
        if (!t->n++) t->first = t->last;
    }
    return 0;
}

/* Device memory bandwidth: a copy (y = 1 * x, vec4) of 2 x 128 MiB, GB/s read + written. */
static vkf_status copy_bandwidth(vk_device *dev, const bench_opts *o, double *gbs)
{
    uint64_t n = 32ull << 20; /* floats: 128 MiB */
    vk_buf x = {0}, y = {0};
    vkf_status s = vk_buf_alloc(dev, n * 4, VK_MEM_DEVICE, "bandwidth x", &x);
    if (s == VKF_OK) s = vk_buf_alloc(dev, n * 4, VK_MEM_DEVICE, "bandwidth y", &y);
    op_list l = {0};
    op_eltwise_params p = {.kind = OP_SCALE, .value = 1.0f, .n = n, .dtype = OP_F32};
    if (s == VKF_OK) s = op_eltwise(dev, &p, op_ref_of(&x), (op_ref){0}, op_ref_of(&y), &l);
    double us = 0;
    bench_opts bo = *o;
    bo.warmup = 1, bo.repeat = 5;
    if (s == VKF_OK) s = bench_time_list(dev, &l, &bo, &us, NULL);
    op_list_free(&l);
    vk_buf_free(dev, &x);
    vk_buf_free(dev, &y);
    *gbs = s == VKF_OK && us > 0 ? 2.0 * n * 4 / (us * 1e-6) / 1e9 : 0;
    return s;
}

typedef struct gen_row {
    const char *what;
    uint32_t context;
    double tok_s, ms_per_token, host_ms, bw_fraction;
} gen_row;

/* Decode from a prompt of `prompt` tokens: `steps` tokens after the first,
 * timed token to token; host time = wall - time waiting for the device. */
static vkf_status decode_rate(vkf_session *s, const int32_t *ids, uint32_t prompt, uint32_t steps, gen_row *r)
{
    vkf_session_reset(s);
    token_times tt = {0};
    vkf_generate_desc d = {.max_new_tokens = steps + 1, .ignore_eos = 1, .on_token = on_token, .user = &tt};
    vkf_generation g;
    api_gen_stats a, b;
    api_session_stats(s, &a);
    vkf_status st = vkf_session_generate_ids(s, &ids, &prompt, &d, &g);
    api_session_stats(s, &b);
    if (st != VKF_OK) return st;
    vkf_generation_free(&g, 1);
    double span = tt.last - tt.first;
    uint32_t n = tt.n - 1;
    r->tok_s = n / span;
    r->ms_per_token = span * 1e3 / n;
    /* the decode runs: every run but the prefill */
    /* n decode runs between the first token and the last */
    double wait = (b.decode_wait_s - a.decode_wait_s) * n / (double)(b.decode_runs - a.decode_runs);
    r->host_ms = (span - wait) * 1e3 / n;
    if (r->host_ms < 0) r->host_ms = 0;
    return VKF_OK;
}

static int bench_generate(vkf_context *ctx, const bench_opts *o, model *mm, const char *name, const char *pname,
                          double t_weights, cJSON *jrows)
{
    vk_device *dev = ctx->dev;
    uint32_t P = mm->max_positions, E = mm->hidden, L = mm->layers, es = graph_dtype_size(mm->dtype);
    uint64_t weight_bytes = mm->w.bytes, params = mm->params;
    uint64_t row_bytes, cache_bytes = state_bytes(mm, &row_bytes);
    vkf_model *vm;
    vkf_status st = api_model_wrap(ctx, mm, &vm);
    double gbs = 0;
    if (st == VKF_OK) st = copy_bandwidth(dev, o, &gbs);
    vkf_session *s = NULL;
    if (st == VKF_OK) st = vkf_session_create(vm, 1, &s);
    int32_t *ids = malloc(P * sizeof *ids);
    if (st == VKF_OK && !ids) st = VKF_ERROR_OUT_OF_MEMORY;
    for (uint32_t i = 0; ids && i < P; i++) ids[i] = (int32_t)((i * 7919u + 1000u) % (vm->m.vocab_size - 1));
    uint32_t prompt = BASE_MIN(o->seq ? o->seq : 128, P - 1);
    /* prefill: median over the runs, graphs recorded by a first call */
    double rec0 = base_now(), t_record = 0, *pre = calloc((size_t)o->repeat, sizeof(double));
    if (st == VKF_OK && !pre) st = VKF_ERROR_OUT_OF_MEMORY;
    for (int i = 0; i < o->warmup + o->repeat + 1 && st == VKF_OK; i++) {
        vkf_session_reset(s);
        vkf_generation g;
        double t0 = base_now();
        /* the first call also records the decode step (2 tokens) */
        vkf_generate_desc d = {.max_new_tokens = i == 0 ? 2 : 1, .ignore_eos = 1};
        st = vkf_session_generate_ids(s, (const int32_t *const *)&ids, &prompt, &d, &g);
        double t = base_now() - t0;
        if (st == VKF_OK) vkf_generation_free(&g, 1);
        if (i == 0) t_record = base_now() - rec0;
        else if (i > o->warmup) pre[i - o->warmup - 1] = t;
    }
    double prefill_s = st == VKF_OK ? bench_median(pre, o->repeat) : 0;
    free(pre);
    /* decode at two contexts: right after the prompt, and near n_positions */
    gen_row rows[2] = {{.what = "decode", .context = prompt + 1}, {.what = "decode"}};
    uint32_t steps = 32, n_rows = 1;
    if (st == VKF_OK) st = decode_rate(s, ids, prompt, steps, &rows[0]);
    bool ed = vm->m.encoder_decoder; /* the prompt is the encoder's: the decoder's context is what it generated */
    if (ed) rows[0].context = 1;
    if (st == VKF_OK && !ed && P >= 2 * steps + 64 && P > prompt + 2 * steps) {
        uint32_t far = P - steps - 1;
        rows[1].context = far + 1;
        st = decode_rate(s, ids, far, steps, &rows[1]);
        n_rows = 2;
    }
    if (st == VKF_OK && ed) { /* beam search, 4 hypotheses: the whole generation of steps tokens, encoder included */
        vkf_generation g;
        vkf_generate_desc d = {.max_new_tokens = steps, .ignore_eos = 1, .num_beams = 4, .explicit_fields = VKF_GEN_NUM_BEAMS};
        vkf_session_reset(s);
        double t0 = base_now();
        st = vkf_session_generate_ids(s, (const int32_t *const *)&ids, &prompt, &d, &g);
        double t = base_now() - t0;
        if (st == VKF_OK) {
            rows[1] = (gen_row){.what = "beam-4", .context = 1, .tok_s = g.n_ids / t, .ms_per_token = t * 1e3 / g.n_ids};
            n_rows = 2;
            vkf_generation_free(&g, 1);
        }
    }
    char *prof = NULL;
    if (st == VKF_OK && !o->json && api_session_profile(s, &prof) == VKF_OK) printf("%s", prof);
    free(prof);
    if (st != VKF_OK) {
        fprintf(stderr, "vkformer-bench: %s\n", vkf_last_error(ctx));
        free(ids);
        vkf_session_destroy(s);
        vkf_model_destroy(vm);
        return 1;
    }
    /* bytes one decode step must read: every weight but the position table
     * (one row of it), and the cache up to the context */
    uint64_t wpe = (uint64_t)P * E * es;
    for (uint32_t i = 0; i < n_rows; i++) {
        double bytes = (double)(weight_bytes - wpe) + (double)rows[i].context * row_bytes;
        /* an encoder-decoder's step reads the decoder's weights only: not estimated */
        rows[i].bw_fraction = gbs > 0 && !ed ? bytes * rows[i].tok_s / (gbs * 1e9) : 0;
    }
    if (!o->json) {
        char b1[32], b2[32];
        printf("\n%s %s: n_embd %u, %u layers, %llu parameters, %s, batch 1\n", vm->m.model_type, name, E, L,
               (unsigned long long)params, pname);
        printf("load: weights %.0f ms, recording %s %u + decode %.0f ms; weights %s, KV cache %s (n_positions %u)\n",
               t_weights * 1e3, ed ? "encode" : "prefill", rt_seq_bucket(&vm->m, prompt), t_record * 1e3, base_fmt_bytes(weight_bytes, b1),
               base_fmt_bytes(cache_bytes, b2), P);
        printf("device copy bandwidth: %.1f GB/s\n", gbs);
        printf("%s %u tokens: %.1f ms (%.1f tokens/s)%s\n", ed ? "encode" : "prefill", prompt, prefill_s * 1e3, prompt / prefill_s,
               ed ? ", with the first decode step" : "");
        printf("%-10s %8s %10s %10s %14s %16s\n", "", "context", "tokens/s", "ms/token", "host ms/token", "of bandwidth");
        for (uint32_t i = 0; i < n_rows; i++)
            if (ed)
                printf("%-10s %8u %10.2f %10.2f %14.3f %16s\n", rows[i].what, rows[i].context, rows[i].tok_s, rows[i].ms_per_token,
                       rows[i].host_ms, "-");
            else
                printf("%-10s %8u %10.2f %10.2f %14.3f %15.0f%%\n", rows[i].what, rows[i].context, rows[i].tok_s, rows[i].ms_per_token,
                       rows[i].host_ms, rows[i].bw_fraction * 100);
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", name);
        cJSON_AddStringToObject(j, "model_type", vm->m.model_type);
        cJSON_AddStringToObject(j, "precision", pname);
        cJSON_AddNumberToObject(j, "prompt_tokens", prompt);
        cJSON_AddNumberToObject(j, "prefill_ms", prefill_s * 1e3);
        cJSON_AddNumberToObject(j, "prefill_tokens_per_s", prompt / prefill_s);
        cJSON_AddNumberToObject(j, "copy_bandwidth_gbs", gbs);
        cJSON_AddNumberToObject(j, "weight_bytes", (double)weight_bytes);
        cJSON_AddNumberToObject(j, "kv_cache_bytes", (double)cache_bytes);
        cJSON_AddNumberToObject(j, "load_weights_ms", t_weights * 1e3);
        cJSON_AddNumberToObject(j, "record_ms", t_record * 1e3);
        cJSON *jd = cJSON_AddArrayToObject(j, "decode");
        for (uint32_t i = 0; i < n_rows; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "what", rows[i].what);
            cJSON_AddNumberToObject(r, "context", rows[i].context);
            cJSON_AddNumberToObject(r, "tokens_per_s", rows[i].tok_s);
            cJSON_AddNumberToObject(r, "ms_per_token", rows[i].ms_per_token);
            cJSON_AddNumberToObject(r, "host_ms_per_token", rows[i].host_ms);
            cJSON_AddNumberToObject(r, "bandwidth_fraction", rows[i].bw_fraction);
            cJSON_AddItemToArray(jd, r);
        }
        cJSON_AddItemToArray(jrows, j);
    }
    free(ids);
    vkf_session_destroy(s);
    vkf_model_destroy(vm);
    return 0;
}

/* CLIP's text tower: 100 labels in one batch ("This is a photo of a <label>."
 * is 9 to 12 tokens: the 16-token bucket), the zero-shot pipeline's text side. */
static int bench_clip_texts(vk_device *dev, const bench_opts *o, const model *m, graph_cache *cache, const char *pname, cJSON *jrows)
{
    const uint32_t B = 100, S = 16;
    uint32_t lens[100], total = 0;
    for (uint32_t i = 0; i < B; i++) lens[i] = 9 + i % 4, total += lens[i];
    /* padded to the bucket of 16, then packed into one token dimension */
    for (int packed = 0; packed <= (int)m->family->packed_text; packed++) {
        graph_exec *e;
        graph_key key = {.kind = MODEL_GRAPH_TEXT, .batch = B, .seq = S};
        if (packed) key = (graph_key){.kind = MODEL_GRAPH_TEXT, .batch = 1, .seq = rt_packed_bucket(total), .packed = 128};
        double t0 = base_now();
        vkf_status s = graph_cache_get(cache, &key, &e);
        double t_record = base_now() - t0;
        bench_in in[4];
        int n_in = 0;
        void *buf = NULL;
        vit_row r = {.precision = pname, .batch = B};
        if (s == VKF_OK && packed) s = make_packed_inputs(m, e, B, key.seq, key.packed, lens, in, &n_in, &buf);
        else if (s == VKF_OK) s = make_inputs(m, graph_exec_graph(e), B, S, lens, in, &n_in, &buf);
        if (s == VKF_OK) s = measure(e, in, n_in, o, BASE_MAX(1, o->repeat / 2), &r);
        if (s == VKF_OK) graph_cache_release(cache, e);
        free(buf);
        if (s != VKF_OK) {
            fprintf(stderr, "vkformer-bench: text tower: %s\n", base_diag_error(dev->diag));
            return 1;
        }
        if (!o->json) {
            if (packed)
                printf("text tower, the same packed (%u tokens in a bucket of %u): %.1f ms (min %.1f, gpu %.1f), %.1f labels/s; recording %.0f ms\n",
                       total, key.seq, r.wall_ms, r.wall_min_ms, r.gpu_ms, r.img_s, t_record * 1e3);
            else
                printf("text tower, %u labels of 9-12 tokens (bucket %u) in one batch: %.1f ms (min %.1f, gpu %.1f), %.1f labels/s; recording %.0f ms\n",
                       B, S, r.wall_ms, r.wall_min_ms, r.gpu_ms, r.img_s, t_record * 1e3);
        } else {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "model_type", m->model_type);
            cJSON_AddStringToObject(j, "tower", "text");
            cJSON_AddStringToObject(j, "precision", pname);
            cJSON_AddNumberToObject(j, "batch", B);
            cJSON_AddNumberToObject(j, "tokens", key.seq);
            if (packed) cJSON_AddBoolToObject(j, "packed", true);
            cJSON_AddNumberToObject(j, "latency_ms", r.wall_ms);
            cJSON_AddNumberToObject(j, "gpu_ms", r.gpu_ms);
            cJSON_AddNumberToObject(j, "labels_per_s", r.img_s);
            cJSON_AddItemToArray(jrows, j);
        }
    }
    return 0;
}

/* ---- audio models: real-time factor per clip length ----------------------------------- */

/* One clip of `seconds` at batch 1 (a speech-like signal: tones and noise),
 * per length: latency, GPU time and the real-time factor. */
static int bench_audio(vk_device *dev, const bench_opts *o, const model *m, graph_cache *cache, const char *name, const char *pname,
                       double t_weights, cJSON *jrows)
{
    uint32_t lengths[2] = {10, 60}, n_len = 2;
    if (o->seq) lengths[0] = o->seq, n_len = 1;
    if (!o->json)
        printf("\n%s %s: hidden %u, %u layers, %llu parameters, %s; one clip at %u Hz (load: weights %.0f ms)\n%-8s %8s %11s %11s %11s %8s %12s\n",
               m->model_type, name, m->hidden, m->layers, (unsigned long long)m->params, pname, m->sampling_rate, t_weights * 1e3, "seconds",
               "frames", "latency ms", "min ms", "gpu ms", "RTF", "x real time");
    for (uint32_t li = 0; li < n_len; li++) {
        uint32_t sec = lengths[li], L = sec * m->sampling_rate, T = model_audio_frames(m, L);
        float *x = malloc((size_t)L * sizeof(float));
        int32_t *mask = malloc((size_t)T * sizeof(int32_t));
        vkf_status s = x && mask && T ? VKF_OK : VKF_ERROR_OUT_OF_MEMORY;
        for (uint32_t i = 0; x && i < L; i++)
            x[i] = (float)(0.5 * sin(i * 0.0863) + 0.3 * sin(i * 0.2117 + 0.001 * i) + 0.05 * (double)((i * 2654435761u) % 2001) / 1000.0);
        for (uint32_t j = 0; mask && j < T; j++) mask[j] = 1;
        graph_exec *e = NULL;
        double tc = base_now();
        if (s == VKF_OK) s = graph_cache_get(cache, &(graph_key){.kind = MODEL_GRAPH_AUDIO, .batch = 1, .seq = L}, &e);
        double t_record = base_now() - tc;
        bench_in in[2];
        int n_in = 0;
        if (s == VKF_OK) {
            const graph *g = graph_exec_graph(e);
            in[n_in++] = (bench_in){graph_find(g, "input_values"), x, (size_t)L * 4};
            if (graph_find(g, "frame_mask") >= 0) in[n_in++] = (bench_in){graph_find(g, "frame_mask"), mask, (size_t)T * 4};
            uint32_t count = 0, slot;
            int first = graph_find_meta(g, "frames", &count);
            if (first >= 0) { /* a classifier's mean: every frame (the cache's one slot) */
                graph_exec_acquire(e, &slot);
                s = graph_exec_set_meta(e, slot, (uint32_t)first, (int32_t)T);
                graph_exec_release(e, slot);
            }
        }
        vit_row r = {.precision = pname, .batch = 1};
        int runs = BASE_MAX(1, o->repeat * 10 / (int)BASE_MAX(10u, sec));
        if (s == VKF_OK) s = measure(e, in, n_in, o, runs, &r);
        char *prof = NULL;
        if (s == VKF_OK && !o->json && graph_exec_profile_table(e, &prof) == VKF_OK) printf("%s", prof);
        free(prof);
        if (e) graph_cache_release(cache, e);
        free(x), free(mask);
        if (s == VKF_ERROR_UNSUPPORTED || s == VKF_ERROR_OUT_OF_MEMORY) { /* a device limit, not a failure */
            fprintf(stderr, "vkformer-bench: %u s of audio in one run does not fit this device: %s\n", sec, base_diag_error(dev->diag));
            continue;
        }
        if (s != VKF_OK) {
            fprintf(stderr, "vkformer-bench: %u s of audio: %s\n", sec, base_diag_error(dev->diag));
            return 1;
        }
        double rtf = r.wall_ms * 1e-3 / sec;
        if (!o->json) {
            printf("%-8u %8u %11.1f %11.1f %11.1f %8.4f %12.1f   (%d runs, recording %.0f ms)\n", sec, T, r.wall_ms, r.wall_min_ms, r.gpu_ms, rtf,
                   1 / rtf, r.runs, t_record * 1e3);
        } else {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "model", name);
            cJSON_AddStringToObject(j, "model_type", m->model_type);
            cJSON_AddStringToObject(j, "precision", pname);
            cJSON_AddNumberToObject(j, "batch", 1);
            cJSON_AddNumberToObject(j, "audio_seconds", sec);
            cJSON_AddNumberToObject(j, "frames", T);
            cJSON_AddNumberToObject(j, "latency_ms", r.wall_ms);
            cJSON_AddNumberToObject(j, "min_ms", r.wall_min_ms);
            cJSON_AddNumberToObject(j, "gpu_ms", r.gpu_ms);
            cJSON_AddNumberToObject(j, "real_time_factor", rtf);
            cJSON_AddNumberToObject(j, "load_weights_ms", t_weights * 1e3);
            cJSON_AddNumberToObject(j, "record_ms", t_record * 1e3);
            cJSON_AddNumberToObject(j, "runs", r.runs);
            cJSON_AddItemToArray(jrows, j);
        }
    }
    return 0;
}

int bench_model(vkf_context *ctx, const bench_opts *o)
{
    vk_device *dev = ctx->dev;
    base_diag *d = dev->diag;
    cJSON *json = o->json ? cJSON_CreateObject() : NULL;
    cJSON *jrows = json ? cJSON_AddArrayToObject(json, "results") : NULL;
    int rc = 0;
    for (int p = 0; p < 2 && rc == 0; p++) {
        if (!(o->dtypes & (1 << p))) continue;
        graph_dtype dt = p ? GRAPH_F16 : GRAPH_F32;
        const char *pname = p ? "fp16" : "fp32";
        if (dt == GRAPH_F16 && !dev->caps.storage16) {
            if (!o->json) printf("(no 16-bit storage: fp16 skipped)\n");
            continue;
        }
        model mm, *m = &mm;
        const char *preset = o->config ? o->config : "base";
        const char *family = !strncmp(preset, "bert", 4) || !strncmp(preset, "minilm", 6) || !strncmp(preset, "mpnet", 5) ? "bert"
                             : strstr(preset, "gpt2")                                     ? "gpt2"
                             : !strncmp(preset, "clip", 4)                                ? "clip"
                             : !strncmp(preset, "bart", 4) || !strcmp(preset, "opus-mt")   ? "bart"
                             : strstr(preset, "t5")                                       ? "t5"
                             : !strncmp(preset, "deberta", 7)                             ? "deberta"
                             : !strncmp(preset, "wav2vec2", 8)                            ? "wav2vec2"
                                                                                          : "vit";
        vkf_status s = o->model ? model_open(d, o->model, m) : model_open_preset(d, family, preset, &(model_preset_opts){o->image_size, o->patch_size}, m);
        if (s != VKF_OK) {
            fprintf(stderr, "vkformer-bench: %s\n", base_diag_error(d));
            rc = 1;
            break;
        }
        bool text = !m->image_size;
        uint32_t img = m->image_size, tokens = m->seq_len, patch = text ? 0 : img / (uint32_t)lround(sqrt((double)(tokens - 1)));
        uint32_t seq1 = BASE_MIN(o->seq ? o->seq : 128, text ? m->max_positions : 0);
        vkf_memory_stats m0;
        vk_alloc_stats(dev, &m0);
        double t0 = base_now();
        s = model_load(dev, m, o->model, NULL, dt, 1234, NULL, NULL);
        if (s != VKF_OK) {
            model_close(m);
            fprintf(stderr, "vkformer-bench: %s\n", base_diag_error(d));
            rc = 1;
            break;
        }
        double t_weights = base_now() - t0;
        if (model_declare_state(m, 1, NULL, 0)) { /* a causal LM: prefill and decode (takes the model) */
            rc = bench_generate(ctx, o, m, o->model ? o->model : preset, pname, t_weights, jrows);
            dev->alloc.peak = dev->alloc.in_use;
            continue;
        }
        graph_cache cache;
        /* audio: clip lengths instead of batches, one at a time (one slot: a
         * minute of audio's activations are most of a CPU driver's heap) */
        graph_cache_init(&cache, dev, &m->w, &(graph_compile_opts){.slots = m->sampling_rate ? 1 : 2}, m->sampling_rate ? 1 : 8, build, m);
        if (m->sampling_rate) {
            rc = bench_audio(dev, o, m, &cache, o->model ? o->model : preset, pname, t_weights, jrows);
            graph_cache_destroy(&cache);
            model_close(m);
            dev->alloc.peak = dev->alloc.in_use;
            continue;
        }
        const char *unit = text ? "sent/s" : "img/s";
        if (!o->json && !text)
            printf("\n%s %s: hidden %u, %u layers, %ux%u image, patch %u (%u tokens), %llu parameters, %s\n",
                   !strcmp(m->family->name, "clip") ? "CLIP (image tower)" : "ViT", o->model ? o->model : preset, m->hidden, m->layers, img, img, patch, tokens, (unsigned long long)m->params, pname);
        if (!o->json && text)
            printf("\n%s %s: hidden %u, %u layers, %llu parameters, %s; batch 1 at %u tokens, larger batches of mixed\n"
                   "lengths (8 to 64 tokens, padded to the longest; \"packed\": in one token dimension, no padding)\n",
                   m->model_type, o->model ? o->model : preset, m->hidden, m->layers, (unsigned long long)m->params, pname, seq1);
        for (uint32_t bi = 0, packed = 0; bi < o->n_batches && rc == 0; packed = !packed && text && o->batches[bi] > 1 && m->family->packed_text && !m->encoder_decoder,
                      bi += !packed) {
            uint32_t b = o->batches[bi];
            vit_row r = {.precision = pname, .batch = b};
            /* texts: batch 1 at seq1 tokens; larger batches of 8..64 tokens */
            uint32_t *lens = calloc(b, sizeof *lens), seq = 0;
            for (uint32_t i = 0; lens && i < b; i++) {
                lens[i] = b == 1 ? seq1 : 8 + (uint32_t)((i * 2654435761u) % 57);
                seq = BASE_MAX(seq, lens[i]);
            }
            uint32_t bucket = 8, total = 0;
            while (bucket < seq) bucket *= 2;
            if (text) seq = BASE_MIN(bucket, m->max_positions);
            for (uint32_t i = 0; lens && i < b; i++) total += lens[i];
            uint32_t NB = 8;
            while (NB < b) NB *= 2;
            double tc = base_now();
            graph_exec *e;
            graph_key key = {.kind = text ? MODEL_GRAPH_TEXT : MODEL_GRAPH_VISION, .batch = b, .seq = text ? seq : 0};
            if (packed) key = (graph_key){.kind = MODEL_GRAPH_TEXT, .batch = 1, .seq = rt_packed_bucket(total), .packed = NB};
            s = lens ? graph_cache_get(&cache, &key, &e) : VKF_ERROR_OUT_OF_MEMORY;
            double t_record = base_now() - tc;
            bench_in in[4];
            int n_in = 0;
            void *buf = NULL;
            if (s == VKF_OK && packed) s = make_packed_inputs(m, e, b, key.seq, NB, lens, in, &n_in, &buf);
            else if (s == VKF_OK) s = make_inputs(m, graph_exec_graph(e), b, seq, lens, in, &n_in, &buf);
            /* Fewer timed runs as batches grow: the work per run grows too. */
            int runs = BASE_MAX(1, o->repeat / (int)BASE_MAX(1u, b / 4));
            if (s == VKF_OK) s = measure(e, in, n_in, o, runs, &r);
            if (s == VKF_OK && b == 1) s = overlapped(e, in, n_in, runs, &r);
            char *prof = NULL; /* VKF_PROFILE=1: where the time goes */
            if (s == VKF_OK && !o->json && graph_exec_profile_table(e, &prof) == VKF_OK) printf("%s", prof);
            free(prof);
            if (s == VKF_OK) graph_cache_release(&cache, e);
            free(buf);
            free(lens);
            if (s != VKF_OK) {
                fprintf(stderr, "vkformer-bench: batch %u: %s\n", b, base_diag_error(d));
                rc = 1;
                break;
            }
            graph_exec_stats st;
            graph_exec_get_stats(e, &st);
            if (bi == 0 && !packed && !o->json) {
                char b1[32], b2[32];
                printf("load: weights %.0f ms, recording batch %u %.0f ms; arena %s (naive sum %s), %u dispatches, %u barriers\n",
                       t_weights * 1e3, b, t_record * 1e3, base_fmt_bytes(st.arena_bytes, b1), base_fmt_bytes(st.naive_bytes, b2),
                       st.dispatches, st.barriers);
                char u2[32];
                snprintf(u2, sizeof u2, "%s 2-flight", unit);
                printf("%-6s %11s %11s %11s %11s %10s %14s\n", "batch", "latency ms", "min ms", "gpu ms", "host ms", unit, u2);
            }
            if (!o->json) {
                char ov[32] = "-";
                if (r.img_s_overlap > 0) snprintf(ov, sizeof ov, "%.2f", r.img_s_overlap);
                char bl[24], note[64] = "";
                snprintf(bl, sizeof bl, packed ? "%u packed" : "%u", b);
                if (packed) snprintf(note, sizeof note, "; %u tokens in a bucket of %u", total, key.seq);
                printf("%-6s %11.1f %11.1f %11.1f %11.2f %10.2f %14s   (%d runs%s)\n", bl, r.wall_ms, r.wall_min_ms, r.gpu_ms,
                       r.host_ms, r.img_s, ov, r.runs, note);
            } else {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddStringToObject(j, "model", o->model ? o->model : preset);
                cJSON_AddStringToObject(j, "model_type", m->model_type);
                if (text) cJSON_AddNumberToObject(j, "tokens", packed ? key.seq : seq);
                if (packed) cJSON_AddBoolToObject(j, "packed", true);
                else cJSON_AddNumberToObject(j, "image_size", img), cJSON_AddNumberToObject(j, "patch_size", patch);
                cJSON_AddStringToObject(j, "precision", pname);
                cJSON_AddNumberToObject(j, "batch", b);
                cJSON_AddNumberToObject(j, "latency_ms", r.wall_ms);
                cJSON_AddNumberToObject(j, "min_ms", r.wall_min_ms);
                cJSON_AddNumberToObject(j, "gpu_ms", r.gpu_ms);
                cJSON_AddNumberToObject(j, "host_ms", r.host_ms);
                cJSON_AddNumberToObject(j, text ? "sentences_per_s" : "images_per_s", r.img_s);
                if (r.img_s_overlap > 0) cJSON_AddNumberToObject(j, text ? "sentences_per_s_2_in_flight" : "images_per_s_2_in_flight", r.img_s_overlap);
                cJSON_AddNumberToObject(j, "load_weights_ms", t_weights * 1e3);
                cJSON_AddNumberToObject(j, "record_ms", t_record * 1e3);
                cJSON_AddNumberToObject(j, "arena_bytes", (double)st.arena_bytes);
                cJSON_AddNumberToObject(j, "naive_bytes", (double)st.naive_bytes);
                cJSON_AddNumberToObject(j, "runs", r.runs);
                cJSON_AddItemToArray(jrows, j);
            }
        }
        if (rc == 0 && m->image_size && m->text_pooled) rc = bench_clip_texts(dev, o, m, &cache, pname, jrows);
        vkf_memory_stats m1;
        vk_alloc_stats(dev, &m1);
        if (!o->json && rc == 0) {
            char b1[32], b2[32];
            printf("peak device memory: %s (weights %s)\n", base_fmt_bytes(m1.device_bytes_peak - m0.device_bytes_in_use, b1),
                   base_fmt_bytes(m->w.bytes, b2));
        }
        graph_cache_destroy(&cache);
        model_close(m);
        /* peaks are per process: later precisions include earlier ones */
        dev->alloc.peak = dev->alloc.in_use;
    }
    if (json) {
        char *text = cJSON_Print(json);
        if (text && rc == 0) printf("%s\n", text);
        free(text);
        cJSON_Delete(json);
    }
    return rc;
}
