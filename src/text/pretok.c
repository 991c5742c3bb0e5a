/* Pre-tokenizers: split each piece of the normalized string into smaller
 * pieces, with the semantics of HF `tokenizers` (BertPreTokenizer, ByteLevel,
 * Split with its five delimiter behaviours, Whitespace, WhitespaceSplit,
 * Metaspace). */
#include "text.h"

#include <stdlib.h>
#include <string.h>

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static bool push(tok_pieces *p, uint32_t s, uint32_t e)
{
    if (s == e) return true; /* HF drops empty pieces */
    if (!base_grow((void **)&p->v, &p->cap, p->n + 1, sizeof *p->v)) return false;
    p->v[p->n++] = (tok_piece){s, e};
    return true;
}

static bool bert_split(const tok_str *str, tok_piece in, tok_pieces *out)
{
    size_t i = in.s, word = in.s;
    while (i < in.e) {
        size_t at = i;
        uint32_t c = (uint8_t)str->b[i] < 0x80 ? (uint8_t)str->b[i++] : tok_utf8_next(str->b, in.e, &i);
        if (tok_is_whitespace(c)) {
            if (!push(out, (uint32_t)word, (uint32_t)at)) return false;
            word = i;
        } else if (tok_is_punctuation(c)) {
            if (!push(out, (uint32_t)word, (uint32_t)at) || !push(out, (uint32_t)at, (uint32_t)i)) return false;
            word = i;
        }
    }
    return push(out, (uint32_t)word, (uint32_t)in.e);
}

static bool whitespace_split(const tok_str *str, tok_piece in, tok_pieces *out)
{
    size_t i = in.s, word = in.s;
    while (i < in.e) {
        size_t at = i;
        if (tok_is_whitespace(tok_utf8_next(str->b, in.e, &i))) {
            if (!push(out, (uint32_t)word, (uint32_t)at)) return false;
            word = i;
        }
    }
    return push(out, (uint32_t)word, (uint32_t)in.e);
}

/* One segment of a piece: a regex match or the text between matches. */
typedef struct seg {
    uint32_t s, e;
    bool delim;
} seg;

static bool regex_split(const tok_str *str, tok_piece in, tok_regex *re, tok_split_behavior how, bool invert,
                        tok_pieces *out)
{
    seg *v = NULL;
    size_t n = 0, cap = 0, at = in.s, ms, me;
    const char *base = str->b + in.s;
    size_t len = in.e - in.s;
    bool ok = true;
    at = 0;
    while (ok && at < len && tok_regex_find(re, base, len, at, &ms, &me)) {
        if (me == ms) { /* an empty match delimits nothing: step past a character */
            size_t j = ms;
            if (j >= len) break;
            tok_utf8_next(base, len, &j);
            if (!base_grow((void **)&v, &cap, n + 1, sizeof *v)) ok = false;
            else v[n++] = (seg){(uint32_t)(in.s + at), (uint32_t)(in.s + j), invert};
            at = j;
            continue;
        }
        if (!base_grow((void **)&v, &cap, n + 2, sizeof *v)) {
            ok = false;
            break;
        }
        if (ms > at) v[n++] = (seg){(uint32_t)(in.s + at), (uint32_t)(in.s + ms), invert};
        v[n++] = (seg){(uint32_t)(in.s + ms), (uint32_t)(in.s + me), !invert};
        at = me;
    }
    if (ok && at < len) {
        if (!base_grow((void **)&v, &cap, n + 1, sizeof *v)) ok = false;
        else v[n++] = (seg){(uint32_t)(in.s + at), in.e, invert};
    }
    if (!ok) {
        free(v);
        return false;
    }
    /* Delimiter behaviours, as tokenizers' NormalizedString::split. */
    size_t first = out->n;
    bool prev_delim = false;
    switch (how) {
    case TOK_SPLIT_REMOVED:
        for (size_t k = 0; k < n && ok; k++)
            if (!v[k].delim) ok = push(out, v[k].s, v[k].e);
        break;
    case TOK_SPLIT_ISOLATED:
        for (size_t k = 0; k < n && ok; k++) ok = push(out, v[k].s, v[k].e);
        break;
    case TOK_SPLIT_MERGED_PREV:
        for (size_t k = 0; k < n && ok; k++) {
            if (v[k].delim && !prev_delim && out->n > first) out->v[out->n - 1].e = v[k].e;
            else ok = push(out, v[k].s, v[k].e);
            prev_delim = v[k].delim;
        }
        break;
    case TOK_SPLIT_MERGED_NEXT:
        /* Backwards: a delimiter joins the piece after it. */
        for (size_t k = n; k-- > 0 && ok;) {
            if (v[k].delim && !prev_delim && out->n > first) out->v[out->n - 1].s = v[k].s;
            else ok = push(out, v[k].s, v[k].e);
            prev_delim = v[k].delim;
        }
        for (size_t a = first, b = out->n; ok && a + 1 < b; a++, b--) {
            tok_piece t = out->v[a];
            out->v[a] = out->v[b - 1];
            out->v[b - 1] = t;
        }
        break;
    case TOK_SPLIT_CONTIGUOUS:
        for (size_t k = 0; k < n && ok; k++) {
            if (k > 0 && v[k].delim == prev_delim && out->n > first) out->v[out->n - 1].e = v[k].e;
            else ok = push(out, v[k].s, v[k].e);
            prev_delim = v[k].delim;
        }
        break;
    }
    free(v);
    return ok;
}

/* Metaspace: spaces become the replacement, which is prepended (always, or
 * only to the text's first piece) unless the piece starts with it; split
 * before each replacement (MergedWithNext). The rewritten piece is appended
 * to str. */
static bool metaspace(const tok_pre *p, tok_str *str, tok_piece in, tok_pieces *out)
{
    const char *r = p->replacement;
    size_t rl = strlen(r);
    /* tokenizers checks after replacing spaces; the prepended replacement
     * shares the first character's offsets (NormalizedString::prepend) */
    bool starts = in.e > in.s && (str->b[in.s] == ' ' || (in.e - in.s >= rl && !memcmp(str->b + in.s, r, rl)));
    bool prepend = !starts && (p->prepend == TOK_PREPEND_ALWAYS || (p->prepend == TOK_PREPEND_FIRST && str->os[in.s] == 0));
    uint32_t at = (uint32_t)str->n;
    if (prepend && !tok_str_push(str, r, rl, str->os[in.s], str->oe[in.s])) return false;
    for (uint32_t i = in.s; i < in.e; i++) {
        char c = str->b[i]; /* a copy: pushing may move str->b */
        if (!(c == ' ' ? tok_str_push(str, r, rl, str->os[i], str->oe[i]) : tok_str_push(str, &c, 1, str->os[i], str->oe[i]))) return false;
    }
    if (!tok_str_reserve(str, str->n)) return false;
    str->b[str->n] = 0;
    uint32_t end = (uint32_t)str->n, start = at;
    if (!p->split) return push(out, at, end);
    for (uint32_t i = at + 1; i + rl <= end; i++)
        if (!memcmp(str->b + i, r, rl)) {
            if (!push(out, start, i)) return false;
            start = i;
            i += (uint32_t)rl - 1;
        }
    return push(out, start, end);
}

bool tok_pretokenize(const tok_pre *p, tok_str *str, tok_pieces *pieces, tok_pieces *scratch)
{
    scratch->n = 0;
    bool ok = true;
    for (size_t k = 0; k < pieces->n && ok; k++) {
        tok_piece in = pieces->v[k];
        switch (p->kind) {
        case TOK_PRE_BERT:
            ok = bert_split(str, in, scratch);
            break;
        case TOK_PRE_WHITESPACE_SPLIT:
            ok = whitespace_split(str, in, scratch);
            break;
        case TOK_PRE_WHITESPACE:
            ok = regex_split(str, in, p->pattern, TOK_SPLIT_REMOVED, true, scratch);
            break;
        case TOK_PRE_SPLIT:
            ok = regex_split(str, in, p->pattern, p->behavior, p->invert, scratch);
            break;
        case TOK_PRE_BYTE_LEVEL:
            if (p->add_prefix_space && str->b[in.s] != ' ') {
                /* A copy of the piece with a leading space, at the end of str. */
                uint32_t at = (uint32_t)str->n;
                if (!tok_str_push(str, " ", 1, str->os[in.s], str->oe[in.s]) || !tok_str_reserve(str, str->n + (in.e - in.s))) return false;
                memcpy(str->b + str->n, str->b + in.s, in.e - in.s);
                memcpy(str->os + str->n, str->os + in.s, (in.e - in.s) * 4);
                memcpy(str->oe + str->n, str->oe + in.s, (in.e - in.s) * 4);
                str->n += in.e - in.s;
                str->b[str->n] = 0;
                in = (tok_piece){at, (uint32_t)str->n};
            }
            ok = p->pattern ? regex_split(str, in, p->pattern, TOK_SPLIT_ISOLATED, false, scratch) : push(scratch, in.s, in.e);
            break;
        case TOK_PRE_METASPACE:
            ok = metaspace(p, str, in, scratch);
            break;
        }
    }
    if (!ok) return false;
    tok_pieces t = *pieces;
    *pieces = *scratch;
    *scratch = t;
    return true;
}

const char *tok_gpt2_pattern(void) { return GPT2_PATTERN; }
