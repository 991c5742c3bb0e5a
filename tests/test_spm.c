/* SentencePiece-family tokenizers against HF on the hostile corpus: the
 * `.model` files as transformers 4.x's slow tokenizers read them (sentencepiece
 * 0.2 underneath) and the tokenizer.json transformers converts each to, as the
 * `tokenizers` library runs it (tests/data/tokenizers/spm, made by
 * tools/make_spm_refs.py): ids with and without special tokens, pairs,
 * decoded text, and byte offsets for the tokenizer.json forms. Then broken
 * model files, each with its own message. */
#include "common.h"

#include <cjson/cJSON.h>
#include <math.h>
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
    int bad_ids = 0, bad_ns = 0, bad_dec = 0, bad_offs = 0, bad_pairs = 0, bad_stream = 0;
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
        /* streaming (generation): the pieces concatenate to the one-shot text */
        size_t sn;
        int partial;
        char *sd = tstream_decode(tok, wids, wn, 1, &sn, &partial);
        if ((partial || sn != dn || memcmp(sd, d, dn)) && bad_stream++ < 8)
            cr_log_error("%s text %d streams to (%d partial pieces)\n  '%s'\n  not '%s'", name, i, partial, sd, d);
        free(sd);
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
    cr_expect_eq(bad_stream, 0, "%s: %d texts stream unlike their one-shot decoding", name, bad_stream);
}

TestSuite(spm, .init = setup, .fini = teardown);

Test(spm, albert_model) { check("albert", "spiece.model"); }
Test(spm, t5_model) { check("t5", "spiece.model"); }
Test(spm, llama_model) { check("llama", "tokenizer.model"); }
Test(spm, bpe_model) { check("bpe", "tokenizer.model"); }
Test(spm, xlmr_model) { check("xlmr", "sentencepiece.bpe.model"); }
Test(spm, deberta_model) { check("deberta", "spm.model"); }
Test(spm, marian_model) { check("marian", "source.spm"); }
Test(spm, albert_json) { check("albert-json", "tokenizer.json"); }
Test(spm, t5_json) { check("t5-json", "tokenizer.json"); }
Test(spm, llama_json) { check("llama-json", "tokenizer.json"); }
Test(spm, bpe_json) { check("bpe-json", "tokenizer.json"); }
Test(spm, xlmr_json) { check("xlmr-json", "tokenizer.json"); }
Test(spm, deberta_json) { check("deberta-json", "tokenizer.json"); }

/* ---- long texts and user-defined pieces -------------------------------------------------------------------- */

/* The first position where ids differ from want, or -1 when equal. */
static long first_difference(const int32_t *got, uint32_t n, const cJSON *want)
{
    uint32_t i = 0;
    for (const cJSON *e = want->child; e; e = e->next, i++)
        if (i >= n || got[i] != (int32_t)e->valuedouble) return (long)i;
    return i == n ? -1 : (long)i;
}

/* 200 kB through every form (sentencepiece 0.2.3 resets its float path scores
 * past 1e5; the BPE words run long): ids equal HF's */
Test(spm, long_text, .timeout = 120)
{
    cJSON *extra = tread_json(SPMDATA "/extra.json");
    FILE *f = fopen(SPMDATA "/long.txt", "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    rewind(f);
    char *txt = malloc(n + 1);
    cr_assert_eq(fread(txt, 1, n, f), n);
    fclose(f);
    int bad = 0, forms = 0;
    for (const cJSON *r = cJSON_GetObjectItem(extra, "long")->child; r; r = r->next, forms++) {
        char dir[512];
        snprintf(dir, sizeof dir, SPMDATA "/%s", r->string);
        vkf_tokenizer *tok = NULL;
        cr_assert_eq(vkf_tokenizer_load(dir, &tok), VKF_OK, "%s: %s", dir, vkf_last_error(NULL));
        vkf_encoding e;
        vkf_encode_options o = {.no_special_tokens = 1};
        cr_assert_eq(vkf_tokenizer_encode(tok, txt, n, NULL, 0, &o, &e), VKF_OK, "%s", vkf_last_error(NULL));
        long at = first_difference(e.ids, e.length, r);
        if (at >= 0) {
            bad++;
            cr_log_error("%s: %u ids, HF %d; first difference at %ld: %d, HF %d", r->string, e.length, cJSON_GetArraySize(r), at,
                         at < (long)e.length ? e.ids[at] : -1, (int)cJSON_GetArrayItem(r, (int)at)->valuedouble);
        }
        vkf_encoding_free(&e);
        vkf_tokenizer_destroy(tok);
    }
    cr_expect_eq(forms, 9);
    cr_expect_eq(bad, 0, "%d of %d forms tokenize the long text unlike HF", bad, forms);
    free(txt);
    cJSON_Delete(extra);
}

/* User-defined pieces in a Unigram model (one with a "▁" inside, one an emoji):
 * always chosen where they match, as sentencepiece chooses them */
Test(spm, user_defined_pieces)
{
    cJSON *extra = tread_json(SPMDATA "/extra.json");
    cJSON *u = cJSON_GetObjectItem(extra, "t5-user");
    vkf_tokenizer *tok = NULL;
    cr_assert_eq(vkf_tokenizer_load(SPMDATA "/t5-user", &tok), VKF_OK, "%s", vkf_last_error(NULL));
    vkf_encode_options o = {.no_special_tokens = 1};
    int bad = 0, k = 0;
    const cJSON *want = cJSON_GetObjectItem(u, "ids")->child;
    for (const cJSON *t = cJSON_GetObjectItem(u, "texts")->child; t; t = t->next, want = want->next, k++) {
        text x = b64(t->valuestring);
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(tok, x.b, x.n, NULL, 0, &o, &e), VKF_OK);
        if (tids_differ(e.ids, e.length, want) && bad++ < 8) tlog_ids("user pieces", k, e.ids, e.length, want);
        vkf_encoding_free(&e);
        free(x.b);
    }
    cr_expect_eq(k, 11);
    want = cJSON_GetObjectItem(u, "corpus")->child;
    for (int i = 0; i < n_texts; i++, want = want->next) {
        vkf_encoding e;
        cr_assert_eq(vkf_tokenizer_encode(tok, texts[i].b, texts[i].n, NULL, 0, &o, &e), VKF_OK);
        if (tids_differ(e.ids, e.length, want) && bad++ < 8) tlog_ids("corpus", i, e.ids, e.length, want);
        vkf_encoding_free(&e);
    }
    cr_expect_eq(bad, 0, "%d texts differ from sentencepiece", bad);
    vkf_tokenizer_destroy(tok);
    cJSON_Delete(extra);
}

/* A denormalizer spec (nmt_nfkc) applies to decoded text, as sentencepiece applies it */
Test(spm, denormalizer)
{
    cJSON *extra = tread_json(SPMDATA "/extra.json");
    cJSON *r = cJSON_GetObjectItem(extra, "bpe-denorm");
    vkf_tokenizer *tok = NULL;
    cr_assert_eq(vkf_tokenizer_load(SPMDATA "/bpe-denorm", &tok), VKF_OK, "%s", vkf_last_error(NULL));
    int k = 0;
    const cJSON *want = cJSON_GetObjectItem(r, "decoded")->child;
    for (const cJSON *ids = cJSON_GetObjectItem(r, "ids")->child; ids; ids = ids->next, want = want->next, k++) {
        int32_t v[64];
        size_t n = 0;
        for (const cJSON *x = ids->child; x && n < 64; x = x->next) v[n++] = (int32_t)x->valuedouble;
        char *d = NULL;
        size_t dn;
        cr_assert_eq(vkf_tokenizer_decode(tok, v, n, 0, &d, &dn), VKF_OK, "%s", vkf_last_error(NULL));
        text w = b64(want->valuestring);
        cr_expect(dn == w.n && !memcmp(d, w.b, dn), "text %d decodes to '%s', sentencepiece '%s'", k, d, w.b);
        free(w.b);
        vkf_free(d);
    }
    cr_expect_eq(k, 4);
    vkf_tokenizer_destroy(tok);
    cJSON_Delete(extra);
}

/* ---- broken model files ------------------------------------------------------------------------------------ */

/* A protobuf writer for hand-made ModelProto files. */
typedef struct pbw {
    uint8_t b[8192];
    size_t n;
} pbw;

static void pw_raw(pbw *w, const void *s, size_t n)
{
    cr_assert_leq(w->n + n, sizeof w->b);
    memcpy(w->b + w->n, s, n);
    w->n += n;
}
static void pw_varint(pbw *w, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7F) | (v > 0x7F ? 0x80 : 0);
        pw_raw(w, &c, 1);
        v >>= 7;
    } while (v);
}
static void pw_bytes(pbw *w, uint32_t field, const void *s, size_t n)
{
    pw_varint(w, field << 3 | 2);
    pw_varint(w, n);
    pw_raw(w, s, n);
}
/* A SentencePiece piece: string, score, type (0: left out, i.e. NORMAL). */
static void pw_piece(pbw *w, const char *s, size_t n, float score, int type)
{
    pbw p = {0};
    pw_bytes(&p, 1, s, n);
    pw_varint(&p, 2 << 3 | 5);
    pw_raw(&p, &score, 4);
    if (type) pw_varint(&p, 3 << 3 | 0), pw_varint(&p, (uint64_t)type);
    pw_bytes(w, 1, p.b, p.n);
}
/* The trainer spec with one varint field. */
static void pw_trainer(pbw *w, uint32_t field, uint64_t v)
{
    pbw t = {0};
    pw_varint(&t, field << 3 | 0);
    pw_varint(&t, v);
    pw_bytes(w, 2, t.b, t.n);
}
/* A small Unigram model: <unk> <s> </s> then ▁ a b ▁a ab. */
static void pw_small(pbw *w)
{
    pw_piece(w, "<unk>", 5, 0, 2);
    pw_piece(w, "<s>", 3, 0, 3);
    pw_piece(w, "</s>", 4, 0, 3);
    pw_piece(w, "\xe2\x96\x81", 3, -2, 0);
    pw_piece(w, "a", 1, -3, 0);
    pw_piece(w, "b", 1, -3, 0);
    pw_piece(w, "\xe2\x96\x81" "a", 4, -1, 0);
    pw_piece(w, "ab", 2, -1, 0);
    pw_trainer(w, 3, 1);
}

static char spmdir[64];

static void write_model(const void *b, size_t n) { twrite_file(spmdir, "spiece.model", b, n); }

static void expect_bad(vkf_status s, const char *needle)
{
    texpect_tokenizer_error(spmdir, s, needle);
    cr_expect(strstr(vkf_last_error(NULL), "spiece.model") != NULL, "message '%s' does not name the file", vkf_last_error(NULL));
}

/* The small model with one more piece, or one more trainer field, must fail so. */
static void expect_bad_piece(const char *piece, size_t n, float score, int type, vkf_status s, const char *needle)
{
    pbw p = {0};
    pw_small(&p);
    pw_piece(&p, piece, n, score, type);
    write_model(p.b, p.n);
    expect_bad(s, needle);
}

static void expect_bad_trainer(uint32_t field, uint64_t v, vkf_status s, const char *needle)
{
    pbw p = {0};
    pw_small(&p);
    pw_trainer(&p, field, v);
    write_model(p.b, p.n);
    expect_bad(s, needle);
}

/* Encodes text with the hand-made model in p (plain sentencepiece: no config)
 * and compares the ids. */
static void expect_ids(const pbw *p, const char *str, const int32_t *want, uint32_t n)
{
    write_model(p->b, p->n);
    vkf_tokenizer *tok = NULL;
    cr_assert_eq(vkf_tokenizer_load(spmdir, &tok), VKF_OK, "%s", vkf_last_error(NULL));
    vkf_encoding e;
    vkf_encode_options o = {.no_special_tokens = 1};
    cr_assert_eq(vkf_tokenizer_encode(tok, str, VKF_TEXT_NUL, NULL, 0, &o, &e), VKF_OK);
    bool same = e.length == n;
    for (uint32_t i = 0; same && i < n; i++) same = e.ids[i] == want[i];
    cr_expect(same, "'%s': %u ids, first %d %d %d", str, e.length, e.length > 0 ? e.ids[0] : -1, e.length > 1 ? e.ids[1] : -1,
              e.length > 2 ? e.ids[2] : -1);
    vkf_encoding_free(&e);
    vkf_tokenizer_destroy(tok);
}

Test(spm_bad, sentencepiece_quirks, .timeout = 60)
{
    ttmpdir_create(spmdir, sizeof spmdir, "spm");
    /* BPE: a merge scored -0.0 ranks below one scored +0.0 (sentencepiece
     * compares the bit patterns): "abc" is ▁ a bc, not ▁ ab c */
    pbw p = {0};
    pw_piece(&p, "<unk>", 5, 0, 2);
    pw_piece(&p, "\xe2\x96\x81", 3, -1, 0);
    pw_piece(&p, "a", 1, -2, 0);
    pw_piece(&p, "b", 1, -2, 0);
    pw_piece(&p, "c", 1, -2, 0);
    pw_piece(&p, "ab", 2, -0.0f, 0);
    pw_piece(&p, "bc", 2, 0.0f, 0);
    pw_trainer(&p, 3, 2);
    expect_ids(&p, "abc", (const int32_t[]){1, 2, 6}, 3);
    /* a normalizer spec in two parts merges: add_dummy_prefix=false holds */
    p = (pbw){0};
    pw_small(&p);
    pbw nz = {0};
    pw_varint(&nz, 3 << 3 | 0), pw_varint(&nz, 0);
    pw_bytes(&p, 3, nz.b, nz.n);
    nz = (pbw){0};
    pw_bytes(&nz, 1, "identity", 8);
    pw_bytes(&p, 3, nz.b, nz.n);
    expect_ids(&p, "ab", (const int32_t[]){7}, 1);
    /* a stray "\0" piece with byte fallback is unused: NUL encodes as <0x00>,
     * and no unknown piece is needed */
    p = (pbw){0};
    pw_piece(&p, "\xe2\x96\x81", 3, -1, 0);
    pw_piece(&p, "a", 1, -2, 0);
    pw_piece(&p, "", 1, -1, 0); /* "\0": the string literal's terminator */
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        pw_piece(&p, name, 6, 0, 6);
    }
    pw_trainer(&p, 35, 1);
    expect_ids(&p, "a", (const int32_t[]){0, 1}, 2);
    write_model(p.b, p.n);
    vkf_tokenizer *tok = NULL;
    cr_assert_eq(vkf_tokenizer_load(spmdir, &tok), VKF_OK, "%s", vkf_last_error(NULL));
    vkf_encoding e;
    vkf_encode_options o = {.no_special_tokens = 1};
    cr_assert_eq(vkf_tokenizer_encode(tok, "a\0a", 3, NULL, 0, &o, &e), VKF_OK);
    cr_expect(e.length == 4 && e.ids[0] == 0 && e.ids[1] == 1 && e.ids[2] == 3 && e.ids[3] == 1, "%u ids: %d %d %d", e.length,
              e.ids[0], e.ids[1], e.ids[2]);
    /* decoding a piece the model lacks (no <unk>): the piece itself */
    char *d = NULL;
    size_t dn;
    cr_assert_eq(vkf_tokenizer_decode(tok, e.ids, e.length, 0, &d, &dn), VKF_OK);
    cr_expect(dn == 3 && !memcmp(d, "a\0a", 3), "decoded %zu bytes", dn);
    vkf_free(d);
    vkf_encoding_free(&e);
    vkf_tokenizer_destroy(tok);
    ttmpdir_remove(spmdir);
}

Test(spm_bad, files, .timeout = 60)
{
    ttmpdir_create(spmdir, sizeof spmdir, "spm");
    /* the hand-made model is read: "a ab" is ▁a ▁ab -> ▁a ▁ ab */
    pbw w = {0};
    pw_small(&w);
    expect_ids(&w, "a ab", (const int32_t[]){6, 3, 7}, 3);

    write_model("", 0);
    expect_bad(VKF_ERROR_FORMAT, "no pieces");
    write_model("{\"model\": 1}\n", 13);
    expect_bad(VKF_ERROR_FORMAT, "not a SentencePiece model");
    /* a real model cut short */
    uint8_t *real = tread_file(SPMDATA "/t5/spiece.model", 4000);
    write_model(real, 4000);
    free(real);
    expect_bad(VKF_ERROR_FORMAT, "runs past the end of the file");
    /* a length past the end */
    pbw p = {0}, nz = {0};
    pw_small(&p);
    pw_varint(&p, 1 << 3 | 2), pw_varint(&p, 1000), pw_raw(&p, "xx", 2);
    write_model(p.b, p.n);
    expect_bad(VKF_ERROR_FORMAT, "runs past the end of the file");
    /* an 11-byte varint */
    p = (pbw){0};
    pw_small(&p);
    pw_raw(&p, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
    write_model(p.b, p.n);
    expect_bad(VKF_ERROR_FORMAT, "not a SentencePiece model");
    /* pieces */
    expect_bad_piece("\xc3\x28", 2, -1, 0, VKF_ERROR_FORMAT, "not valid UTF-8");
    expect_bad_piece("c", 1, -1, 9, VKF_ERROR_FORMAT, "type 9");
    expect_bad_piece("c", 1, NAN, 0, VKF_ERROR_FORMAT, "not a number");
    expect_bad_piece("ab", 2, -1, 0, VKF_ERROR_FORMAT, "appears twice");
    expect_bad_piece("", 0, -1, 0, VKF_ERROR_FORMAT, "a piece is empty");
    expect_bad_piece("<0x41>", 6, 0, 6, VKF_ERROR_FORMAT, "without byte_fallback");
    p = (pbw){0};
    pw_piece(&p, "a", 1, -1, 0);
    write_model(p.b, p.n);
    expect_bad(VKF_ERROR_FORMAT, "no unknown piece");
    expect_bad_trainer(35, 1, VKF_ERROR_FORMAT, "byte_fallback with 0 byte pieces");
    expect_bad_trainer(3, 3, VKF_ERROR_UNSUPPORTED, "model type 3"); /* WORD */
    /* byte pieces must be spelled as sentencepiece spells them (a lower-case
     * alias once loaded and then crashed the encoder) */
    expect_bad_piece("<0x9a>", 6, 0, 6, VKF_ERROR_FORMAT, "without byte_fallback");
    p = (pbw){0};
    pw_small(&p);
    pw_trainer(&p, 35, 1);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, b == 0x9A ? "<0x%02x>" : "<0x%02X>", b);
        pw_piece(&p, name, 6, 0, 6);
    }
    write_model(p.b, p.n);
    expect_bad(VKF_ERROR_FORMAT, "byte piece '<0x9a>' is not <0xXX>");
    /* NUL inside a piece */
    expect_bad_piece("a\0b", 3, -1, 0, VKF_ERROR_FORMAT, "holds a NUL character");
    /* the trie of a character map is a multiple of 1024 bytes */
    p = (pbw){0};
    pw_small(&p);
    nz = (pbw){0};
    pw_bytes(&nz, 2, "\x08\x00\x00\x00" "abcdefgh" "a", 14);
    pw_bytes(&p, 3, nz.b, nz.n);
    write_model(p.b, p.n);
    expect_bad(VKF_ERROR_FORMAT, "not a multiple of 1024");
    /* a character map whose trie size lies */
    p = (pbw){0};
    pw_small(&p);
    nz = (pbw){0};
    pw_bytes(&nz, 2, "\xe8\x03\x00\x00" "abcdefgh", 12);
    pw_bytes(&p, 3, nz.b, nz.n);
    write_model(p.b, p.n);
    expect_bad(VKF_ERROR_FORMAT, "precompiled character map is broken");
    ttmpdir_remove(spmdir);
}
