/* Speech models (wav2vec 2.0, HuBERT) against HF on the cases of
 * tools/make_speech_refs.py: every output of a batch of two clips. */
#include "common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEECH VKF_TEST_DATA "/speech"

static uint64_t numel(const cJSON *shape, uint32_t *dims, uint32_t *rank)
{
    uint64_t n = 1;
    *rank = 0;
    for (const cJSON *e = shape->child; e; e = e->next) n *= (uint64_t)e->valuedouble, dims[(*rank)++] = (uint32_t)e->valuedouble;
    return n;
}

/* A case's inputs through vkf_model_run, every output compared with HF's. */
static void check_case(const char *name, vkf_precision precision, double tol)
{
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/%s", SPEECH, name);
    snprintf(path, sizeof path, "%s/case.json", dir);
    cJSON *c = tread_json(path);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, dir, precision);
    vkf_tensor in[2] = {{0}}, out[2] = {{0}};
    float *want[2] = {0};
    uint64_t counts[2];
    uint32_t n_in = 0, n_out = 0;
    for (const cJSON *e = cJSON_GetObjectItem(c, "inputs")->child; e && n_in < 2; e = e->next) {
        vkf_tensor *t = &in[n_in++];
        uint64_t n = numel(e, t->shape, &t->rank);
        snprintf(path, sizeof path, "%s/%s.bin", dir, e->string);
        t->name = e->string, t->data = tread_file(path, n * 4);
        t->dtype = strcmp(e->string, "input_values") ? VKF_I32 : VKF_F32;
    }
    for (const cJSON *e = cJSON_GetObjectItem(c, "outputs")->child; e && n_out < 2; e = e->next) {
        uint32_t dims[4], rank;
        counts[n_out] = numel(e, dims, &rank);
        snprintf(path, sizeof path, "%s/%s.bin", dir, e->string);
        want[n_out] = tread_file(path, counts[n_out] * 4);
        out[n_out] = (vkf_tensor){.name = e->string, .data = malloc(counts[n_out] * 4), .capacity = counts[n_out] * 4};
        n_out++;
    }
    vkf_status s = vkf_model_run(m, in, n_in, out, n_out);
    cr_assert_eq(s, VKF_OK, "%s: %s", name, vkf_last_error(ctx));
    for (uint32_t i = 0; i < n_out; i++) {
        uint64_t n = 1;
        for (uint32_t k = 0; k < out[i].rank; k++) n *= out[i].shape[k];
        cr_expect_eq(n, counts[i], "%s: %s has %llu elements, HF %llu", name, out[i].name, (unsigned long long)n, (unsigned long long)counts[i]);
        double d = max_abs_diff_f32(out[i].data, want[i], counts[i]);
        cr_expect_leq(d, tol, "%s: %s differs from HF by %g", name, out[i].name, d);
        free(out[i].data), free(want[i]);
    }
    for (uint32_t i = 0; i < n_in; i++) free(in[i].data);
    cJSON_Delete(c);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* group norm on the first conv over each channel's time, post-LN encoder,
 * old weight_g / weight_v names, the shorter clip zero-padded without a mask */
Test(wav2vec2, base_ctc_batch, .timeout = 300) { check_case("w2v_base_ctc", VKF_FP32, 1e-4); }
/* layer norms on every conv, pre-LN encoder with a final LayerNorm, an
 * attention_mask (padded frames zeroed and masked), parametrizations names,
 * an even positional kernel */
Test(wav2vec2, stable_ctc_masked_batch, .timeout = 300) { check_case("w2v_stable_ctc", VKF_FP32, 1e-4); }
Test(wav2vec2, base_ctc_fp16, .timeout = 300) { check_case("w2v_base_ctc", VKF_FP16, 3e-2); }
/* HuBERT's sequence classifier: projector, mean over the frames, classifier */
Test(hubert, classifier_batch, .timeout = 300) { check_case("hubert_cls", VKF_FP32, 1e-4); }

/* HF's automatic-speech-recognition pipeline on clip 0 (4,000 samples at 16
 * kHz, normalised by the feature extractor): the same text, special tokens
 * such as </s> kept as the CTC tokenizer keeps them */
Test(wav2vec2, transcribe_as_the_pipeline, .timeout = 300)
{
    cJSON *c = tread_json(SPEECH "/w2v_base_ctc/case.json");
    const cJSON *tr = cJSON_GetObjectItem(c, "transcription");
    uint32_t n = (uint32_t)cJSON_GetObjectItem(tr, "samples")->valuedouble;
    const cJSON *shape = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "inputs"), "input_values");
    uint32_t L = (uint32_t)cJSON_GetArrayItem(shape, 1)->valuedouble;
    float *x = tread_file(SPEECH "/w2v_base_ctc/input_values.bin", (size_t)L * 4); /* clip 0 is the first row */
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, SPEECH "/w2v_base_ctc", VKF_FP32);
    char *text = NULL;
    cr_assert_eq(vkf_transcribe(m, x, n, 16000, &text), VKF_OK, "%s", vkf_last_error(ctx));
    cr_expect_str_eq(text, cJSON_GetObjectItem(tr, "text")->valuestring);
    vkf_free(text);
    /* another rate, too few samples, a model without a CTC head */
    cr_expect_eq(vkf_transcribe(m, x, n, 8000, &text), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(ctx), "8000 Hz audio for a model of 16000 Hz"), "%s", vkf_last_error(ctx));
    cr_expect_eq(vkf_transcribe(m, x, 20, 16000, &text), VKF_ERROR_INVALID_ARGUMENT);
    vkf_model *cls = tload_model(ctx, SPEECH "/hubert_cls", VKF_FP32);
    cr_expect_eq(vkf_transcribe(cls, x, n, 16000, &text), VKF_ERROR_UNSUPPORTED);
    vkf_model_destroy(cls);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    free(x);
    cJSON_Delete(c);
}
