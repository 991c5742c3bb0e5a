/* Encoder-decoders against HF (tools/make_encdec_refs.py): the forward pass
 * over given decoder_input_ids (logits and the encoder's output, a padded
 * batch of two), greedy generation with forced BOS/EOS and every step's
 * logits, the prompts generated together as one batch, cached decoding
 * against recomputation, fp16, the replay path's Vulkan calls, bad input. */
#include "common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CASES VKF_TEST_DATA "/encdec"

/* The random checkpoints of tools/make_encdec_refs.py. */
static const char *const NAMES[] = {"bart", "mbart", "marian", "t5", "flan-t5"};
#define EACH_CASE for (size_t ci = 0; ci < sizeof NAMES / sizeof NAMES[0]; ci++)

typedef struct enc_case {
    cJSON *json;
    char dir[512];
    uint32_t n_prompts, vocab, d_model, new_tokens, pad;
    int32_t prompts[4][64];
    uint32_t lens[4];
    int32_t dec[4][64];
    uint32_t dec_len;
    int32_t greedy[4][64];
    uint32_t greedy_len[4];
} enc_case;

static void ints(const cJSON *a, int32_t *out, uint32_t *n, uint32_t cap)
{
    *n = 0;
    for (const cJSON *v = a ? a->child : NULL; v && *n < cap; v = v->next) out[(*n)++] = (int32_t)v->valuedouble;
}

static enc_case load_case(const char *name)
{
    enc_case c = {0};
    snprintf(c.dir, sizeof c.dir, "%s/%s", CASES, name);
    char path[600];
    snprintf(path, sizeof path, "%s/case.json", c.dir);
    c.json = tread_json(path);
    const cJSON *p = cJSON_GetObjectItem(c.json, "prompts"), *dec = cJSON_GetObjectItem(c.json, "decoder_input_ids"),
                *g = cJSON_GetObjectItem(c.json, "greedy_ids");
    for (const cJSON *x = p->child; x && c.n_prompts < 4; x = x->next, c.n_prompts++) ints(x, c.prompts[c.n_prompts], &c.lens[c.n_prompts], 64);
    uint32_t i = 0;
    for (const cJSON *x = dec->child; x && i < 4; x = x->next, i++) ints(x, c.dec[i], &c.dec_len, 64);
    i = 0;
    for (const cJSON *x = g->child; x && i < 4; x = x->next, i++) ints(x, c.greedy[i], &c.greedy_len[i], 64);
    c.vocab = (uint32_t)cJSON_GetObjectItem(c.json, "vocab")->valuedouble;
    c.d_model = (uint32_t)cJSON_GetObjectItem(c.json, "d_model")->valuedouble;
    c.new_tokens = (uint32_t)cJSON_GetObjectItem(c.json, "new_tokens")->valuedouble;
    c.pad = (uint32_t)cJSON_GetObjectItem(c.json, "pad")->valuedouble;
    return c;
}

/* The padded batch of prompts (HF's pad id and mask) and the decoder ids, through vkf_model_run. */
static void forward(vkf_model *m, const enc_case *c, float *logits, float *enc_hidden)
{
    uint32_t B = c->n_prompts, S = 0, T = c->dec_len;
    for (uint32_t b = 0; b < B; b++) S = BASE_MAX(S, c->lens[b]);
    int64_t ids[4 * 64], mask[4 * 64];
    int32_t dec[4 * 64];
    for (uint32_t b = 0; b < B; b++) {
        for (uint32_t j = 0; j < S; j++) {
            ids[b * S + j] = j < c->lens[b] ? c->prompts[b][j] : (int64_t)c->pad;
            mask[b * S + j] = j < c->lens[b];
        }
        memcpy(dec + b * T, c->dec[b], T * 4);
    }
    vkf_tensor in[3] = {{"input_ids", 2, {B, S}, ids, 0, VKF_I64},
                        {"attention_mask", 2, {B, S}, mask, 0, VKF_I64},
                        {"decoder_input_ids", 2, {B, T}, dec, 0, VKF_I32}};
    vkf_tensor out[2] = {{.name = "logits", .data = logits, .capacity = (uint64_t)B * T * c->vocab * 4},
                         {.name = "encoder_last_hidden_state", .data = enc_hidden, .capacity = (uint64_t)B * S * c->d_model * 4}};
    cr_assert_eq(vkf_model_run(m, in, 3, out, 2), VKF_OK, "%s", vkf_last_error(NULL));
    cr_assert_eq(out[0].rank, 3);
    cr_assert_eq(out[0].shape[0], B);
    cr_assert_eq(out[0].shape[1], T);
    cr_assert_eq(out[0].shape[2], c->vocab);
    cr_assert_eq(out[1].shape[1], S);
}

Test(encdec, forward_equals_hf)
{
    EACH_CASE {
        enc_case c = load_case(NAMES[ci]);
        vkf_context *ctx = tctx_create(tcaps());
        vkf_model *m = tload_model(ctx, c.dir, VKF_FP32);
        vkf_model_info info;
        vkf_model_get_info(m, &info);
        cr_assert_str_eq(info.task, "text2text-generation");
        cr_assert_str_eq(info.family, strstr(NAMES[ci], "t5") ? "t5" : "bart");
        uint32_t S = BASE_MAX(c.lens[0], c.lens[1]), T = c.dec_len;
        size_t nl = (size_t)2 * T * c.vocab, nh = (size_t)2 * S * c.d_model;
        float *logits = malloc(nl * 4), *hidden = malloc(nh * 4);
        forward(m, &c, logits, hidden);
        char path[600];
        snprintf(path, sizeof path, "%s/logits.bin", c.dir);
        float *want_l = tread_file(path, nl * 4);
        snprintf(path, sizeof path, "%s/encoder_hidden.bin", c.dir);
        float *want_h = tread_file(path, nh * 4);
        /* the encoder's padded positions are HF's too (they see the real tokens) */
        double el = max_abs_diff_f32(logits, want_l, nl), eh = max_abs_diff_f32(hidden, want_h, nh);
        cr_assert_leq(eh, 1e-4, "encoder_last_hidden_state differs by %g", eh);
        cr_assert_leq(el, 1e-4, "logits differ by %g", el);
        free(logits), free(hidden), free(want_l), free(want_h);
        vkf_model_destroy(m);
        tctx_destroy(ctx);
        cJSON_Delete(c.json);
    }
}

/* Greedy generation: HF's ids (its sequences begin with the decoder start
 * token, ours are the generated ones), the forced BOS first and the forced
 * EOS last, every step's raw logits; one prompt at a time and both at once. */
Test(encdec, greedy_equals_hf)
{
    EACH_CASE {
        enc_case c = load_case(NAMES[ci]);
        vkf_context *ctx = tctx_create(tcaps());
        vkf_model *m = tload_model(ctx, c.dir, VKF_FP32);
        uint32_t N = c.new_tokens, V = c.vocab;
        float *steps = malloc((size_t)2 * N * V * 4);
        char path[600];
        snprintf(path, sizeof path, "%s/step_logits.bin", c.dir);
        uint32_t n_steps = (uint32_t)cJSON_GetObjectItem(c.json, "steps")->valuedouble; /* HF's steps before it stopped */
        float *want_s = tread_file(path, (size_t)n_steps * V * 4);
        for (int together = 0; together < 2; together++) {
            uint32_t B = together ? c.n_prompts : 1;
            for (uint32_t first = 0; first < c.n_prompts; first += B) {
                vkf_session *s;
                cr_assert_eq(vkf_session_create(m, B, &s), VKF_OK, "%s", vkf_last_error(ctx));
                const int32_t *ids[4];
                for (uint32_t b = 0; b < B; b++) ids[b] = c.prompts[first + b];
                vkf_generation g[4];
                vkf_generate_desc d = {.max_new_tokens = N, .logits_out = steps};
                cr_assert_eq(vkf_session_generate_ids(s, ids, c.lens + first, &d, g), VKF_OK, "%s", vkf_last_error(ctx));
                for (uint32_t b = 0; b < B; b++) {
                    const int32_t *want = c.greedy[first + b] + 1;
                    uint32_t n = c.greedy_len[first + b] - 1;
                    cr_assert_eq(g[b].n_ids, n, "prompt %u (%s): %u ids, HF %u", first + b, together ? "batch" : "alone", g[b].n_ids, n);
                    for (uint32_t i = 0; i < n; i++)
                        cr_assert_eq(g[b].ids[i], want[i], "prompt %u (%s): id %u is %d, HF %d", first + b, together ? "batch" : "alone", i,
                                     g[b].ids[i], want[i]);
                    cr_assert_eq(g[b].prompt_tokens, c.lens[first + b]);
                    /* HF's last id: EOS (forced or chosen), else the length limit */
                    cr_assert_eq(g[b].stop, want[n - 1] == (int32_t)cJSON_GetObjectItem(c.json, "eos")->valuedouble ? VKF_STOP_EOS
                                                                                                                  : VKF_STOP_MAX_TOKENS);
                }
                if (first == 0) {
                    double e = max_abs_diff_f32(steps, want_s, (size_t)n_steps * V);
                    cr_assert_leq(e, 1e-4, "step logits (%s) differ by %g", together ? "batch" : "alone", e);
                }
                vkf_generation_free(g, B);
                /* a second call starts afresh: the same ids again */
                cr_assert_eq(vkf_session_generate_ids(s, ids, c.lens + first, &(vkf_generate_desc){.max_new_tokens = N}, g), VKF_OK);
                cr_assert_eq(g[0].n_ids, c.greedy_len[first] - 1);
                for (uint32_t i = 0; i < g[0].n_ids; i++) cr_assert_eq(g[0].ids[i], c.greedy[first][i + 1]);
                vkf_generation_free(g, B);
                vkf_session_destroy(s);
            }
        }
        free(steps), free(want_s);
        vkf_model_destroy(m);
        tctx_destroy(ctx);
        cJSON_Delete(c.json);
    }
}

/* Each decode step's logits through the caches equal the forward pass over
 * the decoder ids generated so far (its last position). */
Test(encdec, cached_decoding_equals_recomputation)
{
    EACH_CASE {
        enc_case c = load_case(NAMES[ci]);
        vkf_context *ctx = tctx_create(tcaps());
        vkf_model *m = tload_model(ctx, c.dir, VKF_FP32);
        uint32_t N = 9, V = c.vocab, S = c.lens[1];
        float *steps = malloc((size_t)N * V * 4);
        vkf_session *s;
        cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
        const int32_t *ids = c.prompts[1];
        vkf_generation g;
        vkf_generate_desc d = {.max_new_tokens = N, .logits_out = steps, .ignore_eos = 1}; /* N tokens whatever comes */
        cr_assert_eq(vkf_session_generate_ids(s, &ids, &c.lens[1], &d, &g), VKF_OK, "%s", vkf_last_error(ctx));
        int32_t dec[16] = {c.dec[0][0]}; /* the decoder start */
        for (uint32_t i = 0; i < N - 1; i++) dec[i + 1] = g.ids[i];
        float *full = malloc((size_t)N * V * 4);
        vkf_tensor in[2] = {{"input_ids", 2, {1, S}, (void *)c.prompts[1], 0, VKF_I32}, {"decoder_input_ids", 2, {1, N}, dec, 0, VKF_I32}};
        vkf_tensor out = {.name = "logits", .data = full, .capacity = (uint64_t)N * V * 4};
        cr_assert_eq(vkf_model_run(m, in, 2, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
        /* step i's logits (before forcing) are position i's of the full pass */
        double e = max_abs_diff_f32(steps, full, (size_t)N * V);
        cr_assert_leq(e, 1e-4, "cached steps differ from recomputation by %g", e);
        vkf_generation_free(&g, 1);
        vkf_session_destroy(s);
        free(steps), free(full);
        vkf_model_destroy(m);
        tctx_destroy(ctx);
        cJSON_Delete(c.json);
    }
}

/* fp16 storage: the argmax where HF's top two logits are apart. */
Test(encdec, fp16_argmax)
{
    EACH_CASE {
        enc_case c = load_case(NAMES[ci]);
        vkf_context *ctx = tctx_create(tcaps());
        if (!tctx_dev(ctx)->caps.storage16) {
            tctx_destroy(ctx);
            cJSON_Delete(c.json);
            cr_skip_test("no 16-bit storage");
        }
        vkf_model *m = tload_model(ctx, c.dir, VKF_FP16);
        uint32_t T = c.dec_len, V = c.vocab, S = BASE_MAX(c.lens[0], c.lens[1]);
        float *logits = malloc((size_t)2 * T * V * 4), *hidden = malloc((size_t)2 * S * c.d_model * 4);
        forward(m, &c, logits, hidden);
        char path[600];
        snprintf(path, sizeof path, "%s/logits.bin", c.dir);
        float *want = tread_file(path, (size_t)2 * T * V * 4);
        uint32_t checked = 0;
        for (uint32_t r = 0; r < 2 * T; r++) {
            const float *w = want + (size_t)r * V, *x = logits + (size_t)r * V;
            uint32_t a = 0, b = 1, got = 0;
            for (uint32_t i = 0; i < V; i++) {
                if (w[i] > w[a]) b = a, a = i;
                else if (i != a && w[i] > w[b]) b = i;
                if (x[i] > x[got]) got = i;
            }
            if (w[a] - w[b] < 0.01f * fabsf(w[a]) + 0.02f) continue;
            checked++;
            cr_assert_eq(got, a, "%s row %u: argmax %u (%g), HF %u (%g, second %g)", NAMES[ci], r, got, (double)x[got], a, (double)w[a],
                         (double)w[b]);
        }
        cr_assert_geq(checked, 4, "too few rows with a margin (%u)", checked);
        free(logits), free(hidden), free(want);
        vkf_model_destroy(m);
        tctx_destroy(ctx);
        cJSON_Delete(c.json);
    }
}

/* A copy of a case's checkpoint whose generation_config.json gets these keys too. */
static void copy_with_generation(const char *from, char *dir, size_t cap, const cJSON *extra)
{
    ttmpdir_create(dir, cap, "encdec-gen");
    static const char *const files[] = {"config.json", "model.safetensors", "generation_config.json"};
    for (int i = 0; i < 3; i++) {
        char src[600];
        snprintf(src, sizeof src, "%s/%s", from, files[i]);
        FILE *f = fopen(src, "rb");
        cr_assert_not_null(f);
        fseek(f, 0, SEEK_END);
        size_t n = (size_t)ftell(f);
        rewind(f);
        char *data = malloc(n + 1);
        cr_assert_eq(fread(data, 1, n, f), n);
        fclose(f);
        data[n] = 0;
        if (i == 2) {
            cJSON *g = cJSON_Parse(data);
            for (const cJSON *e = extra->child; e; e = e->next) {
                cJSON_DeleteItemFromObject(g, e->string);
                cJSON_AddItemToObject(g, e->string, cJSON_Duplicate(e, 1));
            }
            char *out = cJSON_PrintUnformatted(g);
            twrite_file(dir, files[i], out, strlen(out));
            free(out);
            cJSON_Delete(g);
        } else {
            twrite_file(dir, files[i], data, n);
        }
        free(data);
    }
}

Test(encdec, bad_input)
{
    enc_case c = load_case("bart");
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, c.dir, VKF_FP32);
    /* the forward pass needs decoder_input_ids */
    vkf_tensor in = {"input_ids", 2, {1, c.lens[0]}, c.prompts[0], 0, VKF_I32};
    float out_buf[16];
    vkf_tensor out = {.name = "logits", .data = out_buf, .capacity = sizeof out_buf};
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(ctx), "decoder_input_ids"), "%s", vkf_last_error(ctx));
    /* decoder ids outside the vocabulary, or past the positions */
    int32_t bad[2] = {2, 100000};
    vkf_tensor in2[2] = {in, {"decoder_input_ids", 2, {1, 2}, bad, 0, VKF_I32}};
    cr_assert_eq(vkf_model_run(m, in2, 2, &out, 1), VKF_ERROR_INVALID_ARGUMENT);
    static int32_t long_dec[100];
    in2[1] = (vkf_tensor){"decoder_input_ids", 2, {1, 100}, long_dec, 0, VKF_I32};
    cr_assert_eq(vkf_model_run(m, in2, 2, &out, 1), VKF_ERROR_SHAPE);
    /* generation: an empty source, one past max_position_embeddings */
    vkf_session *s;
    cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
    vkf_generation g;
    const int32_t *ids = c.prompts[0];
    uint32_t zero = 0, big = 65;
    static int32_t many[65];
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &zero, NULL, &g), VKF_ERROR_INVALID_ARGUMENT);
    ids = many;
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &big, NULL, &g), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(ctx), "1 to 64 tokens"), "%s", vkf_last_error(ctx));
    /* beams over the cap, beams with sampling */
    ids = c.prompts[0];
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &c.lens[0], &(vkf_generate_desc){.num_beams = 65}, &g), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(ctx), "1 to 64 beams"), "%s", vkf_last_error(ctx));
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &c.lens[0], &(vkf_generate_desc){.num_beams = 2, .temperature = 0.7f}, &g),
                 VKF_ERROR_UNSUPPORTED);
    vkf_session_destroy(s);
    vkf_model_destroy(m);
    /* a checkpoint whose generation_config.json names no decoder start token: generation refuses to begin */
    char dir[256];
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddNullToObject(extra, "decoder_start_token_id");
    copy_with_generation(c.dir, dir, sizeof dir, extra);
    cJSON_Delete(extra);
    m = tload_model(ctx, dir, VKF_FP32);
    cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &c.lens[0], NULL, &g), VKF_ERROR_FORMAT);
    cr_assert(strstr(vkf_last_error(ctx), "decoder_start_token_id"), "%s", vkf_last_error(ctx));
    vkf_session_destroy(s);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    cJSON_Delete(c.json);
}

/* After a first call recorded the encoder and the decode step, generating
 * records, creates and updates nothing: one submit for the encoder, one per
 * token. */
Test(encdec, replay_records_nothing_per_token)
{
    enc_case c = load_case("bart");
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, c.dir, VKF_FP32);
    vkf_session *s;
    cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
    const int32_t *ids = c.prompts[0];
    vkf_generation g;
    vkf_generate_desc d = {.max_new_tokens = 3, .ignore_eos = 1};
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &c.lens[0], &d, &g), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_generation_free(&g, 1);
    vk_counters *k = &ctx->dev->calls;
    unsigned create = k->create, allocate = k->allocate, update = k->update_sets, begin = k->begin_cmd, submit = k->submit;
    d.max_new_tokens = 30;
    cr_assert_eq(vkf_session_generate_ids(s, &ids, &c.lens[0], &d, &g), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(g.n_ids, 30, "%u ids", g.n_ids);
    cr_assert_eq(k->create, create, "vkCreate* while generating");
    cr_assert_eq(k->allocate, allocate, "vkAllocate* while generating");
    cr_assert_eq(k->update_sets, update, "vkUpdateDescriptorSets while generating");
    cr_assert_eq(k->begin_cmd, begin, "command buffers re-recorded while generating");
    cr_assert_eq(k->submit - submit, 31, "the encoder and 30 decode steps, not %u submits", k->submit - submit);
    vkf_generation_free(&g, 1);
    vkf_session_destroy(s);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    cJSON_Delete(c.json);
}

/* Text in, text out, as HF's pipelines (transformers 4.57; transformers 5
 * removed them): text2text-generation's generated_text over a BART and
 * translation's translation_text over a Marian with the real opus-mt
 * tokenizer (special tokens skipped), through the library and through
 * vkformer-generate. */
static void text_case(const char *name, const char *field, const char *task)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", CASES, name);
    snprintf(path, sizeof path, "%s/case.json", dir);
    cJSON *c = tread_json(path);
    const cJSON *texts = cJSON_GetObjectItem(c, "texts"), *want = cJSON_GetObjectItem(c, field);
    cr_assert_not_null(want, "%s: no %s", name, field);
    const char *prompts[2] = {texts->child->valuestring, texts->child->next->valuestring};
    const char *expect[2] = {want->child->valuestring, want->child->next->valuestring};
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    vkf_generation g[2];
    cr_assert_eq(vkf_generate(m, prompts, 2, &(vkf_generate_desc){.max_new_tokens = 10}, g), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < 2; i++) cr_assert_str_eq(g[i].text, expect[i], "%s: text %d", name, i);
    vkf_generation_free(g, 2);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    /* the tool: the new text only (no prompt echoed), streamed */
    char args[1024];
    snprintf(args, sizeof args, "-m %s -q -n 10 --prompt '%s'", dir, prompts[0]);
    tcli_result *r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    char line[1024];
    snprintf(line, sizeof line, "%s\n", expect[0]);
    cr_assert_str_eq(r->out, line);
    /* --json under the task's field name, one element per prompt */
    snprintf(args, sizeof args, "-m %s -q -n 10 --task %s --json --prompt '%s' --prompt '%s'", dir, task, prompts[0], prompts[1]);
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cJSON *j = cJSON_Parse(r->out);
    cr_assert(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2, "%s", r->out);
    const char *key = !strcmp(task, "summarization") ? "summary_text" : !strncmp(task, "translation", 11) ? "translation_text"
                                                                                                          : "generated_text";
    for (int i = 0; i < 2; i++) {
        const cJSON *o = cJSON_GetArrayItem(cJSON_GetArrayItem(j, i), 0);
        cr_assert_str_eq(cJSON_GetObjectItem(o, key)->valuestring, expect[i]);
        const char *stop = cJSON_GetObjectItem(o, "stop")->valuestring; /* EOS (BART, Marian force it) or the limit */
        cr_assert(!strcmp(stop, "eos") || !strcmp(stop, "max_new_tokens"), "%s", stop);
    }
    cJSON_Delete(j);
    /* beam search through the tool: the pipeline's num_beams=4 texts */
    char beam_field[64];
    snprintf(beam_field, sizeof beam_field, "%s_beam4", field);
    const cJSON *wb = cJSON_GetObjectItem(c, beam_field);
    cr_assert_not_null(wb);
    snprintf(args, sizeof args, "-m %s -q -n 10 --num-beams 4 --prompt '%s'", dir, prompts[1]);
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(line, sizeof line, "%s\n", wb->child->next->valuestring);
    cr_assert_str_eq(r->out, line);
    /* a causal LM's task on an encoder-decoder is refused before loading */
    snprintf(args, sizeof args, "-m %s -q --task text-generation --prompt x", dir);
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "text2text-generation"), "%s", r->err);
    cJSON_Delete(c);
}

Test(encdec, text_to_text_equals_hf_pipelines)
{
    text_case("bart-text", "generated_texts", "summarization");
    text_case("marian-text", "translation_texts", "translation_en_to_fr");
    text_case("t5-text", "generated_texts", "text2text-generation");
}

/* Beam search against HF's generate (transformers 5) with several settings
 * (tools/make_encdec_refs.py BEAM_SETTINGS): each prompt alone and both as
 * one batch, the best hypothesis's ids equal HF's. bart-eos favours EOS so
 * hypotheses finish early and are replaced by longer ones. */
Test(encdec, beam_search_equals_hf)
{
    static const char *const cases[] = {"bart", "marian", "bart-eos", "t5", "flan-t5"};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        enc_case c = load_case(cases[ci]);
        vkf_context *ctx = tctx_create(tcaps());
        vkf_model *m = tload_model(ctx, c.dir, VKF_FP32);
        const cJSON *beams = cJSON_GetObjectItem(c.json, "beams");
        cr_assert(cJSON_GetArraySize(beams) >= 3);
        int si = 0;
        for (const cJSON *bs = beams->child; bs; bs = bs->next, si++) {
            const cJSON *set = cJSON_GetObjectItem(bs, "settings"), *es = cJSON_GetObjectItem(set, "early_stopping");
            vkf_generate_desc d = {.explicit_fields = VKF_GEN_LENGTH_PENALTY | VKF_GEN_NO_REPEAT_NGRAM | VKF_GEN_MIN_NEW_TOKENS};
            d.num_beams = (uint32_t)cJSON_GetObjectItem(set, "num_beams")->valuedouble;
            d.max_new_tokens = (uint32_t)cJSON_GetObjectItem(set, "max_new_tokens")->valuedouble;
            d.length_penalty = (float)cJSON_GetObjectItem(set, "length_penalty")->valuedouble;
            d.early_stopping = cJSON_IsTrue(es) ? VKF_EARLY_STOPPING_TRUE : cJSON_IsString(es) ? VKF_EARLY_STOPPING_NEVER
                                                                                          : VKF_EARLY_STOPPING_FALSE;
            const cJSON *v = cJSON_GetObjectItem(set, "no_repeat_ngram_size");
            d.no_repeat_ngram_size = v ? (uint32_t)v->valuedouble : 0;
            v = cJSON_GetObjectItem(set, "min_new_tokens");
            d.min_new_tokens = v ? (uint32_t)v->valuedouble : 0;
            v = cJSON_GetObjectItem(set, "repetition_penalty");
            d.repetition_penalty = v ? (float)v->valuedouble : 0;
            const cJSON *want = cJSON_GetObjectItem(bs, "ids");
            for (int together = 0; together < 2; together++) {
                uint32_t B = together ? 2 : 1;
                for (uint32_t first = 0; first < 2; first += B) {
                    vkf_session *s;
                    cr_assert_eq(vkf_session_create(m, B, &s), VKF_OK);
                    const int32_t *ids[2] = {c.prompts[first], c.prompts[first + B - 1]};
                    vkf_generation g[2];
                    cr_assert_eq(vkf_session_generate_ids(s, ids, c.lens + first, &d, g), VKF_OK, "%s", vkf_last_error(ctx));
                    for (uint32_t b = 0; b < B; b++) {
                        int32_t hf[64];
                        uint32_t n;
                        ints(cJSON_GetArrayItem(want, (int)(first + b)), hf, &n, 64);
                        char got[512] = "", exp[512] = "";
                        for (uint32_t i = 0; i < g[b].n_ids; i++) snprintf(got + strlen(got), sizeof got - strlen(got), " %d", g[b].ids[i]);
                        for (uint32_t i = 1; i < n; i++) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " %d", hf[i]);
                        cr_assert_str_eq(got, exp, "%s, settings %d, prompt %u (%s)", cases[ci], si, first + b, together ? "batch" : "alone");
                    }
                    vkf_generation_free(g, B);
                    vkf_session_destroy(s);
                }
            }
        }
        vkf_model_destroy(m);
        tctx_destroy(ctx);
        cJSON_Delete(c.json);
    }
}

/* T5's task_specific_params: a task's prefix before the prompt and its
 * settings (2 beams, max_length 9, early stopping) over the generation
 * config, through the library (desc.task) and vkformer-generate --task. */
Test(encdec, task_specific_params)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/t5-text", CASES);
    snprintf(path, sizeof path, "%s/case.json", dir);
    cJSON *c = tread_json(path);
    const cJSON *texts = cJSON_GetObjectItem(c, "task_texts"), *want = cJSON_GetObjectItem(c, "translation_en_to_de");
    const char *prompts[2] = {texts->child->valuestring, texts->child->next->valuestring};
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    vkf_generation g[2];
    cr_assert_eq(vkf_generate(m, prompts, 2, &(vkf_generate_desc){.task = "translation_en_to_de"}, g), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < 2; i++) {
        cr_assert_str_eq(g[i].text, cJSON_GetArrayItem(want, i)->valuestring, "text %d", i);
        cr_assert_leq(g[i].n_ids, 8, "max_length 9: 8 new tokens at most");
    }
    vkf_generation_free(g, 2);
    /* without the task: no prefix, the model's settings (greedy, 50 tokens): another text */
    cr_assert_eq(vkf_generate(m, prompts, 1, &(vkf_generate_desc){.max_new_tokens = 8}, g), VKF_OK);
    cr_assert_str_neq(g[0].text, cJSON_GetArrayItem(want, 0)->valuestring);
    vkf_generation_free(g, 1);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    char args[1024], line[1024];
    snprintf(args, sizeof args, "-m %s -q --task translation_en_to_de --prompt '%s'", dir, prompts[1]);
    tcli_result *r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(line, sizeof line, "%s\n", cJSON_GetArrayItem(want, 1)->valuestring);
    cr_assert_str_eq(r->out, line);
    cJSON_Delete(c);
}

/* bad_words_ids and a list of EOS ids from generation_config.json, greedy and
 * with beams, against transformers 5's generate given the same. */
Test(encdec, bad_words_and_eos_lists)
{
    enc_case c = load_case("bart");
    vkf_context *ctx = tctx_create(tcaps());
    const cJSON *listed = cJSON_GetObjectItem(c.json, "listed");
    cr_assert_eq(cJSON_GetArraySize(listed), 2);
    for (const cJSON *l = listed->child; l; l = l->next) {
        const cJSON *set = cJSON_GetObjectItem(l, "settings");
        cJSON *extra = cJSON_CreateObject();
        cJSON_AddItemToObject(extra, "bad_words_ids", cJSON_Duplicate(cJSON_GetObjectItem(set, "bad_words_ids"), 1));
        cJSON_AddItemToObject(extra, "eos_token_id", cJSON_Duplicate(cJSON_GetObjectItem(set, "eos_token_id"), 1));
        char dir[256];
        copy_with_generation(c.dir, dir, sizeof dir, extra);
        cJSON_Delete(extra);
        vkf_model *m = tload_model(ctx, dir, VKF_FP32);
        const cJSON *nb = cJSON_GetObjectItem(set, "num_beams");
        vkf_generate_desc d = {.max_new_tokens = (uint32_t)cJSON_GetObjectItem(set, "max_new_tokens")->valuedouble,
                               .num_beams = nb ? (uint32_t)nb->valuedouble : 1};
        for (uint32_t p = 0; p < c.n_prompts; p++) {
            vkf_generation g;
            vkf_session *s;
            cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
            const int32_t *ids = c.prompts[p];
            cr_assert_eq(vkf_session_generate_ids(s, &ids, &c.lens[p], &d, &g), VKF_OK, "%s", vkf_last_error(ctx));
            int32_t hf[64];
            uint32_t n;
            ints(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "ids"), (int)p), hf, &n, 64);
            cr_assert_eq(g.n_ids, n - 1, "prompt %u, %u beams: %u ids, HF %u", p, d.num_beams, g.n_ids, n - 1);
            for (uint32_t i = 0; i + 1 < n; i++) cr_assert_eq(g.ids[i], hf[i + 1], "prompt %u, %u beams: id %u", p, d.num_beams, i);
            cr_assert_eq(g.stop, VKF_STOP_EOS);
            vkf_generation_free(&g, 1);
            vkf_session_destroy(s);
        }
        vkf_model_destroy(m);
    }
    tctx_destroy(ctx);
    cJSON_Delete(c.json);
}

/* T5EncoderModel: the encoder alone through the tensor API, a padded batch of
 * two, last_hidden_state against transformers 5; then packed. */
Test(encdec, t5_encoder_model)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/t5-encoder", CASES);
    snprintf(path, sizeof path, "%s/case.json", dir);
    cJSON *c = tread_json(path);
    int32_t p[2][64];
    uint32_t lens[2];
    ints(cJSON_GetObjectItem(c, "prompts")->child, p[0], &lens[0], 64);
    ints(cJSON_GetObjectItem(c, "prompts")->child->next, p[1], &lens[1], 64);
    uint32_t S = BASE_MAX(lens[0], lens[1]), D = (uint32_t)cJSON_GetObjectItem(c, "d_model")->valuedouble;
    int32_t ids[128], mask[128];
    for (uint32_t b = 0; b < 2; b++)
        for (uint32_t j = 0; j < S; j++) ids[b * S + j] = j < lens[b] ? p[b][j] : 0, mask[b * S + j] = j < lens[b];
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    vkf_model_info info;
    vkf_model_get_info(m, &info);
    cr_assert_str_eq(info.task, "feature-extraction");
    float *h = malloc((size_t)2 * S * D * 4);
    vkf_tensor in[2] = {{"input_ids", 2, {2, S}, ids, 0, VKF_I32}, {"attention_mask", 2, {2, S}, mask, 0, VKF_I32}};
    vkf_tensor out = {.name = "last_hidden_state", .data = h, .capacity = (uint64_t)2 * S * D * 4};
    cr_assert_eq(vkf_model_run(m, in, 2, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    snprintf(path, sizeof path, "%s/last_hidden_state.bin", dir);
    float *want = tread_file(path, (size_t)2 * S * D * 4);
    double e = max_abs_diff_f32(h, want, (size_t)2 * S * D); /* padded positions too: HF computes them the same way */
    cr_assert_leq(e, 1e-4, "last_hidden_state differs by %g", e);
    /* packed as the text API runs it (33 and 7 tokens in one dimension): the relative bias of i - j within each */
    uint64_t count = (uint64_t)2 * S * D;
    tcheck_packed_run(m, "t5-encoder", in, 2, &out, &want, &count, 1, 1e-4);
    /* no decoder: no decoder inputs, no generation */
    vkf_session *s;
    cr_assert_eq(vkf_session_create(m, 1, &s), VKF_ERROR_UNSUPPORTED);
    free(h), free(want);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    cJSON_Delete(c);
}

/* Sampling with an encoder-decoder: the same seed gives the same ids, another
 * seed (almost surely) others, every id inside the vocabulary. */
Test(encdec, sampling_is_seeded)
{
    enc_case c = load_case("marian");
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, c.dir, VKF_FP32);
    vkf_generation g[3];
    const int32_t *ids = c.prompts[0];
    uint64_t seeds[3] = {7, 7, 8};
    for (int i = 0; i < 3; i++) {
        vkf_session *s;
        cr_assert_eq(vkf_session_create(m, 1, &s), VKF_OK);
        vkf_generate_desc d = {.max_new_tokens = 12, .temperature = 1.5f, .top_k = 0, .seed = seeds[i], .ignore_eos = 1};
        cr_assert_eq(vkf_session_generate_ids(s, &ids, &c.lens[0], &d, &g[i]), VKF_OK, "%s", vkf_last_error(ctx));
        for (uint32_t k = 0; k < g[i].n_ids; k++) cr_assert(g[i].ids[k] >= 0 && (uint32_t)g[i].ids[k] < c.vocab);
        vkf_session_destroy(s);
    }
    cr_assert_eq(g[0].n_ids, g[1].n_ids);
    cr_assert_eq(memcmp(g[0].ids, g[1].ids, g[0].n_ids * sizeof *g[0].ids), 0, "same seed, other ids");
    cr_assert(g[0].n_ids != g[2].n_ids || memcmp(g[0].ids, g[2].ids, g[0].n_ids * sizeof *g[0].ids), "another seed, the same ids");
    vkf_generation_free(g, 3);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    cJSON_Delete(c.json);
}
