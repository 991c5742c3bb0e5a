/* SentencePiece without libsentencepiece: the `.model` protobuf (the few
 * fields encoding needs, every length checked), the precompiled character
 * map (a darts-clone double array, also HF's Precompiled normalizer), a byte
 * trie over the pieces, the Unigram Viterbi (sentencepiece's float arithmetic
 * and user-defined bonus, or tokenizers' f64), sentencepiece's own
 * normalizer and BPE, and its decoder. Hostile files are expected: nothing
 * here reads past what the file holds. */
#include "text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- protobuf wire format ------------------------------------------------------------------ */

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static bool pb_varint(pb *r, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return false;
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* The next field: its number and wire type. */
static bool pb_key(pb *r, uint32_t *field, uint32_t *wire)
{
    uint64_t k;
    if (!pb_varint(r, &k) || (k >> 3) == 0 || (k >> 3) > 0x1FFFFFFF) return false;
    *field = (uint32_t)(k >> 3), *wire = (uint32_t)(k & 7);
    return true;
}

static bool pb_bytes(pb *r, const uint8_t **data, size_t *n)
{
    uint64_t len;
    if (!pb_varint(r, &len) || len > (uint64_t)(r->end - r->p)) return false;
    *data = r->p, *n = (size_t)len;
    r->p += len;
    return true;
}

static bool pb_fixed32(pb *r, uint32_t *v)
{
    if (r->end - r->p < 4) return false;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return true;
}

static bool pb_skip(pb *r, uint32_t wire)
{
    uint64_t v;
    const uint8_t *d;
    size_t n;
    switch (wire) {
    case 0: return pb_varint(r, &v);
    case 1:
        if (r->end - r->p < 8) return false;
        r->p += 8;
        return true;
    case 2: return pb_bytes(r, &d, &n);
    case 5: return pb_fixed32(r, (uint32_t *)&v);
    default: return false; /* groups are not in these messages */
    }
}

/* ---- the precompiled character map --------------------------------------------------------- */

static inline uint32_t unit_at(const tok_charsmap *cm, uint32_t i)
{
    const uint8_t *u = cm->units + 4 * (size_t)i;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static inline uint32_t unit_label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
static inline bool unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & ((1u << 31) - 1); }

bool tok_charsmap_init(tok_charsmap *cm, const void *data, size_t n, bool strict, const char **why)
{
    memset(cm, 0, sizeof *cm);
    if (n <= 4) return *why = "shorter than its 4-byte header", false;
    const uint8_t *b = data;
    uint32_t trie = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    if (trie >= n - 4 + 1 || trie > n - 4) return *why = "its trie size is past the end of the map", false;
    if (trie % 4 || trie == 0) return *why = "its trie size is not a whole number of 4-byte units", false;
    if (strict) {
        /* sentencepiece's own checks */
        if (trie == n - 4) return *why = "it has no replacement strings", false;
        if (trie % 1024) return *why = "its trie size is not a multiple of 1024", false;
        if (b[n - 1] != 0) return *why = "its replacement strings do not end in NUL", false;
    }
    cm->blob = malloc(n);
    if (!cm->blob) return *why = "out of host memory", false;
    memcpy(cm->blob, data, n);
    cm->units = cm->blob + 4;
    cm->n_units = trie / 4;
    cm->norm = (const char *)cm->blob + 4 + trie;
    cm->n_norm = n - 4 - trie;
    return true;
}

void tok_charsmap_free(tok_charsmap *cm)
{
    free(cm->blob);
    memset(cm, 0, sizeof *cm);
}

size_t tok_charsmap_prefixes(const tok_charsmap *cm, const char *key, size_t n, uint32_t *lens, uint32_t *vals, size_t max)
{
    if (!cm->n_units) return 0;
    size_t found = 0;
    uint32_t pos = unit_offset(unit_at(cm, 0));
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)key[i];
        pos ^= c;
        if (pos >= cm->n_units) break;
        uint32_t u = unit_at(cm, pos);
        if (unit_label(u) != c) break;
        pos ^= unit_offset(u);
        if (pos >= cm->n_units) break;
        if (unit_has_leaf(u)) {
            if (found < max) lens[found] = (uint32_t)i + 1, vals[found] = unit_value(unit_at(cm, pos));
            found++;
        }
    }
    return found < max ? found : max;
}

const char *tok_charsmap_string(const tok_charsmap *cm, uint32_t val, size_t *len)
{
    if (val >= cm->n_norm) return NULL;
    const char *s = cm->norm + val, *z = memchr(s, 0, cm->n_norm - val);
    if (!z || !tok_utf8_valid(s, (size_t)(z - s))) return NULL; /* not terminated inside the map, or not UTF-8: no rule */
    *len = (size_t)(z - s);
    return s;
}

/* ---- a byte trie over the pieces ----------------------------------------------------------- */

static uint64_t edge_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static bool trie_rehash(tok_trie *t, size_t slots)
{
    uint64_t *keys = calloc(slots, sizeof *keys);
    uint32_t *child = malloc(slots * sizeof *child);
    if (!keys || !child) return free(keys), free(child), false;
    for (size_t i = 0; t->keys && i <= t->mask; i++) {
        if (!t->keys[i]) continue;
        size_t h = edge_hash(t->keys[i]) & (slots - 1);
        while (keys[h]) h = (h + 1) & (slots - 1);
        keys[h] = t->keys[i], child[h] = t->child[i];
    }
    free(t->keys);
    free(t->child);
    t->keys = keys, t->child = child, t->mask = slots - 1;
    return true;
}

uint32_t tok_trie_step(const tok_trie *t, uint32_t node, uint8_t b)
{
    if (!t->keys) return 0;
    uint64_t key = ((uint64_t)node << 8 | b) + 1;
    for (size_t h = edge_hash(key) & t->mask; t->keys[h]; h = (h + 1) & t->mask)
        if (t->keys[h] == key) return t->child[h];
    return 0;
}

bool tok_trie_insert(tok_trie *t, const char *s, size_t n, int32_t value)
{
    if (!t->n_nodes) {
        t->value = malloc(64 * sizeof *t->value);
        if (!t->value) return false;
        t->cap = 64, t->n_nodes = 1, t->value[0] = -1;
    }
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t next = tok_trie_step(t, node, (uint8_t)s[i]);
        if (!next) {
            if (t->n_nodes == t->cap) {
                int32_t *v = realloc(t->value, 2 * (size_t)t->cap * sizeof *v);
                if (!v) return false;
                t->value = v, t->cap *= 2;
            }
            if (!t->keys || 2 * (t->used + 1) > t->mask + 1)
                if (!trie_rehash(t, t->keys ? 2 * (t->mask + 1) : 256)) return false;
            next = t->n_nodes++;
            t->value[next] = -1;
            uint64_t key = ((uint64_t)node << 8 | (uint8_t)s[i]) + 1;
            size_t h = edge_hash(key) & t->mask;
            while (t->keys[h]) h = (h + 1) & t->mask;
            t->keys[h] = key, t->child[h] = next, t->used++;
        }
        node = next;
    }
    if (t->value[node] < 0) t->value[node] = value; /* the first id keeps a duplicate spelling */
    return true;
}

void tok_trie_free(tok_trie *t)
{
    free(t->keys);
    free(t->child);
    free(t->value);
    memset(t, 0, sizeof *t);
}

/* ---- the Unigram Viterbi --------------------------------------------------------------------- */

/* sentencepiece's string_util::OneCharLen: from the first byte alone. */
static inline size_t one_char_len(uint8_t b) { return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[b >> 4]; }

#define SPM_SCORE_RESET 100000.0

typedef struct best_node {
    int64_t id;
    double score;
    int64_t start; /* -1: not reached */
} best_node;

bool tok_unigram_encode(const tok_unigram *u, const char *s, size_t n, tok_toks *out)
{
    if (!n) return true;
    best_node *best = malloc((n + 1) * sizeof *best);
    if (!best) return false;
    for (size_t i = 0; i <= n; i++) best[i] = (best_node){-1, 0.0, -1};
    const double unk_score = u->unk_score;
    size_t frontier = 0; /* the furthest end reached */
    for (size_t start = 0; start < n;) {
        double here = best[start].score;
        if (u->spm && (here < -SPM_SCORE_RESET || here > SPM_SCORE_RESET)) {
            /* sentencepiece 0.2.3 keeps its float path scores small: past 1e5
             * the reached scores from here on are taken relative to here */
            float offset = (float)here;
            for (size_t i = start; i <= frontier; i++)
                if (i == start || best[i].start >= 0) best[i].score = (double)((float)best[i].score - offset);
            here = 0.0;
        }
        bool single = false;
        size_t mblen = one_char_len((uint8_t)s[start]);
        if (mblen > n - start) mblen = n - start;
        uint32_t node = 0;
        for (size_t k = start; k < n; k++) {
            node = tok_trie_step(&u->trie, node, (uint8_t)s[k]);
            if (!node) break;
            int32_t id = u->trie.value[node];
            if (id < 0) continue;
            uint8_t type = u->type ? u->type[id] : TOK_SP_NORMAL;
            if (type == TOK_SP_UNUSED) continue;
            size_t len = k + 1 - start;
            if (k + 1 > frontier) frontier = k + 1;
            double cand;
            if (u->spm) {
                /* sentencepiece: float scores and sums; a user-defined symbol
                 * scores 0.1 * (length - 1) */
                float score = type == TOK_SP_USER ? (float)(0.1 * (double)(len - 1)) : (float)u->score[id];
                cand = (double)(score + (float)here);
            } else {
                cand = u->score[id] + here;
            }
            best_node *t = &best[k + 1];
            if (t->start < 0 || cand > t->score) t->score = cand, t->start = (int64_t)start, t->id = id;
            if (len == mblen) single = true;
        }
        if (!single) {
            best_node *t = &best[start + mblen];
            if (start + mblen > frontier) frontier = start + mblen;
            double cand = u->spm ? (double)((float)unk_score + (float)here) : unk_score + here;
            if (t->start < 0 || cand > t->score) t->score = cand, t->start = (int64_t)start, t->id = u->unk_id;
        }
        start += mblen;
    }
    /* backtrack */
    size_t count = 0;
    for (size_t e = n; e > 0; e = (size_t)best[e].start) count++;
    bool ok = base_grow((void **)&out->v, &out->cap, out->n + count, sizeof *out->v);
    if (ok) {
        out->n += count;
        size_t k = out->n;
        for (size_t e = n; e > 0; e = (size_t)best[e].start) {
            int64_t id = best[e].id;
            out->v[--k] = (tok_tok){id < 0 ? UINT32_MAX : (uint32_t)id, (uint32_t)best[e].start, (uint32_t)e};
        }
    }
    free(best);
    return ok;
}

void tok_unigram_free(tok_unigram *u)
{
    tok_trie_free(&u->trie);
    free(u->score);
    free(u->type);
    memset(u, 0, sizeof *u);
}

/* ---- the .model file ----------------------------------------------------------------------- */

int tok_byte_piece(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    return s[3] && s[4] && hi && lo ? (int)((hi - hex) * 16 + (lo - hex)) : -1;
}

static vkf_status bad(base_diag *d, const char *file, const char *what)
{
    return base_fail(d, VKF_ERROR_FORMAT, "%s: not a SentencePiece model: %s", file, what);
}

static vkf_status parse_piece(base_diag *d, const char *file, const uint8_t *data, size_t n, tok_sp_piece *out)
{
    pb r = {data, data + n};
    out->type = TOK_SP_NORMAL;
    const uint8_t *s = NULL;
    size_t sl = 0;
    while (r.p < r.end) {
        uint32_t f, w;
        if (!pb_key(&r, &f, &w)) return bad(d, file, "a piece is truncated");
        if (f == 1 && w == 2) {
            if (!pb_bytes(&r, &s, &sl)) return bad(d, file, "a piece's string runs past its message");
        } else if (f == 2 && w == 5) {
            uint32_t bits;
            if (!pb_fixed32(&r, &bits)) return bad(d, file, "a piece's score is truncated");
            memcpy(&out->score, &bits, 4);
        } else if (f == 3 && w == 0) {
            uint64_t v;
            if (!pb_varint(&r, &v)) return bad(d, file, "a piece's type is truncated");
            if (v < TOK_SP_NORMAL || v > TOK_SP_BYTE) return base_fail(d, VKF_ERROR_FORMAT, "%s: a piece has type %llu (1 to 6)", file, (unsigned long long)v);
            out->type = (uint8_t)v;
        } else if (!pb_skip(&r, w)) {
            return bad(d, file, "a piece's field is truncated");
        }
    }
    if (!s || !sl) return bad(d, file, "a piece is empty");
    if (sl >= 8000) return base_fail(d, VKF_ERROR_FORMAT, "%s: a piece of %zu bytes (sentencepiece's limit: under 8000)", file, sl);
    if (!tok_utf8_valid((const char *)s, sl)) return base_fail(d, VKF_ERROR_FORMAT, "%s: a piece is not valid UTF-8", file);
    if (!isfinite(out->score)) return base_fail(d, VKF_ERROR_FORMAT, "%s: piece '%.*s' has a score that is not a number", file, (int)sl, s);
    out->s = malloc(sl + 1);
    if (!out->s) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    memcpy(out->s, s, sl);
    out->s[sl] = 0;
    out->len = (uint32_t)sl;
    return VKF_OK;
}

static vkf_status parse_trainer(base_diag *d, const char *file, const uint8_t *data, size_t n, tok_spm_model *m)
{
    pb r = {data, data + n};
    while (r.p < r.end) {
        uint32_t f, w;
        uint64_t v;
        const uint8_t *s;
        size_t sl;
        if (!pb_key(&r, &f, &w)) return bad(d, file, "the trainer spec is truncated");
        if (w == 0 && (f == 3 || f == 24 || f == 35 || (f >= 40 && f <= 43))) {
            if (!pb_varint(&r, &v)) return bad(d, file, "the trainer spec is truncated");
            if (f == 3) m->model_type = (int)(v > 100 ? 100 : v);
            else if (f == 24) m->treat_ws_suffix = v != 0;
            else if (f == 35) m->byte_fallback = v != 0;
            else {
                int32_t id = (int32_t)(uint32_t)v; /* negative ids are 10-byte varints */
                int32_t *dst[] = {&m->unk_id, &m->bos_id, &m->eos_id, &m->pad_id};
                *dst[f - 40] = id;
            }
        } else if (f == 44 && w == 2) {
            if (!pb_bytes(&r, &s, &sl)) return bad(d, file, "the trainer spec is truncated");
            free(m->unk_surface);
            m->unk_surface = malloc(sl + 1);
            if (!m->unk_surface) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
            memcpy(m->unk_surface, s, sl);
            m->unk_surface[sl] = 0;
        } else if (!pb_skip(&r, w)) {
            return bad(d, file, "the trainer spec is truncated");
        }
    }
    return VKF_OK;
}

static vkf_status parse_normalizer(base_diag *d, const char *file, const uint8_t *data, size_t n, tok_spm_norm *nz)
{
    pb r = {data, data + n}; /* a repeated spec merges into the earlier one, as protobuf merges */
    while (r.p < r.end) {
        uint32_t f, w;
        uint64_t v;
        const uint8_t *s;
        size_t sl;
        if (!pb_key(&r, &f, &w)) return bad(d, file, "the normalizer spec is truncated");
        if (w == 2 && (f == 1 || f == 2)) {
            if (!pb_bytes(&r, &s, &sl)) return bad(d, file, "the normalizer spec is truncated");
            if (f == 1) {
                snprintf(nz->name, sizeof nz->name, "%.*s", (int)(sl < sizeof nz->name ? sl : sizeof nz->name - 1), s);
            } else {
                const char *why;
                tok_charsmap_free(&nz->charsmap);
                if (!sl) continue;
                if (!tok_charsmap_init(&nz->charsmap, s, sl, true, &why))
                    return base_fail(d, VKF_ERROR_FORMAT, "%s: the precompiled character map is broken: %s", file, why);
            }
        } else if (w == 0 && f >= 3 && f <= 5) {
            if (!pb_varint(&r, &v)) return bad(d, file, "the normalizer spec is truncated");
            bool *dst[] = {&nz->add_dummy_prefix, &nz->remove_extra_whitespaces, &nz->escape_whitespaces};
            *dst[f - 3] = v != 0;
        } else if (!pb_skip(&r, w)) {
            return bad(d, file, "the normalizer spec is truncated");
        }
    }
    return VKF_OK;
}

void tok_spm_model_free(tok_spm_model *m)
{
    for (uint32_t i = 0; i < m->n; i++) free(m->pieces[i].s);
    free(m->pieces);
    free(m->unk_surface);
    tok_charsmap_free(&m->norm.charsmap);
    tok_charsmap_free(&m->denorm.charsmap);
    memset(m, 0, sizeof *m);
}

vkf_status tok_spm_parse(base_diag *d, const char *file, const uint8_t *data, size_t n, tok_spm_model *m)
{
    memset(m, 0, sizeof *m);
    m->model_type = 1, m->unk_id = 0, m->bos_id = 1, m->eos_id = 2, m->pad_id = -1;
    /* proto2 defaults hold for an absent normalizer spec too */
    m->norm.add_dummy_prefix = m->norm.remove_extra_whitespaces = m->norm.escape_whitespaces = true;
    m->denorm.add_dummy_prefix = m->denorm.remove_extra_whitespaces = m->denorm.escape_whitespaces = true;
    pb r = {data, data + n};
    size_t cap = 0;
    vkf_status s = VKF_OK;
    bool has_denorm = false;
    while (s == VKF_OK && r.p < r.end) {
        uint32_t f, w;
        const uint8_t *b;
        size_t bl;
        if (!pb_key(&r, &f, &w)) {
            s = bad(d, file, "truncated or not a protobuf");
            break;
        }
        if (w != 2 || f > 5) {
            if (!pb_skip(&r, w)) s = bad(d, file, "truncated or not a protobuf");
            continue;
        }
        if (!pb_bytes(&r, &b, &bl)) {
            s = bad(d, file, "a field runs past the end of the file");
            break;
        }
        if (f == 1) {
            if (m->n == cap) {
                size_t nc = cap ? 2 * cap : 1024;
                tok_sp_piece *p = nc < (1u << 28) ? realloc(m->pieces, nc * sizeof *p) : NULL;
                if (!p) {
                    s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory for its pieces", file);
                    break;
                }
                m->pieces = p, cap = nc;
            }
            memset(&m->pieces[m->n], 0, sizeof *m->pieces);
            s = parse_piece(d, file, b, bl, &m->pieces[m->n]);
            if (s == VKF_OK) m->n++;
        } else if (f == 2) {
            s = parse_trainer(d, file, b, bl, m);
        } else if (f == 3) {
            s = parse_normalizer(d, file, b, bl, &m->norm);
        } else if (f == 5) {
            s = parse_normalizer(d, file, b, bl, &m->denorm);
            has_denorm = true;
        }
    }
    if (s == VKF_OK && !m->n) s = bad(d, file, "no pieces");
    if (s == VKF_OK && m->model_type != 1 && m->model_type != 2)
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: SentencePiece model type %d is not supported (supported: 1 UNIGRAM, 2 BPE)", file,
                      m->model_type);
    if (s == VKF_OK && m->treat_ws_suffix)
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: treat_whitespace_as_suffix is not supported", file);
    m->has_denorm = has_denorm && m->denorm.charsmap.n_units;
    /* what sentencepiece's InitializePieces insists on */
    int unk = -1, bytes = 0, usable = 0;
    bool byte_seen[256] = {0};
    for (uint32_t i = 0; s == VKF_OK && i < m->n; i++) {
        tok_sp_piece *p = &m->pieces[i];
        if (memchr(p->s, 0, p->len)) {
            /* a stray "\0" piece: unused with byte fallback (sentencepiece's
             * workaround for conversion scripts), and an unused one is ignored */
            if (p->len == 1 && m->byte_fallback) p->type = TOK_SP_UNUSED;
            if (!(p->len == 1 && p->type == TOK_SP_UNUSED)) {
                s = base_fail(d, VKF_ERROR_FORMAT, "%s: piece %u holds a NUL character", file, i);
                break;
            }
        }
        if (p->type == TOK_SP_NORMAL || p->type == TOK_SP_USER || (p->type == TOK_SP_UNUSED && p->s[0])) usable++;
        if (p->type == TOK_SP_UNKNOWN) {
            if (unk >= 0) s = base_fail(d, VKF_ERROR_FORMAT, "%s: two unknown pieces (%u and %d)", file, i, unk);
            unk = (int)i;
        }
        if (p->type == TOK_SP_BYTE) {
            int byte;
            if (!m->byte_fallback) s = base_fail(d, VKF_ERROR_FORMAT, "%s: byte piece %s without byte_fallback", file, p->s);
            else if ((byte = tok_byte_piece(p->s, p->len)) < 0)
                s = base_fail(d, VKF_ERROR_FORMAT, "%s: byte piece '%.16s' is not <0xXX> (two upper-case hex digits)", file, p->s);
            else if (!byte_seen[byte]) byte_seen[byte] = true, bytes++;
        }
    }
    /* sentencepiece needs the unknown piece only without byte fallback */
    if (s == VKF_OK && unk < 0 && !m->byte_fallback) s = base_fail(d, VKF_ERROR_FORMAT, "%s: no unknown piece (<unk>)", file);
    if (s == VKF_OK && !usable) s = bad(d, file, "no pieces an encoding can produce");
    if (s == VKF_OK && m->byte_fallback && bytes != 256)
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: byte_fallback with %d byte pieces (256 needed)", file, bytes);
    if (s == VKF_OK) m->unk_id = unk; /* the piece of type UNKNOWN is the one sentencepiece uses */
    if (s != VKF_OK) tok_spm_model_free(m);
    return s;
}

/* ---- sentencepiece's normalizer ------------------------------------------------------------ */

#define SPACE_SYMBOL "\xe2\x96\x81"

/* NormalizePrefix: a user-defined symbol as it is, else the charsmap's longest
 * rule, else one character. *out points into s or the map. */
static size_t normalize_prefix(const tok_spm_proc *p, const tok_spm_norm *nz, const char *s, size_t n, const char **out,
                               size_t *out_n)
{
    if (p->user.n_nodes) {
        uint32_t node = 0;
        size_t longest = 0;
        for (size_t k = 0; k < n; k++) {
            if (!(node = tok_trie_step(&p->user, node, (uint8_t)s[k]))) break;
            if (p->user.value[node] >= 0) longest = k + 1;
        }
        if (longest) return *out = s, *out_n = longest, longest;
    }
    if (nz->charsmap.n_units) {
        uint32_t lens[32], vals[32];
        size_t k = tok_charsmap_prefixes(&nz->charsmap, s, n, lens, vals, 32);
        size_t best = 0;
        for (size_t i = 0; i < k; i++)
            if (!best || lens[i] > lens[best - 1]) best = i + 1;
        size_t rl;
        const char *rule = best ? tok_charsmap_string(&nz->charsmap, vals[best - 1], &rl) : NULL;
        if (rule) return *out = rule, *out_n = rl, lens[best - 1];
    }
    size_t len = one_char_len((uint8_t)s[0]);
    if (len > n) len = n;
    *out = s, *out_n = len;
    return len;
}

static bool push_ws(tok_str *o, const tok_spm_norm *nz, uint32_t at)
{
    return nz->escape_whitespaces ? tok_str_push(o, SPACE_SYMBOL, 3, at, at) : tok_str_push(o, " ", 1, at, at);
}

bool tok_spm_normalize(const tok_spm_proc *p, const tok_spm_norm *nz, bool dummy_prefix, const tok_str *in, tok_str *o)
{
    const char *s = in->b;
    size_t n = in->n, i = 0;
    /* orig: the input's own byte positions map through in->os */
    if (nz->remove_extra_whitespaces)
        while (i < n) {
            const char *r;
            size_t rl, used = normalize_prefix(p, nz, s + i, n - i, &r, &rl);
            if (!(rl == 1 && r[0] == ' ')) break;
            i += used;
        }
    if (i >= n) return tok_str_reserve(o, 0);
    uint32_t origin = in->os[i];
    if (dummy_prefix && !push_ws(o, nz, origin)) return false;
    bool prev_space = nz->remove_extra_whitespaces;
    while (i < n) {
        if (o->n > TOK_NORM_LIMIT(n)) return tok_fail_set(TOK_FAIL_TOO_LONG), false; /* a character map that multiplies text */
        const char *r;
        size_t rl, used = normalize_prefix(p, nz, s + i, n - i, &r, &rl);
        uint32_t os = in->os[i], oe = in->oe[i + used - 1];
        for (size_t k = i; k < i + used; k++) os = BASE_MIN(os, in->os[k]), oe = BASE_MAX(oe, in->oe[k]);
        size_t k = 0;
        while (prev_space && k < rl && r[k] == ' ') k++;
        if (k < rl) {
            for (; k < rl; k++) {
                bool ok = nz->escape_whitespaces && r[k] == ' ' ? tok_str_push(o, SPACE_SYMBOL, 3, os, oe) : tok_str_push(o, r + k, 1, os, oe);
                if (!ok) return false;
            }
            prev_space = r[rl - 1] == ' ';
        }
        i += used;
        if (!nz->remove_extra_whitespaces) prev_space = false;
    }
    if (nz->remove_extra_whitespaces) {
        const char *sp = nz->escape_whitespaces ? SPACE_SYMBOL : " ";
        size_t sl = nz->escape_whitespaces ? 3 : 1;
        while (o->n >= sl && !memcmp(o->b + o->n - sl, sp, sl)) o->n -= sl;
    }
    if (!tok_str_reserve(o, o->n)) return false;
    o->b[o->n] = 0;
    return true;
}

/* ---- sentencepiece's BPE --------------------------------------------------------------------- */

typedef struct bsym {
    int32_t prev, next;
    uint32_t s, e;   /* bytes of the normalized text; s == e once merged away */
    bool freeze;     /* a user-defined symbol: never merged */
} bsym;

typedef struct bpair {
    float score;
    int32_t left, right;
    uint32_t size;
} bpair;

/* sentencepiece's agenda: the highest score first, then the leftmost; scores
 * compare as their bit patterns do (so -0.0 ranks below +0.0, as trained
 * models' first merge and pieces appended with score 0 meet). */
static inline int64_t score_key(float f)
{
    int32_t i;
    memcpy(&i, &f, 4);
    return i >= 0 ? (int64_t)i : -(int64_t)(i & 0x7FFFFFFF) - 1;
}

static inline bool bpair_before(const bpair *a, const bpair *b)
{
    int64_t ka = score_key(a->score), kb = score_key(b->score);
    return ka > kb || (ka == kb && a->left < b->left);
}

typedef struct bheap {
    bpair *v;
    size_t n, cap;
} bheap;

static bool bheap_push(bheap *h, bpair x)
{
    if (!base_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v)) return false;
    size_t i = h->n++;
    while (i > 0 && bpair_before(&x, &h->v[(i - 1) / 2])) h->v[i] = h->v[(i - 1) / 2], i = (i - 1) / 2;
    h->v[i] = x;
    return true;
}

static bpair bheap_pop(bheap *h)
{
    bpair top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const bpair *best = &last;
        if (l < h->n && bpair_before(&h->v[l], best)) m = l, best = &h->v[l];
        if (r < h->n && bpair_before(&h->v[r], best)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static int32_t trie_get(const tok_trie *t, const char *s, size_t n)
{
    uint32_t node = 0;
    for (size_t k = 0; k < n; k++)
        if (!(node = tok_trie_step(t, node, (uint8_t)s[k]))) return -1;
    return t->n_nodes ? t->value[node] : -1;
}

/* The id of s[0, n) among the pieces encoding may produce, or -1. */
static int32_t piece_id(const tok_spm_proc *p, const char *s, size_t n) { return trie_get(&p->uni.trie, s, n); }

int32_t tok_spm_piece_id(const tok_spm_proc *p, const char *s, size_t n)
{
    int32_t id = trie_get(&p->reserved, s, n);
    if (id < 0) id = piece_id(p, s, n);
    return id < 0 ? p->m->unk_id : id;
}

static bool bpe_add(const tok_spm_proc *p, const char *s, const bsym *sy, int32_t l, int32_t r, bheap *h)
{
    if (l < 0 || r < 0 || sy[l].freeze || sy[r].freeze) return true;
    int32_t id = piece_id(p, s + sy[l].s, sy[r].e - sy[l].s);
    if (id < 0) return true;
    return bheap_push(h, (bpair){(float)p->uni.score[id], l, r, sy[r].e - sy[l].s});
}

/* Unused pieces are split back into what merged them (sentencepiece's rev_merge). */
typedef struct rev {
    uint32_t s, mid, e;
} rev;

static bool resegment(const tok_spm_proc *p, const char *s, uint32_t a, uint32_t b, const rev *rv, size_t nrv, tok_toks *out, int depth)
{
    int32_t id = piece_id(p, s + a, b - a);
    if (depth > 100) return tok_toks_push(out, id < 0 ? UINT32_MAX : (uint32_t)id, a, b); /* sentencepiece stops there, as it is */
    if (id >= 0 && p->uni.type[id] == TOK_SP_UNUSED) {
        for (size_t i = nrv; i-- > 0;)
            if (rv[i].s == a && rv[i].e == b)
                return resegment(p, s, a, rv[i].mid, rv, nrv, out, depth + 1) && resegment(p, s, rv[i].mid, b, rv, nrv, out, depth + 1);
    }
    return tok_toks_push(out, id < 0 || p->uni.type[id] == TOK_SP_UNUSED ? UINT32_MAX : (uint32_t)id, a, b);
}

static bool spm_bpe(const tok_spm_proc *p, const char *s, size_t n, tok_toks *out)
{
    bsym *sy = malloc((n + 1) * sizeof *sy);
    if (!sy) return false;
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        size_t len = 0;
        bool user = false;
        if (p->user.n_nodes) {
            uint32_t node = 0;
            for (size_t k = i; k < n; k++) {
                if (!(node = tok_trie_step(&p->user, node, (uint8_t)s[k]))) break;
                if (p->user.value[node] >= 0) len = k + 1 - i, user = true;
            }
        }
        if (!user) len = BASE_MIN(one_char_len((uint8_t)s[i]), n - i);
        sy[ns] = (bsym){ns - 1, i + len < n ? ns + 1 : -1, (uint32_t)i, (uint32_t)(i + len), user};
        ns++;
        i += len;
    }
    bheap h = {0};
    rev *rv = NULL;
    size_t nrv = 0, crv = 0;
    bool ok = true;
    for (int32_t i = 1; i < ns && ok; i++) ok = bpe_add(p, s, sy, i - 1, i, &h);
    while (ok && h.n) {
        bpair top = bheap_pop(&h);
        bsym *l = &sy[top.left], *r = &sy[top.right];
        if (l->s == l->e || r->s == r->e || l->next != top.right || r->e - l->s != top.size) continue;
        int32_t id = piece_id(p, s + l->s, top.size);
        if (id >= 0 && p->uni.type[id] == TOK_SP_UNUSED) {
            ok = base_grow((void **)&rv, &crv, nrv + 1, sizeof *rv);
            if (ok) rv[nrv++] = (rev){l->s, l->e, r->e};
        }
        l->e = r->e;
        l->next = r->next;
        if (r->next >= 0) sy[r->next].prev = top.left;
        r->e = r->s;
        if (ok) ok = bpe_add(p, s, sy, l->prev, top.left, &h) && bpe_add(p, s, sy, top.left, l->next, &h);
    }
    for (int32_t k = ns ? 0 : -1; ok && k >= 0; k = sy[k].next) ok = resegment(p, s, sy[k].s, sy[k].e, rv, nrv, out, 0);
    free(h.v);
    free(rv);
    free(sy);
    return ok;
}

/* ---- a processor: normalizer and model ready to encode ------------------------------------- */

vkf_status tok_spm_proc_init(base_diag *d, const char *file, const tok_spm_model *m, tok_spm_proc *p)
{
    memset(p, 0, sizeof *p);
    p->m = m;
    tok_unigram *u = &p->uni;
    u->spm = true;
    u->unk_id = m->unk_id;
    u->score = malloc(m->n * sizeof *u->score);
    u->type = malloc(m->n);
    if (!u->score || !u->type) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    float mn = 3.40282347e+38f; /* sentencepiece starts from FLT_MAX */
    for (uint32_t i = 0; i < m->n; i++) {
        const tok_sp_piece *sp = &m->pieces[i];
        u->score[i] = sp->score, u->type[i] = sp->type;
        if (sp->type == TOK_SP_NORMAL) mn = sp->score < mn ? sp->score : mn;
        if (sp->type == TOK_SP_UNUSED && sp->len == 1 && !sp->s[0]) continue; /* a stray "\0" (see tok_spm_parse) */
        if (sp->type == TOK_SP_NORMAL || sp->type == TOK_SP_USER || sp->type == TOK_SP_UNUSED) {
            if (piece_id(p, sp->s, sp->len) >= 0) return base_fail(d, VKF_ERROR_FORMAT, "%s: piece '%.64s' appears twice", file, sp->s);
            if (!tok_trie_insert(&u->trie, sp->s, sp->len, (int32_t)i)) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        }
        if (sp->type == TOK_SP_USER && !tok_trie_insert(&p->user, sp->s, sp->len, (int32_t)i))
            return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        if (sp->type == TOK_SP_CONTROL || sp->type == TOK_SP_UNKNOWN || sp->type == TOK_SP_BYTE) {
            if (trie_get(&p->reserved, sp->s, sp->len) >= 0) return base_fail(d, VKF_ERROR_FORMAT, "%s: piece '%.64s' appears twice", file, sp->s);
            if (!tok_trie_insert(&p->reserved, sp->s, sp->len, (int32_t)i)) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        }
        if (sp->type == TOK_SP_BYTE) p->byte_id[tok_byte_piece(sp->s, sp->len) & 0xFF] = (int32_t)i + 1;
    }
    u->unk_score = (double)(mn - 10.0f);
    p->split_meta = m->model_type == 2;
    for (uint32_t i = 0; i < m->n && p->split_meta; i++) {
        const tok_sp_piece *sp = &m->pieces[i];
        for (uint32_t k = 1; k + 3 <= sp->len && p->split_meta; k++) p->split_meta = memcmp(sp->s + k, SPACE_SYMBOL, 3) != 0;
    }
    return VKF_OK;
}

void tok_spm_proc_free(tok_spm_proc *p)
{
    tok_unigram_free(&p->uni);
    tok_trie_free(&p->user);
    tok_trie_free(&p->reserved);
    memset(p, 0, sizeof *p);
}

bool tok_spm_encode(const tok_spm_proc *p, const tok_str *in, bool dummy_prefix, tok_str *norm, tok_toks *out)
{
    norm->n = 0;
    if (!tok_spm_normalize(p, &p->m->norm, dummy_prefix, in, norm)) return false;
    tok_toks raw = {0};
    bool ok = true;
    if (p->m->model_type == 2 && p->split_meta) {
        /* no merge crosses the start of a "▁": each piece before one apart (a short heap each) */
        for (size_t s = 0, i = 1; ok && i <= norm->n; i++) {
            if (i < norm->n && (i + 3 > norm->n || memcmp(norm->b + i, SPACE_SYMBOL, 3))) continue;
            size_t first = raw.n;
            ok = spm_bpe(p, norm->b + s, i - s, &raw);
            for (size_t k = first; ok && k < raw.n; k++) raw.v[k].s += (uint32_t)s, raw.v[k].e += (uint32_t)s;
            s = i;
        }
    } else {
        ok = p->m->model_type == 2 ? spm_bpe(p, norm->b, norm->n, &raw) : tok_unigram_encode(&p->uni, norm->b, norm->n, &raw);
    }
    /* unknown pieces: bytes with byte_fallback, else one unknown piece per run */
    bool prev_unk = false;
    for (size_t i = 0; ok && i < raw.n; i++) {
        tok_tok t = raw.v[i];
        bool unk = t.id == UINT32_MAX || t.id == (uint32_t)p->m->unk_id;
        if (unk && p->m->byte_fallback) {
            for (uint32_t b = t.s; ok && b < t.e; b++)
                ok = tok_toks_push(out, (uint32_t)p->byte_id[(uint8_t)norm->b[b]] - 1, b, b + 1);
        } else if (unk && prev_unk) {
            out->v[out->n - 1].e = t.e;
        } else {
            ok = tok_toks_push(out, unk ? (uint32_t)p->m->unk_id : t.id, t.s, t.e);
        }
        prev_unk = unk;
    }
    free(raw.v);
    return ok;
}

/* ---- decoding pieces (sentencepiece's DecodePieces) ------------------------------------------ */

#define put tok_buf_put

/* Byte pieces b[0, n) as text: UTF-8 characters, U+FFFD per invalid byte. */
static bool put_bytes(tok_buf *o, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n;) {
        tok_str t = {0};
        size_t len = one_char_len(b[i]);
        bool valid = len <= n - i && (b[i] < 0x80 || (b[i] >= 0xC2 && b[i] <= 0xF4)) && tok_from_raw((const char *)b + i, len, &t) &&
                     t.n == len && !memcmp(t.b, b + i, len);
        tok_str_free(&t);
        if (!valid) len = 1;
        if (!(valid ? put(o, (const char *)b + i, len) : put(o, "\xEF\xBF\xBD", 3))) return false;
        i += len;
    }
    return true;
}

bool tok_spm_decode(const tok_spm_proc *p, const char *const *pieces, const uint32_t *lens, size_t n, tok_buf *o)
{
    const tok_spm_model *m = p->m;
    const char *unk_surface = m->unk_surface ? m->unk_surface : " \xE2\x81\x87 ";
    uint8_t *bytes = malloc(n + 1);
    if (!bytes) return false;
    size_t nb = 0, start = o->n;
    bool bos_ws = true, bos_seen = false, ok = put(o, "", 0);
    for (size_t i = 0; ok && i < n; i++) {
        const char *w = pieces[i];
        size_t wl = lens[i];
        int32_t id = tok_spm_piece_id(p, w, wl);
        uint8_t type = id >= 0 ? p->uni.type[id] : TOK_SP_UNKNOWN; /* no <unk> (byte fallback): the piece as it is */
        if (type == TOK_SP_BYTE) {
            bytes[nb++] = (uint8_t)tok_byte_piece(w, wl);
            continue;
        }
        ok = put_bytes(o, bytes, nb);
        nb = 0;
        if (bos_seen || o->n > start) bos_ws = false;
        bos_seen = false;
        if (!ok) break;
        if (type == TOK_SP_CONTROL) continue;
        if (type == TOK_SP_UNKNOWN) {
            bool named = id >= 0 && m->pieces[id].len == wl && !memcmp(m->pieces[id].s, w, wl);
            ok = named ? put(o, unk_surface, strlen(unk_surface)) : put(o, w, wl);
            continue;
        }
        if (bos_ws && (m->norm.add_dummy_prefix || m->norm.remove_extra_whitespaces) && wl >= 3 && !memcmp(w, SPACE_SYMBOL, 3)) {
            w += 3, wl -= 3;
            bos_seen = !m->norm.remove_extra_whitespaces;
        }
        for (size_t k = 0; ok && k < wl;) {
            if (k + 3 <= wl && !memcmp(w + k, SPACE_SYMBOL, 3)) ok = put(o, " ", 1), k += 3;
            else ok = put(o, w + k, 1), k++;
        }
    }
    if (ok) ok = put_bytes(o, bytes, nb);
    free(bytes);
    if (ok && m->has_denorm) {
        /* the denormalizer's rules over the decoded text (without user-defined symbols) */
        tok_str in = {0}, out = {0};
        const tok_spm_proc none = {.m = m};
        ok = tok_str_push(&in, o->b + start, o->n - start, 0, 0) &&
             tok_spm_normalize(&none, &m->denorm, m->denorm.add_dummy_prefix, &in, &out);
        if (ok) o->n = start, ok = put(o, out.b ? out.b : "", out.n);
        tok_str_free(&in), tok_str_free(&out);
    }
    return ok;
}
