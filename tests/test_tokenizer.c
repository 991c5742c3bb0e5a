/* Tokenizers against Hugging Face: every text of a hostile corpus, every
 * tokenizer (BERT WordPiece, GPT-2 byte-level BPE, CLIP BPE), each loaded from
 * tokenizer.json and from the legacy files, must give the ids, offsets and
 * decoded text that `transformers` gave (tests/data/tokenizers/refs.json,
 * made by tools/make_tokenizer_refs.py). Then pairs, truncation, padding,
 * GPT-2 round trips and the streaming decoder, bad files, and scale. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text/text.h"
#include "vkformer.h"

#define TOKDATA VKF_TEST_DATA "/tokenizers"

static const char *const NAMES[] = {"bert-base-uncased", "gpt2", "clip", "roberta"};

/* ---- reference data ------------------------------------------------------------------ */

typedef ttext text;
#define b64 tb64


static tcorpus cor;
static cJSON *corpus, *refs;
static text *texts;
static int n_texts;

static void setup(void)
{
    tcorpus_load(&cor, TOKDATA "/refs.json");
    corpus = cor.json, refs = cor.refs, texts = cor.texts, n_texts = cor.n;
}

static void teardown(void) { tcorpus_free(&cor); }

static vkf_tokenizer *load_form(const char *name, const char *form)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s%s/%s", TOKDATA, strcmp(form, "json") ? "/legacy" : "", name);
    vkf_tokenizer *tok = NULL;
    vkf_status s = vkf_tokenizer_load(dir, &tok);
    cr_assert_eq(s, VKF_OK, "%s: %s", dir, vkf_last_error(NULL));
    vkf_tokenizer_info info;
    cr_assert_eq(vkf_tokenizer_get_info(tok, &info), VKF_OK);
    cr_assert_str_eq(info.source, strcmp(form, "json") ? (strncmp(name, "bert", 4) ? "vocab.json+merges.txt" : "vocab.txt")
                                                        : "tokenizer.json");
    return tok;
}

static cJSON *ref_of(const char *name, const char *form)
{
    char key[64];
    snprintf(key, sizeof key, "%s/%s", name, form);
    cJSON *r = cJSON_GetObjectItem(refs, key);
    cr_assert_not_null(r, "no references for %s", key);
    return r;
}

/* Number of positions where got differs from the JSON int array (length too). */



/* ---- the corpus: ids, offsets, decoding -------------------------------------------------------- */

static void check_corpus(const char *name, const char *form)
{
    vkf_tokenizer *tok = load_form(name, form);
    cJSON *r = ref_of(name, form);
    cJSON *ids = cJSON_GetObjectItem(r, "ids"), *ns = cJSON_GetObjectItem(r, "ids_no_special");
    cJSON *offs = cJSON_GetObjectItem(r, "offsets"), *dec = cJSON_GetObjectItem(r, "decoded");
    cr_assert_eq(cJSON_GetArraySize(ids), n_texts);
    int bad_ids = 0, bad_ns = 0, bad_offs = 0, bad_dec = 0;
    for (int i = 0; i < n_texts; i++) {
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(tok, texts[i].b, texts[i].n, NULL, 0, NULL, &e), VKF_OK, "%s", vkf_last_error(NULL));
        const cJSON *want = cJSON_GetArrayItem(ids, i);
        if (tids_differ(e.ids, e.length, want)) {
            bad_ids++;
            tlog_ids(name, i, e.ids, e.length, want);
        }
        /* offsets */
        const cJSON *wo = cJSON_GetArrayItem(offs, i);
        if (tvalid_utf8(texts[i].b, texts[i].n) && !tids_differ(e.ids, e.length, want)) {
            uint32_t k = 0;
            int bad = 0;
            for (const cJSON *p = wo->child; p; p = p->next, k++) {
                uint32_t ws = (uint32_t)p->child->valuedouble, we = (uint32_t)p->child->next->valuedouble;
                if (e.offsets[k][0] != ws || e.offsets[k][1] != we) {
                    if (!bad) cr_log_error("%s/%s text %d token %u (%d): offsets %u..%u, HF %u..%u", name, form, i, k,
                                           e.ids[k], e.offsets[k][0], e.offsets[k][1], ws, we);
                    bad++;
                }
            }
            bad_offs += bad != 0;
        }
        /* decoding what HF encoded */
        char *d = NULL;
        size_t dn = 0;
        cr_assert_eq(vkf_tokenizer_decode(tok, e.ids, e.length, 0, &d, &dn), VKF_OK, "%s", vkf_last_error(NULL));
        text wd = b64(cJSON_GetArrayItem(dec, i)->valuestring);
        if (dn != wd.n || memcmp(d, wd.b, wd.n)) {
            bad_dec++;
            cr_log_error("%s/%s text %d decodes to\n  '%s'\n  HF '%s'", name, form, i, d, wd.b);
        }
        free(wd.b);
        vkf_free(d);
        vkf_encoding_free(&e);
        /* without special tokens */
        vkf_encode_options o = {.no_special_tokens = 1};
        cr_assert_eq(vkf_tokenizer_encode(tok, texts[i].b, texts[i].n, NULL, 0, &o, &e), VKF_OK);
        if (tids_differ(e.ids, e.length, cJSON_GetArrayItem(ns, i))) bad_ns++;
        vkf_encoding_free(&e);
    }
    vkf_tokenizer_destroy(tok);
    cr_expect_eq(bad_ids, 0, "%s/%s: %d of %d texts differ from HF", name, form, bad_ids, n_texts);
    cr_expect_eq(bad_ns, 0, "%s/%s: %d texts differ without special tokens", name, form, bad_ns);
    cr_expect_eq(bad_offs, 0, "%s/%s: %d texts with offsets unlike HF's", name, form, bad_offs);
    cr_expect_eq(bad_dec, 0, "%s/%s: %d texts decode unlike HF", name, form, bad_dec);
}

TestSuite(tokenizer, .init = setup, .fini = teardown);

Test(tokenizer, bert_json) { check_corpus("bert-base-uncased", "json"); }
Test(tokenizer, bert_legacy) { check_corpus("bert-base-uncased", "legacy"); }
Test(tokenizer, gpt2_json) { check_corpus("gpt2", "json"); }
Test(tokenizer, gpt2_legacy) { check_corpus("gpt2", "legacy"); }
Test(tokenizer, clip_json) { check_corpus("clip", "json"); }
Test(tokenizer, clip_legacy) { check_corpus("clip", "legacy"); }
Test(tokenizer, roberta_json) { check_corpus("roberta", "json"); }
Test(tokenizer, roberta_legacy) { check_corpus("roberta", "legacy"); }
/* added tokens with lstrip/rstrip, single_word, and normalized matching */
Test(tokenizer, bert_added_tokens) { check_corpus("bert-added", "json"); }
/* BPE ignore_merges: whole words the vocabulary has */
Test(tokenizer, gpt2_ignore_merges) { check_corpus("gpt2-ignore-merges", "json"); }
/* a transformers 4.x directory: added_tokens_decoder, special_tokens_map.json */
Test(tokenizer, bert_4x_legacy) { check_corpus("bert-4x", "legacy"); }

/* ---- pairs, truncation, padding --------------------------------------------------------------------- */

static void check_pairs_trunc_batch(const char *name, const char *form)
{
    vkf_tokenizer *tok = load_form(name, form);
    cJSON *r = ref_of(name, form);
    int bad = 0;
    cJSON *pairs = cJSON_GetObjectItem(corpus, "pairs"), *rp = cJSON_GetObjectItem(r, "pairs");
    for (int i = 0; i < cJSON_GetArraySize(pairs); i++) {
        cJSON *p = cJSON_GetArrayItem(pairs, i);
        text a = b64(p->child->valuestring), b = b64(p->child->next->valuestring);
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(tok, a.b, a.n, b.b, b.n, NULL, &e), VKF_OK);
        cJSON *w = cJSON_GetArrayItem(rp, i);
        if (tids_differ(e.ids, e.length, cJSON_GetObjectItem(w, "ids"))) bad++, tlog_ids("pair ids", i, e.ids, e.length, cJSON_GetObjectItem(w, "ids"));
        if (tids_differ(e.type_ids, e.length, cJSON_GetObjectItem(w, "type_ids"))) bad++, tlog_ids("pair type ids", i, e.type_ids, e.length, cJSON_GetObjectItem(w, "type_ids"));
        vkf_encoding_free(&e);
        free(a.b), free(b.b);
    }
    cJSON *tr = cJSON_GetObjectItem(corpus, "truncation"), *rt = cJSON_GetObjectItem(r, "truncation");
    for (int i = 0; i < cJSON_GetArraySize(tr); i++) {
        cJSON *c = cJSON_GetArrayItem(tr, i);
        text a = b64(c->child->valuestring), b = {0};
        bool has_b = cJSON_IsString(c->child->next);
        if (has_b) b = b64(c->child->next->valuestring);
        vkf_encode_options o = {.max_length = (uint32_t)c->child->next->next->valuedouble};
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(tok, a.b, a.n, has_b ? b.b : NULL, b.n, &o, &e), VKF_OK);
        cJSON *w = cJSON_GetArrayItem(rt, i);
        if (tids_differ(e.ids, e.length, cJSON_GetObjectItem(w, "ids"))) bad++, tlog_ids("truncation", i, e.ids, e.length, cJSON_GetObjectItem(w, "ids"));
        if (tids_differ(e.type_ids, e.length, cJSON_GetObjectItem(w, "type_ids"))) bad++;
        cr_expect_leq(e.length, o.max_length);
        vkf_encoding_free(&e);
        free(a.b), free(b.b);
    }
    cJSON *batch = cJSON_GetObjectItem(corpus, "batch");
    int n = cJSON_GetArraySize(batch);
    text bt[8];
    const char *ptr[8];
    size_t lens[8];
    for (int i = 0; i < n; i++) bt[i] = b64(cJSON_GetArrayItem(batch, i)->valuestring), ptr[i] = bt[i].b, lens[i] = bt[i].n;
    for (int left = 0; left < 2; left++) {
        vkf_encoding e[8];
        vkf_encode_options o = {.padding = VKF_PAD_LONGEST, .pad_left = left};
        cr_assert_eq(vkf_tokenizer_encode_batch(tok, ptr, lens, NULL, NULL, (uint32_t)n, &o, e), VKF_OK);
        cJSON *w = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "batch"), left ? "left" : "right");
        uint32_t len0 = e[0].length;
        for (int i = 0; i < n; i++) {
            cr_expect_eq(e[i].length, len0, "padded lengths differ");
            if (tids_differ(e[i].ids, e[i].length, cJSON_GetArrayItem(cJSON_GetObjectItem(w, "ids"), i)))
                bad++, tlog_ids(left ? "left padding" : "right padding", i, e[i].ids, e[i].length, cJSON_GetArrayItem(cJSON_GetObjectItem(w, "ids"), i));
            if (tids_differ(e[i].attention_mask, e[i].length, cJSON_GetArrayItem(cJSON_GetObjectItem(w, "attention_mask"), i))) bad++;
            vkf_encoding_free(&e[i]);
        }
    }
    for (int i = 0; i < n; i++) free(bt[i].b);
    vkf_tokenizer_destroy(tok);
    cr_expect_eq(bad, 0, "%s/%s: %d pair/truncation/padding cases differ from HF", name, form, bad);
}

Test(tokenizer, pairs_truncation_padding)
{
    for (int i = 0; i < 4; i++) {
        check_pairs_trunc_batch(NAMES[i], "json");
        check_pairs_trunc_batch(NAMES[i], "legacy");
    }
}

/* ---- GPT-2: round trip and streaming ---------------------------------------------------------------- */

Test(tokenizer, gpt2_round_trip_and_stream)
{
    vkf_tokenizer *tok = load_form("gpt2", "json");
    vkf_encode_options o = {.no_special_tokens = 1};
    for (int i = 0; i < n_texts; i++) {
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(tok, texts[i].b, texts[i].n, NULL, 0, &o, &e), VKF_OK);
        char *d = NULL;
        size_t dn = 0;
        cr_assert_eq(vkf_tokenizer_decode(tok, e.ids, e.length, 0, &d, &dn), VKF_OK);
        if (tvalid_utf8(texts[i].b, texts[i].n))
            cr_expect(dn == texts[i].n && !memcmp(d, texts[i].b, dn), "text %d: decode(encode(x)) != x: '%s'", i, d);
        /* streaming: the pieces concatenate to the one-shot decoding */
        size_t an;
        int partial;
        char *acc = tstream_decode(tok, e.ids, e.length, 0, &an, &partial);
        cr_expect_eq(partial, 0, "text %d: %d pieces end inside a character", i, partial);
        cr_expect(an == dn && !memcmp(acc, d, dn), "text %d: stream gave %zu bytes, one-shot %zu", i, an, dn);
        free(acc);
        vkf_free(d);
        vkf_encoding_free(&e);
    }
    vkf_tokenizer_destroy(tok);
}

/* ---- offsets, info, threads ------------------------------------------------------------------------- */

Test(tokenizer, info_and_lookup)
{
    vkf_tokenizer *tok = load_form("bert-base-uncased", "json");
    vkf_tokenizer_info info;
    vkf_tokenizer_get_info(tok, &info);
    cr_expect_eq(info.vocab_size, 30522);
    cr_expect_str_eq(info.model, "wordpiece");
    cr_expect_eq(info.cls_id, 101);
    cr_expect_eq(info.sep_id, 102);
    cr_expect_eq(info.pad_id, 0);
    cr_expect_eq(info.mask_id, 103);
    cr_expect_eq(info.model_max_length, 512);
    cr_expect_eq(vkf_tokenizer_token_to_id(tok, "##ing"), 2075);
    cr_expect_str_eq(vkf_tokenizer_id_to_token(tok, 7592), "hello");
    cr_expect_null(vkf_tokenizer_id_to_token(tok, 30522));
    vkf_tokenizer_destroy(tok);
    tok = load_form("gpt2", "legacy");
    vkf_tokenizer_get_info(tok, &info);
    cr_expect_eq(info.vocab_size, 50257);
    cr_expect_eq(info.eos_id, 50256);
    cr_expect_eq(info.pad_id, -1);
    vkf_tokenizer_destroy(tok);
}

typedef struct thread_arg {
    vkf_tokenizer *tok;
    int32_t sum;
    int ok;
} thread_arg;

static void *encode_all(void *p)
{
    thread_arg *a = p;
    a->ok = 1;
    for (int rep = 0; rep < 3; rep++)
        for (int i = 0; i < n_texts; i++) {
            vkf_encoding e;
            if (vkf_tokenizer_encode(a->tok, texts[i].b, texts[i].n, NULL, 0, NULL, &e) != VKF_OK) a->ok = 0;
            for (uint32_t k = 0; k < e.length; k++) a->sum += e.ids[k] * (int32_t)(k + 1);
            vkf_encoding_free(&e);
        }
    return NULL;
}

Test(tokenizer, shared_between_threads)
{
    vkf_tokenizer *tok = load_form("gpt2", "json");
    thread_arg a[3] = {{tok, 0, 0}, {tok, 0, 0}, {tok, 0, 0}};
    encode_all(&a[0]);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, encode_all, &a[i + 1]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) cr_expect(a[i].ok);
    cr_expect_eq(a[1].sum, a[0].sum);
    cr_expect_eq(a[2].sum, a[0].sum);
    vkf_tokenizer_destroy(tok);
}

/* ---- scale: linear time on big inputs (the timeout guards a hang) ----------------------------------- */

Test(tokenizer, large_inputs, .timeout = 120)
{
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    static const char *words[] = {"the ", "quick ", "naïve ", "café, ", "🥲 ", "tokenization ", "İstanbul\n", "1234 "};
    size_t at = 0;
    for (uint64_t r = 1; at < n - 16; r = r * 6364136223846793005ull + 1442695040888963407ull) {
        const char *w = words[(r >> 33) % 8];
        memcpy(big + at, w, strlen(w));
        at += strlen(w);
    }
    big[at] = 0;
    char *word = malloc(100001);
    for (size_t i = 0; i < 100000; i++) word[i] = "abcdefghij"[(i * 7 + i / 13) % 10];
    word[100000] = 0;
    for (int k = 0; k < 3; k++) {
        vkf_tokenizer *tok = load_form(NAMES[k], "json");
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(tok, big, at, NULL, 0, NULL, &e), VKF_OK);
        cr_expect_gt(e.length, at / 16, "%s: %u tokens for %zu bytes", NAMES[k], e.length, at);
        vkf_encoding_free(&e);
        cr_assert_eq(vkf_tokenizer_encode(tok, word, 100000, NULL, 0, NULL, &e), VKF_OK);
        if (k == 0) { /* WordPiece: a word over max_input_chars_per_word is [UNK] */
            cr_expect_eq(e.length, 3);
            cr_expect_eq(e.ids[1], 100);
        } else {
            cr_expect_gt(e.length, 1000);
            /* the tokens cover the word, in order */
            cr_expect_eq(e.offsets[k == 2 ? 1 : 0][0], 0);
            cr_expect_eq(e.offsets[e.length - (k == 2 ? 2 : 1)][1], 100000);
        }
        vkf_encoding_free(&e);
        vkf_tokenizer_destroy(tok);
    }
    free(big);
    free(word);
}

/* ---- bad files and bad calls ------------------------------------------------------------------------------ */

static char tmpdir[64];

static void write_file(const char *name, const char *content) { twrite_file(tmpdir, name, content, strlen(content)); }

static void fresh_dir(void) { ttmpdir_create(tmpdir, sizeof tmpdir, "tok"); }
static void remove_dir(void) { ttmpdir_remove(tmpdir); }

/* Loading tmpdir must fail with status s and a message containing needle. */
static void expect_load_error(vkf_status s, const char *needle) { texpect_tokenizer_error(tmpdir, s, needle); }

#define WP_MODEL(vocab) "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": " vocab "}}"

Test(tokenizer, bad_files, .timeout = 60)
{
    vkf_tokenizer *tok = (vkf_tokenizer *)1;
    cr_expect_eq(vkf_tokenizer_load("/nonexistent/tokenizer", &tok), VKF_ERROR_IO);
    cr_expect(strstr(vkf_last_error(NULL), "/nonexistent/tokenizer") != NULL);
    cr_expect_null(tok);

    fresh_dir();
    expect_load_error(VKF_ERROR_IO, "no tokenizer files");
    write_file("tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0,}}");
    expect_load_error(VKF_ERROR_FORMAT, "malformed JSON at line 1");
    write_file("tokenizer.json", WP_MODEL("{}"));
    expect_load_error(VKF_ERROR_FORMAT, "vocabulary is empty");
    write_file("tokenizer.json", WP_MODEL("{\"[UNK]\": 0, \"a\": 1, \"a\": 2}"));
    expect_load_error(VKF_ERROR_FORMAT, "duplicate token 'a'");
    write_file("tokenizer.json", WP_MODEL("{\"[UNK]\": 0, \"a\": 1, \"b\": 3}"));
    expect_load_error(VKF_ERROR_FORMAT, "no token with id 2");
    write_file("tokenizer.json", WP_MODEL("{\"[UNK]\": 0, \"a\": 1, \"b\": 1}"));
    expect_load_error(VKF_ERROR_FORMAT, "id 1 is given to both");
    write_file("tokenizer.json", WP_MODEL("{\"[UNK]\": -4}"));
    expect_load_error(VKF_ERROR_FORMAT, "invalid id");
    /* found by fuzz_tokenizer: a huge id sized the tables (4 GB) before the gap check */
    write_file("tokenizer.json", WP_MODEL("{\"[UNK]\": 0, \"a\": 195092733}"));
    expect_load_error(VKF_ERROR_FORMAT, "has id 195092733, more than the files'");
    write_file("tokenizer.json", WP_MODEL("{\"[UNK]\": 0, \"a\": 2147483647}"));
    expect_load_error(VKF_ERROR_FORMAT, "ids must run from 0 without gaps");
    write_file("tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"<unk>\", \"vocab\": {\"a\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "unknown token '<unk>' is not in the vocabulary");
    write_file("tokenizer.json", "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}}}");
    expect_load_error(VKF_ERROR_UNSUPPORTED, "model type 'WordLevel'");
    write_file("tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", \"x\"]]}}");
    expect_load_error(VKF_ERROR_FORMAT, "Unigram vocab entry 0 is not [piece, score]");
    write_file("tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
    expect_load_error(VKF_ERROR_FORMAT, "Unigram vocab is not a non-empty list");
    write_file("tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 1, \"vocab\": [[\"a\", -1.0]]}}");
    expect_load_error(VKF_ERROR_FORMAT, "unk_id is not an id of its vocabulary");
    write_file("tokenizer.json", "{\"normalizer\": {\"type\": \"Precompiled\"}, " "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "Precompiled normalizer without precompiled_charsmap");
    write_file("tokenizer.json", "{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"!!\"}, "
                                 "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "precompiled_charsmap");
    write_file("tokenizer.json", "{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"QUFBQUFBQUE=\"}, "
                                 "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "precompiled_charsmap");
    write_file("tokenizer.json", "{\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"ab\"}, "
                                 "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "replacement");
    write_file("tokenizer.json", "{\"decoder\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": \"a+\"}, \"content\": \"b\"}, "
                                 "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_UNSUPPORTED, "Replace decoder: only a short String pattern");
    write_file("tokenizer.json", "{\"pre_tokenizer\": {\"type\": \"UnicodeScripts\"}, " "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_UNSUPPORTED, "pre-tokenizer 'UnicodeScripts'");
    write_file("tokenizer.json", "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\"}, "
                                 "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "regex '(a'");
    write_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a c\"]}}");
    expect_load_error(VKF_ERROR_FORMAT, "not in the vocabulary ('c')");
    write_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}");
    expect_load_error(VKF_ERROR_FORMAT, "merged token is not in the vocabulary");
    /* wrongly accepted once (issue 30): a template sequence "C" (it encoded the text twice), a
     * type_id that is no id, max_input_chars_per_word below 0, a boolean that is a string */
    write_file("tokenizer.json", "{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": "
                                 "{\"id\": \"C\", \"type_id\": 0}}], \"pair\": [], \"special_tokens\": {}}, "
                                 "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "sequence 'C' is neither A nor B");
    write_file("tokenizer.json", "{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": "
                                 "{\"id\": \"A\", \"type_id\": -1}}], \"pair\": [], \"special_tokens\": {}}, "
                                 "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "type_id is not an integer");
    write_file("tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"max_input_chars_per_word\": -1, "
                                 "\"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "max_input_chars_per_word is not a whole number");
    write_file("tokenizer.json", "{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": \"false\"}, "
                                 "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}");
    expect_load_error(VKF_ERROR_FORMAT, "\"lowercase\" in the tokenizer files is not true or false");
    write_file("tokenizer.json", "[1, 2]");
    expect_load_error(VKF_ERROR_FORMAT, "not a JSON object");
    write_file("tokenizer.json", WP_MODEL("{\"[UNK]\": 0}") " {\"model\": 1}");
    expect_load_error(VKF_ERROR_FORMAT, "unexpected data after the JSON value");
    /* A FIFO must not block the load. */
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/tokenizer.json", tmpdir);
    unlink(fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    expect_load_error(VKF_ERROR_IO, "not a regular file");
    unlink(fifo);
    /* A 2 GiB claim: a sparse tokenizer.json is refused before reading it. */
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)2 << 30), 0);
    close(fd);
    expect_load_error(VKF_ERROR_FORMAT, "larger than any tokenizer file");
    unlink(path);
    /* legacy files */
    write_file("vocab.txt", "[UNK]\nhello\nworld\nhello\n");
    expect_load_error(VKF_ERROR_FORMAT, "line 4: duplicate token 'hello'");
    write_file("vocab.txt", "");
    expect_load_error(VKF_ERROR_FORMAT, "vocabulary is empty");
    snprintf(path, sizeof path, "%s/vocab.txt", tmpdir);
    unlink(path);
    write_file("config.json", "{\"model_type\": \"gpt2\"}");
    write_file("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    expect_load_error(VKF_ERROR_IO, "vocab.json and merges.txt");
    write_file("merges.txt", "#version: 0.2\na b\nb x\n");
    expect_load_error(VKF_ERROR_FORMAT, "merge 2 ('b' 'x') names a token that is not in the vocabulary ('x')");
    write_file("merges.txt", "#version: 0.2\nab\n");
    expect_load_error(VKF_ERROR_FORMAT, "line 2 is not two tokens");
    write_file("vocab.json", "{\"a\": 0, \"b\": \"one\"}");
    expect_load_error(VKF_ERROR_FORMAT, "is not a number");
    write_file("config.json", "{\"model_type\": \"t5\"}");
    expect_load_error(VKF_ERROR_UNSUPPORTED, "tokenizer 't5' is not supported");
    remove_dir();
}

/* 100,000 added tokens sharing a first byte, over 200 kB of that byte: the
 * matcher walks a trie of them (it scanned them all at every position: 66 s;
 * the timeout guards that) */
Test(tokenizer, many_added_tokens, .timeout = 60)
{
    fresh_dir();
    enum { N_ADDED = 100000, N_TEXT = 200000 };
    size_t cap = (size_t)N_ADDED * 64 + 256, n = 0;
    char *json = malloc(cap);
    n += (size_t)snprintf(json + n, cap - n, "{\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, \"added_tokens\": [");
    for (int k = 0; k < N_ADDED; k++)
        n += (size_t)snprintf(json + n, cap - n, "%s{\"id\": %d, \"content\": \"<t%d>\", \"special\": true}", k ? ", " : "", 2 + k, k);
    n += (size_t)snprintf(json + n, cap - n, "], " "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", "
                                              "\"vocab\": {\"[UNK]\": 0, \"<\": 1}}}");
    twrite_file(tmpdir, "tokenizer.json", json, n);
    free(json);
    vkf_tokenizer *tok = NULL;
    cr_assert_eq(vkf_tokenizer_load(tmpdir, &tok), VKF_OK, "%s", vkf_last_error(NULL));
    char *str = malloc(N_TEXT + 16);
    memset(str, '<', N_TEXT);
    memcpy(str + N_TEXT, "<t77><", 6);
    vkf_encoding e;
    vkf_encode_options o = {.no_special_tokens = 1};
    cr_assert_eq(vkf_tokenizer_encode(tok, str, N_TEXT + 6, NULL, 0, &o, &e), VKF_OK, "%s", vkf_last_error(NULL));
    cr_assert_eq(e.length, N_TEXT + 2);
    uint32_t ones = 0;
    for (uint32_t i = 0; i < N_TEXT; i++) ones += e.ids[i] == 1;
    cr_expect_eq(ones, N_TEXT);
    cr_expect_eq(e.ids[N_TEXT], 2 + 77);
    cr_expect_eq(e.ids[N_TEXT + 1], 1);
    vkf_encoding_free(&e);
    vkf_tokenizer_destroy(tok);
    free(str);
    remove_dir();
}

/* Text that a file's normalizer multiplies, a pattern that backtracks without
 * bound: errors, not gigabytes or a silently different split */
Test(tokenizer, hostile_normalizers_and_patterns, .timeout = 60)
{
    fresh_dir();
    char *content = malloc(100001);
    memset(content, 'b', 100000), content[100000] = 0;
    size_t cap = 100000 + 512;
    char *json = malloc(cap);
    size_t n = (size_t)snprintf(json, cap, "{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \"a\"}, \"content\": \"%s\"}, "
                         "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0, \"b\": 1}}}",
                         content);
    twrite_file(tmpdir, "tokenizer.json", json, n);
    free(json);
    free(content);
    vkf_tokenizer *tok = NULL;
    cr_assert_eq(vkf_tokenizer_load(tmpdir, &tok), VKF_OK, "%s", vkf_last_error(NULL));
    char *many = malloc(20001);
    memset(many, 'a', 20000), many[20000] = 0;
    vkf_encoding e;
    cr_expect_eq(vkf_tokenizer_encode(tok, many, 20000, NULL, 0, NULL, &e), VKF_ERROR_UNSUPPORTED); /* 2 GB of text before */
    cr_expect(strstr(vkf_last_error(NULL), "over 64 times longer") != NULL, "%s", vkf_last_error(NULL));
    /* a short text grows within the limit (64 times + 4 KiB) */
    cr_expect_eq(vkf_tokenizer_encode(tok, "x", 1, NULL, 0, NULL, &e), VKF_OK, "%s", vkf_last_error(NULL));
    vkf_encoding_free(&e);
    vkf_tokenizer_destroy(tok);
    free(many);
    /* catastrophic backtracking in a Split pattern: PCRE2's match limit is an error, not "no match" */
    write_file("tokenizer.json", "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a+)+(b|c)\"}, "
                                 "\"behavior\": \"Isolated\"}, " "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", "
                                 "\"vocab\": {\"[UNK]\": 0, \"a\": 1, \"##a\": 2}}}");
    cr_assert_eq(vkf_tokenizer_load(tmpdir, &tok), VKF_OK, "%s", vkf_last_error(NULL));
    cr_expect_eq(vkf_tokenizer_encode(tok, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", VKF_TEXT_NUL, NULL, 0, NULL, &e),
                 VKF_ERROR_UNSUPPORTED);
    cr_expect(strstr(vkf_last_error(NULL), "match limit") != NULL, "%s", vkf_last_error(NULL));
    cr_expect_eq(vkf_tokenizer_encode(tok, "aab", VKF_TEXT_NUL, NULL, 0, NULL, &e), VKF_OK, "%s", vkf_last_error(NULL));
    vkf_encoding_free(&e);
    vkf_tokenizer_destroy(tok);
    remove_dir();
}

/* What tokenizers and transformers accept, as they take it: max_input_chars_per_word 0
 * (every word unknown; it became 100), a type_id of 70000, additional_special_tokens
 * beyond vocab.txt (appended with the next ids; they were ignored), and a
 * do_lower_case that is a string refused */
Test(tokenizer, accepted_as_hf_takes_it)
{
    fresh_dir();
    write_file("tokenizer.json", "{\"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}, \"post_processor\": {\"type\": "
                                 "\"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 70000}}], "
                                 "\"pair\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {}}, "
                                 "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"max_input_chars_per_word\": 0, "
                                 "\"vocab\": {\"[UNK]\": 0, \"a\": 1}}}");
    vkf_tokenizer *tok = NULL;
    cr_assert_eq(vkf_tokenizer_load(tmpdir, &tok), VKF_OK, "%s", vkf_last_error(NULL));
    vkf_encoding e;
    cr_assert_eq(vkf_tokenizer_encode(tok, "a a", VKF_TEXT_NUL, NULL, 0, NULL, &e), VKF_OK);
    cr_expect(e.length == 2 && e.ids[0] == 0 && e.ids[1] == 0, "every word is [UNK]: %u ids, %d", e.length, e.ids[0]);
    cr_expect(e.length == 2 && e.type_ids[0] == 70000, "type id %d", e.type_ids[0]);
    vkf_encoding_free(&e);
    vkf_tokenizer_destroy(tok);
    remove_dir();
    fresh_dir();
    write_file("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\n");
    write_file("tokenizer_config.json", "{\"tokenizer_class\": \"BertTokenizer\", \"additional_special_tokens\": [\"[E1]\", \"[MASK]\"]}");
    cr_assert_eq(vkf_tokenizer_load(tmpdir, &tok), VKF_OK, "%s", vkf_last_error(NULL));
    cr_assert_eq(vkf_tokenizer_encode(tok, "a [E1] b", VKF_TEXT_NUL, NULL, 0, NULL, &e), VKF_OK);
    static const int32_t want[] = {2, 5, 7, 6, 3}; /* transformers, slow and fast */
    cr_expect(e.length == 5 && !memcmp(e.ids, want, sizeof want), "%u ids: %d %d %d %d %d", e.length, e.ids[0], e.ids[1], e.ids[2],
              e.ids[3], e.ids[4]);
    vkf_encoding_free(&e);
    vkf_tokenizer_destroy(tok);
    write_file("tokenizer_config.json", "{\"tokenizer_class\": \"BertTokenizer\", \"do_lower_case\": \"false\"}");
    expect_load_error(VKF_ERROR_FORMAT, "\"do_lower_case\" in the tokenizer files is not true or false");
    remove_dir();
}

Test(tokenizer, bad_calls)
{
    vkf_tokenizer *tok = load_form("gpt2", "json");
    vkf_encoding e;
    static const char small[] = "tiny";
    /* A lying length is refused before anything is read. */
    cr_expect_eq(vkf_tokenizer_encode(tok, small, (size_t)1 << 31, NULL, 0, NULL, &e), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(NULL), "limit") != NULL);
    cr_expect_eq(vkf_tokenizer_encode(tok, NULL, 5, NULL, 0, NULL, &e), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(vkf_tokenizer_encode(NULL, small, 4, NULL, 0, NULL, &e), VKF_ERROR_INVALID_ARGUMENT);
    /* The empty text is fine: no tokens (GPT-2 adds none). */
    cr_assert_eq(vkf_tokenizer_encode(tok, "", 0, NULL, 0, NULL, &e), VKF_OK);
    cr_expect_eq(e.length, 0);
    vkf_encoding_free(&e);
    char *d = NULL;
    int32_t bad_ids[] = {15496, 50257};
    cr_expect_eq(vkf_tokenizer_decode(tok, bad_ids, 2, 0, &d, NULL), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(NULL), "50257") != NULL);
    cr_expect_null(d);
    int32_t neg[] = {-1};
    cr_expect_eq(vkf_tokenizer_decode(tok, neg, 1, 0, &d, NULL), VKF_ERROR_INVALID_ARGUMENT);
    vkf_decode_stream *st;
    cr_assert_eq(vkf_decode_stream_create(tok, 0, &st), VKF_OK);
    const char *p;
    size_t pl;
    cr_expect_eq(vkf_decode_stream_step(st, 99999999, &p, &pl), VKF_ERROR_INVALID_ARGUMENT);
    vkf_decode_stream_destroy(st);
    vkf_tokenizer_destroy(tok);
}

/* ---- vkformer-tokenize as a user runs it ------------------------------------------------------------------ */

typedef tcli_result cli_result;

static cli_result *cli(const char *args, const char *stdin_text, size_t stdin_len)
{
    return tcli_run(VKF_TOKENIZE_BIN, args, stdin_text, stdin_len);
}

#define BERT "-m " TOKDATA "/bert-base-uncased "

Test(tokenize_cli, ids_json_stdin_pairs_and_errors)
{
    cli_result *r = cli(BERT "'Hello world!' 'naïve café'", NULL, 0);
    cr_expect_eq(r->status, 0, "%s", r->err);
    cr_expect_str_eq(r->out, "101 7592 2088 999 102\n101 15743 7668 102\n");
    r = cli(BERT "--no-special 'Hello world!'", NULL, 0);
    cr_expect_str_eq(r->out, "7592 2088 999\n");
    r = cli(BERT "--pair 'I am six.' 'How old are you?'", NULL, 0);
    cr_expect_str_eq(r->out, "101 2129 2214 2024 2017 1029 102 1045 2572 2416 1012 102\n");
    r = cli(BERT "--max-length 4 'one two three four five'", NULL, 0);
    cr_expect_str_eq(r->out, "101 2028 2048 102\n");
    /* standard input is one text, newlines and all */
    r = cli(BERT, "line one\nline two\n", 18);
    cr_expect_str_eq(r->out, "101 2240 2028 2240 2048 102\n");
    /* --file: one text per line */
    r = cli(BERT "--file -", "line one\r\nline two\n", 19);
    cr_expect_str_eq(r->out, "101 2240 2028 102\n101 2240 2048 102\n");
    /* JSON with tokens and byte offsets into the text */
    r = cli(BERT "--json 'Hi café'", NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cJSON *j = cJSON_Parse(r->out);
    cr_assert(cJSON_IsArray(j), "%s", r->out);
    cJSON *e = cJSON_GetArrayItem(j, 0);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(e, "input_ids")), 4);
    cr_expect_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "tokens"), 2)->valuestring, "cafe");
    cJSON *off = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "offset_mapping"), 2);
    cr_expect_eq(cJSON_GetArrayItem(off, 0)->valueint, 3);
    cr_expect_eq(cJSON_GetArrayItem(off, 1)->valueint, 8); /* "café" is 5 bytes */
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(e, "attention_mask")), 4);
    cJSON_Delete(j);
    /* decoding */
    r = cli("-m " TOKDATA "/gpt2 --decode 15496 995 0", NULL, 0);
    cr_expect_str_eq(r->out, "Hello world!\n");
    r = cli(BERT "--decode --skip-special 101 7592 2088 102", NULL, 0);
    cr_expect_str_eq(r->out, "hello world\n");
    /* SentencePiece folders, .model and tokenizer.json (ids as transformers gives them) */
    r = cli("-m " TOKDATA "/spm/t5 'Hello world, naïve 你好'", NULL, 0);
    cr_expect_str_eq(r->out, "156 86 20 891 3 7 24 18 0 123 7 0 2\n", "%s", r->err);
    r = cli("-m " TOKDATA "/spm/bpe 'Hello world, naïve 你好'", NULL, 0);
    cr_expect_str_eq(r->out, "1 563 279 1433 1213 1443 297 1432 199 179 323 1428 232 193 164 233 169 193\n", "%s", r->err);
    r = cli("-m " TOKDATA "/spm/llama-json --decode --skip-special 1 366 354 294 1294 259 268 286 311 198 178 416 268 231 192 163 232 168 192",
            NULL, 0);
    cr_expect_str_eq(r->out, "Hello world, naïve 你好\n", "%s", r->err);
    r = cli("-m " TOKDATA "/spm/t5 --decode --skip-special 156 86 20 891 3 7 24 18 0 123 7 0 2", NULL, 0);
    cr_expect_str_eq(r->out, "Hello world, nave\n", "%s", r->err);
    /* help and version */
    r = cli("--help", NULL, 0);
    cr_expect_eq(r->status, 0);
    cr_expect(strstr(r->out, "--max-length") != NULL);
    r = cli("--version", NULL, 0);
    cr_expect(strstr(r->out, "vkformer-tokenize") != NULL);
    /* usage errors: 2; file and content errors: 1, with a message */
    r = cli("'no model'", NULL, 0);
    cr_expect_eq(r->status, 2);
    cr_expect(strstr(r->err, "--model") != NULL, "%s", r->err);
    r = cli(BERT "--max-length zero x", NULL, 0);
    cr_expect_eq(r->status, 2);
    r = cli(BERT "--bogus", NULL, 0);
    cr_expect_eq(r->status, 2);
    r = cli("-m /nonexistent/dir x", NULL, 0);
    cr_expect_eq(r->status, 1);
    cr_expect(strstr(r->err, "/nonexistent/dir") != NULL, "%s", r->err);
    r = cli(BERT "--decode 101 99999999", NULL, 0);
    cr_expect_eq(r->status, 1);
    cr_expect(strstr(r->err, "99999999") != NULL, "%s", r->err);
    r = cli(BERT "--decode 12abc", NULL, 0);
    cr_expect_eq(r->status, 2);
    /* the empty text and all bytes of a hostile one */
    r = cli(BERT "''", NULL, 0);
    cr_expect_str_eq(r->out, "101 102\n");
    r = cli("-m " TOKDATA "/gpt2", "\xff\x00\xc3", 3);
    cr_expect_eq(r->status, 0);
    cr_expect_str_eq(r->out, "4210 188 4210\n"); /* U+FFFD NUL U+FFFD, as HF */
}
