/* Decoding ids back to text, as the HF decoders do: WordPiece (join with
 * spaces, glue "##" pieces, clean up spaces before punctuation), ByteLevel
 * (characters back to bytes, invalid UTF-8 replaced), CLIP's BPE suffix
 * (`</w>` ends a word), and the SentencePiece-style chains of string decoders
 * (Metaspace, Replace, ByteFallback, Fuse, Strip). */
#include "text.h"

#include <stdlib.h>
#include <string.h>

typedef tok_buf buf;

#define put tok_buf_put

bool tok_buf_put(tok_buf *o, const char *s, size_t n)
{
    if (!base_grow((void **)&o->b, &o->cap, o->n + n + 1, 1)) return false;
    memcpy(o->b + o->n, s, n);
    o->n += n;
    o->b[o->n] = 0;
    return true;
}

/* Replaces every `from` by `to` in o->b[at, n) (to no longer than from). */
static void replace_all(buf *o, size_t at, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), w = at;
    for (size_t r = at; r < o->n;) {
        if (r + fl <= o->n && !memcmp(o->b + r, from, fl)) {
            memmove(o->b + w, to, tl);
            w += tl, r += fl;
        } else {
            o->b[w++] = o->b[r++];
        }
    }
    o->n = w;
    o->b[w] = 0;
}

/* tokenizers' WordPiece cleanup of one token (o->b[at, n)): a token is
 * " ." or " 's" at most, so the replacements never span tokens. */
static bool wordpiece_cleanup(buf *o, size_t at)
{
    static const char *const pairs[][2] = {{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
                                           {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t k = 0; k < BASE_ARRAY_LEN(pairs); k++) replace_all(o, at, pairs[k][0], pairs[k][1]);
    return true;
}

/* A token's characters as bytes when all are in the byte-level alphabet,
 * else its UTF-8 as it is (tokenizers' ByteLevel decoder). */
static bool put_byte_level(const tok_tokenizer *t, buf *o, const char *tk, size_t len)
{
    size_t at = o->n;
    for (size_t i = 0; i < len;) {
        uint32_t c = tok_utf8_next(tk, len, &i);
        if (c >= 0x180 || !t->char_is_byte[c]) {
            o->n = at;
            return put(o, tk, len);
        }
        char b = (char)t->byte_of_char[c];
        if (!put(o, &b, 1)) return false;
    }
    return true;
}

/* UTF-8 with each maximal invalid subpart replaced by U+FFFD. */
static bool lossy(buf *o)
{
    tok_str s = {0};
    if (!tok_from_raw(o->b ? o->b : "", o->n, &s)) return tok_str_free(&s), false;
    free(o->b);
    o->b = s.b, o->n = s.n, o->cap = s.cap;
    free(s.os);
    free(s.oe);
    return true;
}

static bool is_special_id(const tok_tokenizer *t, uint32_t id)
{
    for (uint32_t i = 0; i < t->n_added; i++)
        if (t->added[i].id == id && t->added[i].special) return true;
    return false;
}

/* ---- tokenizers' string decoders, token by token (decode_chain) ----------------------- */

typedef struct strs {
    buf *v;
    size_t n, cap;
} strs;

static void strs_free(strs *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i].b);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* A new string at the end of l (empty, terminated). */
static buf *strs_new(strs *l)
{
    if (!base_grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) return NULL;
    buf *b = &l->v[l->n];
    *b = (buf){0};
    if (!put(b, "", 0)) return NULL;
    l->n++;
    return b;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "<0xXX>" -> the byte (Rust's u8::from_str_radix over XX, '+' sign included), else -1. */
static int byte_token(const buf *t)
{
    if (t->n != 6 || memcmp(t->b, "<0x", 3) || t->b[5] != '>') return -1;
    int hi = hex_digit(t->b[3]), lo = hex_digit(t->b[4]);
    if (t->b[3] == '+' && lo >= 0) return lo;
    return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

/* ByteFallback: a run of byte tokens becomes its UTF-8 string, or one U+FFFD per byte when invalid. */
static bool flush_bytes(strs *out, buf *bytes)
{
    if (!bytes->n) return true;
    bool ok = true;
    if (tok_utf8_valid(bytes->b, bytes->n)) {
        buf *b = strs_new(out);
        ok = b && put(b, bytes->b, bytes->n);
    } else {
        for (size_t i = 0; ok && i < bytes->n; i++) {
            buf *b = strs_new(out);
            ok = b && put(b, "\xEF\xBF\xBD", 3);
        }
    }
    bytes->n = 0;
    return ok;
}

static bool run_step(const tok_step *st, strs *in, strs *out)
{
    bool ok = true;
    buf bytes = {0};
    size_t fl = strlen(st->from), tl = strlen(st->to);
    buf *fused = st->kind == TOK_STEP_FUSE ? strs_new(out) : NULL;
    if (st->kind == TOK_STEP_FUSE && !fused) return false;
    for (size_t i = 0; ok && i < in->n; i++) {
        buf *t = &in->v[i];
        switch (st->kind) {
        case TOK_STEP_FUSE:
            ok = put(fused, t->b, t->n);
            break;
        case TOK_STEP_BYTE_FALLBACK: {
            int b = byte_token(t);
            if (b >= 0) {
                char c = (char)b;
                ok = put(&bytes, &c, 1);
            } else {
                buf *o = NULL;
                ok = flush_bytes(out, &bytes) && (o = strs_new(out)) && put(o, t->b, t->n);
            }
            break;
        }
        case TOK_STEP_REPLACE:
        case TOK_STEP_METASPACE: {
            /* Metaspace: the replacement becomes a space, and is dropped in the
             * first token when a space was prepended */
            const char *to = st->kind == TOK_STEP_REPLACE ? st->to : i == 0 && st->prepend != TOK_PREPEND_NEVER ? "" : " ";
            size_t n_to = st->kind == TOK_STEP_REPLACE ? tl : strlen(to);
            buf *o = strs_new(out);
            ok = o != NULL;
            for (size_t r = 0; ok && r < t->n;) {
                if (r + fl <= t->n && !memcmp(t->b + r, st->from, fl)) ok = put(o, to, n_to), r += fl;
                else ok = put(o, t->b + r, 1), r++;
            }
            break;
        }
        case TOK_STEP_STRIP: {
            /* up to start `from` characters off the front and stop off the back */
            size_t s = 0, e = t->n;
            for (uint32_t k = 0; k < st->start && s + fl <= e && !memcmp(t->b + s, st->from, fl); k++) s += fl;
            for (uint32_t k = 0; k < st->stop && e >= s + fl && !memcmp(t->b + e - fl, st->from, fl); k++) e -= fl;
            buf *o = strs_new(out);
            ok = o && put(o, t->b + s, e - s);
            break;
        }
        }
    }
    if (ok && st->kind == TOK_STEP_BYTE_FALLBACK) ok = flush_bytes(out, &bytes);
    free(bytes.b);
    return ok;
}

/* The kept tokens' strings through the chain, joined. */
static bool decode_steps(const tok_tokenizer *t, const uint32_t *ids, size_t n, bool skip_special, buf *o)
{
    strs cur = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        if (skip_special && is_special_id(t, ids[i])) continue;
        buf *b = strs_new(&cur);
        ok = b && put(b, t->vocab.tok[ids[i]], t->vocab.len[ids[i]]);
    }
    for (uint32_t k = 0; ok && k < t->n_steps; k++) {
        strs next = {0};
        ok = run_step(&t->steps[k], &cur, &next);
        strs_free(&cur);
        cur = next;
    }
    for (size_t i = 0; ok && i < cur.n; i++) ok = put(o, cur.v[i].b, cur.v[i].n);
    strs_free(&cur);
    return ok;
}

vkf_status tok_decode(base_diag *d, const tok_tokenizer *t, const uint32_t *ids, size_t n_ids, bool skip_special,
                      char **text, size_t *n)
{
    *text = NULL;
    *n = 0;
    buf o = {0};
    bool ok = put(&o, "", 0);
    if (t->spm) {
        for (size_t i = 0; i < n_ids; i++)
            if (ids[i] >= t->vocab.n)
                return free(o.b), base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "token id %u is outside the vocabulary (%u tokens)", ids[i], t->vocab.n);
        tok_fail_take();
        if (ok) ok = tok_spm_decode_ids(t->spm, t, ids, n_ids, skip_special, &o);
        if (!ok && tok_fail_take() == TOK_FAIL_TOO_LONG)
            return free(o.b), base_fail(d, VKF_ERROR_UNSUPPORTED, "the model's denormalizer makes the text of %zu ids over 64 times "
                                                                  "longer: refused", n_ids);
        if (!ok) return free(o.b), base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory decoding %zu ids", n_ids);
        *text = o.b, *n = o.n;
        return VKF_OK;
    }
    if (t->n_steps) {
        for (size_t i = 0; i < n_ids; i++)
            if (ids[i] >= t->vocab.n)
                return free(o.b), base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "token id %u is outside the vocabulary (%u tokens)", ids[i], t->vocab.n);
        if (ok) ok = decode_steps(t, ids, n_ids, skip_special, &o);
        if (!ok) return free(o.b), base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory decoding %zu ids", n_ids);
        *text = o.b, *n = o.n;
        return VKF_OK;
    }
    size_t pl = strlen(t->model.prefix), sl = strlen(t->model.suffix);
    size_t emitted = 0;
    for (size_t i = 0; ok && i < n_ids; i++) {
        uint32_t id = ids[i];
        if (id >= t->vocab.n) {
            free(o.b);
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "token id %u is outside the vocabulary (%u tokens)", id, t->vocab.n);
        }
        if (skip_special && is_special_id(t, id)) continue;
        const char *tk = t->vocab.tok[id];
        size_t len = t->vocab.len[id];
        switch (t->decoder) {
        case TOK_DEC_WORDPIECE: {
            /* Per token, as tokenizers' decode_chain: glue or space, then cleanup. */
            size_t at = o.n;
            if (emitted > 0 && pl && len >= pl && !memcmp(tk, t->model.prefix, pl)) ok = put(&o, tk + pl, len - pl);
            else ok = (emitted == 0 || put(&o, " ", 1)) && put(&o, tk, len);
            if (ok && t->wp_cleanup) ok = wordpiece_cleanup(&o, at);
            break;
        }
        case TOK_DEC_BYTE_LEVEL:
        case TOK_DEC_BPE_SUFFIX:
            ok = put_byte_level(t, &o, tk, len);
            break;
        default:
            ok = (emitted == 0 || put(&o, " ", 1)) && put(&o, tk, len);
            break;
        }
        emitted++;
    }
    if (ok && (t->decoder == TOK_DEC_BYTE_LEVEL || t->decoder == TOK_DEC_BPE_SUFFIX)) ok = lossy(&o);
    if (ok && t->decoder == TOK_DEC_BPE_SUFFIX && sl) {
        /* CLIPTokenizer: the suffix marks a word end; the text is stripped. */
        char *sfx = t->model.suffix;
        buf r = {0};
        ok = put(&r, "", 0);
        for (size_t i = 0; ok && i < o.n;) {
            if (i + sl <= o.n && !memcmp(o.b + i, sfx, sl)) ok = put(&r, " ", 1), i += sl;
            else ok = put(&r, o.b + i, 1), i++;
        }
        free(o.b);
        o = r;
        size_t s = 0, e = o.n;
        while (s < e && (o.b[s] == ' ' || (o.b[s] >= '\t' && o.b[s] <= '\r'))) s++;
        while (e > s && (o.b[e - 1] == ' ' || (o.b[e - 1] >= '\t' && o.b[e - 1] <= '\r'))) e--;
        memmove(o.b, o.b + s, e - s);
        o.n = e - s;
        o.b[o.n] = 0;
    }
    if (!ok) {
        free(o.b);
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory decoding %zu ids", n_ids);
    }
    *text = o.b;
    *n = o.n;
    return VKF_OK;
}
