/* Encoding: added tokens out of the raw text, then per segment normalizer,
 * pre-tokenizers and model; truncation and the post-processor's template. */
#include "text.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

bool tok_enc_push(tok_enc *e, uint32_t id, uint32_t type_id, bool special, uint32_t os, uint32_t oe)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        uint32_t **arrays[] = {&e->ids, &e->type_ids, &e->special, &e->os, &e->oe, &e->seq};
        for (size_t i = 0; i < BASE_ARRAY_LEN(arrays); i++) {
            uint32_t *p = realloc(*arrays[i], cap * sizeof *p);
            if (!p) return false;
            *arrays[i] = p;
        }
        e->cap = cap;
    }
    e->ids[e->n] = id, e->type_ids[e->n] = type_id, e->special[e->n] = special, e->os[e->n] = os, e->oe[e->n] = oe;
    e->seq[e->n] = special ? UINT32_MAX : 0;
    e->n++;
    return true;
}

void tok_enc_free(tok_enc *e)
{
    free(e->ids);
    free(e->type_ids);
    free(e->special);
    free(e->os);
    free(e->oe);
    free(e->seq);
    memset(e, 0, sizeof *e);
}

static bool is_word_char(uint32_t c)
{
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    int k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO) || k == UTF8PROC_CATEGORY_PC;
}

/* The code point that ends just before s[at] (valid UTF-8). */
static uint32_t prev_char(const char *s, size_t at)
{
    size_t j = at - 1;
    while (j > 0 && ((uint8_t)s[j] & 0xC0) == 0x80) j--;
    return tok_utf8_next(s, at, &j);
}

/* An added token at s[i], leftmost-longest as HF's matcher, among those
 * matched on raw text (normalized false) or on normalized text; its span
 * after lstrip/rstrip in *ms, *me (ms may move left to i0 at most). */
static const tok_added *match_added(const tok_tokenizer *t, const tok_str *s, size_t i, size_t i0, bool normalized,
                                    size_t *ms, size_t *me)
{
    /* the added tokens that start at i, by a walk of their trie: time linear
     * in the longest match, not in the number of added tokens */
    uint32_t local[64], *cand = local, n_cand = 0, cap = 64;
    const tok_trie *tr = &t->added_trie[normalized];
    for (uint32_t node = 0, k = (uint32_t)i; k < s->n; k++) {
        if (!(node = tok_trie_step(tr, node, (uint8_t)s->b[k]))) break;
        if (tr->value[node] < 0) continue;
        if (n_cand == cap) {
            uint32_t *more = malloc(2 * cap * sizeof *more);
            if (!more) break; /* out of memory: the shorter candidates found so far */
            memcpy(more, cand, n_cand * sizeof *more);
            if (cand != local) free(cand);
            cand = more, cap *= 2;
        }
        cand[n_cand++] = (uint32_t)tr->value[node];
    }
    const tok_added *found = NULL;
    for (uint32_t c = n_cand; c-- > 0 && !found;) { /* longest first */
        const tok_added *a = &t->added[cand[c]];
        size_t e = i + a->len;
        if (a->single_word) {
            if (i > 0 && is_word_char(prev_char(s->b, i))) continue;
            size_t j = e;
            if (e < s->n && is_word_char(tok_utf8_next(s->b, s->n, &j))) continue;
        }
        size_t b = i;
        if (a->lstrip)
            while (b > i0 && tok_is_whitespace(prev_char(s->b, b))) {
                size_t j = b - 1;
                while (j > i0 && ((uint8_t)s->b[j] & 0xC0) == 0x80) j--;
                b = j;
            }
        if (a->rstrip)
            while (e < s->n) {
                size_t j = e;
                if (!tok_is_whitespace(tok_utf8_next(s->b, s->n, &j))) break;
                e = j;
            }
        *ms = b, *me = e;
        found = a;
    }
    if (cand != local) free(cand);
    return found;
}

/* Pre-tokenizes and tokenizes seg[s, e) onto out. */
static bool tokenize_range(const tok_tokenizer *t, tok_str *seg, size_t s, size_t e, const char *orig, tok_enc *out)
{
    if (s >= e) return true;
    tok_pieces pieces = {0}, scratch = {0};
    tok_toks toks = {0};
    bool ok = base_grow((void **)&pieces.v, &pieces.cap, 1, sizeof *pieces.v);
    if (ok) pieces.v[0] = (tok_piece){(uint32_t)s, (uint32_t)e}, pieces.n = 1;
    for (uint32_t k = 0; ok && k < t->n_pres; k++) ok = tok_pretokenize(&t->pres[k], seg, &pieces, &scratch);
    for (size_t p = 0; ok && p < pieces.n; p++) {
        tok_piece pc = pieces.v[p];
        toks.n = 0;
        ok = tok_model_word(&t->model, &t->vocab, seg->b + pc.s, pc.e - pc.s, &toks);
        for (size_t k = 0; ok && k < toks.n; k++) {
            uint32_t a = pc.s + toks.v[k].s, b = pc.s + toks.v[k].e;
            uint32_t os = seg->os[a], oe = seg->oe[b - 1];
            for (uint32_t j = a; j < b; j++) os = BASE_MIN(os, seg->os[j]), oe = BASE_MAX(oe, seg->oe[j]);
            if (t->trim_offsets) {
                while (os < oe && orig[os] == ' ') os++;
                while (oe > os && orig[oe - 1] == ' ') oe--;
            }
            ok = tok_enc_push(out, toks.v[k].id, 0, false, os, oe);
        }
    }
    free(pieces.v);
    free(scratch.v);
    free(toks.v);
    return ok;
}

/* Normalizes raw[s, e), splits out the added tokens that match normalized
 * text (normalized: true), and tokenizes the rest onto out. */
static bool encode_segment(const tok_tokenizer *t, const tok_str *raw, size_t s, size_t e, const char *orig, tok_enc *out)
{
    if (s >= e) return true;
    tok_str seg = {0};
    bool ok = tok_str_reserve(&seg, e - s);
    if (ok) {
        memcpy(seg.b, raw->b + s, e - s);
        memcpy(seg.os, raw->os + s, (e - s) * 4);
        memcpy(seg.oe, raw->oe + s, (e - s) * 4);
        seg.n = e - s;
        seg.b[seg.n] = 0;
    }
    for (uint32_t k = 0; ok && k < t->n_norms; k++) ok = tok_normalize(&t->norms[k], &seg, TOK_NORM_LIMIT(e - s));
    size_t from = 0;
    for (size_t i = 0; ok && t->n_normalized_added && i < seg.n;) {
        size_t ms, me;
        const tok_added *a = t->added_first_byte[(uint8_t)seg.b[i]] ? match_added(t, &seg, i, from, true, &ms, &me) : NULL;
        if (!a) {
            i++;
            continue;
        }
        ok = tokenize_range(t, &seg, from, ms, orig, out) && tok_enc_push(out, a->id, 0, false, seg.os[ms], seg.oe[me - 1]);
        from = i = me;
    }
    if (ok) ok = tokenize_range(t, &seg, from, seg.n, orig, out);
    tok_str_free(&seg);
    return ok;
}

/* The slow SentencePiece path (transformers' PreTrainedTokenizer.tokenize):
 * the class's whole-text steps, added tokens split out (their lstrip and
 * rstrip eat the neighbours' whitespace), each other segment through the
 * class's _tokenize. */
static bool encode_spm(const tok_tokenizer *t, tok_str *raw, tok_enc *out)
{
    const tok_spm *sp = t->spm;
    bool ok = true;
    tok_str a = {0};
    if (!sp->legacy && (sp->cls == TOK_SPM_T5 || sp->cls == TOK_SPM_LLAMA) && raw->n) {
        /* U+2581 in the text becomes a space; the text starts with one U+2581 */
        if (sp->prefix_space) ok = tok_str_push(&a, "\xe2\x96\x81", 3, raw->os[0], raw->os[0]);
        for (size_t i = 0; ok && i < raw->n;) {
            if (i + 3 <= raw->n && !memcmp(raw->b + i, "\xe2\x96\x81", 3)) ok = tok_str_push(&a, " ", 1, raw->os[i], raw->oe[i + 2]), i += 3;
            else ok = tok_str_push(&a, raw->b + i, 1, raw->os[i], raw->oe[i]), i++;
        }
        if (ok) tok_str_free(raw), *raw = a, a = (tok_str){0};
    }
    tok_toks toks = {0};
    size_t seg = 0, i = 0, first_tok = out->n;
    while (ok && i <= raw->n) {
        size_t ms = raw->n, me = raw->n;
        const tok_added *ad = NULL;
        if (i < raw->n) {
            ad = t->added_first_byte[(uint8_t)raw->b[i]] ? match_added(t, raw, i, seg, false, &ms, &me) : NULL;
            if (!ad) {
                i++;
                continue;
            }
        }
        if (ms > seg) {
            tok_str part = {0};
            ok = tok_str_reserve(&part, ms - seg);
            if (ok) {
                memcpy(part.b, raw->b + seg, ms - seg), memcpy(part.os, raw->os + seg, (ms - seg) * 4), memcpy(part.oe, raw->oe + seg, (ms - seg) * 4);
                part.n = ms - seg;
                part.b[part.n] = 0;
            }
            if (ok && sp->lower && sp->cls != TOK_SPM_ALBERT && sp->cls != TOK_SPM_DEBERTA) ok = true; /* classes lower in _tokenize */
            toks.n = 0;
            if (ok) ok = tok_spm_tokenize(sp, t, &part, seg == 0, &toks);
            for (size_t k = 0; ok && k < toks.n; k++) ok = tok_enc_push(out, toks.v[k].id, 0, false, toks.v[k].s, toks.v[k].e);
            tok_str_free(&part);
        }
        if (!ad) break;
        if (ok) ok = tok_enc_push(out, ad->id, 0, false, raw->os[ms], raw->oe[me - 1]);
        seg = i = me;
    }
    /* legacy=False: a lone U+2581 before a special token goes */
    if (ok && !sp->legacy && (sp->cls == TOK_SPM_T5 || sp->cls == TOK_SPM_LLAMA) && out->n - first_tok > 1) {
        uint32_t id0 = out->ids[first_tok], id1 = out->ids[first_tok + 1];
        bool lone = t->vocab.len[id0] == 3 && !memcmp(t->vocab.tok[id0], "\xe2\x96\x81", 3), special = false;
        for (uint32_t k = 0; k < t->n_added && !special; k++) special = t->added[k].id == id1 && t->added[k].special;
        if (lone && special) {
            size_t m = out->n - first_tok - 1;
            uint32_t **arrays[] = {&out->ids, &out->type_ids, &out->special, &out->os, &out->oe, &out->seq};
            for (size_t k = 0; k < BASE_ARRAY_LEN(arrays); k++) memmove(*arrays[k] + first_tok, *arrays[k] + first_tok + 1, m * 4);
            out->n--;
        }
    }
    free(toks.v);
    tok_str_free(&a);
    return ok;
}

vkf_status tok_encode_text(base_diag *d, const tok_tokenizer *t, const char *text, size_t n, tok_enc *out)
{
    if (n > TOK_MAX_TEXT_BYTES)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "text of %zu bytes is over the %zu-byte limit", n, TOK_MAX_TEXT_BYTES);
    if (n && !text) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "NULL text");
    tok_str raw = {0};
    if (!tok_from_raw(text, n, &raw)) {
        tok_str_free(&raw);
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory for a %zu-byte text", n);
    }
    bool ok = true;
    size_t seg = 0, i = 0;
    tok_fail_take();
    if (t->spm) {
        ok = encode_spm(t, &raw, out);
        i = raw.n, seg = raw.n;
    }
    while (ok && !t->spm && i < raw.n) {
        size_t ms, me;
        const tok_added *a = t->added_first_byte[(uint8_t)raw.b[i]] ? match_added(t, &raw, i, seg, false, &ms, &me) : NULL;
        if (!a) {
            i++;
            continue;
        }
        ok = encode_segment(t, &raw, seg, ms, text, out) && tok_enc_push(out, a->id, 0, false, raw.os[ms], raw.oe[me - 1]);
        seg = i = me;
    }
    if (ok && !t->spm) ok = encode_segment(t, &raw, seg, raw.n, text, out);
    tok_str_free(&raw);
    switch (tok_fail_take()) {
    case TOK_FAIL_TOO_LONG:
        return base_fail(d, VKF_ERROR_UNSUPPORTED,
                         "the tokenizer's normalizers make this %zu-byte text over 64 times longer: refused (a tokenizer file "
                         "whose Replace or character map multiplies text)", n);
    case TOK_FAIL_REGEX:
        return base_fail(d, VKF_ERROR_UNSUPPORTED,
                         "a tokenizer pattern hit PCRE2's match limit on this %zu-byte text (a pattern that backtracks "
                         "without bound): no ids rather than wrong ones", n);
    case TOK_FAIL_NONE:
        break;
    }
    if (!ok) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory encoding a %zu-byte text", n);
    return VKF_OK;
}

uint32_t tok_added_count(const tok_tokenizer *t, bool pair)
{
    const tok_tmpl *tm = pair ? &t->pair : &t->single;
    uint32_t n = 0;
    for (uint32_t i = 0; i < tm->n; i++) n += tm->v[i].seq < 0 ? tm->v[i].n_ids : 0;
    return n;
}

static bool append(tok_enc *out, const tok_enc *in, uint32_t type_id, uint32_t seq)
{
    for (size_t i = 0; i < in->n; i++) {
        if (!tok_enc_push(out, in->ids[i], type_id, in->special[i], in->os[i], in->oe[i])) return false;
        out->seq[out->n - 1] = seq;
    }
    return true;
}

vkf_status tok_finish(base_diag *d, const tok_tokenizer *t, tok_enc *a, tok_enc *b, bool add_special, uint32_t max_len,
                      vkf_truncation strategy, tok_enc *out)
{
    bool tmpl = add_special && t->post == TOK_POST_TEMPLATE;
    if ((unsigned)strategy > VKF_TRUNCATE_ONLY_SECOND)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "truncation strategy %d is not one of vkf_truncation's", (int)strategy);
    if (max_len && strategy != VKF_TRUNCATE_LONGEST_FIRST) {
        /* HF's only_first / only_second (tokenizers' truncate_encodings): the
         * one text loses what the pair has too many, and must keep a token */
        uint32_t added = tmpl ? tok_added_count(t, b != NULL) : 0;
        size_t total = a->n + (b ? b->n : 0) + added;
        tok_enc *target = strategy == VKF_TRUNCATE_ONLY_FIRST ? a : b;
        if (!target) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "truncation only_second needs a pair of texts");
        if (total > max_len) {
            size_t remove = total - max_len;
            if (target->n <= remove)
                return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "the %s text has %zu tokens: too short to lose the %zu tokens that "
                                 "%zu exceed max_length %u", target == a ? "first" : "second", target->n, remove, total, max_len);
            target->n -= remove;
        }
    } else if (max_len) {
        uint32_t added = tmpl ? tok_added_count(t, b != NULL) : 0;
        size_t budget = max_len > added ? max_len - added : 0;
        if (!b) {
            a->n = BASE_MIN(a->n, budget);
        } else if (a->n + b->n > budget) {
            /* Longest first: the shorter keeps up to half, the longer the rest. */
            tok_enc *shorter = a->n <= b->n ? a : b, *longer = a->n <= b->n ? b : a;
            shorter->n = BASE_MIN(shorter->n, budget / 2);
            longer->n = BASE_MIN(longer->n, budget - shorter->n);
        }
    }
    bool ok = true;
    if (tmpl) {
        const tok_tmpl *tm = b ? &t->pair : &t->single;
        for (uint32_t i = 0; ok && i < tm->n; i++) {
            const tok_tmpl_item *it = &tm->v[i];
            if (it->seq == 0) ok = append(out, a, it->type_id, 0);
            else if (it->seq == 1) ok = !b || append(out, b, it->type_id, 1);
            else
                for (uint32_t k = 0; ok && k < it->n_ids; k++) ok = tok_enc_push(out, it->ids[k], it->type_id, true, 0, 0);
        }
    } else {
        ok = append(out, a, 0, 0) && (!b || append(out, b, 1, 1));
    }
    if (!ok) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    return VKF_OK;
}
