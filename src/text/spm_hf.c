/* The slow `transformers` tokenizers over a SentencePiece model, as 4.x runs
 * them with sentencepiece 0.2 underneath: per class, the text preprocessing
 * (ALBERT's preprocess_text), `_tokenize` (ALBERT's digit-comma split, the
 * legacy=False "<unk>"-prefix trick of T5 and Llama, Marian's language codes),
 * piece-to-id (XLM-R's fairseq offset, Marian's shared vocab.json) and
 * `convert_tokens_to_string`. Where the fast converters disagree with these,
 * these are what `.model` files mean (tools/make_spm_refs.py). */
#include "text.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define SPIECE "\xe2\x96\x81"

/* Python's str.isspace (str.split, str.strip): White_Space plus the
 * information separators U+001C..U+001F. */
static bool py_space(uint32_t c)
{
    return (c >= 0x1C && c <= 0x1F) || tok_is_whitespace(c);
}

/* A token of a segment: its piece string (pointing into one of the
 * encoder's strings), original offsets, and an id when already known. */
typedef struct piece {
    const char *s;
    uint32_t len;
    int64_t id;      /* -1: look the piece up */
    uint32_t os, oe;
} piece;

typedef struct pieces {
    piece *v;
    size_t n, cap;
    char **owned;    /* strings made here (ALBERT's re-encoded digits) */
    size_t n_owned, cap_owned;
} pieces;

static bool pieces_push(pieces *p, piece x)
{
    if (!base_grow((void **)&p->v, &p->cap, p->n + 1, sizeof *p->v)) return false;
    p->v[p->n++] = x;
    return true;
}

static char *pieces_keep(pieces *p, const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (!c || !base_grow((void **)&p->owned, &p->cap_owned, p->n_owned + 1, sizeof *p->owned)) return free(c), NULL;
    memcpy(c, s, n);
    c[n] = 0;
    p->owned[p->n_owned++] = c;
    return c;
}

static void pieces_free(pieces *p)
{
    for (size_t i = 0; i < p->n_owned; i++) free(p->owned[i]);
    free(p->owned);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* sp.encode(text, out_type=str) onto out: byte pieces spelled <0xXX>, a run
 * of unknown characters as its surface. The strings live in *norm. */
static bool encode_pieces(const tok_spm_proc *p, const tok_str *in, bool dummy, tok_str *norm, pieces *out)
{
    tok_toks toks = {0};
    bool ok = tok_spm_encode(p, in, dummy, norm, &toks);
    for (size_t i = 0; ok && i < toks.n; i++) {
        tok_tok k = toks.v[i];
        uint32_t os = norm->os[k.s], oe = norm->oe[k.e - 1];
        const tok_sp_piece *sp = &p->m->pieces[k.id];
        if (sp->type == TOK_SP_BYTE) ok = pieces_push(out, (piece){sp->s, sp->len, k.id, os, oe});
        else ok = pieces_push(out, (piece){norm->b + k.s, k.e - k.s, k.id == (uint32_t)p->m->unk_id ? k.id : k.id, os, oe});
    }
    free(toks.v);
    return ok;
}

/* ---- ALBERT's preprocess_text ------------------------------------------------------------- */

/* Python's str.lower() on a code point at s[i, e) of in (final sigma by its context). */
static bool py_lower_push(const tok_str *in, size_t s, size_t e, uint32_t c, tok_str *o)
{
    uint32_t os = in->os[s], oe = in->oe[e - 1];
    char buf[8];
    if (c == 0x130) return tok_str_push(o, "i\xcc\x87", 3, os, oe);
    if (c == 0x3A3) { /* Final_Sigma: a cased letter before, none after */
        bool before = false, after = false;
        for (size_t j = s; j > 0 && !before;) {
            size_t k = j - 1;
            while (k > 0 && ((uint8_t)in->b[k] & 0xC0) == 0x80) k--;
            size_t q = k;
            uint32_t pc = tok_utf8_next(in->b, in->n, &q);
            int cat = utf8proc_category((utf8proc_int32_t)pc);
            if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_LM ||
                cat == UTF8PROC_CATEGORY_SK || pc == '\'' || pc == 0x2019) {
                j = k;
                continue;
            }
            before = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
            break;
        }
        for (size_t j = e; j < in->n && !after;) {
            uint32_t nc = tok_utf8_next(in->b, in->n, &j);
            int cat = utf8proc_category((utf8proc_int32_t)nc);
            if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_LM ||
                cat == UTF8PROC_CATEGORY_SK || nc == '\'' || nc == 0x2019)
                continue;
            after = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
            break;
        }
        return tok_str_push(o, before && !after ? "\xcf\x82" : "\xcf\x83", 2, os, oe);
    }
    int k = tok_utf8_put((uint32_t)utf8proc_tolower((utf8proc_int32_t)c), buf);
    return tok_str_push(o, buf, (size_t)k, os, oe);
}

static bool py_lower(const tok_str *in, tok_str *o)
{
    bool ok = tok_str_reserve(o, in->n);
    for (size_t i = 0; ok && i < in->n;) {
        size_t s = i;
        uint32_t c = tok_utf8_next(in->b, in->n, &i);
        ok = py_lower_push(in, s, i, c, o);
    }
    return ok;
}

static bool copy_range(const tok_str *in, size_t s, size_t e, tok_str *o)
{
    for (size_t i = s; i < e; i++)
        if (!tok_str_push(o, in->b + i, 1, in->os[i], in->oe[i])) return false;
    return true;
}

static bool albert_preprocess(const tok_spm *sp, const tok_str *in, tok_str *o)
{
    tok_str a = {0}, b = {0};
    bool ok = tok_str_reserve(&a, in->n);
    /* " ".join(text.strip().split()) */
    if (ok && sp->remove_space) {
        bool gap = false;
        for (size_t i = 0; ok && i < in->n;) {
            size_t s = i;
            uint32_t c = tok_utf8_next(in->b, in->n, &i);
            if (py_space(c)) {
                gap = a.n > 0;
                continue;
            }
            if (gap) ok = tok_str_push(&a, " ", 1, in->os[s], in->os[s]);
            gap = false;
            if (ok) ok = copy_range(in, s, i, &a);
        }
    } else if (ok) {
        ok = copy_range(in, 0, in->n, &a);
    }
    /* `` and '' become " */
    for (size_t i = 0; ok && i < a.n;) {
        if (i + 1 < a.n && ((a.b[i] == '`' && a.b[i + 1] == '`') || (a.b[i] == '\'' && a.b[i + 1] == '\''))) {
            ok = tok_str_push(&b, "\"", 1, a.os[i], a.oe[i + 1]);
            i += 2;
        } else {
            ok = copy_range(&a, i, i + 1, &b);
            i++;
        }
    }
    tok_str_free(&a);
    /* NFKD without combining marks */
    if (ok && !sp->keep_accents) {
        tok_str c = {0};
        for (size_t i = 0; ok && i < b.n;) {
            size_t s = i;
            uint32_t ch = tok_utf8_next(b.b, b.n, &i);
            if (ch < 0x80) {
                ok = copy_range(&b, s, i, &c);
                continue;
            }
            utf8proc_int32_t dec[32];
            int opt = UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
            utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)ch, dec, 32, (utf8proc_option_t)opt, NULL);
            if (k < 0 || k > 32) k = 1, dec[0] = (utf8proc_int32_t)ch;
            for (utf8proc_ssize_t j = 0; ok && j < k; j++) {
                if (utf8proc_get_property(dec[j])->combining_class != 0) continue;
                char buf[8];
                int n = tok_utf8_put((uint32_t)dec[j], buf);
                ok = tok_str_push(&c, buf, (size_t)n, b.os[s], b.oe[i - 1]);
            }
        }
        tok_str_free(&b);
        b = c;
    }
    if (ok && sp->lower) ok = py_lower(&b, o);
    else if (ok) ok = copy_range(&b, 0, b.n, o);
    tok_str_free(&b);
    return ok;
}

/* Python's str.isdigit on the code point that ends at s[n]. */
static bool last_is_digit(const char *s, size_t n)
{
    size_t k = n - 1;
    while (k > 0 && ((uint8_t)s[k] & 0xC0) == 0x80) k--;
    size_t q = k;
    uint32_t c = tok_utf8_next(s, n, &q);
    int cat = utf8proc_category((utf8proc_int32_t)c);
    if (cat == UTF8PROC_CATEGORY_ND) return true;
    if (cat != UTF8PROC_CATEGORY_NO) return false;
    utf8proc_int32_t dec[8];
    utf8proc_ssize_t m = utf8proc_decompose_char((utf8proc_int32_t)c, dec, 8, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, NULL);
    return m == 1 && dec[0] >= '0' && dec[0] <= '9';
}

static size_t cp_count(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((uint8_t)s[i] & 0xC0) != 0x80;
    return k;
}

/* ALBERT: "9," pieces are split as BERT's README asks ("9,9" -> "▁9", ",", "9"). */
static bool albert_digits(const tok_spm *sp, pieces *ps)
{
    pieces out = {0};
    out.owned = ps->owned, out.n_owned = ps->n_owned, out.cap_owned = ps->cap_owned;
    ps->owned = NULL, ps->n_owned = ps->cap_owned = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < ps->n; i++) {
        piece p = ps->v[i];
        if (!(cp_count(p.s, p.len) > 1 && p.s[p.len - 1] == ',' && last_is_digit(p.s, p.len - 1))) {
            ok = pieces_push(&out, p);
            continue;
        }
        /* EncodeAsPieces(piece[:-1].replace("▁", "")) */
        tok_str t = {0}, norm = {0};
        for (size_t k = 0; ok && k < p.len - 1;) {
            if (k + 3 <= p.len - 1 && !memcmp(p.s + k, SPIECE, 3)) k += 3;
            else ok = tok_str_push(&t, p.s + k, 1, p.os, p.oe), k++;
        }
        size_t first = out.n;
        if (ok) ok = encode_pieces(&sp->proc, &t, sp->proc.m->norm.add_dummy_prefix, &norm, &out);
        for (size_t k = first; ok && k < out.n; k++) { /* the strings must outlive norm */
            char *c = pieces_keep(&out, out.v[k].s, out.v[k].len);
            if (!c) ok = false;
            else out.v[k].s = c, out.v[k].os = p.os, out.v[k].oe = p.oe;
        }
        if (ok && out.n > first && (p.len < 3 || memcmp(p.s, SPIECE, 3)) && out.v[first].len >= 3 && !memcmp(out.v[first].s, SPIECE, 3)) {
            if (out.v[first].len == 3) {
                memmove(out.v + first, out.v + first + 1, (out.n - first - 1) * sizeof *out.v);
                out.n--;
            } else {
                out.v[first].s += 3, out.v[first].len -= 3, out.v[first].id = -1;
            }
        }
        if (ok) ok = pieces_push(&out, (piece){",", 1, -1, p.os, p.oe});
        tok_str_free(&t);
        tok_str_free(&norm);
    }
    free(ps->v);
    *ps = out;
    return ok;
}

/* ---- one segment -------------------------------------------------------------------------- */

static int64_t piece_to_id(const tok_spm *sp, const struct tok_tokenizer *t, const piece *p)
{
    if (sp->cls == TOK_SPM_MARIAN) {
        int64_t id = tok_vocab_find(&t->vocab, p->s, p->len);
        return id >= 0 ? id : t->unk_id;
    }
    int64_t id = p->id >= 0 ? p->id : tok_spm_piece_id(&sp->proc, p->s, p->len);
    if (sp->cls == TOK_SPM_XLMR) {
        /* fairseq's four specials first; spm's unknown (0) is theirs too */
        int64_t named = tok_vocab_find(&t->vocab, p->s, p->len);
        if (named >= 0 && named < 4) return named;
        return id > 0 ? id + sp->offset : t->unk_id;
    }
    return id;
}

bool tok_spm_tokenize(const tok_spm *sp, const struct tok_tokenizer *t, const tok_str *seg, bool first, tok_toks *out)
{
    (void)first;
    pieces ps = {0};
    tok_str pre = {0}, norm = {0}, buf = {0};
    const tok_str *text = seg;
    bool ok = true;
    if (sp->cls == TOK_SPM_ALBERT) {
        ok = albert_preprocess(sp, seg, &pre);
        text = &pre;
    } else if (sp->cls == TOK_SPM_DEBERTA && sp->lower) {
        ok = py_lower(seg, &pre);
        text = &pre;
    }
    if (ok && sp->cls == TOK_SPM_MARIAN && text->n >= 2 && !memcmp(text->b, ">>", 2)) {
        /* a language code such as >>fr<< is a token of its own */
        const char *end = NULL;
        for (size_t i = 2; i + 1 < text->n && !end; i++)
            if (text->b[i] == '<' && text->b[i + 1] == '<') end = text->b + i + 2;
        if (end) {
            size_t cl = (size_t)(end - text->b);
            ok = pieces_push(&ps, (piece){text->b, (uint32_t)cl, -1, text->os[0], text->oe[cl - 1]});
            if (ok) ok = copy_range(text, cl, text->n, &buf);
            text = &buf;
        }
    }
    bool prefixed = !sp->legacy && (sp->cls == TOK_SPM_T5 || sp->cls == TOK_SPM_LLAMA) && text->n &&
                    ((text->n >= 3 && !memcmp(text->b, SPIECE, 3)) || text->b[0] == ' ');
    bool dummy = sp->proc.m->norm.add_dummy_prefix && (sp->legacy || (sp->cls != TOK_SPM_T5 && sp->cls != TOK_SPM_LLAMA));
    if (ok && prefixed) {
        /* encode("<unk>" + text) and drop the unk token's pieces */
        tok_str u = {0};
        size_t ul = strlen(sp->unk_token);
        ok = tok_str_push(&u, sp->unk_token, ul, text->os[0], text->os[0]) && copy_range(text, 0, text->n, &u);
        size_t before = ps.n;
        if (ok) ok = encode_pieces(&sp->proc, &u, dummy, &norm, &ps);
        if (ok && ps.n - before >= sp->unk_len) {
            memmove(ps.v + before, ps.v + before + sp->unk_len, (ps.n - before - sp->unk_len) * sizeof *ps.v);
            ps.n -= sp->unk_len;
        }
        tok_str_free(&u); /* the pieces point into norm */
    } else if (ok) {
        ok = encode_pieces(&sp->proc, text, dummy, &norm, &ps);
    }
    if (ok && sp->cls == TOK_SPM_ALBERT) ok = albert_digits(sp, &ps);
    for (size_t i = 0; ok && i < ps.n; i++) {
        int64_t id = piece_to_id(sp, t, &ps.v[i]);
        if (id >= 0) ok = tok_toks_push(out, (uint32_t)id, ps.v[i].os, ps.v[i].oe); /* no unknown token: dropped */
    }
    pieces_free(&ps);
    tok_str_free(&pre);
    tok_str_free(&norm);
    tok_str_free(&buf);
    return ok;
}

/* ---- decoding ------------------------------------------------------------------------------ */

static bool is_special(const struct tok_tokenizer *t, uint32_t id)
{
    for (uint32_t i = 0; i < t->n_added; i++)
        if (t->added[i].id == id && t->added[i].special) return true;
    return false;
}

/* Python's str.strip() of o[from, n). */
static void py_strip(tok_buf *o, size_t from)
{
    size_t s = from, e = o->n;
    while (s < e) {
        size_t j = s;
        if (!py_space(tok_utf8_next(o->b, e, &j))) break;
        s = j;
    }
    while (e > s) {
        size_t j = e - 1;
        while (j > s && ((uint8_t)o->b[j] & 0xC0) == 0x80) j--;
        size_t q = j;
        if (!py_space(tok_utf8_next(o->b, e, &q))) break;
        e = j;
    }
    memmove(o->b + from, o->b + s, e - s);
    o->n = from + e - s;
    if (o->b) o->b[o->n] = 0;
}

static bool decode_run(const tok_spm *sp, const char *const *pcs, const uint32_t *lens, size_t n, tok_buf *o)
{
    if (!n) return tok_buf_put(o, "", 0);
    if (sp->cls == TOK_SPM_XLMR) { /* "".join(tokens).replace("▁", " ") */
        for (size_t i = 0; i < n; i++)
            for (uint32_t k = 0; k < lens[i];) {
                bool ok;
                if (k + 3 <= lens[i] && !memcmp(pcs[i] + k, SPIECE, 3)) ok = tok_buf_put(o, " ", 1), k += 3;
                else ok = tok_buf_put(o, pcs[i] + k, 1), k++;
                if (!ok) return false;
            }
        return true;
    }
    return tok_spm_decode(sp->has_target ? &sp->tproc : &sp->proc, pcs, lens, n, o);
}

bool tok_spm_decode_ids(const tok_spm *sp, const struct tok_tokenizer *t, const uint32_t *ids, size_t n, bool skip_special, tok_buf *o)
{
    const char **pcs = malloc((n + 1) * sizeof *pcs);
    uint32_t *lens = malloc((n + 1) * sizeof *lens);
    bool ok = pcs && lens && tok_buf_put(o, "", 0);
    size_t start = o->n, m = 0, run = 0;
    bool prev_special = false;
    for (size_t i = 0; ok && i < n; i++) {
        uint32_t id = ids[i];
        bool special = is_special(t, id);
        if (skip_special && special) continue;
        const char *s = t->vocab.tok[id];
        uint32_t l = t->vocab.len[id];
        if (m == 0 && (sp->cls == TOK_SPM_T5 || sp->cls == TOK_SPM_LLAMA) && sp->prefix_space && l >= 3 && !memcmp(s, SPIECE, 3))
            s += 3, l -= 3; /* the prefix space added when encoding */
        if (special) {
            /* flush the run through the model, then the token as it is */
            bool space = sp->cls == TOK_SPM_LLAMA ? (!prev_special && m != 0 && sp->legacy)
                                                  : (sp->cls != TOK_SPM_MARIAN && !prev_special);
            if (space && sp->cls != TOK_SPM_XLMR && sp->cls != TOK_SPM_GENERIC) ok = tok_buf_put(o, " ", 1);
            if (ok) ok = decode_run(sp, pcs + run, lens + run, m - run, o) && tok_buf_put(o, s, l);
            if (ok && sp->cls == TOK_SPM_MARIAN) ok = tok_buf_put(o, " ", 1);
            run = m + 1;
            prev_special = true;
        } else {
            if (sp->cls == TOK_SPM_LLAMA && prev_special && m == 1 && sp->prefix_space && !(l >= 3 && !memcmp(s, SPIECE, 3)))
                ok = tok_buf_put(o, " ", 1);
            prev_special = false;
        }
        pcs[m] = s, lens[m] = l, m++;
    }
    if (ok) ok = decode_run(sp, pcs + run, lens + run, m - run, o);
    if (ok && sp->cls == TOK_SPM_MARIAN) { /* then U+2581 -> " " over the whole */
        tok_buf r = {0};
        ok = tok_buf_put(&r, "", 0);
        for (size_t k = start; ok && k < o->n;) {
            if (k + 3 <= o->n && !memcmp(o->b + k, SPIECE, 3)) ok = tok_buf_put(&r, " ", 1), k += 3;
            else ok = tok_buf_put(&r, o->b + k, 1), k++;
        }
        if (ok) {
            o->n = start;
            ok = tok_buf_put(o, r.b, r.n);
        }
        free(r.b);
    }
    if (ok && sp->cls != TOK_SPM_LLAMA && sp->cls != TOK_SPM_GENERIC) py_strip(o, start);
    free(pcs);
    free(lens);
    return ok;
}

void tok_spm_free(tok_spm *sp)
{
    if (!sp) return;
    tok_spm_proc_free(&sp->proc);
    tok_spm_proc_free(&sp->tproc);
    tok_spm_model_free(&sp->model);
    tok_spm_model_free(&sp->tmodel);
    free(sp);
}
