/* Zero-shot text classification and cross-encoder reranking against HF:
 * transformers 5's zero-shot-classification pipeline on small random NLI
 * models (BERT, RoBERTa, DistilBERT; entailment first, last, or unnamed),
 * single- and multi-label, the default and a custom template, a premise
 * longer than the positions; sentence-transformers' CrossEncoder.predict and
 * .rank on a one-logit model over 35 documents (more than one batch). Data:
 * tools/make_zeroshot_refs.py. */
#include "common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZS VKF_TEST_DATA "/zeroshot"
#define TOL 1e-4

static cJSON *refs(void) { return tread_json(ZS "/refs.json"); }

/* A copy of a case's folder (files linked) whose config.json has `key` set to `value` (JSON text). */
static void with_config(char *dir, size_t cap, const char *src, const char *key, const char *value)
{
    twith_config(dir, cap, src, "model.safetensors tokenizer.json tokenizer_config.json", key, value);
}

/* Every pipeline call of `name` in refs.json against vkf_zero_shot_text. */
static void check_zero_shot(const char *dir, const char *name)
{
    cJSON *all = refs(), *cases = cJSON_GetObjectItem(all, name);
    cr_assert(cJSON_GetArraySize(cases) > 0, "%s: no cases", name);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    tlog_reset();
    int n_case = 0;
    for (const cJSON *c = cases->child; c; c = c->next, n_case++) {
        const char *seq = cJSON_GetObjectItem(c, "sequence")->valuestring;
        const cJSON *cand = cJSON_GetObjectItem(c, "candidate_labels"), *tmpl = cJSON_GetObjectItem(c, "template");
        const cJSON *want_labels = cJSON_GetObjectItem(c, "labels"), *want_scores = cJSON_GetObjectItem(c, "scores");
        int multi = cJSON_IsTrue(cJSON_GetObjectItem(c, "multi_label"));
        const char *labels[8];
        uint32_t n = 0;
        for (const cJSON *l = cand->child; l; l = l->next) labels[n++] = l->valuestring;
        vkf_class_score out[8];
        cr_assert_eq(vkf_zero_shot_text(m, seq, labels, n, cJSON_IsString(tmpl) ? tmpl->valuestring : NULL, multi, out), VKF_OK,
                     "%s case %d: %s", name, n_case, vkf_last_error(ctx));
        for (uint32_t j = 0; j < n; j++) {
            double want = cJSON_GetArrayItem(want_scores, (int)j)->valuedouble;
            const char *want_label = cJSON_GetArrayItem(want_labels, (int)j)->valuestring;
            cr_expect(fabs(out[j].prob - want) < TOL, "%s case %d (%s, multi %d): score %u %.6f, HF %.6f", name, n_case, seq, multi, j,
                      out[j].prob, want);
            /* the order as HF's, where the scores are not within the tolerance of each other */
            double prev = j ? cJSON_GetArrayItem(want_scores, (int)j - 1)->valuedouble : INFINITY;
            double next = j + 1 < n ? cJSON_GetArrayItem(want_scores, (int)j + 1)->valuedouble : -INFINITY;
            if (prev - want > 2 * TOL && want - next > 2 * TOL)
                cr_expect_str_eq(out[j].label, want_label, "%s case %d: rank %u is %s, HF %s", name, n_case, j, out[j].label,
                                 want_label);
            cr_expect_eq(out[j].label, labels[out[j].index], "label points into the caller's labels");
        }
    }
    /* the long premise lost tokens (the hypothesis none) with a warning */
    cr_expect(tlog_contains("hypothesis 0: ") && tlog_contains("truncated to 40"), "no truncation warning");
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    cJSON_Delete(all);
}

Test(zeroshot, bert_entailment_last, .timeout = 300) { check_zero_shot(ZS "/bert_nli", "bert_nli"); }
Test(zeroshot, roberta_entailment_first_in_capitals, .timeout = 300) { check_zero_shot(ZS "/roberta_nli", "roberta_nli"); }
Test(zeroshot, distilbert_two_labels, .timeout = 300) { check_zero_shot(ZS "/distilbert_nli", "distilbert_nli"); }
/* DeBERTa-v3-style and MPNet NLI heads, entailment in the middle (nli-deberta-base's order) */
Test(zeroshot, deberta_entailment_middle, .timeout = 300) { check_zero_shot(ZS "/deberta_nli", "deberta_nli"); }
Test(zeroshot, mpnet_entailment_middle, .timeout = 300) { check_zero_shot(ZS "/mpnet_nli", "mpnet_nli"); }

/* No label starts with "entail": HF warns and takes the last logit; so do we. */
Test(zeroshot, no_entailment_label_as_hf, .timeout = 300)
{
    char dir[256];
    with_config(dir, sizeof dir, ZS "/roberta_nli", "id2label", "{\"0\": \"LABEL_0\", \"1\": \"LABEL_1\", \"2\": \"LABEL_2\"}");
    check_zero_shot(dir, "roberta_nli_generic_labels");
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    tlog_reset();
    const char *labels[] = {"a", "b"};
    vkf_class_score out[2];
    cr_assert_eq(vkf_zero_shot_text(m, "x", labels, 2, NULL, 0, out), VKF_OK, "%s", vkf_last_error(ctx));
    cr_expect(tlog_contains("starts with \"entail\""), "no warning");
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}

static void expect_error(vkf_context *ctx, vkf_status got, vkf_status want, const char *needle)
{
    cr_expect_eq(got, want, "status %d, want %d: %s", got, want, vkf_last_error(ctx));
    cr_expect(strstr(vkf_last_error(ctx), needle), "expected '%s' in: %s", needle, vkf_last_error(ctx));
}

Test(zeroshot, bad_inputs_fail_clearly, .timeout = 300)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, ZS "/bert_nli", VKF_FP32);
    const char *labels[] = {"sports", NULL};
    vkf_class_score out[2];
    expect_error(ctx, vkf_zero_shot_text(m, "a text", labels, 0, NULL, 0, out), VKF_ERROR_INVALID_ARGUMENT, "no candidate labels");
    expect_error(ctx, vkf_zero_shot_text(m, "a text", labels, 1, "no hole", 0, out), VKF_ERROR_INVALID_ARGUMENT, "has no {}");
    expect_error(ctx, vkf_zero_shot_text(m, "a text", labels, 1, "{} and {}", 0, out), VKF_ERROR_INVALID_ARGUMENT, "more than one {}");
    expect_error(ctx, vkf_zero_shot_text(m, "a text", labels, 2, NULL, 0, out), VKF_ERROR_INVALID_ARGUMENT, "label 1 is NULL");
    cr_expect_eq(vkf_zero_shot_text(m, NULL, labels, 1, NULL, 0, out), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(NULL), "NULL argument"), "%s", vkf_last_error(NULL));
    /* a hypothesis longer than the positions by itself: HF cannot truncate the premise enough either */
    char tmpl[400] = "";
    for (int i = 0; i < 50; i++) strcat(tmpl, "the ");
    strcat(tmpl, "{}");
    expect_error(ctx, vkf_zero_shot_text(m, "a text", labels, 1, tmpl, 0, out), VKF_ERROR_INVALID_ARGUMENT, "too short to lose");
    /* the empty text is a premise of no tokens, as in HF */
    cr_expect_eq(vkf_zero_shot_text(m, "", labels, 1, NULL, 0, out), VKF_OK, "%s", vkf_last_error(ctx));
    /* ranking needs one logit; an NLI model's rerank gives its raw logits */
    const char *docs[] = {"a", "b"};
    vkf_rank_result rr[2];
    expect_error(ctx, vkf_rank(m, "q", docs, 2, 0, rr), VKF_ERROR_UNSUPPORTED, "one-logit");
    float raw[6];
    cr_expect_eq(vkf_rerank(m, "q", docs, 2, raw), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_class_score sc[3];
    cr_assert_eq(vkf_classify_texts(m, (const char *[]){"q"}, (const char *[]){"b"}, 1, sc, 3), VKF_OK);
    for (int j = 0; j < 3; j++) cr_expect_float_eq(raw[3 + sc[j].index], sc[j].logit, 1e-6);
    const char *bad_docs[] = {"a", NULL};
    expect_error(ctx, vkf_rerank(m, "q", bad_docs, 2, raw), VKF_ERROR_INVALID_ARGUMENT, "text 1 is NULL");
    vkf_model_destroy(m);
    /* not a sequence classifier */
    m = tload_model(ctx, VKF_TEST_DATA "/clip/zero_shot", VKF_FP32);
    expect_error(ctx, vkf_zero_shot_text(m, "a text", labels, 1, NULL, 0, out), VKF_ERROR_UNSUPPORTED, "NLI sequence classifier");
    expect_error(ctx, vkf_rerank(m, "q", docs, 2, raw), VKF_ERROR_UNSUPPORTED, "cross-encoder");
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* HF's only_first: the first text loses what the pair has too many. */
Test(zeroshot, only_first_truncation)
{
    vkf_tokenizer *tok;
    cr_assert_eq(vkf_tokenizer_load(ZS "/bert_nli", &tok), VKF_OK, "%s", vkf_last_error(NULL));
    const char *a = "one two three four five six seven eight nine ten", *b = "this example is sports.";
    vkf_encoding full, cut;
    cr_assert_eq(vkf_tokenizer_encode(tok, a, VKF_TEXT_NUL, b, VKF_TEXT_NUL, NULL, &full), VKF_OK);
    vkf_encode_options o = {.max_length = full.length - 3, .truncation = VKF_TRUNCATE_ONLY_FIRST};
    cr_assert_eq(vkf_tokenizer_encode(tok, a, VKF_TEXT_NUL, b, VKF_TEXT_NUL, &o, &cut), VKF_OK, "%s", vkf_last_error(NULL));
    cr_assert_eq(cut.length, full.length - 3);
    /* the second text and its [SEP] whole: the last tokens equal */
    uint32_t tail = 7;
    cr_expect_arr_eq(cut.ids + cut.length - tail, full.ids + full.length - tail, tail * sizeof(int32_t));
    o.truncation = VKF_TRUNCATE_ONLY_SECOND;
    vkf_encoding_free(&cut);
    cr_assert_eq(vkf_tokenizer_encode(tok, a, VKF_TEXT_NUL, b, VKF_TEXT_NUL, &o, &cut), VKF_OK, "%s", vkf_last_error(NULL));
    cr_expect_arr_eq(cut.ids, full.ids, 12 * sizeof(int32_t), "only_second kept the first text");
    vkf_encoding_free(&cut);
    /* too few tokens in the text to cut: an error, as HF's fast tokenizers give */
    o = (vkf_encode_options){.max_length = 8, .truncation = VKF_TRUNCATE_ONLY_FIRST};
    cr_expect_eq(vkf_tokenizer_encode(tok, "a", VKF_TEXT_NUL, b, VKF_TEXT_NUL, &o, &cut), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(NULL), "too short"), "%s", vkf_last_error(NULL));
    o.truncation = VKF_TRUNCATE_ONLY_SECOND;
    cr_expect_eq(vkf_tokenizer_encode(tok, a, VKF_TEXT_NUL, NULL, 0, &o, &cut), VKF_ERROR_INVALID_ARGUMENT);
    o.truncation = (vkf_truncation)7;
    cr_expect_eq(vkf_tokenizer_encode(tok, a, VKF_TEXT_NUL, b, VKF_TEXT_NUL, &o, &cut), VKF_ERROR_INVALID_ARGUMENT);
    vkf_encoding_free(&full);
    vkf_tokenizer_destroy(tok);
}

/* CrossEncoder.predict's scores and .rank's order, 35 documents. */
Test(zeroshot, rerank_as_cross_encoder, .timeout = 300)
{
    cJSON *all = refs(), *ce = cJSON_GetObjectItem(all, "cross_encoder");
    const cJSON *docs_j = cJSON_GetObjectItem(ce, "documents"), *want = cJSON_GetObjectItem(ce, "scores");
    const char *query = cJSON_GetObjectItem(ce, "query")->valuestring;
    uint32_t n = (uint32_t)cJSON_GetArraySize(docs_j);
    const char **docs = calloc(n, sizeof *docs);
    uint32_t i = 0;
    for (const cJSON *d = docs_j->child; d; d = d->next) docs[i++] = d->valuestring;
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, ZS "/cross_encoder", VKF_FP32);
    float *scores = calloc(n, sizeof *scores);
    cr_assert_eq(vkf_rerank(m, query, docs, n, scores), VKF_OK, "%s", vkf_last_error(ctx));
    for (i = 0; i < n; i++)
        cr_expect(fabs(scores[i] - cJSON_GetArrayItem(want, (int)i)->valuedouble) < TOL, "doc %u: %.6f, CrossEncoder %.6f", i,
                  scores[i], cJSON_GetArrayItem(want, (int)i)->valuedouble);
    vkf_rank_result *r = calloc(n, sizeof *r);
    cr_assert_eq(vkf_rank(m, query, docs, n, 0, r), VKF_OK, "%s", vkf_last_error(ctx));
    const cJSON *rank = cJSON_GetObjectItem(ce, "rank");
    for (i = 0; i < n; i++) {
        const cJSON *w = cJSON_GetArrayItem(rank, (int)i);
        double ws = cJSON_GetObjectItem(w, "score")->valuedouble;
        cr_expect(fabs(r[i].score - ws) < TOL, "rank %u: %.6f, CrossEncoder %.6f", i, r[i].score, ws);
        cr_expect_float_eq(r[i].score, scores[r[i].corpus_id], 0, "rank %u's score is its document's", i);
        if (i) cr_expect_geq(r[i - 1].score, r[i].score, "not sorted at %u", i);
        /* the same document where the neighbours are not within the tolerance */
        double prev = i ? cJSON_GetObjectItem(cJSON_GetArrayItem(rank, (int)i - 1), "score")->valuedouble : INFINITY;
        double next = i + 1 < n ? cJSON_GetObjectItem(cJSON_GetArrayItem(rank, (int)i + 1), "score")->valuedouble : -INFINITY;
        if (prev - ws > 2 * TOL && ws - next > 2 * TOL)
            cr_expect_eq(r[i].corpus_id, (uint32_t)cJSON_GetObjectItem(w, "corpus_id")->valueint, "rank %u: doc %u", i, r[i].corpus_id);
    }
    vkf_rank_result top[3];
    cr_assert_eq(vkf_rank(m, query, docs, n, 3, top), VKF_OK);
    cr_expect_arr_eq(top, r, sizeof top, "top 3 are the first 3 of the full ranking");
    /* a long document was truncated longest-first, with a warning naming it */
    cr_expect(tlog_contains("text 3: "), "no truncation warning for document 3");
    vkf_model_destroy(m);
    /* the activation config.json names (sentence-transformers >= 4) */
    char dir[256];
    with_config(dir, sizeof dir, ZS "/cross_encoder", "sentence_transformers",
                "{\"activation_fn\": \"torch.nn.modules.linear.Identity\", \"version\": \"4.0.1\"}");
    m = tload_model(ctx, dir, VKF_FP32);
    float logit;
    cr_assert_eq(vkf_rerank(m, query, docs, 1, &logit), VKF_OK, "%s", vkf_last_error(ctx));
    cr_expect_float_eq(1 / (1 + exp(-logit)), scores[0], 1e-6, "identity: the raw logit");
    vkf_model_destroy(m);
    ttmpdir_remove(dir);
    with_config(dir, sizeof dir, ZS "/cross_encoder", "sentence_transformers", "{\"activation_fn\": \"torch.nn.modules.activation.ReLU\"}");
    m = tload_model(ctx, dir, VKF_FP32);
    expect_error(ctx, vkf_rerank(m, query, docs, 1, &logit), VKF_ERROR_UNSUPPORTED, "ReLU");
    vkf_model_destroy(m);
    ttmpdir_remove(dir);
    free(scores), free(r), free(docs);
    tctx_destroy(ctx);
    cJSON_Delete(all);
}

/* ---- the tools: vkformer-classify --labels and vkformer-rerank ------------------------- */

static cJSON *run_json(const char *bin, const char *args, const char *in)
{
    tcli_result *r = tcli_run(bin, args, in, in ? strlen(in) : 0);
    cr_assert_eq(r->status, 0, "%s: %s", args, r->err);
    cJSON *j = cJSON_Parse(r->out);
    cr_assert(cJSON_IsArray(j), "%s: not a JSON array: %s", args, r->out);
    return j;
}

static void expect_usage(const char *bin, const char *args, int status, const char *needle)
{
    tcli_result *r = tcli_run(bin, args, NULL, 0);
    cr_expect_eq(r->status, status, "`%s` exited %d (want %d): %s", args, r->status, status, r->err);
    cr_expect(strstr(r->err, needle), "`%s`: expected '%s' in: %s", args, needle, r->err);
    cr_expect_str_eq(r->out, "", "`%s`: results on a failure: %s", args, r->out);
}

Test(zeroshot_tools, classify_labels_as_the_pipeline, .timeout = 300)
{
    cJSON *all = refs(), *c = cJSON_GetArrayItem(cJSON_GetObjectItem(all, "bert_nli"), 8); /* custom template, single-label */
    cr_assert_str_eq(cJSON_GetObjectItem(c, "template")->valuestring, "The topic is {}!");
    cr_assert(!cJSON_IsTrue(cJSON_GetObjectItem(c, "multi_label")));
    char args[1024];
    snprintf(args, sizeof args, "-q -m " ZS "/bert_nli --json --labels 'sports,politics,cooking,space travel' -t 'The topic is {}!' '%s'",
             cJSON_GetObjectItem(c, "sequence")->valuestring);
    cJSON *got = run_json(VKF_CLASSIFY_BIN, args, NULL);
    cr_assert_eq(cJSON_GetArraySize(got), 1);
    const cJSON *e = got->child;
    cr_expect_str_eq(cJSON_GetObjectItem(e, "sequence")->valuestring, cJSON_GetObjectItem(c, "sequence")->valuestring);
    const cJSON *gl = cJSON_GetObjectItem(e, "labels"), *gs = cJSON_GetObjectItem(e, "scores");
    const cJSON *wl = cJSON_GetObjectItem(c, "labels"), *ws = cJSON_GetObjectItem(c, "scores");
    cr_assert_eq(cJSON_GetArraySize(gl), 4);
    for (int j = 0; j < 4; j++) {
        cr_expect(fabs(cJSON_GetArrayItem(gs, j)->valuedouble - cJSON_GetArrayItem(ws, j)->valuedouble) < TOL, "score %d", j);
        cr_expect_str_eq(cJSON_GetArrayItem(gl, j)->valuestring, cJSON_GetArrayItem(wl, j)->valuestring);
    }
    cJSON_Delete(got);
    /* texts from a file, --top: the best labels only; plain output names the text */
    tcli_result *r = tcli_run(VKF_CLASSIFY_BIN, "-q -m " ZS "/bert_nli --labels a,b,c --top 1 --file -", "x y\n\nz\n", 6);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_expect(strstr(r->out, "x y:\n  ") && strstr(r->out, "z:\n  "), "%s", r->out);
    cr_expect_eq(strlen(r->out) - strlen(strchr(r->out, '\n')), 4, "%s", r->out);
    /* usage errors (2) before the model loads; model errors (1) */
    expect_usage(VKF_CLASSIFY_BIN, "-m " ZS "/bert_nli --labels a,,b x", 2, "empty label");
    expect_usage(VKF_CLASSIFY_BIN, "-m " ZS "/bert_nli --labels a -t nohole x", 2, "has no {}");
    expect_usage(VKF_CLASSIFY_BIN, "-m " ZS "/bert_nli --multi-label x", 2, "give --labels");
    expect_usage(VKF_CLASSIFY_BIN, "--labels a x", 2, "needs --model");
    expect_usage(VKF_CLASSIFY_BIN, "-m " ZS "/bert_nli --labels a --labels-file - x", 2, "one of them");
    expect_usage(VKF_CLASSIFY_BIN, "-m " ZS "/bert_nli --labels a --pair b x", 2, "zero-shot");
    expect_usage(VKF_CLASSIFY_BIN, "-m " ZS "/bert_nli --labels a -t '{}{}' x", 1, "more than one {}");
    expect_usage(VKF_CLASSIFY_BIN, "-m " VKF_TEST_DATA "/golden/vit --labels a x", 1, "text-classification");
    cJSON_Delete(all);
}

Test(zeroshot_tools, rerank_as_tei, .timeout = 300)
{
    cJSON *all = refs(), *ce = cJSON_GetObjectItem(all, "cross_encoder");
    /* the first 5 documents, one per line of a file */
    char in[2048] = "";
    for (int i = 0; i < 5; i++)
        strcat(strcat(in, cJSON_GetArrayItem(cJSON_GetObjectItem(ce, "documents"), i)->valuestring), "\n");
    char args[512];
    snprintf(args, sizeof args, "-q -m " ZS "/cross_encoder --json --return-text --query '%s' --file -",
             cJSON_GetObjectItem(ce, "query")->valuestring);
    cJSON *got = run_json(VKF_RERANK_BIN, args, in);
    cr_assert_eq(cJSON_GetArraySize(got), 5);
    const cJSON *want = cJSON_GetObjectItem(ce, "scores");
    double prev = INFINITY;
    for (const cJSON *e = got->child; e; e = e->next) {
        int idx = cJSON_GetObjectItem(e, "index")->valueint;
        double sc = cJSON_GetObjectItem(e, "score")->valuedouble;
        cr_expect(fabs(sc - cJSON_GetArrayItem(want, idx)->valuedouble) < TOL, "document %d", idx);
        cr_expect_str_eq(cJSON_GetObjectItem(e, "text")->valuestring,
                         cJSON_GetArrayItem(cJSON_GetObjectItem(ce, "documents"), idx)->valuestring);
        cr_expect_leq(sc, prev, "not best first");
        prev = sc;
    }
    cJSON_Delete(got);
    /* without --return-text, TEI's {index, score}; --top-k */
    got = run_json(VKF_RERANK_BIN, "-q -m " ZS "/cross_encoder --json -Q q -k 2 a b c", NULL);
    cr_assert_eq(cJSON_GetArraySize(got), 2);
    cr_expect_null(cJSON_GetObjectItem(got->child, "text"));
    cJSON_Delete(got);
    tcli_result *r = tcli_run(VKF_RERANK_BIN, "-m " ZS "/cross_encoder -Q q a b", NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_expect(strstr(r->out, "  a\n") && strstr(r->out, "  b\n") && strstr(r->err, "2 documents in"), "%s\n%s", r->out, r->err);
    expect_usage(VKF_RERANK_BIN, "-m " ZS "/cross_encoder a", 2, "--query");
    expect_usage(VKF_RERANK_BIN, "-m " ZS "/cross_encoder -Q q -f x a", 2, "not both");
    expect_usage(VKF_RERANK_BIN, "-m " ZS "/cross_encoder -Q q -k 0 a", 2, "--top-k");
    expect_usage(VKF_RERANK_BIN, "-m " ZS "/cross_encoder -Q q -f /no/such/file", 1, "/no/such/file");
    expect_usage(VKF_RERANK_BIN, "-m " ZS "/bert_nli -Q q a b", 1, "one-logit");
    expect_usage(VKF_RERANK_BIN, "-m " VKF_TEST_DATA "/golden/vit -Q q a", 1, "text-classification");
    r = tcli_run(VKF_RERANK_BIN, "-m " ZS "/cross_encoder -Q q -f -", "\n\n", 2);
    cr_expect_eq(r->status, 2, "no documents: %s", r->err);
    cJSON_Delete(all);
}
