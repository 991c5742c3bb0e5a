/* The public tokenizer API: src/text underneath, errors in the calling
 * thread's vkf_last_error(NULL), batch padding, and the streaming decoder. */
#include <stdlib.h>
#include <string.h>

#include "../io/io.h"
#include "../text/text.h"

struct vkf_tokenizer {
    tok_tokenizer *t;
};

struct vkf_decode_stream {
    const vkf_tokenizer *tok;
    bool skip_special;
    uint32_t *ids;
    size_t n, cap;
    size_t prefix_index;
    char *prefix;        /* decode(ids[0, prefix_index + ...]) as last emitted */
    size_t prefix_len;
    char *piece;         /* what the last call returned */
};

static base_diag *D(void) { return base_thread_diag(); }

vkf_status vkf_tokenizer_load(const char *dir, vkf_tokenizer **out)
{
    if (!out) return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "vkf_tokenizer_load: NULL argument");
    *out = NULL;
    char resolved[4096];
    if (dir && io_model_path(D(), dir, resolved, sizeof resolved) != VKF_OK) return VKF_ERROR_IO;
    vkf_tokenizer *tk = calloc(1, sizeof *tk);
    if (!tk) return base_fail(D(), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vkf_status s = tok_load(D(), dir ? resolved : NULL, &tk->t);
    if (s != VKF_OK) {
        free(tk);
        return s;
    }
    *out = tk;
    return VKF_OK;
}

void vkf_tokenizer_destroy(vkf_tokenizer *tok)
{
    if (!tok) return;
    tok_free(tok->t);
    free(tok);
}

vkf_status vkf_tokenizer_get_info(const vkf_tokenizer *tok, vkf_tokenizer_info *info)
{
    if (!tok || !info) return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "vkf_tokenizer_get_info: NULL argument");
    const tok_tokenizer *t = tok->t;
    *info = (vkf_tokenizer_info){.model = t->kind, .source = t->source, .vocab_size = t->vocab.n,
                                 .model_max_length = t->model_max_length, .pad_id = (int32_t)t->pad_id,
                                 .unk_id = (int32_t)t->unk_id, .cls_id = (int32_t)t->cls_id, .sep_id = (int32_t)t->sep_id,
                                 .mask_id = (int32_t)t->mask_id, .bos_id = (int32_t)t->bos_id, .eos_id = (int32_t)t->eos_id};
    return VKF_OK;
}

int32_t vkf_tokenizer_token_to_id(const vkf_tokenizer *tok, const char *token)
{
    if (!tok || !token) return -1;
    return (int32_t)tok_vocab_find(&tok->t->vocab, token, strlen(token));
}

const char *vkf_tokenizer_id_to_token(const vkf_tokenizer *tok, int32_t id)
{
    if (!tok || id < 0 || (uint32_t)id >= tok->t->vocab.n) return NULL;
    return tok->t->vocab.tok[id];
}

void vkf_encoding_free(vkf_encoding *enc)
{
    if (!enc) return;
    free(enc->ids);
    free(enc->type_ids);
    free(enc->attention_mask);
    free(enc->special_mask);
    free(enc->sequence_ids);
    free(enc->offsets);
    memset(enc, 0, sizeof *enc);
}

/* Fills out from e, padded to `to` tokens on the given side. */
static vkf_status to_public(const tok_enc *e, uint32_t to, bool left, int32_t pad_id, vkf_encoding *out)
{
    memset(out, 0, sizeof *out);
    uint32_t n = (uint32_t)BASE_MAX(e->n, to), pad = n - (uint32_t)e->n, at = left ? pad : 0;
    size_t k = n ? n : 1;
    out->ids = malloc(k * 4), out->type_ids = malloc(k * 4), out->attention_mask = malloc(k * 4);
    out->special_mask = malloc(k * 4), out->sequence_ids = malloc(k * 4), out->offsets = malloc(k * 8);
    if (!out->ids || !out->type_ids || !out->attention_mask || !out->special_mask || !out->sequence_ids || !out->offsets) {
        vkf_encoding_free(out);
        return base_fail(D(), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    out->length = n;
    for (uint32_t i = 0; i < n; i++) {
        bool is_pad = i < at || i >= at + e->n;
        size_t j = i - at;
        out->ids[i] = is_pad ? pad_id : (int32_t)e->ids[j];
        out->type_ids[i] = is_pad ? 0 : (int32_t)e->type_ids[j];
        out->attention_mask[i] = !is_pad;
        out->special_mask[i] = is_pad || e->special[j];
        out->sequence_ids[i] = is_pad || e->seq[j] == UINT32_MAX ? -1 : (int32_t)e->seq[j];
        out->offsets[i][0] = is_pad ? 0 : e->os[j];
        out->offsets[i][1] = is_pad ? 0 : e->oe[j];
    }
    return VKF_OK;
}

static size_t text_len(const char *s, size_t len) { return len == VKF_TEXT_NUL ? (s ? strlen(s) : 0) : len; }

/* One text or pair, post-processed, not yet padded. */
static vkf_status encode_one(const vkf_tokenizer *tok, const char *text, size_t len, const char *pair, size_t pair_len,
                             const vkf_encode_options *o, tok_enc *out)
{
    const tok_tokenizer *t = tok->t;
    tok_enc a = {0}, b = {0};
    vkf_status s = tok_encode_text(D(), t, text, text_len(text, len), &a);
    if (s == VKF_OK && pair) s = tok_encode_text(D(), t, pair, text_len(pair, pair_len), &b);
    if (s == VKF_OK) s = tok_finish(D(), t, &a, pair ? &b : NULL, !o->no_special_tokens, o->max_length, o->truncation, out);
    tok_enc_free(&a);
    tok_enc_free(&b);
    return s;
}

static int32_t pad_id_of(const tok_tokenizer *t)
{
    return (int32_t)(t->pad_id >= 0 ? t->pad_id : t->eos_id >= 0 ? t->eos_id : 0);
}

vkf_status vkf_tokenizer_encode(const vkf_tokenizer *tok, const char *text, size_t len, const char *pair, size_t pair_len,
                                const vkf_encode_options *opt, vkf_encoding *out)
{
    if (!tok || !out || (!text && len && len != VKF_TEXT_NUL))
        return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "vkf_tokenizer_encode: NULL argument");
    memset(out, 0, sizeof *out);
    vkf_encode_options o = opt ? *opt : (vkf_encode_options){0};
    tok_enc e = {0};
    vkf_status s = encode_one(tok, text, len, pair, pair_len, &o, &e);
    if (s == VKF_OK)
        s = to_public(&e, o.padding == VKF_PAD_MAX_LENGTH ? o.max_length : 0, o.pad_left, pad_id_of(tok->t), out);
    tok_enc_free(&e);
    return s;
}

vkf_status vkf_tokenizer_encode_batch(const vkf_tokenizer *tok, const char *const *texts, const size_t *lens,
                                      const char *const *pairs, const size_t *pair_lens, uint32_t n,
                                      const vkf_encode_options *opt, vkf_encoding *out)
{
    if (!tok || (n && (!texts || !out))) return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "vkf_tokenizer_encode_batch: NULL argument");
    vkf_encode_options o = opt ? *opt : (vkf_encode_options){0};
    tok_enc *e = calloc(n ? n : 1, sizeof *e);
    if (!e) return base_fail(D(), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vkf_status s = VKF_OK;
    uint32_t longest = 0;
    for (uint32_t i = 0; i < n && s == VKF_OK; i++) {
        s = encode_one(tok, texts[i], lens ? lens[i] : VKF_TEXT_NUL, pairs ? pairs[i] : NULL,
                       pair_lens ? pair_lens[i] : VKF_TEXT_NUL, &o, &e[i]);
        if (s != VKF_OK) base_fail_prefix(D(), s, "text %u: ", i);
        longest = (uint32_t)BASE_MAX(longest, e[i].n);
    }
    uint32_t to = o.padding == VKF_PAD_LONGEST ? longest : o.padding == VKF_PAD_MAX_LENGTH ? o.max_length : 0;
    uint32_t done = 0;
    for (; done < n && s == VKF_OK; done++) s = to_public(&e[done], to, o.pad_left, pad_id_of(tok->t), &out[done]);
    if (s != VKF_OK)
        for (uint32_t i = 0; i < done; i++) vkf_encoding_free(&out[i]);
    for (uint32_t i = 0; i < n; i++) tok_enc_free(&e[i]);
    free(e);
    return s;
}

/* Public ids (int32) to the internal form, refusing negative ones. */
static vkf_status ids_in(const int32_t *ids, size_t n, uint32_t **out)
{
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) return base_fail(D(), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0) {
            free(*out);
            *out = NULL;
            return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "token id %d is negative", ids[i]);
        }
        (*out)[i] = (uint32_t)ids[i];
    }
    return VKF_OK;
}

vkf_status vkf_tokenizer_decode(const vkf_tokenizer *tok, const int32_t *ids, size_t n, int skip_special_tokens, char **text,
                                size_t *text_len)
{
    if (!tok || !text || (n && !ids)) return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "vkf_tokenizer_decode: NULL argument");
    *text = NULL;
    uint32_t *u;
    vkf_status s = ids_in(ids, n, &u);
    if (s != VKF_OK) return s;
    size_t len = 0;
    s = tok_decode(D(), tok->t, u, n, skip_special_tokens != 0, text, &len);
    free(u);
    if (text_len) *text_len = len;
    return s;
}

/* ---- streaming decoder: HF's DecodeStream ------------------------------------------------
 * Decodes a short window (the tokens since the last emitted one, plus that
 * one for context) and emits what it adds beyond the window's previous
 * text, unless it ends in U+FFFD, which means a character is not finished. */

vkf_status vkf_decode_stream_create(const vkf_tokenizer *tok, int skip_special_tokens, vkf_decode_stream **out)
{
    if (!tok || !out) return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "vkf_decode_stream_create: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out) return base_fail(D(), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    (*out)->tok = tok;
    (*out)->skip_special = skip_special_tokens != 0;
    return VKF_OK;
}

static bool ends_in_replacement(const char *s, size_t n) { return n >= 3 && !memcmp(s + n - 3, "\xEF\xBF\xBD", 3); }

/* Emits the text beyond the previous window's, and slides the window. */
static vkf_status emit(vkf_decode_stream *s, bool final, const char **piece, size_t *len)
{
    char *text;
    size_t n;
    free(s->piece);
    s->piece = NULL;
    *piece = "";
    *len = 0;
    vkf_status st = tok_decode(D(), s->tok->t, s->ids, s->n, s->skip_special, &text, &n);
    if (st != VKF_OK) return st;
    if (n <= s->prefix_len || (!final && ends_in_replacement(text, n))) {
        free(text);
        return VKF_OK;
    }
    size_t common = 0;
    while (common < s->prefix_len && text[common] == s->prefix[common]) common++;
    s->piece = malloc(n - common + 1);
    if (s->piece) memcpy(s->piece, text + common, n - common + 1);
    free(text);
    if (!s->piece) return base_fail(D(), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    *piece = s->piece;
    *len = n - common;
    /* The tokens just emitted are the context of the next window; while they
     * decode to nothing (a lone "▁" that a SentencePiece decoder drops at the
     * start, a skipped special token), earlier ones join them, so that the
     * window's start decodes as it does mid-text. */
    size_t keep_from = s->prefix_index;
    for (;;) {
        free(s->prefix);
        s->prefix = NULL;
        st = tok_decode(D(), s->tok->t, s->ids + keep_from, s->n - keep_from, s->skip_special, &s->prefix, &s->prefix_len);
        if (st != VKF_OK || s->prefix_len || keep_from == 0) break;
        keep_from--;
    }
    memmove(s->ids, s->ids + keep_from, (s->n - keep_from) * sizeof *s->ids);
    s->n -= keep_from;
    s->prefix_index = s->n;
    return st;
}

vkf_status vkf_decode_stream_step(vkf_decode_stream *s, int32_t id, const char **piece, size_t *len)
{
    if (!s || !piece || !len) return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "vkf_decode_stream_step: NULL argument");
    *piece = "";
    *len = 0;
    if (id < 0 || (uint32_t)id >= s->tok->t->vocab.n)
        return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "token id %d is outside the vocabulary (%u tokens)", id, s->tok->t->vocab.n);
    if (!base_grow((void **)&s->ids, &s->cap, s->n + 1, sizeof *s->ids)) return base_fail(D(), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    s->ids[s->n++] = (uint32_t)id;
    return emit(s, false, piece, len);
}

vkf_status vkf_decode_stream_finish(vkf_decode_stream *s, const char **piece, size_t *len)
{
    if (!s || !piece || !len) return base_fail(D(), VKF_ERROR_INVALID_ARGUMENT, "vkf_decode_stream_finish: NULL argument");
    return emit(s, true, piece, len);
}

void vkf_decode_stream_destroy(vkf_decode_stream *s)
{
    if (!s) return;
    free(s->ids);
    free(s->prefix);
    free(s->piece);
    free(s);
}
