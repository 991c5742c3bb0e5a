/* SentencePiece-family tokenizers against HF on the hostile corpus: the
 * `.model` files as transformers 4.x's slow tokenizers read them (sentencepiece
 * 0.2 underneath) and the tokenizer.json transformers converts each to, as the
 * `tokenizers` library runs it (tests/data/tokenizers/spm, made by
 * tools/make_spm_refs.py): ids with and without special tokens, pairs,
 * decoded text, and byte offsets for the tokenizer.json forms. Then broken
 * model files, each with its own message. */
#include "common.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/text.h"

#define TOKDATA VKF_TEST_DATA "/tokenizers"
#define SPMDATA TOKDATA "/spm"

typedef ttext text;
#define b64 tb64

static tcorpus cor;
static cJSON *corpus, *refs;
static text *texts;
static int n_texts;

static void setup(void)
{
    tcorpus_load(&cor, SPMDATA "/refs.json");
    corpus = cor.json, refs = cor.refs, texts = cor.texts, n_texts = cor.n;
}

static void teardown(void) { tcorpus_free(&cor); }




static void check(const char *name, const char *source)
{
    char dir[512];
    snprintf(dir, sizeof dir, SPMDATA "/%s", name);
    vkf_tokenizer *tok = NULL;
    cr_assert_eq(vkf_tokenizer_load(dir, &tok), VKF_OK, "%s: %s", dir, vkf_last_error(NULL));
    vkf_tokenizer_info info;
    vkf_tokenizer_get_info(tok, &info);
    cr_assert_str_eq(info.source, source);
    cJSON *r = cJSON_GetObjectItem(refs, name);
    cr_assert_not_null(r, "no references for %s", name);
    bool fast = strstr(name, "-json") != NULL;
    cJSON *ids = cJSON_GetObjectItem(r, "ids"), *ns = cJSON_GetObjectItem(r, "ids_no_special");
    cJSON *dec = cJSON_GetObjectItem(r, "decoded"), *offs = cJSON_GetObjectItem(r, "offsets");
    int bad_ids = 0, bad_ns = 0, bad_dec = 0, bad_offs = 0, bad_pairs = 0;
    for (int i = 0; i < n_texts; i++) {
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(tok, texts[i].b, texts[i].n, NULL, 0, NULL, &e), VKF_OK, "%s", vkf_last_error(NULL));
        const cJSON *want = cJSON_GetArrayItem(ids, i);
        bool same = !tids_differ(e.ids, e.length, want);
        if (!same && bad_ids++ < 8) tlog_ids(name, i, e.ids, e.length, want);
        if (fast && same && tvalid_utf8(texts[i].b, texts[i].n)) {
            uint32_t k = 0;
            for (const cJSON *p = cJSON_GetArrayItem(offs, i)->child; p; p = p->next, k++) {
                uint32_t ws = (uint32_t)p->child->valuedouble, we = (uint32_t)p->child->next->valuedouble;
                if (e.offsets[k][0] != ws || e.offsets[k][1] != we) {
                    if (bad_offs++ < 8)
                        cr_log_error("%s text %d token %u (%d): offsets %u..%u, HF %u..%u", name, i, k, e.ids[k], e.offsets[k][0],
                                     e.offsets[k][1], ws, we);
                    break;
                }
            }
        }
        /* decoding the reference ids, special tokens skipped */
        int32_t *wids = malloc(((size_t)cJSON_GetArraySize(want) + 1) * sizeof *wids);
        size_t wn = 0;
        for (const cJSON *x = want->child; x; x = x->next) wids[wn++] = (int32_t)x->valuedouble;
        char *d = NULL;
        size_t dn = 0;
        cr_assert_eq(vkf_tokenizer_decode(tok, wids, wn, 1, &d, &dn), VKF_OK, "%s", vkf_last_error(NULL));
        text wd = b64(cJSON_GetArrayItem(dec, i)->valuestring);
        if ((dn != wd.n || memcmp(d, wd.b, wd.n)) && bad_dec++ < 8) cr_log_error("%s text %d decodes to\n  '%s'\n  HF '%s'", name, i, d, wd.b);
        free(wd.b);
        free(wids);
        vkf_free(d);
        vkf_encoding_free(&e);
        vkf_encode_options o = {.no_special_tokens = 1};
        cr_assert_eq(vkf_tokenizer_encode(tok, texts[i].b, texts[i].n, NULL, 0, &o, &e), VKF_OK);
        if (tids_differ(e.ids, e.length, cJSON_GetArrayItem(ns, i)) && bad_ns++ < 4)
            tlog_ids("no special", i, e.ids, e.length, cJSON_GetArrayItem(ns, i));
        vkf_encoding_free(&e);
    }
    cJSON *pairs = cJSON_GetObjectItem(corpus, "pairs"), *rp = cJSON_GetObjectItem(r, "pairs");
    int k = 0;
    for (const cJSON *p = pairs->child; p; p = p->next, k++) {
        text a = b64(p->child->valuestring), b = b64(p->child->next->valuestring);
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(tok, a.b, a.n, b.b, b.n, NULL, &e), VKF_OK, "%s", vkf_last_error(NULL));
        const cJSON *want = cJSON_GetObjectItem(cJSON_GetArrayItem(rp, k), "ids");
        if (tids_differ(e.ids, e.length, want) && bad_pairs++ < 4) tlog_ids("pair", k, e.ids, e.length, want);
        vkf_encoding_free(&e);
        free(a.b), free(b.b);
    }
    vkf_tokenizer_destroy(tok);
    cr_expect_eq(bad_ids, 0, "%s: %d of %d texts differ from HF", name, bad_ids, n_texts);
    cr_expect_eq(bad_ns, 0, "%s: %d texts differ without special tokens", name, bad_ns);
    cr_expect_eq(bad_dec, 0, "%s: %d texts decode unlike HF", name, bad_dec);
    cr_expect_eq(bad_offs, 0, "%s: %d texts with offsets unlike HF's", name, bad_offs);
    cr_expect_eq(bad_pairs, 0, "%s: %d pairs differ", name, bad_pairs);
}

TestSuite(spm, .init = setup, .fini = teardown);

Test(spm, albert_model) { check("albert", "spiece.model"); }
Test(spm, t5_model) { check("t5", "spiece.model"); }
Test(spm, llama_model) { check("llama", "tokenizer.model"); }
Test(spm, bpe_model) { check("bpe", "tokenizer.model"); }
Test(spm, xlmr_model) { check("xlmr", "sentencepiece.bpe.model"); }
Test(spm, deberta_model) { check("deberta", "spm.model"); }
Test(spm, marian_model) { check("marian", "source.spm"); }
