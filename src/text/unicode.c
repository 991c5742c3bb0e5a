/* Strings with alignments, UTF-8 decoding with replacement, the character
 * classes HF's Rust code uses, the regex wrapper, and the normalizers.
 * Unicode properties and normal forms come from utf8proc. */
#include "text.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- tok_str -------------------------------------------------------------------- */

bool tok_str_reserve(tok_str *s, size_t need)
{
    if (need <= s->cap && s->b) return true;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    char *b = realloc(s->b, cap + 1);
    if (!b) return false;
    s->b = b;
    uint32_t *os = realloc(s->os, cap * sizeof *os);
    if (!os) return false;
    s->os = os;
    uint32_t *oe = realloc(s->oe, cap * sizeof *oe);
    if (!oe) return false;
    s->oe = oe;
    s->cap = cap;
    return true;
}

bool tok_str_push(tok_str *s, const char *b, size_t n, uint32_t os, uint32_t oe)
{
    if (!tok_str_reserve(s, s->n + n)) return false;
    memcpy(s->b + s->n, b, n);
    for (size_t i = 0; i < n; i++) s->os[s->n + i] = os, s->oe[s->n + i] = oe;
    s->n += n;
    s->b[s->n] = 0;
    return true;
}

void tok_str_free(tok_str *s)
{
    free(s->b);
    free(s->os);
    free(s->oe);
    memset(s, 0, sizeof *s);
}

/* ---- UTF-8 ------------------------------------------------------------------------ */

int tok_utf8_put(uint32_t cp, char out[4])
{
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of a valid sequence at s (1..4), or -k: the first k bytes are a
 * maximal invalid subpart (Unicode's "best practice", which Python follows). */
static int utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    if (c < 0x80) return *cp = c, 1;
    int len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    uint32_t v = c & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if ((size_t)k >= n) return -k;
        uint8_t b = s[k];
        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return -k;
        v = v << 6 | (b & 0x3F);
    }
    *cp = v;
    return len;
}

bool tok_from_raw(const char *raw, size_t n, tok_str *out)
{
    if (!tok_str_reserve(out, n + 16)) return false;
    const uint8_t *s = (const uint8_t *)raw;
    size_t i = 0;
    while (i < n) {
        /* ASCII runs copy straight through. */
        size_t j = i;
        while (j < n && s[j] < 0x80) j++;
        if (j > i) {
            if (!tok_str_reserve(out, out->n + (j - i))) return false;
            memcpy(out->b + out->n, raw + i, j - i);
            for (size_t k = i; k < j; k++) out->os[out->n] = (uint32_t)k, out->oe[out->n++] = (uint32_t)k + 1;
            i = j;
            continue;
        }
        uint32_t cp;
        int len = utf8_seq(s + i, n - i, &cp);
        if (len > 0) {
            if (!tok_str_push(out, raw + i, (size_t)len, (uint32_t)i, (uint32_t)(i + (size_t)len))) return false;
            i += (size_t)len;
        } else {
            if (!tok_str_push(out, "\xEF\xBF\xBD", 3, (uint32_t)i, (uint32_t)(i + (size_t)-len))) return false;
            i += (size_t)-len;
        }
    }
    if (!tok_str_reserve(out, out->n)) return false;
    out->b[out->n] = 0;
    return true;
}

uint32_t tok_utf8_next(const char *s, size_t n, size_t *i)
{
    uint32_t cp = 0xFFFD;
    int len = utf8_seq((const uint8_t *)s + *i, n - *i, &cp);
    *i += len > 0 ? (size_t)len : (size_t)-len;
    return len > 0 ? cp : 0xFFFD;
}

bool tok_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_seq((const uint8_t *)s + i, n - i, &cp);
        if (len <= 0) return false;
        i += (size_t)len;
    }
    return true;
}

size_t tok_utf8_complete(const uint8_t *s, size_t n)
{
    /* Only the last three bytes can start an unfinished sequence. */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        size_t at = n - back;
        if (s[at] < 0x80) break;
        if (s[at] >= 0xC0) {
            uint32_t cp;
            int len = utf8_seq(s + at, back, &cp);
            /* -back: valid so far but cut by the end of the buffer. */
            if (len == -(int)back && (size_t)(s[at] >= 0xF0 ? 4 : s[at] >= 0xE0 ? 3 : 2) > back) return at;
            break;
        }
    }
    return n;
}

/* ---- character classes ------------------------------------------------------------ */

bool tok_is_whitespace(uint32_t c)
{
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
    switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

static int category(uint32_t c) { return utf8proc_category((utf8proc_int32_t)c); }

bool tok_is_punctuation(uint32_t c)
{
    if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    int k = category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* BertNormalizer's "control": Cc, Cf, Co, Cs, less \t \n \r. Unassigned
 * code points (Cn) are kept, as HF keeps them (they end up as [UNK]). */
static bool is_control(uint32_t c)
{
    if (c == '\t' || c == '\n' || c == '\r') return false;
    int k = category(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CS;
}

static bool is_chinese(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Rust's char::to_lowercase: the full mapping, whose only multi-character
 * entry is U+0130 (İ -> i + U+0307); utf8proc gives the simple one. */
static int lower(uint32_t c, uint32_t out[2])
{
    if (c < 0x80) return out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c, 1;
    if (c == 0x130) return out[0] = 'i', out[1] = 0x307, 2;
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    return 1;
}

/* ---- regex (PCRE2) -----------------------------------------------------------------
 * HF `tokenizers` runs its patterns on Oniguruma. Oniguruma itself is not
 * used here: Debian's libonig exports POSIX regcomp/regexec, which then
 * replace glibc's for the whole process (Mesa's driconf deadlocked on them).
 * PCRE2 with UTF and UCP gives the same leftmost-first semantics and \p{..}
 * classes; the shorthands whose Unicode meaning differs between the two are
 * rewritten into Oniguruma's: \s is White_Space (PCRE2 adds U+180E), \w is
 * letters, marks, decimal digits and connector punctuation. */

struct tok_regex {
    pcre2_code *re;
    char *literal;   /* a plain string pattern instead */
    size_t lit_len;
};

#define WS_CLASS "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
#define WORD_CLASS "\\p{L}\\p{M}\\p{Nd}\\p{Pc}"

static bool put_str(char **o, size_t *n, size_t *cap, const char *s)
{
    size_t k = strlen(s);
    if (!base_grow((void **)o, cap, *n + k + 1, 1)) return false;
    memcpy(*o + *n, s, k + 1);
    *n += k;
    return true;
}

/* The pattern with \s \S \w \W as Oniguruma means them; NULL with *bad set
 * when a negated shorthand stands inside a class, or out of memory. */
static char *translate(const char *p, const char **bad)
{
    char *o = NULL;
    size_t n = 0, cap = 0;
    bool in_class = false, ok = put_str(&o, &n, &cap, "");
    *bad = NULL;
    for (size_t i = 0; ok && p[i]; i++) {
        char c = p[i];
        if (c == '\\' && p[i + 1]) {
            char e = p[++i];
            char two[3] = {'\\', e, 0};
            if (e == 's') ok = put_str(&o, &n, &cap, in_class ? WS_CLASS : "[" WS_CLASS "]");
            else if (e == 'w') ok = put_str(&o, &n, &cap, in_class ? WORD_CLASS : "[" WORD_CLASS "]");
            else if ((e == 'S' || e == 'W') && in_class) *bad = e == 'S' ? "\\S inside [...]" : "\\W inside [...]", ok = false;
            else if (e == 'S') ok = put_str(&o, &n, &cap, "[^" WS_CLASS "]");
            else if (e == 'W') ok = put_str(&o, &n, &cap, "[^" WORD_CLASS "]");
            else ok = put_str(&o, &n, &cap, two);
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            char one[2] = {c, 0};
            ok = put_str(&o, &n, &cap, one);
            /* a ']' first in the class (after an optional '^') is literal */
            if (ok && p[i + 1] == '^') ok = put_str(&o, &n, &cap, "^"), i++;
            if (ok && p[i + 1] == ']') ok = put_str(&o, &n, &cap, "]"), i++;
            continue;
        }
        if (in_class && c == ']') in_class = false;
        char one[2] = {c, 0};
        ok = put_str(&o, &n, &cap, one);
    }
    if (!ok) {
        free(o);
        return NULL;
    }
    return o;
}

/* One match-data block per thread, freed when the thread ends. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static void md_free(void *p) { pcre2_match_data_free(p); }
static void md_setup(void) { pthread_key_create(&md_key, md_free); }

static pcre2_match_data *thread_match_data(void)
{
    pthread_once(&md_once, md_setup);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (md && pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

vkf_status tok_regex_new(base_diag *d, const char *pattern, bool literal, tok_regex **out)
{
    *out = NULL;
    tok_regex *r = calloc(1, sizeof *r);
    if (!r) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (literal) {
        r->literal = base_strdup(pattern);
        r->lit_len = strlen(pattern);
        if (!r->literal) return free(r), base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        if (!r->lit_len) return free(r->literal), free(r), base_fail(d, VKF_ERROR_FORMAT, "empty split/replace pattern");
        *out = r;
        return VKF_OK;
    }
    const char *bad;
    char *tr = translate(pattern, &bad);
    if (!tr) {
        free(r);
        return bad ? base_fail(d, VKF_ERROR_UNSUPPORTED, "regex '%s': %s is not supported", pattern, bad)
                   : base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    int err;
    PCRE2_SIZE at;
    r->re = pcre2_compile((PCRE2_SPTR)tr, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &at, NULL);
    free(tr);
    if (!r->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        free(r);
        return base_fail(d, VKF_ERROR_FORMAT, "regex '%s': %s", pattern, (const char *)msg);
    }
    pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter when JIT is unavailable */
    *out = r;
    return VKF_OK;
}

void tok_regex_free(tok_regex *r)
{
    if (!r) return;
    pcre2_code_free(r->re);
    free(r->literal);
    free(r);
}

bool tok_regex_find(tok_regex *r, const char *s, size_t n, size_t from, size_t *ms, size_t *me)
{
    if (r->literal) {
        if (n < r->lit_len) return false;
        for (size_t i = from; i + r->lit_len <= n; i++) {
            if (s[i] == r->literal[0] && !memcmp(s + i, r->literal, r->lit_len)) {
                *ms = i, *me = i + r->lit_len;
                return true;
            }
        }
        return false;
    }
    pcre2_match_data *md = thread_match_data();
    if (!md) return tok_fail_set(TOK_FAIL_REGEX), false;
    /* the strings are valid UTF-8 by construction (tok_from_raw) */
    int rc = pcre2_match(r->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc < 0) {
        /* a match or depth limit is not "no match": the caller's result would be wrong */
        if (rc != PCRE2_ERROR_NOMATCH) tok_fail_set(TOK_FAIL_REGEX);
        return false;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0], *me = ov[1];
    return true;
}

/* ---- normalizers ------------------------------------------------------------------------ */

static _Thread_local tok_fail last_fail;

void tok_fail_set(tok_fail f)
{
    if (last_fail == TOK_FAIL_NONE) last_fail = f;
}

tok_fail tok_fail_take(void)
{
    tok_fail f = last_fail;
    last_fail = TOK_FAIL_NONE;
    return f;
}

/* Over the output limit: stop, and say why. */
static bool over(const tok_str *o, size_t limit)
{
    if (o->n <= limit) return false;
    tok_fail_set(TOK_FAIL_TOO_LONG);
    return true;
}

/* Appends in[s, e) with its alignments. */
static bool append_range(tok_str *o, const tok_str *in, size_t s, size_t e)
{
    if (!tok_str_reserve(o, o->n + (e - s))) return false;
    if (e == s) return o->b[o->n] = 0, true;
    memcpy(o->b + o->n, in->b + s, e - s);
    memcpy(o->os + o->n, in->os + s, (e - s) * 4);
    memcpy(o->oe + o->n, in->oe + s, (e - s) * 4);
    o->n += e - s;
    o->b[o->n] = 0;
    return true;
}

static bool push_cp(tok_str *o, uint32_t cp, uint32_t os, uint32_t oe)
{
    char buf[4];
    return tok_str_push(o, buf, (size_t)tok_utf8_put(cp, buf), os, oe);
}

static bool bert_char(const tok_norm *nz, tok_str *o, uint32_t c, uint32_t os, uint32_t oe)
{
    if (nz->clean_text) {
        if (c == 0 || c == 0xFFFD || is_control(c)) return true;
        if (tok_is_whitespace(c)) c = ' ';
    }
    bool cjk = nz->chinese_chars && is_chinese(c);
    if (cjk && !push_cp(o, ' ', os, oe)) return false;
    utf8proc_int32_t parts[8];
    int np = 1;
    parts[0] = (utf8proc_int32_t)c;
    if (nz->strip_accents && c >= 0x80) {
        utf8proc_int32_t bc = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)c, parts, 8, UTF8PROC_DECOMPOSE, &bc);
        np = k > 0 && k <= 8 ? (int)k : (parts[0] = (utf8proc_int32_t)c, 1);
    }
    for (int i = 0; i < np; i++) {
        uint32_t p = (uint32_t)parts[i];
        if (nz->strip_accents && p >= 0x80 && category(p) == UTF8PROC_CATEGORY_MN) continue;
        uint32_t lo[2];
        int nl = nz->lowercase ? lower(p, lo) : (lo[0] = p, 1);
        for (int j = 0; j < nl; j++)
            if (!push_cp(o, lo[j], os, oe)) return false;
    }
    if (cjk && !push_cp(o, ' ', os, oe)) return false;
    return true;
}

/* tokenizers' StripAccents drops every mark (unicode-normalization's
 * is_combining_mark: Mn, Mc and Me), where BertNormalizer drops Mn only. */
static bool is_mark(uint32_t c)
{
    int k = category(c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

/* Per-character normalizers: BERT, Lowercase, StripAccents. */
static bool map_chars(const tok_norm *nz, const tok_str *in, tok_str *o)
{
    if (!tok_str_reserve(o, in->n + 16)) return false;
    size_t i = 0;
    while (i < in->n) {
        uint8_t b = (uint8_t)in->b[i];
        if (b < 0x80) {
            /* ASCII fast path: at most one byte out. */
            uint32_t c = b;
            if (nz->kind == TOK_NORM_BERT && nz->clean_text) {
                if (c == 0 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
                    i++;
                    continue;
                }
                if (c == '\t' || c == '\n' || c == '\r' || c == 0x0B || c == 0x0C) c = ' ';
            }
            if ((nz->kind == TOK_NORM_LOWERCASE || (nz->kind == TOK_NORM_BERT && nz->lowercase)) && c >= 'A' && c <= 'Z')
                c += 32;
            if (!tok_str_reserve(o, o->n + 1)) return false;
            o->b[o->n] = (char)c, o->os[o->n] = in->os[i], o->oe[o->n] = in->oe[i], o->n++;
            i++;
            continue;
        }
        size_t start = i;
        uint32_t c = tok_utf8_next(in->b, in->n, &i);
        uint32_t os = in->os[start], oe = in->oe[i - 1];
        bool ok = true;
        if (nz->kind == TOK_NORM_BERT) {
            ok = bert_char(nz, o, c, os, oe);
        } else if (nz->kind == TOK_NORM_LOWERCASE) {
            uint32_t lo[2];
            int nl = lower(c, lo);
            for (int j = 0; j < nl && ok; j++) ok = push_cp(o, lo[j], os, oe);
        } else if (!is_mark(c)) { /* StripAccents */
            ok = tok_str_push(o, in->b + start, i - start, os, oe);
        }
        if (!ok) return false;
    }
    if (!tok_str_reserve(o, o->n)) return false;
    o->b[o->n] = 0;
    return true;
}

/* Alignment of a cluster in[cs, ce) whose normal form `part` differs from it.
 * When the characters' own normal forms concatenate to `part` (decomposition,
 * ligatures), each output aligns to its source character; otherwise
 * (composition) as HF's alignments come out: "e" + U+0301 + U+0308 -> "é" +
 * U+0308 aligns "é" to the "e" and U+0308 to itself. */
static bool cluster_align(const tok_str *in, size_t cs, size_t ce, const char *part, size_t pn, utf8proc_option_t opt,
                          tok_str *o)
{
    size_t at = o->n, used = 0;
    bool per_char = true;
    for (size_t i = cs; i < ce && per_char;) {
        size_t s = i;
        tok_utf8_next(in->b, ce, &i);
        utf8proc_uint8_t *one = NULL;
        utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)in->b + s, (utf8proc_ssize_t)(i - s), &one, opt);
        if (k < 0) return false;
        per_char = used + (size_t)k <= pn && !memcmp(part + used, one, (size_t)k);
        bool pushed = !per_char || tok_str_push(o, (const char *)one, (size_t)k, in->os[s], in->oe[i - 1]);
        used += (size_t)k;
        free(one);
        if (!pushed) return false;
    }
    if (per_char && used == pn) return true;
    o->n = at;
    /* An output character found unchanged further on aligns to itself; a
     * composed one aligns to the next input character not yet used. */
    size_t src = cs;
    for (size_t j = 0; j < pn;) {
        size_t s = j;
        uint32_t c = tok_utf8_next(part, pn, &j);
        size_t cur = src < ce ? src : cs, next;
        for (size_t q = src; q < ce;) {
            size_t qs = q;
            if (tok_utf8_next(in->b, ce, &q) == c) {
                cur = qs;
                break;
            }
        }
        next = cur;
        tok_utf8_next(in->b, ce, &next);
        if (next > src) src = next;
        if (!tok_str_push(o, part + s, j - s, in->os[cur], in->oe[next - 1])) return false;
    }
    return true;
}

/* NFC/NFD/NFKC/NFKD. The text is utf8proc's normal form of the whole string.
 * Alignments come from normalising each cluster (a starter and the
 * non-starters after it) on its own; where that concatenation differs from
 * the whole (composition across clusters, as Hangul jamo), the differing
 * middle aligns to the union of its sources. */
static bool unicode_form(const tok_norm *nz, const tok_str *in, tok_str *o)
{
    utf8proc_option_t opt = UTF8PROC_STABLE;
    switch (nz->kind) {
    case TOK_NORM_NFC: opt |= UTF8PROC_COMPOSE; break;
    case TOK_NORM_NFD: opt |= UTF8PROC_DECOMPOSE; break;
    case TOK_NORM_NFKC: opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    bool ascii = true;
    for (size_t i = 0; i < in->n && ascii; i++) ascii = (uint8_t)in->b[i] < 0x80;
    if (ascii) return append_range(o, in, 0, in->n);
    utf8proc_uint8_t *whole = NULL;
    utf8proc_ssize_t wn = utf8proc_map((const utf8proc_uint8_t *)in->b, (utf8proc_ssize_t)in->n, &whole, opt);
    if (wn < 0) return false;
    /* Cluster by cluster. */
    size_t i = 0;
    bool ok = true;
    while (i < in->n && ok) {
        size_t cs = i;
        tok_utf8_next(in->b, in->n, &i);
        while (i < in->n) {
            size_t j = i;
            uint32_t c = tok_utf8_next(in->b, in->n, &j);
            if (c < 0x80 || utf8proc_get_property((utf8proc_int32_t)c)->combining_class == 0) break;
            i = j;
        }
        uint32_t os = in->os[cs], oe = in->oe[i - 1];
        if (i - cs == 1) {
            ok = tok_str_push(o, in->b + cs, 1, os, oe);
            continue;
        }
        utf8proc_uint8_t *part = NULL;
        utf8proc_ssize_t pn = utf8proc_map((const utf8proc_uint8_t *)in->b + cs, (utf8proc_ssize_t)(i - cs), &part, opt);
        if (pn < 0) {
            ok = false;
            break;
        }
        if ((size_t)pn == i - cs && !memcmp(part, in->b + cs, (size_t)pn)) ok = append_range(o, in, cs, i);
        else ok = cluster_align(in, cs, i, (const char *)part, (size_t)pn, opt, o);
        free(part);
    }
    if (ok && ((size_t)wn != o->n || memcmp(whole, o->b, o->n))) {
        /* Rare: keep the common prefix and suffix, unite the middle. */
        size_t p = 0, n_new = (size_t)wn;
        while (p < o->n && p < n_new && o->b[p] == (char)whole[p]) p++;
        while (p > 0 && ((uint8_t)whole[p] & 0xC0) == 0x80) p--;
        size_t q = 0;
        while (q < o->n - p && q < n_new - p && o->b[o->n - 1 - q] == (char)whole[n_new - 1 - q]) q++;
        while (q > 0 && ((uint8_t)whole[n_new - q] & 0xC0) == 0x80) q--;
        tok_str t = {0};
        size_t mid_old = o->n - p - q;
        uint32_t mos = mid_old ? o->os[p] : (p ? o->oe[p - 1] : 0), moe = mos;
        for (size_t k = p; k < p + mid_old; k++) moe = BASE_MAX(moe, o->oe[k]);
        ok = tok_str_reserve(&t, n_new);
        if (ok) {
            memcpy(t.b, whole, n_new);
            memcpy(t.os, o->os, p * 4), memcpy(t.oe, o->oe, p * 4);
            for (size_t k = p; k < n_new - q; k++) t.os[k] = mos, t.oe[k] = moe;
            memcpy(t.os + n_new - q, o->os + o->n - q, q * 4), memcpy(t.oe + n_new - q, o->oe + o->n - q, q * 4);
            t.n = n_new;
            t.b[t.n] = 0;
            tok_str_free(o);
            *o = t;
        } else {
            tok_str_free(&t);
        }
    }
    free(whole);
    if (ok && tok_str_reserve(o, o->n)) o->b[o->n] = 0;
    return ok;
}

static bool replace(const tok_norm *nz, const tok_str *in, tok_str *o, size_t limit)
{
    size_t at = 0, ms, me, cl = strlen(nz->content);
    while (at <= in->n && tok_regex_find(nz->pattern, in->b, in->n, at, &ms, &me)) {
        if (over(o, limit)) return false;
        if (me == ms) { /* empty match: step one character */
            if (ms >= in->n) break;
            size_t j = ms;
            tok_utf8_next(in->b, in->n, &j);
            if (!append_range(o, in, at, j)) return false;
            at = j;
            continue;
        }
        if (!append_range(o, in, at, ms)) return false;
        /* tokenizers inserts the content after removing the match: it takes
         * the alignment of the match's last character */
        if (!tok_str_push(o, nz->content, cl, in->os[me - 1], in->oe[me - 1])) return false;
        at = me;
    }
    return append_range(o, in, at < in->n ? at : in->n, in->n);
}

static bool strip(const tok_norm *nz, const tok_str *in, tok_str *o)
{
    size_t s = 0, e = in->n;
    while (nz->left && s < e) {
        size_t j = s;
        if (!tok_is_whitespace(tok_utf8_next(in->b, e, &j))) break;
        s = j;
    }
    while (nz->right && e > s) {
        size_t j = e - 1;
        while (j > s && ((uint8_t)in->b[j] & 0xC0) == 0x80) j--;
        size_t k = j;
        if (!tok_is_whitespace(tok_utf8_next(in->b, e, &k))) break;
        e = j;
    }
    return append_range(o, in, s, e);
}

/* tokenizers' NormalizedString::transform over (character, change) entries:
 * a character with change <= 0 takes the alignment of the next old character,
 * consumes it and drops -change more; one with change 1 is inserted with the
 * alignment of the last old character consumed. Entries are applied one late,
 * since an empty replacement adds to the previous entry's change. */
typedef struct xform {
    const tok_str *in;
    tok_str *o;
    size_t at; /* the next old byte */
    char c[4];
    uint8_t n;
    bool have;
    long change;
} xform;

static bool xform_apply(xform *x)
{
    if (!x->have) return true;
    x->have = false;
    const tok_str *in = x->in;
    uint32_t os = 0, oe = 0;
    if (x->change > 0) {
        if (x->at >= 1) os = in->os[x->at - 1], oe = in->oe[x->at - 1];
    } else {
        size_t a = x->at < in->n ? x->at : in->n - 1;
        os = in->os[a], oe = in->oe[a];
        for (long k = 0; k <= -x->change && x->at < in->n; k++) tok_utf8_next(in->b, in->n, &x->at);
    }
    return tok_str_push(x->o, x->c, x->n, os, oe);
}

static bool xform_push(xform *x, const char *c, size_t n, long change)
{
    if (!xform_apply(x)) return false;
    memcpy(x->c, c, n);
    x->n = (uint8_t)n, x->change = change, x->have = true;
    return true;
}

/* The entries of old characters in[s, e) becoming rule[0, rl), as tokenizers'
 * Precompiled lists them: one for one, extra new ones inserted, fewer new
 * ones with the last dropping the rest (no new ones: the previous entry's). */
static bool xform_replace(xform *x, size_t s, size_t e, const char *rule, size_t rl)
{
    long k = 0, m = 0;
    for (size_t i = s; i < e; k++) tok_utf8_next(x->in->b, e, &i);
    for (size_t i = 0; i < rl; m++) tok_utf8_next(rule, rl, &i);
    if (m == 0) {
        if (x->have) x->change -= k;
        return true;
    }
    long j = 0;
    for (size_t i = 0; i < rl; j++) {
        size_t c = i;
        tok_utf8_next(rule, rl, &i);
        long change = m > k && j >= k ? 1 : m < k && j == m - 1 ? m - k : 0;
        if (!xform_push(x, rule + c, i - c, change)) return false;
    }
    return true;
}

/* A rule of the map for the chunk in[s, e) (the first, shortest, that prefixes it). */
static const char *precompiled_rule(const tok_charsmap *cm, const tok_str *in, size_t s, size_t e, size_t *rl)
{
    uint32_t lens[1], vals[1];
    return tok_charsmap_prefixes(cm, in->b + s, e - s, lens, vals, 1) ? tok_charsmap_string(cm, vals[0], rl) : NULL;
}

/* tokenizers' Precompiled: the map's first (shortest) rule that prefixes a
 * chunk replaces the whole chunk: each grapheme of under 6 bytes as a chunk,
 * else each of its characters. The quirks are HF's, kept so that ids and
 * offsets agree. */
static bool precompiled(const tok_norm *nz, const tok_str *in, tok_str *o, size_t limit)
{
    const tok_charsmap *cm = nz->charsmap;
    xform x = {.in = in, .o = o};
    bool ok = tok_str_reserve(o, in->n);
    for (size_t i = 0; ok && i < in->n;) {
        if (over(o, limit)) return false;
        /* the grapheme cluster starting at i */
        size_t g = i;
        utf8proc_int32_t state = 0;
        uint32_t prev = tok_utf8_next(in->b, in->n, &g);
        while (g < in->n) {
            size_t j = g;
            uint32_t c = tok_utf8_next(in->b, in->n, &j);
            if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev, (utf8proc_int32_t)c, &state)) break;
            prev = c, g = j;
        }
        size_t rl;
        const char *rule = g - i < 6 ? precompiled_rule(cm, in, i, g, &rl) : NULL;
        if (rule) {
            ok = xform_replace(&x, i, g, rule, rl);
        } else {
            for (size_t k = i; ok && k < g;) {
                size_t c = k;
                tok_utf8_next(in->b, g, &k);
                rule = precompiled_rule(cm, in, c, k, &rl);
                ok = rule ? xform_replace(&x, c, k, rule, rl) : xform_push(&x, in->b + c, k - c, 0);
            }
        }
        i = g;
    }
    if (ok) ok = xform_apply(&x);
    if (ok && tok_str_reserve(o, o->n)) o->b[o->n] = 0;
    return ok;
}

bool tok_normalize(const tok_norm *nz, tok_str *s, size_t limit)
{
    tok_str o = {0};
    bool ok;
    switch (nz->kind) {
    case TOK_NORM_BERT:
    case TOK_NORM_LOWERCASE:
    case TOK_NORM_STRIP_ACCENTS:
        ok = map_chars(nz, s, &o);
        break;
    case TOK_NORM_REPLACE:
        ok = replace(nz, s, &o, limit);
        break;
    case TOK_NORM_STRIP:
        ok = strip(nz, s, &o);
        break;
    case TOK_NORM_PRECOMPILED:
        ok = precompiled(nz, s, &o, limit);
        break;
    case TOK_NORM_PREPEND:
        if (!s->n) return true;
        ok = tok_str_push(&o, nz->content, strlen(nz->content), s->os[0], s->oe[0]) && append_range(&o, s, 0, s->n);
        break;
    default:
        ok = unicode_form(nz, s, &o);
        break;
    }
    if (ok && over(&o, limit)) ok = false; /* the others grow a bounded amount per character */
    if (!ok) {
        tok_str_free(&o);
        return false;
    }
    tok_str_free(s);
    *s = o;
    return true;
}
