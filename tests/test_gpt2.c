/* GPT-2 against HF: the golden case (forward logits, greedy ids, every
 * step's logits), the cases of tools/make_gpt2_refs.py (original layout,
 * distilgpt2 shape with an untied head, a batch of different lengths, a
 * prompt near n_positions, the real tokenizer), KV-cache decoding against
 * full recomputation, fp16, sampling, continuation, eos, the replay path's
 * Vulkan calls, bad input and vkformer-generate. */
#include "common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN VKF_TEST_DATA "/golden/gpt2"
#define CASES VKF_TEST_DATA "/gpt2"

/* A copy of the golden model in dir with one tensor's floats set to x. */
static void golden_with(char *dir, size_t cap, const char *tensor, float x)
{
    ttmpdir_create(dir, cap, "gpt2-edit");
    FILE *f = fopen(GOLDEN "/model.safetensors", "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(n);
    cr_assert_eq(fread(b, 1, n, f), n);
    fclose(f);
    uint64_t hl;
    memcpy(&hl, b, 8);
    char *hdr = malloc(hl + 1);
    memcpy(hdr, b + 8, hl), hdr[hl] = 0;
    cJSON *h = cJSON_Parse(hdr), *t = cJSON_GetObjectItem(h, tensor);
    cr_assert_not_null(t, "no %s", tensor);
    cJSON *off = cJSON_GetObjectItem(t, "data_offsets");
    size_t s = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, e = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    cr_assert_str_eq(cJSON_GetObjectItem(t, "dtype")->valuestring, "F32");
    for (size_t i = s; i < e; i += 4) memcpy(b + 8 + hl + i, &x, 4);
    twrite_file(dir, "model.safetensors", b, n);
    free(b), free(hdr), cJSON_Delete(h);
    char *cfg = NULL;
    f = fopen(GOLDEN "/config.json", "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    rewind(f);
    cfg = malloc(n);
    cr_assert_eq(fread(cfg, 1, n, f), n);
    fclose(f);
    twrite_file(dir, "config.json", cfg, n);
    free(cfg);
}

static const char *golden(void)
{
    static char dir[600];
    snprintf(dir, sizeof dir, "%s", GOLDEN);
    return dir;
}

static const int32_t PROMPT[10] = {11, 114, 67, 285, 206, 70, 292, 233, 288, 4};
static const int32_t GREEDY[8] = {193, 193, 193, 193, 193, 193, 255, 255};

/* Greedy (or desc's) generation of one id prompt in a fresh session. */
static vkf_status gen1(vkf_model *m, const int32_t *ids, uint32_t n, vkf_generate_desc d, vkf_generation *g)
{
    vkf_session *s;
    vkf_status st = vkf_session_create(m, 1, &s);
    if (st != VKF_OK) return st;
    st = vkf_session_generate_ids(s, &ids, &n, &d, g);
    vkf_session_destroy(s);
    return st;
}

static void assert_ids(const vkf_generation *g, const int32_t *want, uint32_t n, const char *what)
{
    cr_assert_geq(g->n_ids, n, "%s: %u ids, expected %u", what, g->n_ids, n);
    for (uint32_t i = 0; i < n; i++) cr_assert_eq(g->ids[i], want[i], "%s: id %u is %d, HF %d", what, i, g->ids[i], want[i]);
}

Test(gpt2, golden_forward_and_greedy)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, golden(), VKF_FP32);
    vkf_model_info info;
    vkf_model_get_info(m, &info);
    cr_assert_str_eq(info.task, "text-generation");
    cr_assert_str_eq(info.family, "gpt2");
    /* the forward pass: logits and last_hidden_state */
    float *want_l = tread_file(GOLDEN "/logits.bin", 10 * 300 * 4);
    float *want_h = tread_file(GOLDEN "/last_hidden_state.bin", 10 * 64 * 4);
    static float logits[10 * 300], hidden[10 * 64];
    vkf_tensor in = {"input_ids", 2, {1, 10}, (void *)PROMPT, 0, VKF_I32};
    vkf_tensor out[2] = {{.name = "logits", .data = logits, .capacity = sizeof logits},
                         {.name = "last_hidden_state", .data = hidden, .capacity = sizeof hidden}};
    cr_assert_eq(vkf_model_run(m, &in, 1, out, 2), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_leq(max_abs_diff_f32(logits, want_l, 10 * 300), 1e-4);
    cr_assert_leq(max_abs_diff_f32(hidden, want_h, 10 * 64), 1e-4);
    /* greedy ids exactly, every step's logits */
    float *want_s = tread_file(GOLDEN "/greedy_step_logits.bin", 8 * 300 * 4);
    static float steps[8 * 300];
    vkf_generation g;
    vkf_generate_desc d = {.max_new_tokens = 8, .ignore_eos = 1, .logits_out = steps};
    cr_assert_eq(gen1(m, PROMPT, 10, d, &g), VKF_OK, "%s", vkf_last_error(ctx));
    assert_ids(&g, GREEDY, 8, "golden");
    cr_assert_eq(g.n_ids, 8);
    cr_assert_eq(g.stop, VKF_STOP_MAX_TOKENS);
    cr_assert_eq(g.prompt_tokens, 10);
    cr_assert_null(g.text, "no tokenizer: no text");
    double e = max_abs_diff_f32(steps, want_s, 8 * 300);
    cr_assert_leq(e, 1e-4, "greedy step logits differ by %g", e);
    vkf_generation_free(&g, 1);
    free(want_l), free(want_h), free(want_s);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* Each step's logits from the cache equal a full forward pass over the
 * prompt and the ids generated so far (its last position). */
Test(gpt2, kv_cache_equals_recompute)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, golden(), VKF_FP32);
    enum { N = 20 };
    static float steps[N * 300], full[64 * 300];
    vkf_generation g;
    vkf_generate_desc d = {.max_new_tokens = N, .ignore_eos = 1, .logits_out = steps};
    cr_assert_eq(gen1(m, PROMPT, 10, d, &g), VKF_OK, "%s", vkf_last_error(ctx));
    int32_t seq[64];
    memcpy(seq, PROMPT, sizeof PROMPT);
    memcpy(seq + 10, g.ids, N * 4);
    for (uint32_t t = 0; t < N; t++) {
        uint32_t len = 10 + t;
        vkf_tensor in = {"input_ids", 2, {1, len}, seq, 0, VKF_I32};
        vkf_tensor out = {.name = "logits", .data = full, .capacity = sizeof full};
        cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
        double e = max_abs_diff_f32(steps + t * 300, full + (size_t)(len - 1) * 300, 300);
        cr_assert_leq(e, 1e-4, "step %u: cached decoding differs from recomputation by %g", t, e);
    }
    vkf_generation_free(&g, 1);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* fp16 storage: the golden greedy ids for as long as every earlier step's
 * top-2 margin (HF's logits) is wide enough for fp16 rounding. */
Test(gpt2, fp16_same_greedy_ids)
{
    vkf_context *ctx = tctx_create(tcaps());
    if (!ctx->dev->caps.storage16) {
        tctx_destroy(ctx);
        cr_skip_test("no 16-bit storage");
    }
    vkf_model *m = tload_model(ctx, golden(), VKF_FP16);
    float *want_s = tread_file(GOLDEN "/greedy_step_logits.bin", 8 * 300 * 4);
    vkf_generation g;
    cr_assert_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.max_new_tokens = 8, .ignore_eos = 1}, &g), VKF_OK, "%s", vkf_last_error(ctx));
    uint32_t checked = 0;
    for (uint32_t t = 0; t < 8; t++) {
        float a = -INFINITY, b = -INFINITY;
        for (int i = 0; i < 300; i++) {
            float v = want_s[t * 300 + i];
            if (v > a) b = a, a = v;
            else if (v > b) b = v;
        }
        if (a - b < 0.01f) break; /* closer than fp16 storage can separate */
        cr_assert_eq(g.ids[t], GREEDY[t], "fp16 step %u: %d, HF %d", t, g.ids[t], GREEDY[t]);
        checked++;
    }
    cr_assert_geq(checked, 1);
    vkf_generation_free(&g, 1);
    free(want_s);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* After the first call recorded the graphs, generating records, creates and
 * updates nothing: one submit and one wait per token. */
Test(gpt2, replay_records_nothing_per_token)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, golden(), VKF_FP32);
    vkf_session *s;
    cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
    const int32_t *ids = PROMPT;
    uint32_t n = 10;
    vkf_generation g;
    vkf_generate_desc d = {.max_new_tokens = 3, .ignore_eos = 1};
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &n, &d, &g), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_generation_free(&g, 1);
    vkf_session_reset(s);
    vk_counters *c = &ctx->dev->calls;
    unsigned create = c->create, allocate = c->allocate, update = c->update_sets, begin = c->begin_cmd;
    unsigned submit = c->submit, wait = c->wait;
    d.max_new_tokens = 40;
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &n, &d, &g), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(g.n_ids, 40);
    cr_assert_eq(c->create, create, "vkCreate* while generating");
    cr_assert_eq(c->allocate, allocate, "vkAllocate* while generating");
    cr_assert_eq(c->update_sets, update, "vkUpdateDescriptorSets while generating");
    cr_assert_eq(c->begin_cmd, begin, "command buffers re-recorded while generating");
    cr_assert_eq(c->submit - submit, 40, "one prefill and 39 decode steps, not %u submits", c->submit - submit);
    cr_assert_eq(c->wait - wait, 40);
    vkf_generation_free(&g, 1);
    vkf_session_destroy(s);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* ---- the generated cases ------------------------------------------------------------ */

typedef struct ref_case {
    cJSON *json;
    uint32_t n_prompts, new_tokens, vocab;
    int32_t prompt[4][64];
    uint32_t prompt_len[4];
    int32_t greedy[4][64];
} ref_case;

static void load_case(const char *name, ref_case *c)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s/case.json", CASES, name);
    size_t size = 0;
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *text = calloc(1, 1 << 20);
    size = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    cr_assert_gt(size, 0);
    memset(c, 0, sizeof *c);
    c->json = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(c->json);
    c->new_tokens = (uint32_t)cJSON_GetObjectItem(c->json, "new_tokens")->valueint;
    c->vocab = (uint32_t)cJSON_GetObjectItem(c->json, "vocab")->valueint;
    const cJSON *p = cJSON_GetObjectItem(c->json, "prompts"), *gr = cJSON_GetObjectItem(c->json, "greedy_ids");
    for (const cJSON *a = p->child, *b = gr->child; a && b; a = a->next, b = b->next, c->n_prompts++) {
        uint32_t i = 0;
        for (const cJSON *x = a->child; x; x = x->next) c->prompt[c->n_prompts][i++] = x->valueint;
        c->prompt_len[c->n_prompts] = i;
        i = 0;
        for (const cJSON *x = b->child; x; x = x->next) c->greedy[c->n_prompts][i++] = x->valueint;
    }
}

/* All prompts of a case generated together, ids and step logits against HF. */
static void check_case(const char *name, bool forward)
{
    vkf_context *ctx = tctx_create(tcaps());
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/%s", CASES, name);
    ref_case c;
    load_case(name, &c);
    uint32_t B = c.n_prompts, N = c.new_tokens, V = c.vocab;
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    float *steps = calloc((size_t)B * N * V, 4);
    snprintf(path, sizeof path, "%s/step_logits.bin", dir);
    float *want = tread_file(path, (size_t)B * N * V * 4);
    const int32_t *ids[4];
    for (uint32_t b = 0; b < B; b++) ids[b] = c.prompt[b];
    vkf_session *s;
    cr_assert_eq(vkf_session_create(m, B, &s), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_generation g[4];
    vkf_generate_desc d = {.max_new_tokens = N, .ignore_eos = 1, .logits_out = steps};
    cr_assert_eq(vkf_session_generate_ids(s, ids, c.prompt_len, &d, g), VKF_OK, "%s", vkf_last_error(ctx));
    for (uint32_t b = 0; b < B; b++) {
        char what[64];
        snprintf(what, sizeof what, "%s prompt %u", name, b);
        assert_ids(&g[b], c.greedy[b], N, what);
        double e = max_abs_diff_f32(steps + (size_t)b * N * V, want + (size_t)b * N * V, (size_t)N * V);
        cr_assert_leq(e, 1e-4, "%s: step logits differ by %g", what, e);
    }
    if (forward) {
        uint32_t S = c.prompt_len[0];
        float *l = malloc((size_t)S * V * 4);
        snprintf(path, sizeof path, "%s/logits.bin", dir);
        float *wl = tread_file(path, (size_t)S * V * 4);
        vkf_tensor in = {"input_ids", 2, {1, S}, c.prompt[0], 0, VKF_I32};
        vkf_tensor out = {.name = "logits", .data = l, .capacity = (uint64_t)S * V * 4};
        cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
        cr_assert_leq(max_abs_diff_f32(l, wl, (size_t)S * V), 1e-4, "%s: forward logits", name);
        free(l), free(wl);
    }
    vkf_generation_free(g, B);
    vkf_session_destroy(s);
    free(steps), free(want);
    cJSON_Delete(c.json);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(gpt2, original_layout_with_attention_buffers) { check_case("original", true); }
Test(gpt2, distilgpt2_shape_untied_head) { check_case("distil", true); }
Test(gpt2, batch_of_different_lengths) { check_case("batch", false); }

/* A prompt of 20 in a context of 24: HF's 4 tokens, then a fifth from the
 * last position, then a stop at the context (never a write past the cache). */
Test(gpt2, prompt_near_context)
{
    vkf_context *ctx = tctx_create(tcaps());
    ref_case c;
    load_case("near_context", &c);
    vkf_model *m = tload_model(ctx, CASES "/near_context", VKF_FP32);
    vkf_generation g;
    cr_assert_eq(gen1(m, c.prompt[0], c.prompt_len[0], (vkf_generate_desc){.max_new_tokens = 50, .ignore_eos = 1}, &g), VKF_OK,
                 "%s", vkf_last_error(ctx));
    assert_ids(&g, c.greedy[0], 4, "near context");
    cr_assert_eq(g.n_ids, 5);
    cr_assert_eq(g.stop, VKF_STOP_CONTEXT);
    vkf_generation_free(&g, 1);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

typedef struct collected {
    char text[3][4096];
    size_t len[3];
} collected;

static int collect(void *user, uint32_t seq, int32_t id, const char *text, size_t len)
{
    collected *c = user;
    (void)id;
    memcpy(c->text[seq] + c->len[seq], text, len);
    c->len[seq] += len;
    return 0;
}

/* Text prompts through the real GPT-2 tokenizer, streamed; an empty prompt starts from BOS. */
Test(gpt2, text_prompts_streamed)
{
    vkf_context *ctx = tctx_create(tcaps());
    ref_case c;
    load_case("text", &c);
    vkf_model *m = tload_model(ctx, CASES "/text", VKF_FP32);
    const cJSON *texts = cJSON_GetObjectItem(c.json, "texts"), *want = cJSON_GetObjectItem(c.json, "generated_texts");
    const char *prompts[3];
    uint32_t i = 0;
    for (const cJSON *t = texts->child; t; t = t->next) prompts[i++] = t->valuestring;
    static collected col;
    vkf_generation g[3];
    vkf_generate_desc d = {.max_new_tokens = c.new_tokens, .ignore_eos = 1, .on_token = collect, .user = &col};
    cr_assert_eq(vkf_generate(m, prompts, 3, &d, g), VKF_OK, "%s", vkf_last_error(ctx));
    i = 0;
    for (const cJSON *w = want->child; w; w = w->next, i++) {
        assert_ids(&g[i], c.greedy[i], c.new_tokens, prompts[i]);
        cr_assert_eq(g[i].prompt_tokens, c.prompt_len[i]);
        cr_assert_str_eq(g[i].text, w->valuestring, "prompt \"%s\"", prompts[i]);
        cr_assert_eq(col.len[i], strlen(w->valuestring), "streamed pieces of \"%s\"", prompts[i]);
        cr_assert(!memcmp(col.text[i], w->valuestring, col.len[i]));
    }
    vkf_generation_free(g, 3);
    cJSON_Delete(c.json);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* A session is for one call at a time: a second call while one runs (here an
 * on_token callback calling back in; another thread alike) is refused, not
 * run on the same cache (which gave silently wrong ids) */
typedef struct reenter {
    vkf_session *s;
    vkf_status got[3];
    vkf_context *ctx;
    char msg[512];
    int calls;
} reenter;

static int call_back_in(void *user, uint32_t seq, int32_t id, const char *text, size_t len)
{
    (void)seq, (void)id, (void)text, (void)len;
    reenter *r = user;
    if (r->calls < 3) {
        vkf_generation g;
        int32_t one = 5;
        const int32_t *ids = &one;
        uint32_t n = 1;
        r->got[r->calls] = r->calls == 2 ? (vkf_session_reset(r->s), VKF_OK) : vkf_session_generate_ids(r->s, &ids, &n, NULL, &g);
        if (r->calls == 0) snprintf(r->msg, sizeof r->msg, "%s", vkf_last_error(r->ctx));
        if (r->got[r->calls] == VKF_OK && r->calls < 2) vkf_generation_free(&g, 1);
    }
    r->calls++;
    return 0;
}

Test(gpt2, session_one_call_at_a_time)
{
    vkf_context *ctx = tctx_create(NULL);
    vkf_model *m = tload_model(ctx, golden(), VKF_FP32);
    vkf_session *s;
    cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
    reenter r = {.s = s, .ctx = ctx};
    vkf_generation g;
    const int32_t *ids = PROMPT;
    uint32_t n = 10;
    vkf_generate_desc d = {.max_new_tokens = 8, .on_token = call_back_in, .user = &r};
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &n, &d, &g), VKF_OK, "%s", vkf_last_error(ctx));
    cr_expect_eq(r.got[0], VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(r.msg, "already generating"), "%s", r.msg);
    cr_expect_eq(r.got[1], VKF_ERROR_INVALID_ARGUMENT);
    /* the outer generation is untouched: HF's greedy ids, and the reset was refused */
    assert_ids(&g, GREEDY, 8, "the outer generation");
    cr_expect_eq(vkf_session_length(s, 0), 18u);
    vkf_generation_free(&g, 1);
    /* free again afterwards */
    n = 1;
    cr_expect_eq(vkf_session_generate_ids(s, &ids, &n, NULL, &g), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_generation_free(&g, 1);
    vkf_session_destroy(s);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* ---- sampling, continuation, eos ------------------------------------------------------ */

Test(gpt2, sampling_is_seeded)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, golden(), VKF_FP32);
    vkf_generation a, b, c;
    vkf_generate_desc d = {.max_new_tokens = 16, .temperature = 1.5f, .top_k = 40, .top_p = 0.95f, .seed = 42, .ignore_eos = 1};
    cr_assert_eq(gen1(m, PROMPT, 10, d, &a), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(gen1(m, PROMPT, 10, d, &b), VKF_OK);
    cr_assert(!memcmp(a.ids, b.ids, 16 * 4), "the same seed gave different ids");
    bool differs = false;
    for (uint64_t seed = 1; seed <= 4 && !differs; seed++) {
        d.seed = seed;
        cr_assert_eq(gen1(m, PROMPT, 10, d, &c), VKF_OK);
        differs = memcmp(a.ids, c.ids, 16 * 4) != 0;
        vkf_generation_free(&c, 1);
    }
    cr_assert(differs, "four other seeds gave the same ids as seed 42");
    /* all logits on the host (top_k 0): seeded too */
    d = (vkf_generate_desc){.max_new_tokens = 16, .temperature = 1.0f, .seed = 9, .ignore_eos = 1};
    vkf_generation_free(&a, 1), vkf_generation_free(&b, 1);
    cr_assert_eq(gen1(m, PROMPT, 10, d, &a), VKF_OK);
    cr_assert_eq(gen1(m, PROMPT, 10, d, &b), VKF_OK);
    cr_assert(!memcmp(a.ids, b.ids, 16 * 4));
    for (uint32_t i = 0; i < 16; i++) cr_assert(a.ids[i] >= 0 && a.ids[i] < 300);
    vkf_generation_free(&a, 1), vkf_generation_free(&b, 1);
    /* top_k 1 and a tiny top_p both leave only the argmax: greedy's ids */
    vkf_generate_desc k1 = {.max_new_tokens = 8, .temperature = 0.7f, .top_k = 1, .seed = 5, .ignore_eos = 1};
    vkf_generate_desc p0 = {.max_new_tokens = 8, .temperature = 0.7f, .top_p = 1e-6f, .seed = 5, .ignore_eos = 1};
    cr_assert_eq(gen1(m, PROMPT, 10, k1, &a), VKF_OK);
    cr_assert_eq(gen1(m, PROMPT, 10, p0, &b), VKF_OK);
    assert_ids(&a, GREEDY, 8, "top_k 1");
    assert_ids(&b, GREEDY, 8, "top_p 1e-6");
    vkf_generation_free(&a, 1), vkf_generation_free(&b, 1);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* A session continues: 3 + 5 tokens equal 8 at once; more prompt after
 * generated text equals generating from the concatenation. */
Test(gpt2, session_continues)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, golden(), VKF_FP32);
    vkf_session *s;
    cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
    const int32_t *ids = PROMPT;
    uint32_t n = 10, zero = 0;
    vkf_generation a, b;
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &n, &(vkf_generate_desc){.max_new_tokens = 3, .ignore_eos = 1}, &a), VKF_OK);
    cr_assert_eq(vkf_session_length(s, 0), 13);
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &zero, &(vkf_generate_desc){.max_new_tokens = 5, .ignore_eos = 1}, &b), VKF_OK,
                 "%s", vkf_last_error(ctx));
    assert_ids(&a, GREEDY, 3, "first call");
    assert_ids(&b, GREEDY + 3, 5, "continued");
    cr_assert_eq(vkf_session_length(s, 0), 18);
    vkf_generation_free(&a, 1), vkf_generation_free(&b, 1);
    /* then more prompt: the same as one prompt holding everything */
    int32_t more[3] = {7, 8, 9}, all[64];
    const int32_t *mp = more;
    uint32_t three = 3;
    cr_assert_eq(vkf_session_generate_ids(s, &mp, &three, &(vkf_generate_desc){.max_new_tokens = 4, .ignore_eos = 1}, &a), VKF_OK);
    cr_assert_eq(a.prompt_tokens, 4, "the pending token and 3 prompt tokens");
    memcpy(all, PROMPT, 40);
    memcpy(all + 10, GREEDY, 32);
    memcpy(all + 18, more, 12);
    cr_assert_eq(gen1(m, all, 21, (vkf_generate_desc){.max_new_tokens = 4, .ignore_eos = 1}, &b), VKF_OK);
    assert_ids(&a, b.ids, 4, "continued with a prompt");
    vkf_generation_free(&a, 1), vkf_generation_free(&b, 1);
    vkf_session_destroy(s);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* eos_token_id stops generation (the id is returned); an empty prompt is BOS. */
Test(gpt2, eos_and_empty_prompt)
{
    char dir[256], path[512];
    ttmpdir_create(dir, sizeof dir, "gpt2-eos");
    snprintf(path, sizeof path, "ln -s \"$(realpath -e %s)\"/model.safetensors %s/ && sed 's/\"eos_token_id\": 299/\"eos_token_id\": 193/' %s/config.json > %s/config.json",
             golden(), dir, golden(), dir);
    cr_assert_eq(system(path), 0);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    vkf_generation g;
    cr_assert_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.max_new_tokens = 8}, &g), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(g.n_ids, 1);
    cr_assert_eq(g.ids[0], 193);
    cr_assert_eq(g.stop, VKF_STOP_EOS);
    vkf_generation_free(&g, 1);
    vkf_model_destroy(m);
    m = tload_model(ctx, golden(), VKF_FP32);
    vkf_generation a, b;
    int32_t bos = 299;
    cr_assert_eq(gen1(m, NULL, 0, (vkf_generate_desc){.max_new_tokens = 5, .ignore_eos = 1}, &a), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(gen1(m, &bos, 1, (vkf_generate_desc){.max_new_tokens = 5, .ignore_eos = 1}, &b), VKF_OK);
    cr_assert_eq(a.prompt_tokens, 1);
    assert_ids(&a, b.ids, 5, "empty prompt");
    vkf_generation_free(&a, 1), vkf_generation_free(&b, 1);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

/* NaN weights: greedy and every sampling path refuse, as torch's multinomial
 * raises (top-k 0 drew EOS, top-k 100 drew 99s, top-k 50 failed without a message) */
Test(gpt2, nan_logits_refused)
{
    char dir[256];
    golden_with(dir, sizeof dir, "transformer.ln_f.weight", NAN);
    vkf_context *ctx = tctx_create(NULL);
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    vkf_generation g;
    cr_expect_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){0}, &g), VKF_ERROR_FORMAT);
    cr_expect(strstr(vkf_last_error(ctx), "NaN"), "%s", vkf_last_error(ctx));
    uint32_t ks[] = {0, 50, 100};
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.temperature = 1, .top_k = ks[i], .seed = 1}, &g), VKF_ERROR_FORMAT,
                     "top-k %u", ks[i]);
        cr_expect(strstr(vkf_last_error(ctx), "NaN or infinity"), "top-k %u: %s", ks[i], vkf_last_error(ctx));
    }
    cr_expect_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.temperature = 1, .top_p = 0.5f, .seed = 1}, &g), VKF_ERROR_FORMAT);
    cr_expect_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.repetition_penalty = 1.3f, .temperature = 1, .seed = 1}, &g), VKF_ERROR_FORMAT);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

Test(gpt2, bad_input)
{
    vkf_context *ctx = tctx_create(NULL);
    vkf_model *m = tload_model(ctx, golden(), VKF_FP32);
    vkf_generation g;
    int32_t bad[2] = {5, 300}, neg = -1, longp[65];
    for (int i = 0; i < 65; i++) longp[i] = i;
    cr_assert_eq(gen1(m, bad, 2, (vkf_generate_desc){0}, &g), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(ctx), "outside the vocabulary"), "%s", vkf_last_error(ctx));
    cr_assert_eq(gen1(m, &neg, 1, (vkf_generate_desc){0}, &g), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(gen1(m, longp, 65, (vkf_generate_desc){0}, &g), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(ctx), "context of 64"), "%s", vkf_last_error(ctx));
    cr_assert_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.temperature = -1}, &g), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.temperature = NAN}, &g), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.temperature = 1, .top_p = 1.5f}, &g), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.temperature = 1, .top_p = NAN}, &g), VKF_ERROR_INVALID_ARGUMENT);
    vkf_session *s;
    cr_assert_eq(vkf_session_create(m, 0, &s), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(vkf_session_create(m, 65, &s), VKF_ERROR_INVALID_ARGUMENT);
    const char *text = "hello";
    cr_assert_eq(vkf_generate(m, &text, 1, NULL, &g), VKF_ERROR_NOT_FOUND, "no tokenizer: token ids only");
    /* after an error the session is usable */
    cr_assert_eq(gen1(m, PROMPT, 10, (vkf_generate_desc){.max_new_tokens = 2, .ignore_eos = 1}, &g), VKF_OK);
    assert_ids(&g, GREEDY, 2, "after errors");
    vkf_generation_free(&g, 1);
    vkf_model_destroy(m);
    /* configs asking for what is not implemented fail by name */
    char dir[256], cmd[700];
    ttmpdir_create(dir, sizeof dir, "gpt2-cross");
    snprintf(cmd, sizeof cmd, "ln -s \"$(realpath -e %s)\"/model.safetensors %s/ && sed 's/\"n_layer\": 2,/\"n_layer\": 2, \"add_cross_attention\": true,/' %s/config.json > %s/config.json",
             golden(), dir, golden(), dir);
    cr_assert_eq(system(cmd), 0);
    vkf_model *refused;
    cr_assert_eq(vkf_model_load(ctx, dir, NULL, &refused), VKF_ERROR_UNSUPPORTED);
    cr_assert(strstr(vkf_last_error(ctx), "add_cross_attention"), "%s", vkf_last_error(ctx));
    ttmpdir_remove(dir);
    /* an encoder cannot generate */
    m = tload_model(ctx, VKF_TEST_DATA "/golden/bert", VKF_FP32);
    cr_assert_eq(vkf_session_create(m, 1, &s), VKF_ERROR_UNSUPPORTED);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* ---- generation options against HF (tools/make_generation_refs.py) ------------------- */

static cJSON *options_json(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s/options.json", CASES, name);
    return tread_json(path);
}

static uint32_t json_ids(const cJSON *a, int32_t *out, uint32_t cap)
{
    uint32_t n = 0;
    for (const cJSON *e = a ? a->child : NULL; e && n < cap; e = e->next) out[n++] = (int32_t)e->valuedouble;
    return n;
}

/* HF's RepetitionPenaltyLogitsProcessor: > 1 and < 1, on the raw ids and
 * through the tokenizer, prompts of a batch generated together. */
Test(gpt2, repetition_penalty_as_hf)
{
    vkf_context *ctx = tctx_create(tcaps());
    cJSON *o = options_json("original");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/original", CASES);
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    int32_t prompt[64], want[64];
    uint32_t np = json_ids(cJSON_GetObjectItem(o, "prompt"), prompt, 64);
    for (const cJSON *c = cJSON_GetObjectItem(o, "penalty")->child; c; c = c->next) {
        float p = (float)cJSON_GetObjectItem(c, "repetition_penalty")->valuedouble;
        uint32_t nw = json_ids(cJSON_GetObjectItem(c, "ids"), want, 64);
        vkf_generation g;
        vkf_generate_desc d = {.max_new_tokens = nw, .ignore_eos = 1, .repetition_penalty = p};
        cr_assert_eq(gen1(m, prompt, np, d, &g), VKF_OK, "%s", vkf_last_error(ctx));
        char what[64];
        snprintf(what, sizeof what, "repetition_penalty %g", (double)p);
        assert_ids(&g, want, nw, what);
        vkf_generation_free(&g, 1);
    }
    /* without the penalty the case repeats one id: the option changed something */
    vkf_generation g;
    cr_assert_eq(gen1(m, prompt, np, (vkf_generate_desc){.max_new_tokens = 2, .ignore_eos = 1}, &g), VKF_OK);
    cr_assert(g.ids[0] == g.ids[1]);
    vkf_generation_free(&g, 1);
    vkf_model_destroy(m);
    cJSON_Delete(o);
    /* the text case: three prompts in one session against HF one at a time */
    o = options_json("text");
    ref_case c;
    load_case("text", &c);
    snprintf(dir, sizeof dir, "%s/text", CASES);
    m = tload_model(ctx, dir, VKF_FP32);
    vkf_generation gs[3];
    vkf_generate_desc d = {.max_new_tokens = c.new_tokens, .ignore_eos = 1,
                           .repetition_penalty = (float)cJSON_GetObjectItem(o, "penalty")->valuedouble};
    cr_assert_eq(vkf_generate(m, (const char *const[]){"Hello, my dog is cute and", "The café", ""}, 3, &d, gs), VKF_OK, "%s",
                 vkf_last_error(ctx));
    const cJSON *ids = cJSON_GetObjectItem(o, "penalty_ids")->child;
    for (int i = 0; i < 3; i++, ids = ids->next) {
        uint32_t nw = json_ids(ids, want, 64);
        assert_ids(&gs[i], want, nw, "repetition_penalty 1.5, batch of 3");
    }
    vkf_generation_free(gs, 3);
    /* out of range */
    d.repetition_penalty = -1;
    cr_assert_eq(vkf_generate(m, (const char *const[]){"x"}, 1, &d, gs), VKF_ERROR_INVALID_ARGUMENT);
    vkf_model_destroy(m);
    cJSON_Delete(c.json);
    cJSON_Delete(o);
    tctx_destroy(ctx);
}

/* HF's stop_strings: a string ending inside the last token (with overhang),
 * spanning tokens, one of several, or never reached. */
Test(gpt2, stop_strings_as_hf)
{
    vkf_context *ctx = tctx_create(tcaps());
    cJSON *o = options_json("text");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/text", CASES);
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    for (const cJSON *c = cJSON_GetObjectItem(o, "stops")->child; c; c = c->next) {
        const char *stops[4];
        uint32_t ns = 0;
        for (const cJSON *e = cJSON_GetObjectItem(c, "stop_strings")->child; e; e = e->next) stops[ns++] = e->valuestring;
        int32_t want[64];
        uint32_t nw = json_ids(cJSON_GetObjectItem(c, "ids"), want, 64);
        vkf_generate_desc d = {.max_new_tokens = (uint32_t)cJSON_GetObjectItem(o, "new_tokens")->valuedouble, .ignore_eos = 1,
                               .stop_strings = stops, .n_stop_strings = ns};
        vkf_generation g;
        cr_assert_eq(vkf_generate(m, (const char *const[]){"The café"}, 1, &d, &g), VKF_OK, "%s", vkf_last_error(ctx));
        cr_assert_eq(g.n_ids, nw, "stop '%s': %u ids, HF %u", stops[0], g.n_ids, nw);
        assert_ids(&g, want, nw, stops[0]);
        cr_assert_str_eq(g.text, cJSON_GetObjectItem(c, "text")->valuestring);
        cr_assert_eq(g.stop, nw < d.max_new_tokens ? VKF_STOP_STRING : VKF_STOP_MAX_TOKENS, "stop '%s'", stops[0]);
        vkf_generation_free(&g, 1);
    }
    /* an empty stop string, and stop strings without a tokenizer */
    vkf_generation g;
    vkf_generate_desc d = {.stop_strings = (const char *const[]){""}, .n_stop_strings = 1};
    cr_assert_eq(vkf_generate(m, (const char *const[]){"x"}, 1, &d, &g), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(ctx), "empty"), "%s", vkf_last_error(ctx));
    vkf_model_destroy(m);
    m = tload_model(ctx, golden(), VKF_FP32);
    d.stop_strings = (const char *const[]){"a"};
    const int32_t *p = PROMPT;
    uint32_t n = 10;
    vkf_session *s;
    cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
    cr_assert_eq(vkf_session_generate_ids(s, &p, &n, &d, &g), VKF_ERROR_NOT_FOUND);
    cr_assert(strstr(vkf_last_error(ctx), "tokenizer"), "%s", vkf_last_error(ctx));
    vkf_session_destroy(s);
    vkf_model_destroy(m);
    cJSON_Delete(o);
    tctx_destroy(ctx);
}

/* ---- vkformer-generate ---------------------------------------------------------------- */

Test(gpt2, cli)
{
    char args[1024];
    snprintf(args, sizeof args, "-m %s --precision fp32 -q --prompt-ids '11 114 67 285 206 70 292 233 288 4' -n 8 --print-ids --ignore-eos", golden());
    tcli_result *r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert_str_eq(r->out, "193 193 193 193 193 193 255 255\n");
    snprintf(args, sizeof args, "-m %s --prompt-ids '5' -n 4 --seed 3 --temperature 0.9 --print-ids --ignore-eos", golden());
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    char first[256];
    snprintf(first, sizeof first, "%s", r->out);
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_str_eq(r->out, first, "the same seed, the same ids");
    cr_assert(strstr(r->err, "tokens/s"), "statistics on stderr: %s", r->err);
    /* text, streamed, from the real tokenizer */
    r = tcli_run(VKF_GENERATE_BIN, "-m " CASES "/text -q -n 10 --ignore-eos --prompt 'The café'", NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    ref_case c;
    load_case("text", &c);
    const char *want = cJSON_GetObjectItem(c.json, "generated_texts")->child->next->valuestring;
    char expect[4096];
    snprintf(expect, sizeof expect, "The café%s\n", want);
    cr_assert_str_eq(r->out, expect);
    cJSON_Delete(c.json);
    /* the same prompt from standard input */
    r = tcli_run(VKF_GENERATE_BIN, "-m " CASES "/text -q -n 10 --ignore-eos", "The café\n", 10);
    cr_assert_str_eq(r->out, expect);
    /* bad usage: 2; a failing model: 1 */
    const char *bad[] = {"-n 0", "--temperature -1", "--temperature nan", "--top-p 0", "--top-p 1.5", "--prompt-ids 'a b'",
                         "--greedy --temperature 1", "--bogus"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "-m %s --prompt-ids 5 %s", golden(), bad[i]);
        r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
        cr_assert_eq(r->status, 2, "%s: exit %d (%s)", bad[i], r->status, r->err);
    }
    snprintf(args, sizeof args, "-m %s --prompt-ids '5 300'", golden());
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "outside the vocabulary"), "%s", r->err);
    r = tcli_run(VKF_GENERATE_BIN, "--help", NULL, 0);
    cr_assert_eq(r->status, 0);
    cr_assert(strstr(r->out, "--top-p"));
}

/* A load that fails after the progress line started prints its error on a
 * line of its own: a 90 MB GPT-2 whose last tensor has the wrong dtype. */
Test(gpt2, load_error_after_progress_on_its_own_line, .timeout = 120)
{
    char dir[256], path[400];
    ttmpdir_create(dir, sizeof dir, "gpt2-progress");
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model_type\": \"gpt2\", \"vocab_size\": 20000, \"n_embd\": 1024, \"n_layer\": 1, \"n_head\": 16, \"n_positions\": 8}", f);
    fclose(f);
    static const struct {
        const char *name;
        uint64_t rows, cols;
    } t[] = {{"wte.weight", 20000, 1024}, {"wpe.weight", 8, 1024}, {"h.0.ln_1.weight", 1, 1024}, {"h.0.ln_1.bias", 1, 1024},
             {"h.0.attn.c_attn.weight", 1024, 3072}, {"h.0.attn.c_attn.bias", 1, 3072}, {"h.0.attn.c_proj.weight", 1024, 1024},
             {"h.0.attn.c_proj.bias", 1, 1024}, {"h.0.ln_2.weight", 1, 1024}, {"h.0.ln_2.bias", 1, 1024},
             {"h.0.mlp.c_fc.weight", 1024, 4096}, {"h.0.mlp.c_fc.bias", 1, 4096}, {"h.0.mlp.c_proj.weight", 4096, 1024},
             {"h.0.mlp.c_proj.bias", 1, 1024}, {"ln_f.weight", 1, 1024}, {"ln_f.bias", 1, 1024}};
    enum { N = sizeof t / sizeof t[0] };
    char hdr[4096] = "{";
    uint64_t off = 0;
    for (int i = 0; i < N; i++) {
        bool last = i == N - 1; /* ln_f.bias as I32: refused when converted, after everything before it */
        char shape[64];
        if (t[i].rows == 1) snprintf(shape, sizeof shape, "%llu", (unsigned long long)t[i].cols);
        else snprintf(shape, sizeof shape, "%llu,%llu", (unsigned long long)t[i].rows, (unsigned long long)t[i].cols);
        uint64_t bytes = t[i].rows * t[i].cols * 4;
        snprintf(hdr + strlen(hdr), sizeof hdr - strlen(hdr), "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%llu,%llu]}",
                 i ? "," : "", t[i].name, last ? "I32" : "F32", shape, (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    strcat(hdr, "}");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "wb");
    uint64_t hl = strlen(hdr);
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    static float zeros[1 << 16];
    for (uint64_t done = 0; done < off; done += sizeof zeros) fwrite(zeros, 1, off - done < sizeof zeros ? off - done : sizeof zeros, f);
    fclose(f);
    char args[512];
    snprintf(args, sizeof args, "-m %s --precision fp32 --prompt-ids 5 -n 1", dir);
    /* on a terminal: the progress line, then the error on a line of its own */
    tcli_result *r = tcli_run_tty(VKF_GENERATE_BIN, args);
    cr_assert_eq(r->status, 1, "%s", r->out);
    cr_assert(strstr(r->out, "loading weights:"), "a progress line for 90 MB: %s", r->out);
    const char *e = strstr(r->out, "vkformer-generate: ");
    cr_assert(e && e > r->out && e[-1] == '\n', "the error starts its own line: %s", r->out);
    cr_assert(strstr(e, "ln_f.bias"), "%s", e);
    /* not on a terminal: no progress line at all */
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 1, "%s", r->err);
    cr_assert(!strstr(r->err, "loading weights") && !strchr(r->err, '\r'), "progress into a pipe: %s", r->err);
    cr_assert(!strncmp(r->err, "vkformer-generate: ", 19) && strstr(r->err, "ln_f.bias"), "%s", r->err);
    ttmpdir_remove(dir);
}
