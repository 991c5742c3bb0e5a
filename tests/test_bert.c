/* Text encoders end to end against HF: the golden BERT and DistilBERT
 * sequence classifiers (logits, last_hidden_state, pooler_output within 1e-4
 * in fp32, the same argmax in fp16), int64 and int32 inputs, padding to a
 * sequence bucket, and the errors a caller's tensors can cause. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GOLDEN VKF_TEST_DATA "/golden"

#define read_bin tread_file
#define load tload_model

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* One golden case: S tokens, H hidden, L labels; token types and pooler for BERT. */
static void check_golden(const char *name, bool bert, vkf_precision p)
{
    enum { S = 13, H = 64, L = 3 };
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", GOLDEN, name);
    vkf_context *ctx = tctx_create(tcaps());
    if (p == VKF_FP16 && !ctx->dev->caps.storage16) {
        tctx_destroy(ctx);
        return;
    }
    vkf_model *m = load(ctx, dir, p);
    vkf_model_info info;
    cr_assert_eq(vkf_model_get_info(m, &info), VKF_OK);
    cr_expect_str_eq(info.task, "text-classification");
    cr_expect_str_eq(info.type, name);
    cr_expect_eq(info.num_labels, L);
    cr_expect_eq(info.vocab_size, 500);
    cr_expect_eq(info.max_positions, 64);
    /* the signature: inputs [0, 0] int32 (batch, tokens chosen per run), outputs float32 */
    cr_expect_eq(info.n_inputs, bert ? 3u : 2u);
    cr_expect_str_eq(info.inputs[0].name, "input_ids");
    cr_expect(info.inputs[0].dtype == VKF_I32 && info.inputs[0].rank == 2 && !info.inputs[0].shape[0] && !info.inputs[0].shape[1]);
    bool found = false;
    for (uint32_t i = 0; i < info.n_outputs; i++)
        if (!strcmp(info.outputs[i].name, "last_hidden_state")) {
            found = true;
            cr_expect(info.outputs[i].rank == 3 && info.outputs[i].shape[2] == H && !info.outputs[i].shape[1]);
        }
    cr_expect(found, "no last_hidden_state among the outputs");
    snprintf(path, sizeof path, "%s/input_ids.bin", dir);
    int32_t *ids = read_bin(path, S * 4);
    snprintf(path, sizeof path, "%s/attention_mask.bin", dir);
    int32_t *mask = read_bin(path, S * 4);
    int32_t *tt = NULL;
    if (bert) {
        snprintf(path, sizeof path, "%s/token_type_ids.bin", dir);
        tt = read_bin(path, S * 4);
    }
    snprintf(path, sizeof path, "%s/logits.bin", dir);
    float *want_logits = read_bin(path, L * 4);
    snprintf(path, sizeof path, "%s/last_hidden_state.bin", dir);
    float *want_last = read_bin(path, S * H * 4);
    float *want_pool = NULL;
    if (bert) {
        snprintf(path, sizeof path, "%s/pooler_output.bin", dir);
        want_pool = read_bin(path, H * 4);
    }
    /* int64 ids, as numpy and torch hand them over */
    int64_t ids64[S];
    for (int i = 0; i < S; i++) ids64[i] = ids[i];
    vkf_tensor in[3] = {
        {.name = "input_ids", .rank = 2, .shape = {1, S}, .data = ids64, .dtype = VKF_I64},
        {.name = "attention_mask", .rank = 2, .shape = {1, S}, .data = mask, .dtype = VKF_I32},
        {.name = "token_type_ids", .rank = 2, .shape = {1, S}, .data = tt, .dtype = VKF_I32},
    };
    float logits[L], last[S * H], pooled[H];
    vkf_tensor out[3] = {
        {.name = "logits", .data = logits, .capacity = sizeof logits},
        {.name = "last_hidden_state", .data = last, .capacity = sizeof last},
        {.name = "pooler_output", .data = pooled, .capacity = sizeof pooled},
    };
    vkf_status s = vkf_model_run(m, in, bert ? 3 : 2, out, bert ? 3 : 2);
    cr_assert_eq(s, VKF_OK, "%s", vkf_last_error(ctx));
    cr_expect(out[0].rank == 2 && out[0].shape[0] == 1 && out[0].shape[1] == L);
    cr_expect(out[1].rank == 3 && out[1].shape[1] == S && out[1].shape[2] == H, "last_hidden_state is [%u, %u, %u]",
              out[1].shape[0], out[1].shape[1], out[1].shape[2]);
    if (p == VKF_FP32) {
        double dl = max_abs_diff_f32(logits, want_logits, L), dh = max_abs_diff_f32(last, want_last, S * H);
        cr_expect_leq(dl, 1e-4, "%s logits differ from HF by %g", name, dl);
        cr_expect_leq(dh, 1e-4, "%s last_hidden_state differs from HF by %g", name, dh);
        if (bert) {
            double dp = max_abs_diff_f32(pooled, want_pool, H);
            cr_expect_leq(dp, 1e-4, "%s pooler_output differs from HF by %g", name, dp);
        }
    } else {
        cr_expect_eq(argmax(logits, L), argmax(want_logits, L), "%s fp16: another class", name);
        double dh = max_abs_diff_f32(last, want_last, S * H);
        cr_expect_leq(dh, 5e-2, "%s fp16 last_hidden_state differs from HF by %g", name, dh);
    }
    free(ids), free(mask), free(tt), free(want_logits), free(want_last), free(want_pool);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(bert, golden_fp32, .timeout = 300) { check_golden("bert", true, VKF_FP32); }
Test(bert, golden_fp16, .timeout = 300) { check_golden("bert", true, VKF_FP16); }
Test(distilbert, golden_fp32, .timeout = 300) { check_golden("distilbert", false, VKF_FP32); }
Test(distilbert, golden_fp16, .timeout = 300) { check_golden("distilbert", false, VKF_FP16); }

/* Bad tensors: each a clear error, never a GPU read out of bounds. */
Test(bert, bad_inputs, .timeout = 300)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, GOLDEN "/bert", VKF_FP32);
    int32_t ids[4] = {101, 7, 500, 102}, mask[4] = {1, 1, 1, 1}, big[70] = {0};
    float logits[3];
    vkf_tensor out = {.name = "logits", .data = logits, .capacity = sizeof logits};
    vkf_tensor in = {.name = "input_ids", .rank = 2, .shape = {1, 4}, .data = ids, .dtype = VKF_I32};
    cr_expect_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(ctx), "input_ids[0][2] = 500 is outside [0, 500)"), "%s", vkf_last_error(ctx));
    ids[2] = 5;
    vkf_tensor two[2] = {in, {.name = "attention_mask", .rank = 2, .shape = {1, 3}, .data = mask, .dtype = VKF_I32}};
    cr_expect_eq(vkf_model_run(m, two, 2, &out, 1), VKF_ERROR_SHAPE);
    cr_expect(strstr(vkf_last_error(ctx), "attention_mask must be [1, 4]"), "%s", vkf_last_error(ctx));
    two[1].shape[1] = 4;
    two[1].dtype = VKF_F32;
    cr_expect_eq(vkf_model_run(m, two, 2, &out, 1), VKF_ERROR_SHAPE);
    cr_expect(strstr(vkf_last_error(ctx), "int32 or int64"), "%s", vkf_last_error(ctx));
    vkf_tensor longer = {.name = "input_ids", .rank = 2, .shape = {1, 70}, .data = big, .dtype = VKF_I32};
    cr_expect_eq(vkf_model_run(m, &longer, 1, &out, 1), VKF_ERROR_SHAPE);
    cr_expect(strstr(vkf_last_error(ctx), "70 tokens is more than this model's 64 positions"), "%s", vkf_last_error(ctx));
    vkf_tensor px = {.name = "pixel_values", .rank = 4, .shape = {1, 3, 8, 8}, .data = big};
    cr_expect_eq(vkf_model_run(m, &px, 1, &out, 1), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(ctx), "\"pixel_values\" is not one of input_ids"), "%s", vkf_last_error(ctx));
    vkf_tensor wrong_out = {.name = "pooled", .data = logits, .capacity = sizeof logits};
    cr_expect_eq(vkf_model_run(m, &in, 1, &wrong_out, 1), VKF_ERROR_NOT_FOUND);
    cr_expect(strstr(vkf_last_error(ctx), "no output \"pooled\" (last_hidden_state, pooler_output, logits)"), "%s", vkf_last_error(ctx));
    out.capacity = 8;
    cr_expect_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_ERROR_SHAPE);
    /* and then a good run */
    out.capacity = sizeof logits;
    cr_expect_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* ---- generated cases: tests/data/text (tools/make_text_refs.py) --------------------- */


#include <cjson/cJSON.h>

#define TEXT VKF_TEST_DATA "/text"


static uint64_t numel(const cJSON *shape, uint32_t *dims, uint32_t *rank)
{
    uint64_t n = 1;
    *rank = 0;
    for (const cJSON *e = shape->child; e; e = e->next) n *= (uint64_t)e->valuedouble, dims[(*rank)++] = (uint32_t)e->valuedouble;
    return n;
}

/* Runs a case's inputs through the model and compares every output with HF's. */
static void check_case_as(const char *name, double tol, vkf_precision dtype)
{
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/%s", TEXT, name);
    snprintf(path, sizeof path, "%s/case.json", dir);
    cJSON *c = tread_json(path);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, dir, dtype);
    vkf_tensor in[4] = {{0}}, out[4] = {{0}};
    uint32_t n_in = 0, n_out = 0;
    float *want[4] = {0};
    uint64_t counts[4];
    for (const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "inputs"), "input_ids") ? cJSON_GetObjectItem(c, "inputs")->child : NULL;
         e; e = e->next) {
        vkf_tensor *t = &in[n_in++];
        uint64_t n = numel(e, t->shape, &t->rank);
        snprintf(path, sizeof path, "%s/%s.bin", dir, e->string);
        t->name = e->string, t->data = read_bin(path, n * 4), t->dtype = VKF_I32;
    }
    for (const cJSON *e = cJSON_GetObjectItem(c, "outputs")->child; e; e = e->next) {
        uint32_t dims[4], rank;
        counts[n_out] = numel(e, dims, &rank);
        snprintf(path, sizeof path, "%s/%s.bin", dir, e->string);
        want[n_out] = read_bin(path, counts[n_out] * 4);
        out[n_out] = (vkf_tensor){.name = e->string, .data = malloc(counts[n_out] * 4), .capacity = counts[n_out] * 4};
        n_out++;
    }
    vkf_status s = vkf_model_run(m, in, n_in, out, n_out);
    cr_assert_eq(s, VKF_OK, "%s: %s", name, vkf_last_error(ctx));
    /* DeBERTa: HF's padded queries see no key at all; only real tokens count */
    const vkf_tensor *mask = NULL;
    for (uint32_t i = 0; i < n_in; i++)
        if (!strcmp(in[i].name, "attention_mask")) mask = &in[i];
    bool real_only = cJSON_IsTrue(cJSON_GetObjectItem(c, "compare_real_tokens"));
    cr_assert(!real_only || mask, "%s: compare_real_tokens needs an attention_mask", name);
    for (uint32_t i = 0; i < n_out; i++) {
        uint64_t tokens = real_only ? (uint64_t)mask->shape[0] * mask->shape[1] : 1, per = counts[i] / tokens;
        if (real_only && counts[i] % tokens == 0 && per > 0)
            for (uint64_t tk = 0; tk < tokens; tk++)
                if (!((const int32_t *)mask->data)[tk])
                    memset((float *)out[i].data + tk * per, 0, per * 4), memset(want[i] + tk * per, 0, per * 4);
        double d = max_abs_diff_f32(out[i].data, want[i], counts[i]);
        cr_expect_leq(d, tol, "%s: %s differs from HF by %g", name, out[i].name, d);
    }
    tcheck_packed_run(m, name, in, n_in, out, want, counts, n_out, tol);
    for (uint32_t i = 0; i < n_out; i++) free(out[i].data), free(want[i]);
    for (uint32_t i = 0; i < n_in; i++) free(in[i].data);
    cJSON_Delete(c);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

static void check_case(const char *name, double tol) { check_case_as(name, tol, VKF_FP32); }

/* MaskedLM heads (the decoder tied to the word embeddings), head size 32,
 * hidden 96, 11 tokens (a bucket of 16), right and left padding and holes */
Test(bert, masked_lm_padded_batch, .timeout = 300) { check_case("bert_mlm", 1e-4); }
/* DistilBERT's vocab_transform / vocab_projector, heads of 24, hidden 72 */
Test(distilbert, masked_lm_padded_batch, .timeout = 300) { check_case("distilbert_mlm", 1e-4); }
/* RoBERTa: positions from padding_idx + 1 that skip padding, its classifier head */
Test(roberta, classifier_padded_batch, .timeout = 300) { check_case("roberta_cls", 1e-4); }

/* RoBERTa's lm_head (dense, GELU, layer_norm, tied decoder) on a padded batch */
Test(roberta, masked_lm_padded_batch, .timeout = 300) { check_case("roberta_mlm", 1e-4); }

/* MPNet: T5's relative bias buckets (40 tokens reach the log range) added to
 * every layer's scores, RoBERTa's positions, heads of 4 (12 and 24 heads) */
Test(mpnet, masked_lm_padded_batch, .timeout = 300) { check_case("mpnet_mlm", 1e-4); }
Test(mpnet, classifier_padded_batch, .timeout = 300) { check_case("mpnet_cls", 1e-4); }
/* XLM-RoBERTa: RoBERTa's graph under its own model_type */
Test(xlmr, classifier_padded_batch, .timeout = 300) { check_case("xlmr_cls", 1e-4); }
/* ELECTRA: embeddings at embedding_size projected to hidden, GELU classifier
 * head, the discriminator's per-token logits and the generator's MLM head */
Test(electra, classifier_padded_batch, .timeout = 300) { check_case("electra_cls", 1e-4); }
Test(electra, discriminator_padded_batch, .timeout = 300) { check_case("electra_disc", 1e-4); }
Test(electra, generator_padded_batch, .timeout = 300) { check_case("electra_gen", 1e-4); }

/* DeBERTa v1: in_proj reordered per head, q_bias / v_bias, c2p|p2c over
 * relative positions clamped at max_relative_positions, absolute positions
 * and token types, ContextPooler + classifier; then the legacy MLM head and
 * the p2c|c2p order (real tokens compared: HF masks padded queries' rows) */
Test(deberta, v1_classifier_padded_batch, .timeout = 300) { check_case("deberta_cls", 1e-4); }
Test(deberta, v1_masked_lm_padded_batch, .timeout = 300) { check_case("deberta_mlm", 1e-4); }
/* DeBERTa-v2/v3: log position buckets, share_att_key, the relative table
 * layer-normed, no absolute positions (12 heads); and unbucketed with
 * pos_key_proj, c2p only, an embedding projection (24 heads) */
Test(deberta, v2_masked_lm_padded_batch, .timeout = 300) { check_case("debertav2_mlm", 1e-4); }
Test(deberta, v2_classifier_padded_batch, .timeout = 300) { check_case("debertav2_cls", 1e-4); }
/* deberta-v2-xlarge's convolution layer after the first layer: kernel 3
 * over the embeddings with padding read as zeros (13, 6 and 9 tokens) */
Test(deberta, v2_convolution_layer, .timeout = 300) { check_case("debertav2_conv", 1e-4); }
/* Configs DeBERTa cannot run are refused by name, never run wrong */
Test(deberta, refuses_what_it_cannot_run, .timeout = 300)
{
    static const struct {
        const char *key, *value, *want;
    } bad[] = {
        {"position_buckets", "16", "position_buckets 16 need max_relative_positions (9) - 1 above half"},
        {"conv_groups", "2", "conv_groups 2: only ungrouped convolutions"},
        {"conv_kernel_size", "2", "conv_kernel_size 2 is even"},
        {"pos_att_type", "[\"p2p\"]", "pos_att_type \"p2p\" is not supported"},
    };
    vkf_context *ctx = tctx_create(tcaps());
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char dir[256];
        const char *src = i == 0 ? TEXT "/debertav2_mlm" : TEXT "/debertav2_conv";
        twith_config(dir, sizeof dir, src, "model.safetensors", i == 0 ? "max_relative_positions" : bad[i].key, i == 0 ? "9" : bad[i].value);
        if (i == 0) { /* both keys: the one above and the buckets */
            char again[256];
            twith_config(again, sizeof again, dir, "model.safetensors", bad[i].key, bad[i].value);
            ttmpdir_remove(dir);
            snprintf(dir, sizeof dir, "%s", again);
        }
        vkf_model *m = NULL;
        cr_expect_neq(vkf_model_load(ctx, dir, NULL, &m), VKF_OK, "%s loaded", bad[i].key);
        cr_expect(strstr(vkf_last_error(ctx), bad[i].want), "%s: %s", bad[i].key, vkf_last_error(ctx));
        vkf_model_destroy(m);
        ttmpdir_remove(dir);
    }
    tctx_destroy(ctx);
}

/* fp16 weights and activations (bucket ids exact in fp16) */
Test(deberta, v2_masked_lm_fp16, .timeout = 300) { check_case_as("debertav2_mlm", 2e-2, VKF_FP16); }
Test(deberta, v1_classifier_fp16, .timeout = 300) { check_case_as("deberta_cls", 2e-2, VKF_FP16); }

/* problem_type multi_label_classification: a sigmoid per label, as HF's pipeline */
Test(bert, multi_label_sigmoid, .timeout = 300)
{
    check_case("bert_multilabel", 1e-4);
    char dir[256];
    tvocab_model(dir, sizeof dir, TEXT "/bert_multilabel", 300);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, dir, VKF_FP32);
    const char *text = "a b c";
    vkf_class_score top[5];
    cr_assert_eq(vkf_classify_texts(m, &text, NULL, 1, top, 5), VKF_OK, "%s", vkf_last_error(ctx));
    double sum = 0;
    for (int i = 0; i < 5; i++) {
        cr_expect(fabs(top[i].prob - 1 / (1 + exp(-(double)top[i].logit))) < 1e-6, "label %u: %g is not sigmoid(%g)",
                  top[i].index, top[i].prob, top[i].logit);
        sum += top[i].prob;
    }
    cr_expect(fabs(sum - 1) > 1e-3, "the scores sum to 1 (%g): a softmax, not sigmoids", sum);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

/* dir/config.json as src_config with problem_type set (NULL: left out). */
static void config_with_problem(const char *dir, const char *src_config, const char *problem)
{
    cJSON *c = tread_json(src_config);
    cJSON_DeleteItemFromObject(c, "problem_type");
    if (problem) cJSON_AddStringToObject(c, "problem_type", problem);
    char *txt = cJSON_Print(c), path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path); /* tvocab_model links it */
    twrite_file(dir, "config.json", txt, strlen(txt));
    free(txt);
    cJSON_Delete(c);
}

/* One label (cross-encoders, STS heads): a sigmoid, as HF's pipeline (it was a
 * softmax over one label: 1.0 for every text); problem_type regression: the raw
 * logit; a problem_type transformers does not know: refused */
Test(bert, one_label_sigmoid_and_regression, .timeout = 300)
{
    check_case("bert_one_label", 1e-4);
    char dir[256];
    tvocab_model(dir, sizeof dir, TEXT "/bert_one_label", 300);
    vkf_context *ctx = tctx_create(tcaps());
    const char *texts[2] = {"a b c", "x y"};
    vkf_class_score top[2];
    vkf_model *m = load(ctx, dir, VKF_FP32);
    cr_assert_eq(vkf_classify_texts(m, texts, NULL, 2, top, 1), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < 2; i++) {
        cr_expect(fabs(top[i].prob - 1 / (1 + exp(-(double)top[i].logit))) < 1e-6, "text %d: %g is not sigmoid(%g)", i, top[i].prob,
                  top[i].logit);
        cr_expect(top[i].prob < 0.999, "text %d: %g", i, top[i].prob);
    }
    vkf_model_destroy(m);
    config_with_problem(dir, TEXT "/bert_one_label/config.json", "regression");
    m = load(ctx, dir, VKF_FP32);
    cr_assert_eq(vkf_classify_texts(m, texts, NULL, 2, top, 1), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < 2; i++) cr_expect_eq(top[i].prob, top[i].logit, "text %d: regression scores the raw logit", i);
    vkf_model_destroy(m);
    vkf_model *bad = NULL;
    config_with_problem(dir, TEXT "/bert_one_label/config.json", "ranking");
    cr_expect_eq(vkf_model_load(ctx, dir, &(vkf_model_desc){0}, &bad), VKF_ERROR_FORMAT);
    cr_expect(strstr(vkf_last_error(ctx), "problem_type \"ranking\""), "%s", vkf_last_error(ctx));
    config_with_problem(dir, TEXT "/bert_one_label/config.json", "single_label_classification");
    cr_expect_eq(vkf_model_load(ctx, dir, &(vkf_model_desc){0}, &bad), VKF_ERROR_FORMAT);
    cr_expect(strstr(vkf_last_error(ctx), "num_labels > 1"), "%s", vkf_last_error(ctx));
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

/* A token type id past the model's type_vocab_size (from a tokenizer's
 * template): an error naming the text (it was clamped to the last type) */
Test(bert, token_type_past_type_vocab_refused, .timeout = 300)
{
    char dir[256];
    tvocab_model(dir, sizeof dir, TEXT "/bert_one_label", 300);
    size_t cap = 16384, n = 0;
    char *json = malloc(cap);
    n += (size_t)snprintf(json + n, cap - n, "{\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, \"post_processor\": "
                          "{\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], "
                          "\"pair\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 5}}], "
                          "\"special_tokens\": {}}, \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {");
    static const char *const first[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 300; i++) {
        char name[16];
        if (i < 5) snprintf(name, sizeof name, "%s", first[i]);
        else if (i < 31) snprintf(name, sizeof name, "%c", 'a' + i - 5);
        else snprintf(name, sizeof name, "w%d", i);
        n += (size_t)snprintf(json + n, cap - n, "%s\"%s\": %d", i ? ", " : "", name, i);
    }
    n += (size_t)snprintf(json + n, cap - n, "}}}");
    twrite_file(dir, "tokenizer.json", json, n);
    free(json);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, dir, VKF_FP32);
    const char *texts[2] = {"a b", "c"}, *pairs[2] = {NULL, "d e"};
    vkf_class_score top[2];
    cr_expect_eq(vkf_classify_texts(m, texts, NULL, 2, top, 1), VKF_OK, "%s", vkf_last_error(ctx)); /* no pairs: type 0 */
    cr_expect_eq(vkf_classify_texts(m, texts, pairs, 2, top, 1), VKF_ERROR_FORMAT);
    cr_expect(strstr(vkf_last_error(ctx), "text 1: the tokenizer gives token type id 5, and the model has 2 token types"), "%s",
              vkf_last_error(ctx));
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

/* An old checkpoint: LayerNorm gamma/beta, an int64 position_ids buffer. */
Test(bert, gamma_beta_and_position_ids_buffer, .timeout = 300)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, TEXT "/bert_gamma", VKF_FP32);
    int32_t *ids = read_bin(GOLDEN "/bert/input_ids.bin", 13 * 4), *tt = read_bin(GOLDEN "/bert/token_type_ids.bin", 13 * 4);
    float *want = read_bin(GOLDEN "/bert/logits.bin", 12), got[3];
    vkf_tensor in[2] = {{.name = "input_ids", .rank = 2, .shape = {1, 13}, .data = ids, .dtype = VKF_I32},
                        {.name = "token_type_ids", .rank = 2, .shape = {1, 13}, .data = tt, .dtype = VKF_I32}};
    vkf_tensor out = {.name = "logits", .data = got, .capacity = sizeof got};
    cr_assert_eq(vkf_model_run(m, in, 2, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    cr_expect_leq(max_abs_diff_f32(got, want, 3), 1e-4, "logits differ from HF by %g", max_abs_diff_f32(got, want, 3));
    free(ids), free(tt), free(want);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* ---- the real all-MiniLM-L6-v2 (scripts/fetch_models.sh) ------------------------------- */

#define MINILM TMINILM

static double cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

/* A real sentence-transformers folder against sentence-transformers' own
 * embeddings of the case's sentences: one padded batch, each one alone too. */
static vkf_model *check_sentence_model(vkf_context *ctx, const char *dir, const char *case_dir, int D, double fb_want,
                                       double fh_want, float **got_out, const char ***texts_out)
{
    char path[600];
    snprintf(path, sizeof path, "%s/case.json", case_dir);
    cJSON *c = tread_json(path);
    const cJSON *sent = cJSON_GetObjectItem(c, "sentences");
    int n = cJSON_GetArraySize(sent);
    static const char *texts[8];
    static char store[8][256];
    for (int i = 0; i < n && i < 8; i++) snprintf(store[i], sizeof store[i], "%s", cJSON_GetArrayItem(sent, i)->valuestring), texts[i] = store[i];
    snprintf(path, sizeof path, "%s/embeddings.bin", case_dir);
    float *want = read_bin(path, (size_t)n * D * 4);
    vkf_model *m = load(ctx, dir, VKF_FP32);
    vkf_model_info info;
    vkf_model_get_info(m, &info);
    cr_expect_eq(info.hidden_size, (uint32_t)D);
    cr_expect_str_eq(info.task, "feature-extraction");
    float *got = malloc((size_t)n * D * 4), *one = malloc((size_t)D * 4);
    /* one padded batch of mixed lengths */
    cr_assert_eq(vkf_embed(m, texts, (uint32_t)n, NULL, got), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < n; i++) {
        double cs = cosine(got + i * D, want + i * D, D);
        cr_expect_geq(cs, 0.9999, "%s: sentence %d: cosine %.6f with sentence-transformers", dir, i, cs);
        double len = 0; /* normalised: |e| = 1 */
        for (int k = 0; k < D; k++) len += (double)got[i * D + k] * got[i * D + k];
        cr_expect(fabs(len - 1) < 1e-4, "sentence %d: |e|^2 = %g", i, len);
    }
    double fb = cosine(got, got + D, D), fh = cosine(got, got + 2 * D, D);
    cr_expect(fabs(fb - fb_want) < 5e-4, "cos(food, bread) = %.4f, want %.4f", fb, fb_want);
    cr_expect(fabs(fh - fh_want) < 5e-4, "cos(food, horse) = %.4f, want %.4f", fh, fh_want);
    /* alone, the same vector as in the batch */
    cr_assert_eq(vkf_embed(m, &texts[3], 1, NULL, one), VKF_OK, "%s", vkf_last_error(ctx));
    cr_expect_geq(cosine(one, got + 3 * D, D), 0.99999);
    free(one), free(want);
    cJSON_Delete(c);
    *got_out = got, *texts_out = texts;
    return m;
}

Test(minilm, sentence_embeddings_as_sentence_transformers, .timeout = 600)
{
    if (!tminilm()) cr_skip_test("all-MiniLM-L6-v2 left out");
    vkf_context *ctx = tctx_create(tcaps());
    float *got;
    const char **texts;
    vkf_model *m = check_sentence_model(ctx, MINILM, TEXT "/minilm", 384, 0.7553, 0.2474, &got, &texts);
    /* the empty text and a 100,000-character one (truncated to 256 tokens, with a warning) */
    char *huge = malloc(100001);
    for (int i = 0; i < 100000; i++) huge[i] = "word "[i % 5];
    huge[100000] = 0;
    const char *odd[2] = {"", huge};
    cr_expect_eq(vkf_embed(m, odd, 2, NULL, got), VKF_OK, "%s", vkf_last_error(ctx));
    free(huge);
    /* no classification or MLM head: a clear error */
    vkf_class_score sc;
    cr_expect_eq(vkf_classify_texts(m, texts, NULL, 1, &sc, 1), VKF_ERROR_UNSUPPORTED);
    cr_expect(strstr(vkf_last_error(ctx), "no sequence classification head"), "%s", vkf_last_error(ctx));
    free(got);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* The real all-mpnet-base-v2 (MPNet: relative bias buckets, positions from
 * padding_idx, RobertaProcessing around WordPiece), mean pooled and normalised */
Test(mpnet, all_mpnet_base_v2_as_sentence_transformers, .timeout = 600)
{
    if (!tmpnet()) cr_skip_test("all-mpnet-base-v2 left out");
    vkf_context *ctx = tctx_create(tcaps());
    float *got;
    const char **texts;
    vkf_model *m = check_sentence_model(ctx, TMPNET, TEXT "/mpnet_real", 768, 0.6601, 0.2464, &got, &texts);
    free(got);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* ---- the task calls on the small models, with a made-up WordPiece vocabulary --------- */

/* dir: the model's files linked in, and a vocab.txt of n tokens: [PAD] [UNK]
 * [CLS] [SEP] [MASK] a b c ... then w5 w6 ... */

Test(bert, classify_texts_as_the_tensor_api, .timeout = 300)
{
    char dir[256];
    tvocab_model(dir, sizeof dir, GOLDEN "/bert", 500);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, dir, VKF_FP32);
    const char *texts[3] = {"a b c", "W77 w5 x y z", "q"};
    const char *pairs[3] = {"d e", "f", "g h i j"};
    vkf_class_score top[3 * 3];
    cr_assert_eq(vkf_classify_texts(m, texts, pairs, 3, top, 3), VKF_OK, "%s", vkf_last_error(ctx));
    for (int t = 0; t < 3; t++) {
        /* the same pair through the tokenizer and the tensor API, alone */
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(vkf_model_tokenizer(m), texts[t], VKF_TEXT_NUL, pairs[t], VKF_TEXT_NUL, NULL, &e), VKF_OK);
        vkf_tensor in[2] = {{.name = "input_ids", .rank = 2, .shape = {1, e.length}, .data = e.ids, .dtype = VKF_I32},
                            {.name = "token_type_ids", .rank = 2, .shape = {1, e.length}, .data = e.type_ids, .dtype = VKF_I32}};
        float logits[3];
        vkf_tensor out = {.name = "logits", .data = logits, .capacity = sizeof logits};
        cr_assert_eq(vkf_model_run(m, in, 2, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
        double sum = 0;
        for (int k = 0; k < 3; k++) {
            const vkf_class_score *c = &top[t * 3 + k];
            cr_expect(fabs(c->logit - logits[c->index]) < 1e-4, "text %d: batched logit %g, alone %g", t, c->logit, logits[c->index]);
            if (k) cr_expect_geq(top[t * 3 + k - 1].prob, c->prob);
            sum += c->prob;
        }
        cr_expect(fabs(sum - 1) < 1e-5, "probabilities sum to %g", sum);
        cr_expect(!strncmp(top[t * 3].label, "LABEL_", 6), "label %s", top[t * 3].label);
        vkf_encoding_free(&e);
    }
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

Test(bert, fill_mask, .timeout = 300)
{
    char dir[256];
    tvocab_model(dir, sizeof dir, TEXT "/bert_mlm", 300);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, dir, VKF_FP32);
    vkf_fill_mask_result r[10];
    uint32_t n = 0;
    cr_assert_eq(vkf_fill_mask(m, "a [MASK] c d [MASK]", 5, r, 10, &n), VKF_OK, "%s", vkf_last_error(ctx));
    cr_expect_eq(n, 10);
    /* against the tensor API: the mask's logits, softmaxed */
    vkf_encoding e;
    cr_assert_eq(vkf_tokenizer_encode(vkf_model_tokenizer(m), "a [MASK] c d [MASK]", VKF_TEXT_NUL, NULL, 0, NULL, &e), VKF_OK);
    float *logits = malloc((size_t)e.length * 300 * 4);
    vkf_tensor in = {.name = "input_ids", .rank = 2, .shape = {1, e.length}, .data = e.ids, .dtype = VKF_I32};
    vkf_tensor out = {.name = "logits", .data = logits, .capacity = (uint64_t)e.length * 300 * 4};
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    uint32_t pos[2] = {2, 5}; /* [CLS] a [MASK] c d [MASK] [SEP] */
    for (int k = 0; k < 2; k++) {
        const float *x = logits + (size_t)pos[k] * 300;
        int best = argmax(x, 300);
        double mx = x[best], sum = 0;
        for (int v = 0; v < 300; v++) sum += exp(x[v] - mx);
        cr_expect_eq(r[k * 5].mask, (uint32_t)k);
        cr_expect_eq(r[k * 5].token, best, "mask %d: best %d, want %d", k, r[k * 5].token, best);
        cr_expect(fabs(r[k * 5].score - 1 / sum) < 1e-5);
        cr_expect_str_eq(r[k * 5].token_str, vkf_tokenizer_id_to_token(vkf_model_tokenizer(m), best));
        for (int j = 1; j < 5; j++) cr_expect_geq(r[k * 5 + j - 1].score, r[k * 5 + j].score);
    }
    free(logits);
    vkf_encoding_free(&e);
    /* a text without a mask, too little room, a model without the head */
    cr_expect_eq(vkf_fill_mask(m, "a b c", 5, r, 10, &n), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(ctx), "no mask token [MASK]"), "%s", vkf_last_error(ctx));
    cr_expect_eq(vkf_fill_mask(m, "[MASK] [MASK] [MASK]", 5, r, 10, &n), VKF_ERROR_INVALID_ARGUMENT);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

/* The text tasks on every family issue 25 added (a WordPiece vocabulary of
 * the checkpoint's size beside it): classification batched as the tensor
 * API alone, fill-mask's best token as the logits' argmax. */
static void check_tasks(const char *name, uint32_t vocab, bool mlm)
{
    char dir[256], src[300];
    snprintf(src, sizeof src, "%s/%s", TEXT, name);
    tvocab_model(dir, sizeof dir, src, vocab);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, dir, VKF_FP32);
    const char *texts[3] = {"a b c", "w77 w5 x y z w40 w41 w42", "q"};
    if (!mlm) {
        vkf_class_score top[3 * 2];
        cr_assert_eq(vkf_classify_texts(m, texts, NULL, 3, top, 2), VKF_OK, "%s: %s", name, vkf_last_error(ctx));
        for (int t = 0; t < 3; t++) {
            vkf_encoding e;
            cr_assert_eq(vkf_tokenizer_encode(vkf_model_tokenizer(m), texts[t], VKF_TEXT_NUL, NULL, 0, NULL, &e), VKF_OK);
            vkf_tensor in = {.name = "input_ids", .rank = 2, .shape = {1, e.length}, .data = e.ids, .dtype = VKF_I32};
            float logits[8];
            vkf_tensor out = {.name = "logits", .data = logits, .capacity = sizeof logits};
            cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
            for (int k = 0; k < 2; k++)
                cr_expect(fabs(top[t * 2 + k].logit - logits[top[t * 2 + k].index]) < 1e-4, "%s text %d: batched %g, alone %g", name, t,
                          top[t * 2 + k].logit, logits[top[t * 2 + k].index]);
            vkf_encoding_free(&e);
        }
    } else {
        vkf_fill_mask_result r[3];
        uint32_t n = 0;
        cr_assert_eq(vkf_fill_mask(m, "a [MASK] c", 3, r, 3, &n), VKF_OK, "%s: %s", name, vkf_last_error(ctx));
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(vkf_model_tokenizer(m), "a [MASK] c", VKF_TEXT_NUL, NULL, 0, NULL, &e), VKF_OK);
        float *logits = malloc((size_t)e.length * vocab * 4);
        vkf_tensor in = {.name = "input_ids", .rank = 2, .shape = {1, e.length}, .data = e.ids, .dtype = VKF_I32};
        vkf_tensor out = {.name = "logits", .data = logits, .capacity = (uint64_t)e.length * vocab * 4};
        cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
        cr_expect_eq(n, 3);
        cr_expect_eq(r[0].token, argmax(logits + 2 * (size_t)vocab, (int)vocab), "%s: best token %d", name, r[0].token);
        free(logits);
        vkf_encoding_free(&e);
    }
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

Test(deberta, text_tasks, .timeout = 300)
{
    check_tasks("deberta_cls", 200, false), check_tasks("debertav2_cls", 180, false);
    check_tasks("deberta_mlm", 220, true), check_tasks("debertav2_mlm", 240, true);
}

Test(mpnet, text_tasks, .timeout = 300) { check_tasks("mpnet_cls", 210, false), check_tasks("mpnet_mlm", 230, true); }
Test(electra, text_tasks, .timeout = 300) { check_tasks("electra_cls", 190, false), check_tasks("electra_gen", 190, true); }
Test(xlmr, text_tasks, .timeout = 300) { check_tasks("xlmr_cls", 270, false); }

/* ---- the tools as a user runs them ------------------------------------------------------ */

Test(text_tools, classify_embed_fill_mask_run, .timeout = 600)
{
    char dir[256], args[2048];
    tvocab_model(dir, sizeof dir, GOLDEN "/bert", 500);
    /* vkformer-classify on a text classifier: texts as arguments, JSON as HF names it */
    snprintf(args, sizeof args, "-q --json --top 2 -m %s 'a b c' 'd e'", dir);
    tcli_result *r = tcli_run(VKF_CLASSIFY_BIN, args, NULL, 0);
    cr_expect_eq(r->status, 0, "%s", r->err);
    cJSON *j = cJSON_Parse(r->out);
    cr_assert(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2, "%s", r->out);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetArrayItem(j, 0), 0);
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(first, "label")) && cJSON_IsNumber(cJSON_GetObjectItem(first, "score")));
    cJSON_Delete(j);
    /* one text per line of standard input */
    snprintf(args, sizeof args, "-q -m %s", dir);
    r = tcli_run(VKF_CLASSIFY_BIN, args, "a b\nc d\n", 8);
    cr_expect_eq(r->status, 0, "%s", r->err);
    cr_expect(strstr(r->out, "a b:\n  ") && strstr(r->out, "c d:\n  "), "%s", r->out);
    snprintf(args, sizeof args, "-q -m %s --input-tensor /dev/null", dir);
    ttmpdir_remove(dir);
    /* vkformer-embed --similarity with the real MiniLM */
    if (tminilm()) {
        r = tcli_run(VKF_EMBED_BIN, "-q --similarity -m " MINILM " 'A man is eating food.' 'A man is eating a piece of bread.'", NULL, 0);
        cr_expect_eq(r->status, 0, "%s", r->err);
        cr_expect(strstr(r->out, " 1.0000  0.7553") != NULL, "%s", r->out);
        r = tcli_run(VKF_EMBED_BIN, "-q -m " MINILM, "hello\n\nworld\n", 13);
        cr_expect_eq(r->status, 0, "%s", r->err);
        int lines = 0;
        for (const char *p = r->out; *p; p++) lines += *p == '\n';
        cr_expect_eq(lines, 2, "an embedding per non-empty line: %d", lines);
    }
    r = tcli_run(VKF_EMBED_BIN, "-q -m " VKF_REPO_DIR "/models/vit-tiny-patch16-224 hello", NULL, 0);
    cr_expect_eq(r->status, 1);
    cr_expect(strstr(r->err, "image model"), "%s", r->err);
    r = tcli_run(VKF_EMBED_BIN, "--pooling median -m x y", NULL, 0);
    cr_expect_eq(r->status, 2);
    /* vkformer-fill-mask on the small MaskedLM */
    tvocab_model(dir, sizeof dir, TEXT "/bert_mlm", 300);
    snprintf(args, sizeof args, "-q --json --top 3 -m %s 'a [MASK] c'", dir);
    r = tcli_run(VKF_FILL_MASK_BIN, args, NULL, 0);
    cr_expect_eq(r->status, 0, "%s", r->err);
    j = cJSON_Parse(r->out);
    cJSON *m0 = cJSON_GetArrayItem(j, 0); /* one text with one mask: HF's list for that mask */
    cr_expect_eq(cJSON_GetArraySize(j), 1, "%s", r->out);
    cr_expect_eq(cJSON_GetArraySize(m0), 3, "%s", r->out);
    cJSON *best = cJSON_GetArrayItem(m0, 0);
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(best, "token_str")) && cJSON_IsString(cJSON_GetObjectItem(best, "sequence")));
    cJSON_Delete(j);
    snprintf(args, sizeof args, "-q -m %s 'no mask here'", dir);
    r = tcli_run(VKF_FILL_MASK_BIN, args, NULL, 0);
    cr_expect_eq(r->status, 1);
    cr_expect(strstr(r->err, "no mask token [MASK]"), "%s", r->err);
    ttmpdir_remove(dir);
    /* vkformer-run: .npy in, .npy out, equal to HF's */
    char out[256];
    ttmpdir_create(out, sizeof out, "run");
    snprintf(args, sizeof args, "-q -m %s/bert -i input_ids=%s/npy/input_ids.npy -i token_type_ids=%s/npy/token_type_ids.npy -o logits=%s/logits.npy",
             GOLDEN, VKF_TEST_DATA, VKF_TEST_DATA, out);
    r = tcli_run(VKF_RUN_BIN, args, NULL, 0);
    cr_expect_eq(r->status, 0, "%s", r->err);
    char path[400];
    snprintf(path, sizeof path, "%s/logits.npy", out);
    vkf_tensor t;
    cr_assert_eq(vkf_npy_load(path, &t), VKF_OK, "%s", vkf_last_error(NULL));
    float *want = read_bin(VKF_TEST_DATA "/npy/logits.bin", 12);
    cr_expect(t.rank == 2 && t.shape[1] == 3 && t.dtype == VKF_F32);
    cr_expect(max_abs_diff_f32(t.data, want, 3) < 1e-4, "logits differ from HF's by %g", max_abs_diff_f32(t.data, want, 3));
    vkf_free(t.data);
    free(want);
    snprintf(args, sizeof args, "-q -m %s/bert -i input_ids=%s/npy/f64.npy -o logits=%s/x.npy", GOLDEN, VKF_TEST_DATA, out);
    r = tcli_run(VKF_RUN_BIN, args, NULL, 0);
    cr_expect_eq(r->status, 1);
    cr_expect(strstr(r->err, "'<f8' is not supported"), "%s", r->err);
    snprintf(args, sizeof args, "-q -m %s/bert -i input_ids=%s/npy/logits.npy -o logits=%s/x.npy", GOLDEN, VKF_TEST_DATA, out);
    r = tcli_run(VKF_RUN_BIN, args, NULL, 0);
    cr_expect_eq(r->status, 1);
    cr_expect(strstr(r->err, "int32 or int64"), "%s", r->err);
    /* an image model through the same runner */
    snprintf(args, sizeof args, "-q -m %s/vit -i pixel_values=%s/npy/vit_pixel_values.npy -o logits=%s/vit.npy", GOLDEN, VKF_TEST_DATA, out);
    r = tcli_run(VKF_RUN_BIN, args, NULL, 0);
    cr_expect_eq(r->status, 0, "%s", r->err);
    snprintf(path, sizeof path, "%s/vit.npy", out);
    cr_assert_eq(vkf_npy_load(path, &t), VKF_OK, "%s", vkf_last_error(NULL));
    float *vit_want = read_bin(GOLDEN "/vit/logits.bin", 40);
    cr_expect(t.rank == 2 && t.shape[1] == 10 && max_abs_diff_f32(t.data, vit_want, 10) < 1e-4, "ViT logits through vkformer-run");
    vkf_free(t.data);
    free(vit_want);
    r = tcli_run(VKF_RUN_BIN, "-m x --input nofile", NULL, 0);
    cr_expect_eq(r->status, 2);
    ttmpdir_remove(out);
}

/* A tokenizer with more ids than the embedding table has rows: refused at load. */
Test(bert, tokenizer_that_does_not_fit, .timeout = 120)
{
    char dir[256];
    tvocab_model(dir, sizeof dir, GOLDEN "/bert", 600);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = (vkf_model *)1;
    vkf_model_desc d = {.precision = VKF_FP32};
    cr_expect_eq(vkf_model_load(ctx, dir, &d, &m), VKF_ERROR_SHAPE);
    cr_expect_null(m);
    cr_expect(strstr(vkf_last_error(ctx), "the tokenizer has 600 tokens, the model's embedding table 500"), "%s", vkf_last_error(ctx));
    d.max_in_flight = 9;
    cr_expect_eq(vkf_model_load(ctx, GOLDEN "/bert", &d, &m), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(ctx), "max_in_flight 9"), "%s", vkf_last_error(ctx));
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

/* ---- one model, several threads: each reads its own error --------------------------------- */

#include <pthread.h>

typedef struct err_thread {
    vkf_context *ctx;
    vkf_model *m;
    int which, ok;
} err_thread;

static void *fail_repeatedly(void *p)
{
    err_thread *t = p;
    int32_t ids[4] = {101, 7, t->which ? 5 : 900, 102}, mask[4] = {1, 1, 1, 1};
    float logits[3];
    vkf_tensor out = {.name = "logits", .data = logits, .capacity = sizeof logits};
    vkf_tensor in[2] = {{.name = "input_ids", .rank = 2, .shape = {1, 4}, .data = ids, .dtype = VKF_I32},
                        {.name = "attention_mask", .rank = 2, .shape = {1, t->which ? 3 : 4}, .data = mask, .dtype = VKF_I32}};
    const char *want = t->which ? "attention_mask must be [1, 4]" : "input_ids[0][2] = 900";
    t->ok = 1;
    for (int i = 0; i < 200; i++) {
        if (vkf_model_run(t->m, in, 2, &out, 1) == VKF_OK || !strstr(vkf_last_error(t->ctx), want)) t->ok = 0;
    }
    return NULL;
}

Test(bert, errors_per_thread, .timeout = 300)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, GOLDEN "/bert", VKF_FP32);
    err_thread t[2] = {{ctx, m, 0, 0}, {ctx, m, 1, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, fail_repeatedly, &t[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    cr_expect(t[0].ok && t[1].ok, "a thread read another thread's error message");
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}
