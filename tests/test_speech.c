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

/* A case's "pipeline" (HF's runs on a committed audio file) and that file
 * decoded at 16 kHz. */
static const cJSON *pipeline_case(const char *name, cJSON **c, vkf_audio *a)
{
    char path[512];
    snprintf(path, sizeof path, SPEECH "/%s/case.json", name);
    *c = tread_json(path);
    const cJSON *p = cJSON_GetObjectItem(*c, "pipeline");
    cr_assert(p, "%s: no pipeline runs", path);
    snprintf(path, sizeof path, VKF_TEST_DATA "/audio/%s", cJSON_GetObjectItem(p, "audio")->valuestring);
    cr_assert_eq(vkf_audio_load(path, 16000, a), VKF_OK, "%s", vkf_last_error(NULL));
    return cJSON_GetObjectItem(p, "runs");
}

/* A pipeline argument: stride_length_s as a number (both sides) or a pair. */
static void stride_arg(const cJSON *args, vkf_transcribe_desc *td)
{
    const cJSON *st = cJSON_GetObjectItem(args, "stride_length_s");
    if (!st) return; /* the default: chunk_length_s / 6 */
    double l = cJSON_IsArray(st) ? cJSON_GetArrayItem(st, 0)->valuedouble : st->valuedouble;
    double r = cJSON_IsArray(st) ? cJSON_GetArrayItem(st, 1)->valuedouble : st->valuedouble;
    td->stride_left_s = l == 0 ? -1 : l; /* the API's 0 is HF's default, a negative stride none */
    td->stride_right_s = r == 0 ? -1 : r;
}

static void progress_count(void *user, uint64_t done, uint64_t total)
{
    uint64_t *last = user;
    cr_expect(done > *last && done <= total, "progress %llu of %llu after %llu", (unsigned long long)done, (unsigned long long)total,
              (unsigned long long)*last);
    *last = done;
}

/* HF's automatic-speech-recognition pipeline on tones16k.wav, whole and in
 * chunks (chunk_length_s, stride_length_s), with word timestamps: the same
 * text and the same words at the same times. */
Test(wav2vec2, pipeline_chunks_and_word_timestamps, .timeout = 300)
{
    cJSON *c;
    vkf_audio a;
    const cJSON *runs_ = pipeline_case("w2v_base_ctc", &c, &a);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, SPEECH "/w2v_base_ctc", VKF_FP32);
    vkf_model_info info;
    vkf_model_get_info(m, &info);
    cr_expect_eq(info.sampling_rate, 16000);
    cr_expect_eq(info.frame_samples, 20);
    int runs = 0, chunked = 0, words = 0;
    for (const cJSON *r = runs_->child; r; r = r->next, runs++) {
        const cJSON *args = cJSON_GetObjectItem(r, "args"), *want = cJSON_GetObjectItem(r, "output");
        char *shown = cJSON_PrintUnformatted(args);
        uint64_t last = 0;
        vkf_transcribe_desc td = {.progress = progress_count, .progress_user = &last};
        const cJSON *cl = cJSON_GetObjectItem(args, "chunk_length_s"), *ts = cJSON_GetObjectItem(args, "return_timestamps");
        if (cl) td.chunk_length_s = cl->valuedouble, chunked++;
        stride_arg(args, &td);
        td.word_timestamps = ts != NULL;
        vkf_transcription t;
        cr_assert_eq(vkf_transcribe_audio(m, a.samples, a.frames, a.rate, &td, &t), VKF_OK, "%s: %s", shown, vkf_last_error(ctx));
        cr_expect_eq(last, a.frames, "%s: progress ended at %llu", shown, (unsigned long long)last);
        cr_expect_str_eq(t.text, cJSON_GetObjectItem(want, "text")->valuestring, "%s", shown);
        const cJSON *ch = cJSON_GetObjectItem(want, "chunks");
        cr_expect_eq(t.n_words, (uint32_t)cJSON_GetArraySize(ch), "%s: %u words, HF %d", shown, t.n_words, cJSON_GetArraySize(ch));
        uint32_t i = 0;
        for (const cJSON *w = ch ? ch->child : NULL; w && i < t.n_words; w = w->next, i++) {
            const cJSON *stamp = cJSON_GetObjectItem(w, "timestamp");
            cr_expect_str_eq(t.words[i].text, cJSON_GetObjectItem(w, "text")->valuestring, "%s: word %u", shown, i);
            cr_expect_eq(t.words[i].start, cJSON_GetArrayItem(stamp, 0)->valuedouble, "%s: word %u starts at %.17g", shown, i, t.words[i].start);
            cr_expect_eq(t.words[i].end, cJSON_GetArrayItem(stamp, 1)->valuedouble, "%s: word %u ends at %.17g", shown, i, t.words[i].end);
        }
        words += (int)i;
        vkf_transcription_free(&t);
        free(shown);
    }
    cr_expect(runs >= 5 && chunked >= 3 && words > 100, "%d runs, %d chunked, %d words", runs, chunked, words);
    /* strides that leave nothing to step by, a chunk too short for a frame */
    vkf_transcription t;
    cr_expect_eq(vkf_transcribe_audio(m, a.samples, a.frames, a.rate, &(vkf_transcribe_desc){.chunk_length_s = 0.2, .stride_left_s = 0.1, .stride_right_s = 0.1}, &t),
                 VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(ctx), "leave nothing between strides"), "%s", vkf_last_error(ctx));
    vkf_transcription_free(&t);
    cr_expect_eq(vkf_transcribe_audio(m, a.samples, a.frames, a.rate, &(vkf_transcribe_desc){.chunk_length_s = 0.001, .stride_left_s = -1, .stride_right_s = -1}, &t),
                 VKF_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(vkf_transcribe_audio(m, a.samples, a.frames, a.rate, &(vkf_transcribe_desc){.chunk_length_s = -1}, &t), VKF_ERROR_INVALID_ARGUMENT);
    /* a non-finite sample */
    a.samples[100] = NAN;
    cr_expect_eq(vkf_transcribe_audio(m, a.samples, a.frames, a.rate, NULL, &t), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(ctx), "sample 100 is not finite"), "%s", vkf_last_error(ctx));
    cr_expect_null(t.text);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    vkf_audio_free(&a);
    cJSON_Delete(c);
}

/* HF's audio-classification pipeline on tones16k.wav: its default top_k (5,
 * so all 3 labels) and top_k 2, scores and labels. */
Test(hubert, audio_classification_pipeline, .timeout = 300)
{
    cJSON *c;
    vkf_audio a;
    const cJSON *runs_ = pipeline_case("hubert_cls", &c, &a);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, SPEECH "/hubert_cls", VKF_FP32);
    int runs = 0;
    for (const cJSON *r = runs_->child; r; r = r->next, runs++) {
        const cJSON *k = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "args"), "top_k"), *want = cJSON_GetObjectItem(r, "output");
        vkf_class_score top[5];
        uint32_t n = k ? (uint32_t)k->valuedouble : 5;
        cr_assert_eq(vkf_classify_audio(m, a.samples, a.frames, a.rate, top, n), VKF_OK, "%s", vkf_last_error(ctx));
        cr_expect_eq(cJSON_GetArraySize(want), n < 3 ? (int)n : 3);
        uint32_t i = 0;
        for (const cJSON *e = want->child; e; e = e->next, i++) {
            cr_expect_str_eq(top[i].label, cJSON_GetObjectItem(e, "label")->valuestring, "top_k %u: score %u", n, i);
            cr_expect(fabs(top[i].prob - cJSON_GetObjectItem(e, "score")->valuedouble) <= 1e-5, "top_k %u: score %u is %.7f, HF %.7f", n, i,
                      top[i].prob, cJSON_GetObjectItem(e, "score")->valuedouble);
        }
    }
    cr_expect_eq(runs, 2);
    /* a CTC model is not a classifier, nor this one a recogniser; another rate */
    vkf_class_score top[3];
    char *text = NULL;
    cr_expect_eq(vkf_transcribe(m, a.samples, a.frames, a.rate, &text), VKF_ERROR_UNSUPPORTED);
    cr_expect_eq(vkf_classify_audio(m, a.samples, a.frames, 8000, top, 3), VKF_ERROR_INVALID_ARGUMENT);
    vkf_model *ctc = tload_model(ctx, SPEECH "/w2v_base_ctc", VKF_FP32);
    cr_expect_eq(vkf_classify_audio(ctc, a.samples, a.frames, a.rate, top, 3), VKF_ERROR_UNSUPPORTED);
    vkf_model_destroy(ctc);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    vkf_audio_free(&a);
    cJSON_Delete(c);
}

/* vkformer-transcribe --json: the pipeline's output itself (text, chunks,
 * timestamps printed to round-trip), from a file and from standard input;
 * vkformer-classify on the classifier; bad uses refused with exit status 2. */
Test(wav2vec2, transcribe_tool_prints_the_pipeline_output, .timeout = 300)
{
    cJSON *c = tread_json(SPEECH "/w2v_base_ctc/case.json");
    const cJSON *want = NULL;
    for (const cJSON *r = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "pipeline"), "runs")->child; r; r = r->next) {
        const cJSON *cl = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "args"), "chunk_length_s");
        if (cl && cl->valuedouble == 0.4) want = cJSON_GetObjectItem(r, "output");
    }
    cr_assert(want);
    FILE *f = fopen(VKF_TEST_DATA "/audio/tones16k.wav", "rb");
    cr_assert(f);
    static char wav[65536];
    size_t size = fread(wav, 1, sizeof wav, f);
    fclose(f);
    const char *args[] = {"-q --jsonl -m " SPEECH "/w2v_base_ctc -c 0.4 -t " VKF_TEST_DATA "/audio/tones16k.wav",
                          "-q --jsonl -m " SPEECH "/w2v_base_ctc --chunk-length=0.4 --stride-length 0.0667 --timestamps -"};
    for (int i = 0; i < 2; i++) {
        tcli_result *r = tcli_run(VKF_TRANSCRIBE_BIN, args[i], i ? wav : NULL, i ? size : 0);
        cr_assert_eq(r->status, 0, "%s: %s", args[i], r->err);
        cJSON *got = cJSON_Parse(r->out);
        cr_assert(got, "%s: not JSON:\n%s", args[i], r->out);
        cr_expect(cJSON_Compare(got, want, 1), "%s: differs from HF's pipeline:\n%.300s", args[i], r->out);
        cJSON_Delete(got);
    }
    /* text output: the text, then a line per word */
    tcli_result *r = tcli_run(VKF_TRANSCRIBE_BIN, "-q -m " SPEECH "/w2v_base_ctc -c 0.4 -t " VKF_TEST_DATA "/audio/tones16k.wav", NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_expect(!strncmp(r->out, cJSON_GetObjectItem(want, "text")->valuestring, strlen(cJSON_GetObjectItem(want, "text")->valuestring)));
    cr_expect(strstr(r->out, "\n     0.000    0.004  <unk>KL\n"), "%.300s", r->out);
    static const char *bad[] = {
        "-m " SPEECH "/w2v_base_ctc",                                            /* no file */
        SPEECH "/audio/tones16k.wav",                                            /* no model */
        "-m " SPEECH "/w2v_base_ctc -c -1 x.wav",                                /* a negative chunk */
        "-m " SPEECH "/w2v_base_ctc -s 0.1 x.wav",                               /* a stride without chunks */
        "-m " SPEECH "/w2v_base_ctc -c 1 -s 0.1,x x.wav",                        /* a bad stride */
        "-m " SPEECH "/w2v_base_ctc - -",                                        /* standard input twice */
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(bad); i++) {
        r = tcli_run(VKF_TRANSCRIBE_BIN, bad[i], NULL, 0);
        cr_expect_eq(r->status, 2, "%s: status %d: %s", bad[i], r->status, r->err);
    }
    /* a missing file, a file that is not audio, a model that is no recogniser */
    r = tcli_run(VKF_TRANSCRIBE_BIN, "-m " SPEECH "/w2v_base_ctc " VKF_TEST_DATA "/audio/missing.wav", NULL, 0);
    cr_expect(r->status == 1 && strstr(r->err, "missing.wav"), "%d %s", r->status, r->err);
    r = tcli_run(VKF_TRANSCRIBE_BIN, "-m " SPEECH "/w2v_base_ctc " SPEECH "/w2v_base_ctc/config.json", NULL, 0);
    cr_expect(r->status == 1 && strstr(r->err, "config.json"), "%d %s", r->status, r->err);
    r = tcli_run(VKF_TRANSCRIBE_BIN, "-m " SPEECH "/hubert_cls " VKF_TEST_DATA "/audio/tones16k.wav", NULL, 0);
    cr_expect(r->status == 1 && strstr(r->err, "audio-classification, not automatic-speech-recognition"), "%d %s", r->status, r->err);
    /* the classifier through vkformer-classify: HF's scores */
    cJSON *h = tread_json(SPEECH "/hubert_cls/case.json");
    const cJSON *hw = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "pipeline"), "runs")->child, "output");
    r = tcli_run(VKF_CLASSIFY_BIN, "-q --jsonl -m " SPEECH "/hubert_cls " VKF_TEST_DATA "/audio/tones16k.wav", NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cJSON *got = cJSON_Parse(r->out);
    cr_assert_eq(cJSON_GetArraySize(got), cJSON_GetArraySize(hw), "%s", r->out);
    for (const cJSON *g = got->child, *w = hw->child; g && w; g = g->next, w = w->next) {
        cr_expect_str_eq(cJSON_GetObjectItem(g, "label")->valuestring, cJSON_GetObjectItem(w, "label")->valuestring);
        cr_expect(fabs(cJSON_GetObjectItem(g, "score")->valuedouble - cJSON_GetObjectItem(w, "score")->valuedouble) <= 1e-5, "%s", r->out);
    }
    cJSON_Delete(got);
    cJSON_Delete(h);
    cJSON_Delete(c);
}
