/* Vocabulary hash map and the two models: WordPiece (greedy longest match
 * with a continuation prefix) and BPE (merge ranks in a hash table keyed by
 * the id pair, a heap of candidate merges over a linked list of symbols, so a
 * word of n bytes costs O(n log n)), with a word cache shared by threads. */
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8, n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    return h ^ (h >> 29);
}

/* ---- vocabulary -------------------------------------------------------------------- */

static bool map_rehash(tok_vocab *v, size_t slots)
{
    uint32_t *s = calloc(slots, sizeof *s);
    if (!s) return false;
    for (uint32_t id = 0; id < v->n; id++) {
        if (!v->tok[id]) continue;
        size_t h = hash_bytes(v->tok[id], v->len[id]) & (slots - 1);
        while (s[h]) h = (h + 1) & (slots - 1);
        s[h] = id + 1;
    }
    free(v->map.slots);
    v->map.slots = s;
    v->map.mask = slots - 1;
    return true;
}

int64_t tok_vocab_find(const tok_vocab *v, const char *t, size_t len)
{
    if (!v->map.slots) return -1;
    size_t h = hash_bytes(t, len) & v->map.mask;
    for (uint32_t id; (id = v->map.slots[h]) != 0; h = (h + 1) & v->map.mask)
        if (v->len[id - 1] == len && !memcmp(v->tok[id - 1], t, len)) return id - 1;
    return -1;
}

int64_t tok_vocab_find_model(const tok_vocab *v, const char *t, size_t len)
{
    int64_t id = tok_vocab_find(v, t, len);
    return id >= 0 && v->in_model[id] ? id : -1;
}

bool tok_vocab_rename(tok_vocab *v, uint32_t id, const char *t, size_t len)
{
    char *c = malloc(len + 1);
    if (!c) return false;
    memcpy(c, t, len);
    c[len] = 0;
    free(v->tok[id]);
    v->tok[id] = c;
    v->len[id] = (uint32_t)len;
    return map_rehash(v, v->map.mask + 1);
}

bool tok_vocab_add(tok_vocab *v, const char *t, size_t len, uint32_t id, bool in_model, int *dup)
{
    *dup = 0;
    if (id >= v->n) {
        uint32_t n = id + 1, cap = 16;
        while (cap < n) cap *= 2;
        uint32_t old_cap = 16;
        while (old_cap < v->n) old_cap *= 2;
        if (!v->tok || cap > old_cap) {
            char **tk = realloc(v->tok, cap * sizeof *tk);
            if (!tk) return false;
            v->tok = tk;
            uint32_t *ln = realloc(v->len, cap * sizeof *ln);
            if (!ln) return false;
            v->len = ln;
            uint8_t *im = realloc(v->in_model, cap);
            if (!im) return false;
            v->in_model = im;
        }
        for (uint32_t k = v->n; k < n; k++) v->tok[k] = NULL, v->len[k] = 0, v->in_model[k] = 0;
        v->n = n;
    }
    if (v->tok[id]) return *dup = 2, false;
    if (tok_vocab_find(v, t, len) >= 0) return *dup = 1, false;
    char *c = malloc(len + 1);
    if (!c) return false;
    memcpy(c, t, len);
    c[len] = 0;
    v->tok[id] = c;
    v->len[id] = (uint32_t)len;
    v->in_model[id] = in_model;
    /* Keep the table at most half full (n bounds the entries). */
    size_t slots = v->map.slots ? v->map.mask + 1 : 0;
    if (slots < 2 * (size_t)v->n + 2) {
        size_t want = 64;
        while (want < 4 * (size_t)v->n) want *= 2;
        if (!map_rehash(v, want)) return v->tok[id] = NULL, free(c), false;
        return true;
    }
    size_t h = hash_bytes(c, len) & v->map.mask;
    while (v->map.slots[h]) h = (h + 1) & v->map.mask;
    v->map.slots[h] = id + 1;
    return true;
}

void tok_vocab_free(tok_vocab *v)
{
    for (uint32_t i = 0; i < v->n; i++) free(v->tok[i]);
    free(v->tok);
    free(v->len);
    free(v->in_model);
    free(v->map.slots);
    memset(v, 0, sizeof *v);
}

/* ---- merges -------------------------------------------------------------------------- */

bool tok_merges_init(tok_model *m, size_t n)
{
    size_t slots = 64;
    while (slots < 2 * n + 2) slots *= 2;
    m->merges = calloc(slots, sizeof *m->merges);
    m->merge_mask = slots - 1;
    return m->merges != NULL;
}

static inline size_t merge_hash(uint64_t key) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20); }

bool tok_merge_add(tok_model *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t id)
{
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    size_t h = merge_hash(key) & m->merge_mask;
    while (m->merges[h].key) {
        if (m->merges[h].key == key) return false;
        h = (h + 1) & m->merge_mask;
    }
    m->merges[h] = (tok_merge_slot){key, rank, id};
    m->n_merges++;
    return true;
}

static inline const tok_merge_slot *merge_find(const tok_model *m, uint32_t a, uint32_t b)
{
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    size_t h = merge_hash(key) & m->merge_mask;
    for (; m->merges[h].key; h = (h + 1) & m->merge_mask)
        if (m->merges[h].key == key) return &m->merges[h];
    return NULL;
}

/* ---- tokens ------------------------------------------------------------------------------ */

bool tok_toks_push(tok_toks *t, uint32_t id, uint32_t s, uint32_t e)
{
    if (!base_grow((void **)&t->v, &t->cap, t->n + 1, sizeof *t->v)) return false;
    t->v[t->n++] = (tok_tok){id, s, e};
    return true;
}

/* ---- word cache ------------------------------------------------------------------------------ */

#define CACHE_SLOTS 16384
#define CACHE_MAX_WORD 256

typedef struct cache_entry {
    uint64_t hash;
    char *key;
    uint32_t klen, n;
    tok_tok *toks;
} cache_entry;

struct tok_cache {
    pthread_mutex_t lock;
    cache_entry e[CACHE_SLOTS];
};

bool tok_model_init_cache(tok_model *m)
{
    m->cache = calloc(1, sizeof *m->cache);
    if (!m->cache) return false;
    pthread_mutex_init(&m->cache->lock, NULL);
    return true;
}

static bool cache_get(tok_cache *c, uint64_t h, const char *w, size_t n, tok_toks *out)
{
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    cache_entry *e = &c->e[h & (CACHE_SLOTS - 1)];
    if (e->key && e->hash == h && e->klen == n && !memcmp(e->key, w, n)) {
        hit = base_grow((void **)&out->v, &out->cap, out->n + e->n, sizeof *out->v);
        if (hit) {
            memcpy(out->v + out->n, e->toks, e->n * sizeof *e->toks);
            out->n += e->n;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void cache_put(tok_cache *c, uint64_t h, const char *w, size_t n, const tok_tok *t, size_t nt)
{
    char *key = malloc(n + 1);
    tok_tok *toks = malloc(nt * sizeof *toks + 1);
    if (!key || !toks) {
        free(key);
        free(toks);
        return;
    }
    memcpy(key, w, n);
    memcpy(toks, t, nt * sizeof *toks);
    pthread_mutex_lock(&c->lock);
    cache_entry *e = &c->e[h & (CACHE_SLOTS - 1)];
    char *old_key = e->key;
    tok_tok *old_toks = e->toks;
    *e = (cache_entry){h, key, (uint32_t)n, (uint32_t)nt, toks};
    pthread_mutex_unlock(&c->lock);
    free(old_key);
    free(old_toks);
}

/* ---- WordPiece ----------------------------------------------------------------------------------- */

static bool wordpiece(const tok_model *m, const tok_vocab *v, const char *w, size_t n, tok_toks *out)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) chars += ((uint8_t)w[i] & 0xC0) != 0x80;
    size_t first = out->n;
    if (chars > m->max_chars) return tok_toks_push(out, (uint32_t)m->unk_id, 0, (uint32_t)n);
    size_t pl = strlen(m->prefix);
    char stack[256];
    char *buf = pl + n <= sizeof stack ? stack : malloc(pl + n);
    if (!buf) return false;
    memcpy(buf, m->prefix, pl);
    bool ok = true;
    size_t start = 0;
    while (start < n) {
        size_t end = n;
        int64_t id = -1;
        while (end > start) {
            if (start > 0) {
                memcpy(buf + pl, w + start, end - start);
                id = tok_vocab_find_model(v, buf, pl + end - start);
            } else {
                id = tok_vocab_find_model(v, w, end);
            }
            if (id >= 0) break;
            do end--;
            while (end > start && ((uint8_t)w[end] & 0xC0) == 0x80);
        }
        if (id < 0) {
            out->n = first;
            ok = tok_toks_push(out, (uint32_t)m->unk_id, 0, (uint32_t)n);
            break;
        }
        if (!(ok = tok_toks_push(out, (uint32_t)id, (uint32_t)start, (uint32_t)end))) break;
        start = end;
    }
    if (buf != stack) free(buf);
    return ok;
}

/* ---- BPE ---------------------------------------------------------------------------------------- */

typedef struct sym {
    uint32_t id;
    int32_t prev, next;
    uint32_t s, e; /* bytes of the word; e == s once merged away */
} sym;

typedef struct cand {
    uint32_t rank, pos, id;
} cand;

static inline bool cand_less(cand a, cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

typedef struct heap {
    cand *v;
    size_t n, cap;
} heap;

static bool heap_push(heap *h, cand c)
{
    if (!base_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v)) return false;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(c, h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return true;
}

static cand heap_pop(heap *h)
{
    cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        cand best = last;
        if (l < h->n && cand_less(h->v[l], best)) m = l, best = h->v[l];
        if (r < h->n && cand_less(h->v[r], best)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* The symbol id of w[s, e) as an initial symbol (prefix, suffix as HF adds). */
static int64_t initial_id(const tok_model *m, const tok_vocab *v, const char *w, size_t s, size_t e, size_t n,
                          char *buf)
{
    if (m->byte_level && e - s == 1) {
        uint8_t b = (uint8_t)w[s];
        if (!*m->prefix || s == 0) return e == n ? m->byte_ids_suffix[b] : m->byte_ids[b];
    }
    size_t k = 0, pl = strlen(m->prefix), sl = strlen(m->suffix);
    if (s > 0) memcpy(buf, m->prefix, pl), k = pl;
    if (m->byte_level) {
        for (size_t i = s; i < e; i++) k += (size_t)tok_utf8_put(tok_byte_char((uint8_t)w[i]), buf + k);
    } else {
        memcpy(buf + k, w + s, e - s), k += e - s;
    }
    if (e == n) memcpy(buf + k, m->suffix, sl), k += sl;
    return tok_vocab_find_model(v, buf, k);
}

static bool bpe(const tok_model *m, const tok_vocab *v, const char *w, size_t n, tok_toks *out)
{
    char buf[64]; /* one character (4 bytes, or 4 x 2 byte-level) + prefix and suffix (<= 16 each) */
    if (m->ignore_merges) {
        /* the whole word, when the vocabulary has it, is one token */
        char *whole = malloc(2 * n + 40);
        if (!whole) return false;
        int64_t id = initial_id(m, v, w, 0, n, n, whole);
        free(whole);
        if (id >= 0) return tok_toks_push(out, (uint32_t)id, 0, (uint32_t)n);
    }
    sym *sy = malloc(n * sizeof *sy);
    if (!sy) return false;
    size_t ns = 0;
    for (size_t i = 0; i < n;) {
        size_t s = i;
        if (m->byte_level) i++;
        else tok_utf8_next(w, n, &i);
        int64_t id = initial_id(m, v, w, s, i, n, buf);
        if (id < 0 && m->byte_fallback) {
            /* <0xXX> for each byte of the character */
            bool all = true;
            size_t first = ns;
            for (size_t b = s; b < i && all; b++) {
                char hx[8];
                snprintf(hx, sizeof hx, "<0x%02X>", (uint8_t)w[b]);
                int64_t bid = tok_vocab_find_model(v, hx, 6);
                if (bid < 0) all = false;
                else sy[ns++] = (sym){(uint32_t)bid, 0, 0, (uint32_t)b, (uint32_t)b + 1};
            }
            if (all) continue;
            ns = first;
        }
        if (id < 0) {
            if (m->unk_id < 0) continue; /* no unknown token: HF drops the character */
            if (m->fuse_unk && ns && sy[ns - 1].id == (uint32_t)m->unk_id) {
                sy[ns - 1].e = (uint32_t)i;
                continue;
            }
            id = m->unk_id;
        }
        sy[ns++] = (sym){(uint32_t)id, 0, 0, (uint32_t)s, (uint32_t)i};
    }
    for (size_t k = 0; k < ns; k++) sy[k].prev = (int32_t)k - 1, sy[k].next = k + 1 < ns ? (int32_t)k + 1 : -1;
    heap h = {0};
    bool ok = true;
    for (size_t k = 0; k + 1 < ns && ok; k++) {
        const tok_merge_slot *ms = merge_find(m, sy[k].id, sy[k + 1].id);
        if (ms) ok = heap_push(&h, (cand){ms->rank, (uint32_t)k, ms->id});
    }
    while (ok && h.n) {
        cand c = heap_pop(&h);
        sym *a = &sy[c.pos];
        if (a->e == a->s || a->next < 0) continue;
        sym *b = &sy[a->next];
        const tok_merge_slot *ms = merge_find(m, a->id, b->id);
        if (!ms || ms->id != c.id) continue; /* stale */
        a->id = c.id;
        a->e = b->e;
        a->next = b->next;
        b->e = b->s;
        if (a->next >= 0) sy[a->next].prev = (int32_t)c.pos;
        if (a->prev >= 0) {
            const tok_merge_slot *p = merge_find(m, sy[a->prev].id, a->id);
            if (p) ok = heap_push(&h, (cand){p->rank, (uint32_t)a->prev, p->id});
        }
        if (ok && a->next >= 0) {
            const tok_merge_slot *p = merge_find(m, a->id, sy[a->next].id);
            if (p) ok = heap_push(&h, (cand){p->rank, c.pos, p->id});
        }
    }
    for (int32_t k = ns ? 0 : -1; ok && k >= 0; k = sy[k].next) ok = tok_toks_push(out, sy[k].id, sy[k].s, sy[k].e);
    free(h.v);
    free(sy);
    return ok;
}

/* tokenizers' Unigram::tokenize: the Viterbi path with runs of unknown
 * characters fused into one token; a fused run the vocabulary lacks becomes
 * its bytes' <0xXX> tokens (byte_fallback, each spanning the whole run) or the
 * unknown token (none: the run is dropped, where tokenizers raises). */
static bool unigram(const tok_model *m, const tok_vocab *v, const char *w, size_t n, tok_toks *out)
{
    tok_toks raw = {0};
    bool ok = tok_unigram_encode(&m->uni, w, n, &raw);
    const uint32_t unk = m->unk_id < 0 ? UINT32_MAX : (uint32_t)m->unk_id;
    for (size_t i = 0; ok && i < raw.n;) {
        size_t j = i + 1;
        if (raw.v[i].id == unk)
            while (j < raw.n && raw.v[j].id == unk) j++;
        uint32_t s = raw.v[i].s, e = raw.v[j - 1].e;
        if (raw.v[i].id != unk) {
            ok = tok_toks_push(out, raw.v[i].id, s, e);
            i = j;
            continue;
        }
        int64_t id = tok_vocab_find_model(v, w + s, e - s);
        if (id < 0 && m->byte_fallback) {
            size_t first = out->n;
            for (uint32_t b = s; ok && b < e; b++) {
                char hx[8];
                snprintf(hx, sizeof hx, "<0x%02X>", (uint8_t)w[b]);
                int64_t bid = tok_vocab_find_model(v, hx, 6);
                if (bid < 0) break;
                ok = tok_toks_push(out, (uint32_t)bid, s, e);
                if (ok && b + 1 == e) id = -2; /* all bytes found */
            }
            if (id == -2) {
                i = j;
                continue;
            }
            out->n = first;
        }
        if (id < 0) id = m->unk_id;
        if (ok && id >= 0) ok = tok_toks_push(out, (uint32_t)id, s, e);
        i = j;
    }
    free(raw.v);
    return ok;
}

static bool model_word(const tok_model *m, const tok_vocab *v, const char *w, size_t n, tok_toks *out)
{
    if (!n) return true;
    bool cacheable = m->cache && n <= CACHE_MAX_WORD;
    uint64_t h = cacheable ? hash_bytes(w, n) : 0;
    if (cacheable && cache_get(m->cache, h, w, n, out)) return true;
    size_t first = out->n;
    bool ok = m->kind == TOK_MODEL_WORDPIECE ? wordpiece(m, v, w, n, out)
              : m->kind == TOK_MODEL_UNIGRAM ? unigram(m, v, w, n, out)
                                             : bpe(m, v, w, n, out);
    if (ok && cacheable) cache_put(m->cache, h, w, n, out->v + first, out->n - first);
    return ok;
}

bool tok_model_word(const tok_model *m, const tok_vocab *v, const char *w, size_t n, tok_toks *out)
{
    if (!m->split_meta) return model_word(m, v, w, n, out);
    /* No merge crosses the start of a "▁" (no token has one inside): the
     * pieces before each are tokenized apart, and cached, with the same result. */
    static const char META[] = "\xe2\x96\x81";
    size_t s = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && (i + 3 > n || memcmp(w + i, META, 3))) continue;
        size_t first = out->n;
        if (!model_word(m, v, w + s, i - s, out)) return false;
        for (size_t k = first; k < out->n; k++) out->v[k].s += (uint32_t)s, out->v[k].e += (uint32_t)s;
        s = i;
    }
    return true;
}

void tok_model_free(tok_model *m)
{
    free(m->prefix);
    free(m->suffix);
    free(m->merges);
    tok_unigram_free(&m->uni);
    if (m->cache) {
        for (size_t i = 0; i < CACHE_SLOTS; i++) free(m->cache->e[i].key), free(m->cache->e[i].toks);
        pthread_mutex_destroy(&m->cache->lock);
        free(m->cache);
    }
    memset(m, 0, sizeof *m);
}
