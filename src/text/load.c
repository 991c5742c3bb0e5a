/* Loading a tokenizer from a Hugging Face directory: tokenizer.json when
 * present, else the legacy files, which are turned into the same pipeline
 * that `transformers` builds from them (its slow-to-fast converters) so both
 * forms give the same ids. Every error names the file and the component. */
#include "text.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


#define CLIP_PATTERN "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"

uint32_t tok_byte_char(uint8_t b)
{
    /* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves,
     * the 68 others (0x00-0x20, 0x7F-0xA0, 0xAD) to U+0100 upwards in byte order. */
    if (b <= 0x20) return 256 + b;
    if (b >= 0x7F && b <= 0xA0) return 256 + 33 + (b - 0x7F);
    if (b == 0xAD) return 256 + 67;
    return b;
}

typedef struct loader {
    base_diag *d;
    tok_tokenizer *t;
    char file[4096];      /* the file being read, for messages */
    uint64_t id_bound;    /* bytes of the files read so far: ids must be dense and
                             every entry takes bytes, so no valid id reaches it */
} loader;

static vkf_status fail_oom(loader *L) { return base_fail(L->d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory", L->file); }

/* Whether dir/name exists (of any type: what is not a regular file is
 * refused when read, rather than taken for missing). */
static bool file_exists(const char *dir, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    struct stat st;
    return base_stat(path, &st) == 0 || lstat(path, &st) == 0;
}

/* Refuses what is not a regular file (a FIFO would block the read) and sizes
 * no tokenizer file has, before opening anything. */
static vkf_status check_file(loader *L, const char *path)
{
    snprintf(L->file, sizeof L->file, "%s", path);
    struct stat st;
    if (base_stat(path, &st) != 0) return base_fail(L->d, VKF_ERROR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return base_fail(L->d, VKF_ERROR_IO, "%s: not a regular file", path);
    if ((uint64_t)st.st_size > TOK_MAX_FILE_BYTES)
        return base_fail(L->d, VKF_ERROR_FORMAT, "%s: %llu bytes is larger than any tokenizer file (limit %zu MiB)", path,
                         (unsigned long long)st.st_size, TOK_MAX_FILE_BYTES >> 20);
    L->id_bound += (uint64_t)st.st_size;
    return VKF_OK;
}

static vkf_status read_capped(loader *L, const char *path, char **data, size_t *size)
{
    *data = NULL;
    vkf_status s = check_file(L, path);
    if (s != VKF_OK) return s;
    void *p;
    s = base_read_file(L->d, path, &p, size);
    *data = p;
    return s;
}

static vkf_status json_file(loader *L, const char *path, cJSON **root)
{
    vkf_status s = check_file(L, path);
    return s != VKF_OK ? s : io_json_load(L->d, path, root);
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
/* The first boolean setting that is neither true, false nor null, checked at
 * the end of a load: the files' parsers (serde, Python's truthiness) do not
 * read "false" or 0 as the default. */
static _Thread_local const char *bad_bool;

static bool get_bool(const cJSON *o, const char *k, bool dflt)
{
    const cJSON *v = get(o, k);
    if (v && !cJSON_IsBool(v) && !cJSON_IsNull(v) && !bad_bool) bad_bool = k;
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}
/* special tokens in tokenizer_config.json may be AddedToken objects */
static const char *get_str(const cJSON *o, const char *k) { return io_json_token(o, k); }

/* ---- vocabulary and merges -------------------------------------------------------------- */

static vkf_status add_token(loader *L, const char *tok, size_t len, double idv, bool in_model, const char *where)
{
    if (idv < 0 || idv > INT32_MAX || idv != (double)(int64_t)idv)
        return base_fail(L->d, VKF_ERROR_FORMAT, "%s: %s: token '%.64s' has an invalid id", L->file, where, tok);
    /* checked before the vocabulary grows to it: an id of 2^31 in a small file
     * would otherwise size tables of gigabytes before the gap check */
    if ((uint64_t)idv >= L->id_bound)
        return base_fail(L->d, VKF_ERROR_FORMAT, "%s: %s: token '%.64s' has id %.0f, more than the files' %llu bytes can number "
                         "(ids must run from 0 without gaps)", L->file, where, tok, idv, (unsigned long long)L->id_bound);
    int dup;
    if (!tok_vocab_add(&L->t->vocab, tok, len, (uint32_t)idv, in_model, &dup)) {
        if (dup == 1) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: %s: duplicate token '%.64s'", L->file, where, tok);
        if (dup == 2)
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: %s: id %u is given to both '%.64s' and '%.64s'", L->file, where,
                             (uint32_t)idv, L->t->vocab.tok[(uint32_t)idv], tok);
        return fail_oom(L);
    }
    return VKF_OK;
}

static vkf_status vocab_from_json(loader *L, const cJSON *vocab)
{
    if (!cJSON_IsObject(vocab)) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: model.vocab is not an object", L->file);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        if (!cJSON_IsNumber(e)) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: vocab entry '%.64s' is not a number", L->file, e->string);
        vkf_status s = add_token(L, e->string, strlen(e->string), e->valuedouble, true, "vocab");
        if (s != VKF_OK) return s;
    }
    return VKF_OK;
}

/* vocab.txt: one token per line, the line number is the id. */
static vkf_status vocab_from_txt(loader *L, const char *path)
{
    char *text;
    size_t n;
    vkf_status s = read_capped(L, path, &text, &n);
    if (s != VKF_OK) return s;
    size_t line = 0;
    for (size_t i = 0; i < n && s == VKF_OK;) {
        size_t e = i;
        while (e < n && text[e] != '\n') e++;
        size_t len = e - i;
        if (len && text[i + len - 1] == '\r') len--;
        char save = text[i + len];
        text[i + len] = 0;
        char where[48];
        snprintf(where, sizeof where, "line %zu", line + 1);
        s = add_token(L, text + i, len, (double)line, true, where);
        text[i + len] = save;
        line++;
        i = e + 1;
    }
    free(text);
    return s;
}

static vkf_status vocab_from_vocab_json(loader *L, const char *path)
{
    cJSON *root;
    vkf_status s = json_file(L, path, &root);
    if (s != VKF_OK) return s;
    s = vocab_from_json(L, root);
    cJSON_Delete(root);
    return s;
}

/* One merge "a b" with its rank. */
static vkf_status add_merge(loader *L, const char *a, size_t al, const char *b, size_t bl, uint32_t rank)
{
    tok_tokenizer *t = L->t;
    int64_t ia = tok_vocab_find_model(&t->vocab, a, al), ib = tok_vocab_find_model(&t->vocab, b, bl);
    if (ia < 0 || ib < 0)
        return base_fail(L->d, VKF_ERROR_FORMAT, "%s: merge %u ('%.*s' '%.*s') names a token that is not in the vocabulary ('%.*s')",
                         L->file, rank + 1, (int)BASE_MIN(al, 64), a, (int)BASE_MIN(bl, 64), b,
                         (int)BASE_MIN(ia < 0 ? al : bl, 64), ia < 0 ? a : b);
    size_t pl = strlen(t->model.prefix);
    if (pl && bl >= pl && !memcmp(b, t->model.prefix, pl)) b += pl, bl -= pl;
    char stack[256];
    char *m = al + bl <= sizeof stack ? stack : malloc(al + bl);
    if (!m) return fail_oom(L);
    memcpy(m, a, al);
    memcpy(m + al, b, bl);
    int64_t id = tok_vocab_find_model(&t->vocab, m, al + bl);
    if (m != stack) free(m);
    if (id < 0)
        return base_fail(L->d, VKF_ERROR_FORMAT, "%s: merge %u ('%.*s' '%.*s'): the merged token is not in the vocabulary",
                         L->file, rank + 1, (int)BASE_MIN(al, 64), a, (int)BASE_MIN(bl, 64), b);
    /* A repeated pair keeps its first (best) rank, as HF does. */
    tok_merge_add(&t->model, (uint32_t)ia, (uint32_t)ib, rank, (uint32_t)id);
    return VKF_OK;
}

static vkf_status merges_from_json(loader *L, const cJSON *merges)
{
    if (!cJSON_IsArray(merges)) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: model.merges is not an array", L->file);
    if (!tok_merges_init(&L->t->model, (size_t)cJSON_GetArraySize(merges))) return fail_oom(L);
    uint32_t rank = 0;
    for (const cJSON *e = merges->child; e; e = e->next, rank++) {
        vkf_status s;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (!sp) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: merge %u '%.64s' is not two tokens", L->file, rank + 1, e->valuestring);
            s = add_merge(L, e->valuestring, (size_t)(sp - e->valuestring), sp + 1, strlen(sp + 1), rank);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) && cJSON_IsString(e->child->next)) {
            s = add_merge(L, e->child->valuestring, strlen(e->child->valuestring), e->child->next->valuestring,
                          strlen(e->child->next->valuestring), rank);
        } else {
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: merge %u is neither \"a b\" nor [a, b]", L->file, rank + 1);
        }
        if (s != VKF_OK) return s;
    }
    return VKF_OK;
}

static vkf_status merges_from_txt(loader *L, const char *path)
{
    char *text;
    size_t n;
    vkf_status s = read_capped(L, path, &text, &n);
    if (s != VKF_OK) return s;
    size_t lines = 1;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    if (!tok_merges_init(&L->t->model, lines)) return free(text), fail_oom(L);
    uint32_t rank = 0;
    size_t line = 0;
    for (size_t i = 0; i < n && s == VKF_OK; line++) {
        size_t e = i;
        while (e < n && text[e] != '\n') e++;
        size_t len = e - i;
        if (len && text[i + len - 1] == '\r') len--;
        const char *l = text + i;
        i = e + 1;
        if (!len || (line == 0 && len >= 8 && !memcmp(l, "#version", 8))) continue;
        const char *sp = memchr(l, ' ', len);
        if (!sp || sp == l || sp == l + len - 1)
            s = base_fail(L->d, VKF_ERROR_FORMAT, "%s: line %zu is not two tokens separated by a space", path, line + 1);
        else
            s = add_merge(L, l, (size_t)(sp - l), sp + 1, len - (size_t)(sp - l) - 1, rank++);
    }
    free(text);
    return s;
}

/* ---- components ------------------------------------------------------------------------------ */

static vkf_status regex_of(loader *L, const cJSON *pattern, const char *what, tok_regex **out)
{
    const char *rx = get_str(pattern, "Regex"), *lit = get_str(pattern, "String");
    if (!rx && !lit) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: %s: pattern is neither Regex nor String", L->file, what);
    vkf_status s = tok_regex_new(L->d, rx ? rx : lit, !rx, out);
    if (s != VKF_OK) return base_fail_prefix(L->d, s, "%s: %s: ", L->file, what);
    return VKF_OK;
}

/* Standard base64 (padding optional) into a new buffer; false on a bad character. */
static bool b64_decode(const char *s, uint8_t **out, size_t *n)
{
    size_t len = strlen(s), k = 0;
    uint8_t *b = malloc(len / 4 * 3 + 3);
    if (!b) return false;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
              : c == '+' ? 62 : c == '/' ? 63 : c == '=' ? -2 : -1;
        if (v == -2) break;
        if (v < 0) return free(b), false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) bits -= 8, b[k++] = (uint8_t)(acc >> bits);
    }
    *out = b, *n = k;
    return true;
}

static vkf_status add_norm(loader *L, const cJSON *n)
{
    tok_tokenizer *t = L->t;
    const char *type = get_str(n, "type");
    if (!type) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: normalizer without a type", L->file);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(n, "normalizers");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next) {
            vkf_status s = add_norm(L, e);
            if (s != VKF_OK) return s;
        }
        return VKF_OK;
    }
    tok_norm z = {0};
    if (!strcmp(type, "BertNormalizer")) {
        z.kind = TOK_NORM_BERT;
        z.clean_text = get_bool(n, "clean_text", true);
        z.chinese_chars = get_bool(n, "handle_chinese_chars", true);
        z.lowercase = get_bool(n, "lowercase", true);
        z.strip_accents = get_bool(n, "strip_accents", z.lowercase); /* null follows lowercase */
    } else if (!strcmp(type, "NFC")) z.kind = TOK_NORM_NFC;
    else if (!strcmp(type, "NFD")) z.kind = TOK_NORM_NFD;
    else if (!strcmp(type, "NFKC")) z.kind = TOK_NORM_NFKC;
    else if (!strcmp(type, "NFKD")) z.kind = TOK_NORM_NFKD;
    else if (!strcmp(type, "Lowercase")) z.kind = TOK_NORM_LOWERCASE;
    else if (!strcmp(type, "StripAccents")) z.kind = TOK_NORM_STRIP_ACCENTS;
    else if (!strcmp(type, "Strip")) {
        z.kind = TOK_NORM_STRIP;
        z.left = get_bool(n, "strip_left", true);
        z.right = get_bool(n, "strip_right", true);
    } else if (!strcmp(type, "Precompiled")) {
        const char *map = get_str(n, "precompiled_charsmap");
        if (!map) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: Precompiled normalizer without precompiled_charsmap", L->file);
        uint8_t *blob;
        size_t bn;
        if (!b64_decode(map, &blob, &bn)) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: precompiled_charsmap is not base64", L->file);
        z.kind = TOK_NORM_PRECOMPILED;
        z.charsmap = calloc(1, sizeof *z.charsmap);
        const char *why = "out of host memory";
        bool ok = z.charsmap && tok_charsmap_init(z.charsmap, blob, bn, false, &why);
        free(blob);
        if (!ok) {
            free(z.charsmap);
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: precompiled_charsmap is broken: %s", L->file, why);
        }
    } else if (!strcmp(type, "Replace") || !strcmp(type, "Prepend")) {
        const char *c = get_str(n, !strcmp(type, "Replace") ? "content" : "prepend");
        if (!c) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: %s normalizer without its string", L->file, type);
        z.kind = !strcmp(type, "Replace") ? TOK_NORM_REPLACE : TOK_NORM_PREPEND;
        if (z.kind == TOK_NORM_REPLACE) {
            vkf_status s = regex_of(L, get(n, "pattern"), "Replace normalizer", &z.pattern);
            if (s != VKF_OK) return s;
        }
        z.content = base_strdup(c);
        if (!z.content) return tok_regex_free(z.pattern), fail_oom(L);
    } else {
        return base_fail(L->d, VKF_ERROR_UNSUPPORTED,
                         "%s: normalizer '%s' is not supported (supported: BertNormalizer, Sequence, NFC, NFD, NFKC, NFKD, "
                         "Lowercase, StripAccents, Strip, Replace, Prepend, Precompiled)", L->file, type);
    }
    tok_norm *nn = realloc(t->norms, (t->n_norms + 1) * sizeof *nn);
    if (!nn) {
        tok_regex_free(z.pattern);
        free(z.content);
        if (z.charsmap) tok_charsmap_free(z.charsmap), free(z.charsmap);
        return fail_oom(L);
    }
    t->norms = nn;
    t->norms[t->n_norms++] = z;
    return VKF_OK;
}

/* Metaspace's replacement (one character) and prepend_scheme (or the old add_prefix_space). */
static vkf_status metaspace_opts(loader *L, const cJSON *p, char rep[8], tok_prepend *prepend)
{
    const char *r = get_str(p, "replacement");
    if (!r) r = "\xe2\x96\x81";
    size_t i = 0;
    if (!*r || strlen(r) > 4 || (tok_utf8_next(r, strlen(r), &i), i != strlen(r)))
        return base_fail(L->d, VKF_ERROR_FORMAT, "%s: Metaspace replacement '%.16s' is not one character", L->file, r);
    snprintf(rep, 8, "%s", r);
    const char *scheme = get_str(p, "prepend_scheme");
    if (!scheme) *prepend = get_bool(p, "add_prefix_space", true) ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
    else if (!strcmp(scheme, "always")) *prepend = TOK_PREPEND_ALWAYS;
    else if (!strcmp(scheme, "first")) *prepend = TOK_PREPEND_FIRST;
    else if (!strcmp(scheme, "never")) *prepend = TOK_PREPEND_NEVER;
    else return base_fail(L->d, VKF_ERROR_FORMAT, "%s: Metaspace prepend_scheme '%.16s' (always, first or never)", L->file, scheme);
    return VKF_OK;
}

static vkf_status add_pre(loader *L, const cJSON *p)
{
    tok_tokenizer *t = L->t;
    const char *type = get_str(p, "type");
    if (!type) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: pre_tokenizer without a type", L->file);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(p, "pretokenizers");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next) {
            vkf_status s = add_pre(L, e);
            if (s != VKF_OK) return s;
        }
        return VKF_OK;
    }
    if (t->n_pres && t->pres[t->n_pres - 1].kind == TOK_PRE_BYTE_LEVEL)
        return base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: pre-tokenizer '%s' after ByteLevel is not supported", L->file, type);
    tok_pre z = {0};
    vkf_status s = VKF_OK;
    if (!strcmp(type, "BertPreTokenizer")) z.kind = TOK_PRE_BERT;
    else if (!strcmp(type, "WhitespaceSplit")) z.kind = TOK_PRE_WHITESPACE_SPLIT;
    else if (!strcmp(type, "Whitespace")) {
        z.kind = TOK_PRE_WHITESPACE;
        s = tok_regex_new(L->d, "\\w+|[^\\w\\s]+", false, &z.pattern);
    } else if (!strcmp(type, "ByteLevel")) {
        z.kind = TOK_PRE_BYTE_LEVEL;
        z.add_prefix_space = get_bool(p, "add_prefix_space", true);
        if (get_bool(p, "use_regex", true)) s = tok_regex_new(L->d, tok_gpt2_pattern(), false, &z.pattern);
        t->model.byte_level = true;
    } else if (!strcmp(type, "Metaspace")) {
        z.kind = TOK_PRE_METASPACE;
        s = metaspace_opts(L, p, z.replacement, &z.prepend);
        z.split = get_bool(p, "split", true);
    } else if (!strcmp(type, "Split")) {
        z.kind = TOK_PRE_SPLIT;
        z.invert = get_bool(p, "invert", false);
        const char *b = get_str(p, "behavior");
        static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
        int k = -1;
        for (int i = 0; b && i < 5; i++)
            if (!strcmp(b, names[i])) k = i;
        if (k < 0) return base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: Split behavior '%s' is not supported", L->file, b ? b : "(none)");
        z.behavior = (tok_split_behavior)k;
        s = regex_of(L, get(p, "pattern"), "Split pre-tokenizer", &z.pattern);
    } else {
        return base_fail(L->d, VKF_ERROR_UNSUPPORTED,
                         "%s: pre-tokenizer '%s' is not supported (supported: BertPreTokenizer, ByteLevel, Split, "
                         "Whitespace, WhitespaceSplit, Metaspace, Sequence)", L->file, type);
    }
    if (s != VKF_OK) return s;
    tok_pre *np = realloc(t->pres, (t->n_pres + 1) * sizeof *np);
    if (!np) return tok_regex_free(z.pattern), fail_oom(L);
    t->pres = np;
    t->pres[t->n_pres++] = z;
    return VKF_OK;
}

static vkf_status special_ids(loader *L, const char *name, uint32_t **ids, uint32_t *n)
{
    int64_t id = tok_vocab_find(&L->t->vocab, name, strlen(name));
    if (id < 0) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: post-processor: special token '%.64s' is not in the vocabulary", L->file, name);
    *ids = malloc(sizeof **ids);
    if (!*ids) return fail_oom(L);
    **ids = (uint32_t)id;
    *n = 1;
    return VKF_OK;
}

static vkf_status tmpl_add(loader *L, tok_tmpl *tm, int seq, uint32_t type_id, const char *special)
{
    tok_tmpl_item *v = realloc(tm->v, (tm->n + 1) * sizeof *v);
    if (!v) return fail_oom(L);
    tm->v = v;
    tok_tmpl_item it = {.seq = seq, .type_id = type_id};
    if (special) {
        vkf_status s = special_ids(L, special, &it.ids, &it.n_ids);
        if (s != VKF_OK) return s;
    }
    tm->v[tm->n++] = it;
    return VKF_OK;
}

/* [cls] A [sep] ([sep] B [sep] for RoBERTa, B [sep] for BERT). */
static vkf_status cls_sep(loader *L, const cJSON *p, bool roberta)
{
    const cJSON *cls = get(p, "cls"), *sep = get(p, "sep");
    if (!cJSON_IsArray(cls) || !cJSON_IsArray(sep) || !cJSON_IsString(cls->child) || !cJSON_IsString(sep->child))
        return base_fail(L->d, VKF_ERROR_FORMAT, "%s: post-processor needs cls and sep as [token, id]", L->file);
    const char *c = cls->child->valuestring, *s = sep->child->valuestring;
    tok_tokenizer *t = L->t;
    vkf_status st;
    uint32_t b = roberta ? 0 : 1;
    if ((st = tmpl_add(L, &t->single, -1, 0, c)) || (st = tmpl_add(L, &t->single, 0, 0, NULL)) ||
        (st = tmpl_add(L, &t->single, -1, 0, s)) || (st = tmpl_add(L, &t->pair, -1, 0, c)) ||
        (st = tmpl_add(L, &t->pair, 0, 0, NULL)) || (st = tmpl_add(L, &t->pair, -1, 0, s)))
        return st;
    if (roberta && (st = tmpl_add(L, &t->pair, -1, 0, s))) return st;
    if ((st = tmpl_add(L, &t->pair, 1, b, NULL)) || (st = tmpl_add(L, &t->pair, -1, b, s))) return st;
    t->trim_offsets = roberta && get_bool(p, "trim_offsets", true);
    t->post = TOK_POST_TEMPLATE;
    return VKF_OK;
}

static vkf_status template_side(loader *L, const cJSON *items, const cJSON *specials, tok_tmpl *tm)
{
    for (const cJSON *e = items ? items->child : NULL; e; e = e->next) {
        const cJSON *sp = get(e, "SpecialToken"), *sq = get(e, "Sequence");
        const cJSON *x = sp ? sp : sq;
        const cJSON *tid = get(x, "type_id");
        if (tid && (!cJSON_IsNumber(tid) || tid->valuedouble < 0 || tid->valuedouble > INT32_MAX || tid->valuedouble != floor(tid->valuedouble)))
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: TemplateProcessing: type_id is not an integer from 0 to 2^31 - 1", L->file);
        uint32_t type_id = tid ? (uint32_t)tid->valuedouble : 0;
        const char *id = get_str(x, "id");
        if (!x || !id) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: TemplateProcessing item is neither SpecialToken nor Sequence", L->file);
        if (sq) {
            if (strcmp(id, "A") && strcmp(id, "B")) /* tokenizers refuses any other (it read as A: the text twice) */
                return base_fail(L->d, VKF_ERROR_FORMAT, "%s: TemplateProcessing: sequence '%.16s' is neither A nor B", L->file, id);
            vkf_status s = tmpl_add(L, tm, !strcmp(id, "B") ? 1 : 0, type_id, NULL);
            if (s != VKF_OK) return s;
            continue;
        }
        const cJSON *def = get(specials, id);
        const cJSON *ids = get(def, "ids");
        if (!cJSON_IsArray(ids)) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: TemplateProcessing: special token '%.64s' has no ids", L->file, id);
        tok_tmpl_item *v = realloc(tm->v, (tm->n + 1) * sizeof *v);
        if (!v) return fail_oom(L);
        tm->v = v;
        tok_tmpl_item it = {.seq = -1, .type_id = type_id};
        int n = cJSON_GetArraySize(ids);
        it.ids = calloc((size_t)n + 1, sizeof *it.ids);
        if (!it.ids) return fail_oom(L);
        for (const cJSON *i = ids->child; i; i = i->next) {
            if (!cJSON_IsNumber(i) || i->valuedouble < 0 || i->valuedouble >= L->t->vocab.n) {
                free(it.ids);
                return base_fail(L->d, VKF_ERROR_FORMAT, "%s: TemplateProcessing: special token '%.64s' has an id outside the vocabulary", L->file, id);
            }
            it.ids[it.n_ids++] = (uint32_t)i->valuedouble;
        }
        tm->v[tm->n++] = it;
    }
    return VKF_OK;
}

static vkf_status set_post(loader *L, const cJSON *p)
{
    tok_tokenizer *t = L->t;
    if (!p || cJSON_IsNull(p)) return VKF_OK;
    const char *type = get_str(p, "type");
    if (!type) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: post_processor without a type", L->file);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(p, "processors");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next) {
            vkf_status s = set_post(L, e);
            if (s != VKF_OK) return s;
        }
        return VKF_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        t->trim_offsets = get_bool(p, "trim_offsets", true);
        return VKF_OK;
    }
    if (t->post != TOK_POST_NONE) return base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: two template post-processors", L->file);
    if (!strcmp(type, "BertProcessing")) return cls_sep(L, p, false);
    if (!strcmp(type, "RobertaProcessing")) return cls_sep(L, p, true);
    if (!strcmp(type, "TemplateProcessing")) {
        vkf_status s = template_side(L, get(p, "single"), get(p, "special_tokens"), &t->single);
        if (s == VKF_OK) s = template_side(L, get(p, "pair"), get(p, "special_tokens"), &t->pair);
        t->post = TOK_POST_TEMPLATE;
        return s;
    }
    return base_fail(L->d, VKF_ERROR_UNSUPPORTED,
                     "%s: post-processor '%s' is not supported (supported: TemplateProcessing, BertProcessing, "
                     "RobertaProcessing, ByteLevel, Sequence)", L->file, type);
}

static vkf_status set_decoder(loader *L, const cJSON *p)
{
    tok_tokenizer *t = L->t;
    if (!p || cJSON_IsNull(p)) return VKF_OK;
    const char *type = get_str(p, "type");
    if (!type) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: decoder without a type", L->file);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(p, "decoders");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next) {
            vkf_status s = set_decoder(L, e);
            if (s != VKF_OK) return s;
        }
        return VKF_OK;
    }
    static const char *const steps[] = {"Metaspace", "Replace", "ByteFallback", "Fuse", "Strip"};
    for (int k = 0; k < 5; k++) {
        if (strcmp(type, steps[k])) continue;
        if (t->decoder != TOK_DEC_NONE)
            return base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: decoder '%s' after a WordPiece/ByteLevel decoder is not supported", L->file, type);
        tok_step st = {.kind = (tok_step_kind)k};
        vkf_status s = VKF_OK;
        if (st.kind == TOK_STEP_METASPACE) s = metaspace_opts(L, p, st.from, &st.prepend);
        if (st.kind == TOK_STEP_REPLACE) {
            const char *from = get_str(get(p, "pattern"), "String"), *to = get_str(p, "content");
            if (!from || !to || !*from || strlen(from) >= sizeof st.from || strlen(to) >= sizeof st.to)
                return base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: Replace decoder: only a short String pattern is supported", L->file);
            snprintf(st.from, sizeof st.from, "%s", from), snprintf(st.to, sizeof st.to, "%s", to);
        }
        if (st.kind == TOK_STEP_STRIP) {
            const char *c = get_str(p, "content");
            const cJSON *a = get(p, "start"), *b = get(p, "stop");
            if (!c || strlen(c) > 4 || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble < 0 || b->valuedouble < 0)
                return base_fail(L->d, VKF_ERROR_FORMAT, "%s: Strip decoder needs content, start and stop", L->file);
            snprintf(st.from, sizeof st.from, "%s", c);
            st.start = (uint32_t)BASE_MIN(a->valuedouble, 1e6), st.stop = (uint32_t)BASE_MIN(b->valuedouble, 1e6);
        }
        if (s != VKF_OK) return s;
        tok_step *v = realloc(t->steps, (t->n_steps + 1) * sizeof *v);
        if (!v) return fail_oom(L);
        t->steps = v;
        t->steps[t->n_steps++] = st;
        return VKF_OK;
    }
    if (t->n_steps) return base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: decoder '%s' after string decoders is not supported", L->file, type);
    if (!strcmp(type, "WordPiece")) {
        t->decoder = TOK_DEC_WORDPIECE;
        t->wp_cleanup = get_bool(p, "cleanup", true);
    } else if (!strcmp(type, "ByteLevel")) {
        t->decoder = TOK_DEC_BYTE_LEVEL;
    } else if (!strcmp(type, "BPEDecoder")) {
        t->decoder = TOK_DEC_BPE_SUFFIX;
    } else {
        return base_fail(L->d, VKF_ERROR_UNSUPPORTED,
                         "%s: decoder '%s' is not supported (supported: WordPiece, ByteLevel, BPEDecoder, Metaspace, Replace, "
                         "ByteFallback, Fuse, Strip, Sequence)", L->file, type);
    }
    return VKF_OK;
}

static vkf_status add_added(loader *L, const cJSON *list)
{
    tok_tokenizer *t = L->t;
    /* room for the whole list at once: one realloc per token is quadratic
     * where realloc copies (100,000 added tokens took over a minute under ASan) */
    size_t need = t->n_added;
    for (const cJSON *e = list ? list->child : NULL; e; e = e->next) need++;
    if (need > t->n_added) {
        tok_added *v = realloc(t->added, need * sizeof *v);
        if (!v) return fail_oom(L);
        t->added = v;
    }
    for (const cJSON *e = list ? list->child : NULL; e; e = e->next) {
        const char *c = get_str(e, "content");
        const cJSON *id = get(e, "id");
        if (!c || !*c || !cJSON_IsNumber(id))
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: added_tokens entry without content or id", L->file);
        int64_t have = tok_vocab_find(&t->vocab, c, strlen(c));
        if (have < 0) {
            vkf_status s = add_token(L, c, strlen(c), id->valuedouble, false, "added_tokens");
            if (s != VKF_OK) return s;
        } else if (have != (int64_t)id->valuedouble) {
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: added token '%.64s' has id %.0f but the vocabulary gives it %lld",
                             L->file, c, id->valuedouble, (long long)have);
        }
        bool special = get_bool(e, "special", false);
        tok_added a = {.len = (uint32_t)strlen(c), .id = (uint32_t)id->valuedouble, .special = special,
                       .lstrip = get_bool(e, "lstrip", false), .rstrip = get_bool(e, "rstrip", false),
                       .single_word = get_bool(e, "single_word", false), .normalized = get_bool(e, "normalized", !special)};
        a.content = base_strdup(c);
        if (!a.content) return fail_oom(L);
        t->added[t->n_added++] = a;
    }
    return VKF_OK;
}

static int by_length_desc(const void *a, const void *b)
{
    const tok_added *x = a, *y = b;
    return x->len != y->len ? (x->len < y->len ? 1 : -1) : strcmp(x->content, y->content);
}

/* ---- the model section ------------------------------------------------------------------------- */

/* tokenizers' Unigram: vocab [[piece, score], ...] in id order, unk_id, byte_fallback. */
static vkf_status unigram_model(loader *L, const cJSON *m)
{
    tok_tokenizer *t = L->t;
    tok_model *md = &t->model;
    md->kind = TOK_MODEL_UNIGRAM;
    md->byte_fallback = get_bool(m, "byte_fallback", false);
    snprintf(t->kind, sizeof t->kind, "unigram");
    md->prefix = base_strdup(""), md->suffix = base_strdup("");
    if (!md->prefix || !md->suffix) return fail_oom(L);
    const cJSON *vocab = get(m, "vocab"), *unk = get(m, "unk_id");
    int n = cJSON_GetArraySize(vocab);
    if (!cJSON_IsArray(vocab) || n == 0) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: Unigram vocab is not a non-empty list", L->file);
    tok_unigram *u = &md->uni;
    u->score = malloc((size_t)n * sizeof *u->score);
    if (!u->score) return fail_oom(L);
    double mn = INFINITY;
    int id = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, id++) {
        const cJSON *piece = cJSON_GetArrayItem(e, 0), *score = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || !cJSON_IsString(piece) || !cJSON_IsNumber(score) || !isfinite(score->valuedouble))
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: Unigram vocab entry %d is not [piece, score]", L->file, id);
        const char *p = piece->valuestring;
        vkf_status s = add_token(L, p, strlen(p), id, true, "Unigram vocab");
        if (s != VKF_OK) return s;
        if (!tok_trie_insert(&u->trie, p, strlen(p), id)) return fail_oom(L);
        u->score[id] = score->valuedouble;
        mn = score->valuedouble < mn ? score->valuedouble : mn;
    }
    u->unk_score = mn - 10.0;
    u->unk_id = md->unk_id = -1;
    if (unk && !cJSON_IsNull(unk)) {
        if (!cJSON_IsNumber(unk) || unk->valuedouble < 0 || unk->valuedouble >= n)
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: Unigram unk_id is not an id of its vocabulary", L->file);
        u->unk_id = md->unk_id = (int64_t)unk->valuedouble;
    }
    return VKF_OK;
}

static vkf_status set_model(loader *L, const cJSON *m, const char *dir, bool legacy)
{
    tok_tokenizer *t = L->t;
    tok_model *md = &t->model;
    const char *type = get_str(m, "type");
    if (!type) type = get(m, "merges") ? "BPE" : "WordPiece";
    md->unk_id = -1;
    const char *pfx = get_str(m, "continuing_subword_prefix"), *sfx = get_str(m, "end_of_word_suffix");
    if (!strcmp(type, "WordPiece")) {
        md->kind = TOK_MODEL_WORDPIECE;
        const cJSON *mx = get(m, "max_input_chars_per_word");
        if (mx && !cJSON_IsNull(mx) && (!cJSON_IsNumber(mx) || mx->valuedouble < 0 || mx->valuedouble != floor(mx->valuedouble)))
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: max_input_chars_per_word is not a whole number", L->file);
        /* 0 is tokenizers' too: every word is the unknown token (it became 100) */
        md->max_chars = mx && cJSON_IsNumber(mx) ? (uint32_t)BASE_MIN(mx->valuedouble, 1e9) : 100;
        if (!pfx) pfx = "##";
        snprintf(t->kind, sizeof t->kind, "wordpiece");
    } else if (!strcmp(type, "BPE")) {
        md->kind = TOK_MODEL_BPE;
        md->fuse_unk = get_bool(m, "fuse_unk", false);
        md->byte_fallback = get_bool(m, "byte_fallback", false);
        md->ignore_merges = get_bool(m, "ignore_merges", false);
        const cJSON *dr = get(m, "dropout");
        if (cJSON_IsNumber(dr) && dr->valuedouble > 0)
            return base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: BPE dropout is not supported (it is for training)", L->file);
        snprintf(t->kind, sizeof t->kind, "bpe");
    } else if (!strcmp(type, "Unigram")) {
        return unigram_model(L, m);
    } else {
        return base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: model type '%s' is not supported (supported: WordPiece, BPE, Unigram)", L->file, type);
    }
    if ((pfx && strlen(pfx) > 16) || (sfx && strlen(sfx) > 16))
        return base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: subword prefix or suffix over 16 bytes", L->file);
    md->prefix = base_strdup(pfx ? pfx : "");
    md->suffix = base_strdup(sfx ? sfx : "");
    if (!md->prefix || !md->suffix) return fail_oom(L);
    vkf_status s;
    char path[4096];
    if (!legacy) {
        s = vocab_from_json(L, get(m, "vocab"));
    } else if (md->kind == TOK_MODEL_WORDPIECE) {
        file_exists(dir, "vocab.txt", path, sizeof path);
        s = vocab_from_txt(L, path);
    } else {
        file_exists(dir, "vocab.json", path, sizeof path);
        s = vocab_from_vocab_json(L, path);
    }
    if (s != VKF_OK) return s;
    if (t->vocab.n == 0) return base_fail(L->d, VKF_ERROR_FORMAT, "%s: the vocabulary is empty", L->file);
    if (md->kind == TOK_MODEL_BPE) {
        if (!legacy) {
            s = merges_from_json(L, get(m, "merges"));
        } else {
            file_exists(dir, "merges.txt", path, sizeof path);
            s = merges_from_txt(L, path);
        }
        if (s != VKF_OK) return s;
    }
    const char *unk = get_str(m, "unk_token");
    if (unk) {
        md->unk_id = tok_vocab_find(&t->vocab, unk, strlen(unk));
        if (md->unk_id < 0 && md->kind == TOK_MODEL_WORDPIECE)
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: the unknown token '%.64s' is not in the vocabulary", L->file, unk);
    } else if (md->kind == TOK_MODEL_WORDPIECE) {
        return base_fail(L->d, VKF_ERROR_FORMAT, "%s: WordPiece model without unk_token", L->file);
    }
    return VKF_OK;
}

/* ---- legacy files: the pipeline transformers' converters build ------------------------------------ */

typedef enum legacy_kind { LEG_BERT, LEG_GPT2, LEG_ROBERTA, LEG_CLIP } legacy_kind;

static cJSON *obj(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    if (o && type) cJSON_AddStringToObject(o, "type", type);
    return o;
}

static cJSON *added_json(const char *content, int64_t id)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", (double)id);
    cJSON_AddStringToObject(a, "content", content);
    cJSON_AddBoolToObject(a, "special", 1);
    return a;
}

/* The tokenizer.json equivalent of the legacy files (without vocab/merges). */
static cJSON *legacy_json(legacy_kind k, const cJSON *cfg)
{
    cJSON *root = obj(NULL), *model = obj(k == LEG_BERT ? "WordPiece" : "BPE");
    cJSON_AddItemToObject(root, "model", model);
    const char *unk = get_str(cfg, "unk_token");
    if (k == LEG_BERT) {
        cJSON_AddStringToObject(model, "unk_token", unk ? unk : "[UNK]");
        cJSON *nz = cJSON_AddObjectToObject(root, "normalizer");
        cJSON_AddStringToObject(nz, "type", "BertNormalizer");
        bool lower = get_bool(cfg, "do_lower_case", true);
        cJSON_AddBoolToObject(nz, "lowercase", lower);
        cJSON_AddBoolToObject(nz, "handle_chinese_chars", get_bool(cfg, "tokenize_chinese_chars", true));
        cJSON_AddBoolToObject(nz, "strip_accents", get_bool(cfg, "strip_accents", lower));
        cJSON_AddItemToObject(root, "pre_tokenizer", obj("BertPreTokenizer"));
        cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
        cJSON_AddStringToObject(post, "type", "BertProcessing");
        const char *cls = get_str(cfg, "cls_token"), *sep = get_str(cfg, "sep_token");
        cJSON *c = cJSON_AddArrayToObject(post, "cls"), *s = cJSON_AddArrayToObject(post, "sep");
        cJSON_AddItemToArray(c, cJSON_CreateString(cls ? cls : "[CLS]"));
        cJSON_AddItemToArray(s, cJSON_CreateString(sep ? sep : "[SEP]"));
        cJSON_AddItemToObject(root, "decoder", obj("WordPiece"));
        return root;
    }
    if (k == LEG_CLIP) {
        cJSON_AddStringToObject(model, "unk_token", unk ? unk : "<|endoftext|>");
        cJSON_AddStringToObject(model, "end_of_word_suffix", "</w>");
        cJSON *nz = cJSON_AddObjectToObject(root, "normalizer");
        cJSON_AddStringToObject(nz, "type", "Sequence");
        cJSON *list = cJSON_AddArrayToObject(nz, "normalizers");
        cJSON_AddItemToArray(list, obj("NFC"));
        cJSON *rep = obj("Replace");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(rep, "pattern"), "Regex", "\\s+");
        cJSON_AddStringToObject(rep, "content", " ");
        cJSON_AddItemToArray(list, rep);
        cJSON_AddItemToArray(list, obj("Lowercase"));
        cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
        cJSON_AddStringToObject(pre, "type", "Sequence");
        cJSON *pl = cJSON_AddArrayToObject(pre, "pretokenizers");
        cJSON *split = obj("Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", CLIP_PATTERN);
        cJSON_AddStringToObject(split, "behavior", "Removed");
        cJSON_AddBoolToObject(split, "invert", 1);
        cJSON_AddItemToArray(pl, split);
        cJSON *bl = obj("ByteLevel");
        cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
        cJSON_AddItemToArray(pl, bl);
    } else {
        cJSON *bl = cJSON_AddObjectToObject(root, "pre_tokenizer");
        cJSON_AddStringToObject(bl, "type", "ByteLevel");
        cJSON_AddBoolToObject(bl, "add_prefix_space", get_bool(cfg, "add_prefix_space", false));
    }
    cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
    if (k == LEG_GPT2) {
        /* $A (with bos first when add_bos_token) */
        cJSON_AddStringToObject(post, "type", "TemplateProcessing");
        cJSON_AddItemToObject(root, "decoder", obj("ByteLevel"));
        return root;
    }
    const char *cls = get_str(cfg, k == LEG_CLIP ? "bos_token" : "cls_token"), *sep = get_str(cfg, k == LEG_CLIP ? "eos_token" : "sep_token");
    cJSON_AddStringToObject(post, "type", "RobertaProcessing");
    cJSON_AddBoolToObject(post, "trim_offsets", k == LEG_ROBERTA && get_bool(cfg, "trim_offsets", true));
    cJSON *c = cJSON_AddArrayToObject(post, "cls"), *s = cJSON_AddArrayToObject(post, "sep");
    cJSON_AddItemToArray(c, cJSON_CreateString(cls ? cls : k == LEG_CLIP ? "<|startoftext|>" : "<s>"));
    cJSON_AddItemToArray(s, cJSON_CreateString(sep ? sep : k == LEG_CLIP ? "<|endoftext|>" : "</s>"));
    cJSON_AddItemToObject(root, "decoder", obj(k == LEG_CLIP ? "BPEDecoder" : "ByteLevel"));
    return root;
}

/* Special tokens of a legacy tokenizer that exist in its vocabulary. */
static vkf_status legacy_added(loader *L, legacy_kind k, const cJSON *cfg)
{
    cJSON *list = cJSON_CreateArray();
    if (!list) return fail_oom(L);
    /* transformers >= 4.34 lists the added tokens in tokenizer_config.json */
    const cJSON *dec = get(cfg, "added_tokens_decoder");
    for (const cJSON *e = cJSON_IsObject(dec) ? dec->child : NULL; e; e = e->next) {
        const char *name = get_str(e, "content");
        char *end;
        long id = strtol(e->string, &end, 10);
        if (!name || *end || id < 0) {
            cJSON_Delete(list);
            return base_fail(L->d, VKF_ERROR_FORMAT, "tokenizer_config.json: added_tokens_decoder entry '%.32s' is not id: {content}",
                             e->string);
        }
        bool seen = false;
        for (const cJSON *x = list->child; x; x = x->next) seen |= !strcmp(get_str(x, "content"), name);
        if (seen) continue;
        cJSON *a = cJSON_Duplicate(e, 1);
        cJSON_DeleteItemFromObject(a, "id");
        cJSON_AddNumberToObject(a, "id", (double)id);
        cJSON_AddItemToArray(list, a);
    }
    /* transformers' SPECIAL_TOKENS_ATTRIBUTES order, in which a token the
     * vocabulary lacks is appended with the next id */
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
    static const char *const dflt[4][7] = {
        {NULL, NULL, "[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"},
        {"<|endoftext|>", "<|endoftext|>", "<|endoftext|>", NULL, NULL, NULL, NULL},
        {"<s>", "</s>", "<unk>", "</s>", "<pad>", "<s>", "<mask>"},
        {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>", NULL, "<|endoftext|>", NULL, NULL},
    };
    const cJSON *more = get(cfg, "additional_special_tokens");
    const cJSON *extra = cJSON_IsArray(more) ? more->child : NULL;
    for (int i = 0; i < 7 || extra; i++) {
        const char *name;
        if (i < 7) {
            name = get_str(cfg, keys[i]);
            if (!name) name = dflt[k][i];
        } else {
            name = cJSON_IsString(extra) ? extra->valuestring : get_str(extra, "content");
            extra = extra->next;
        }
        if (!name || !*name) continue;
        bool seen = false;
        for (const cJSON *e = list->child; e; e = e->next) seen |= !strcmp(get_str(e, "content"), name);
        if (seen) continue;
        int64_t id = tok_vocab_find(&L->t->vocab, name, strlen(name));
        /* a role token only when the config names it (the defaults are guesses) */
        if (id < 0 && i < 7 && !get_str(cfg, keys[i])) continue;
        if (id < 0) { /* after the vocabulary and the added tokens listed above */
            id = L->t->vocab.n;
            for (const cJSON *e = list->child; e; e = e->next) id = BASE_MAX(id, (int64_t)get(e, "id")->valuedouble + 1);
            vkf_status st = add_token(L, name, strlen(name), (double)id, false, "special tokens");
            if (st != VKF_OK) return cJSON_Delete(list), st;
        }
        cJSON_AddItemToArray(list, added_json(name, id));
    }
    vkf_status s = add_added(L, list);
    cJSON_Delete(list);
    return s;
}

/* ---- SentencePiece files, as transformers' slow tokenizers read them ---------------------------- */

static const char *const SPM_FILES[] = {"spiece.model", "spm.model", "tokenizer.model", "sentencepiece.bpe.model", "source.spm"};

static vkf_status spm_model(loader *L, const char *path, tok_spm_model *m, tok_spm_proc *p)
{
    char *data;
    size_t n;
    vkf_status s = read_capped(L, path, &data, &n);
    if (s == VKF_OK) s = tok_spm_parse(L->d, path, (const uint8_t *)data, n, m);
    free(data);
    if (s == VKF_OK) s = tok_spm_proc_init(L->d, path, m, p);
    return s;
}

/* The class from tokenizer_config.json's tokenizer_class, else config.json's
 * model_type, else the file's name. */
static vkf_status spm_class(loader *L, const char *cls, const char *mt, const char *file, tok_spm_class *out)
{
    static const struct {
        const char *cls, *mt;
        tok_spm_class k;
    } known[] = {{"T5Tokenizer", "t5", TOK_SPM_T5},           {"MT5Tokenizer", "mt5", TOK_SPM_T5},
                 {"AlbertTokenizer", "albert", TOK_SPM_ALBERT}, {"LlamaTokenizer", "llama", TOK_SPM_LLAMA},
                 {"CodeLlamaTokenizer", "mistral", TOK_SPM_LLAMA}, {"XLMRobertaTokenizer", "xlm-roberta", TOK_SPM_XLMR},
                 {"DebertaV2Tokenizer", "deberta-v2", TOK_SPM_DEBERTA}, {"MarianTokenizer", "marian", TOK_SPM_MARIAN}};
    char name[64] = "";
    if (cls) {
        snprintf(name, sizeof name, "%s", cls);
        size_t n = strlen(name);
        if (n > 4 && !strcmp(name + n - 4, "Fast")) name[n - 4] = 0;
    }
    for (size_t i = 0; i < BASE_ARRAY_LEN(known); i++)
        if ((cls && !strcmp(name, known[i].cls)) || (!cls && mt && !strcmp(mt, known[i].mt))) return *out = known[i].k, VKF_OK;
    if (cls || mt)
        return base_fail(L->d, VKF_ERROR_UNSUPPORTED,
                         "%s: SentencePiece tokenizer '%s' is not supported (supported: T5Tokenizer, AlbertTokenizer, LlamaTokenizer, "
                         "XLMRobertaTokenizer, DebertaV2Tokenizer, MarianTokenizer)", file, cls ? cls : mt);
    *out = !strcmp(file, "tokenizer.model") ? TOK_SPM_LLAMA : !strcmp(file, "sentencepiece.bpe.model") ? TOK_SPM_XLMR
         : !strcmp(file, "spm.model") ? TOK_SPM_DEBERTA : !strcmp(file, "source.spm") ? TOK_SPM_MARIAN : TOK_SPM_GENERIC;
    return VKF_OK;
}

/* One special token of the class: the config's value (a string or an
 * AddedToken object; null: none) or the class default, at its vocabulary id
 * or appended. */
static vkf_status spm_special(loader *L, const cJSON *cfg, const char *key, const char *dflt, bool lstrip, bool rstrip, cJSON *list)
{
    const cJSON *v = key ? get(cfg, key) : NULL;
    const char *name = key && v ? get_str(cfg, key) : dflt;
    if (!name || !*name) return VKF_OK;
    for (const cJSON *e = list->child; e; e = e->next)
        if (!strcmp(get_str(e, "content"), name)) return VKF_OK;
    tok_tokenizer *t = L->t;
    int64_t id = tok_vocab_find(&t->vocab, name, strlen(name));
    if (id < 0) {
        id = t->vocab.n;
        vkf_status s = add_token(L, name, strlen(name), (double)id, false, "special tokens");
        if (s != VKF_OK) return s;
    }
    cJSON *a = added_json(name, id);
    cJSON_AddBoolToObject(a, "lstrip", cJSON_IsObject(v) ? get_bool(v, "lstrip", lstrip) : lstrip);
    cJSON_AddBoolToObject(a, "rstrip", cJSON_IsObject(v) ? get_bool(v, "rstrip", rstrip) : rstrip);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddItemToArray(list, a);
    return VKF_OK;
}

static vkf_status spm_load(loader *L, const char *dir, const char *file, const cJSON *cfg, const cJSON *mcfg)
{
    tok_tokenizer *t = L->t;
    tok_spm *sp = t->spm = calloc(1, sizeof *sp);
    if (!sp) return fail_oom(L);
    t->model.unk_id = -1;
    t->model.prefix = base_strdup("");
    t->model.suffix = base_strdup("");
    if (!t->model.prefix || !t->model.suffix) return fail_oom(L);
    char path[4096];
    vkf_status s = spm_class(L, get_str(cfg, "tokenizer_class"), get_str(mcfg, "model_type"), file, &sp->cls);
    file_exists(dir, file, path, sizeof path);
    if (s == VKF_OK) s = spm_model(L, path, &sp->model, &sp->proc);
    if (s == VKF_OK && sp->cls == TOK_SPM_MARIAN) {
        if (file_exists(dir, "target.spm", path, sizeof path)) {
            s = spm_model(L, path, &sp->tmodel, &sp->tproc);
            sp->has_target = true;
        }
        if (s == VKF_OK && !file_exists(dir, "vocab.json", path, sizeof path))
            s = base_fail(L->d, VKF_ERROR_IO, "%s: a Marian tokenizer needs vocab.json beside source.spm", dir);
        if (s == VKF_OK && get_bool(cfg, "separate_vocabs", false))
            s = base_fail(L->d, VKF_ERROR_UNSUPPORTED, "%s: Marian with separate_vocabs is not supported", dir);
        if (s == VKF_OK) s = vocab_from_vocab_json(L, path);
    }
    if (s != VKF_OK) return s;
    const tok_spm_model *m = &sp->model;
    snprintf(L->file, sizeof L->file, "%s/%s", dir, file);
    snprintf(t->source, sizeof t->source, "%s", file);
    snprintf(t->kind, sizeof t->kind, "%s", m->model_type == 2 ? "bpe" : "unigram");
    /* the vocabulary: the pieces in order (XLM-R: after fairseq's four) */
    if (sp->cls == TOK_SPM_XLMR) {
        static const char *const fairseq[] = {"<s>", "<pad>", "</s>", "<unk>"};
        for (int i = 0; i < 4 && s == VKF_OK; i++) s = add_token(L, fairseq[i], strlen(fairseq[i]), i, true, "fairseq specials");
        sp->offset = 1;
    }
    if (sp->cls != TOK_SPM_MARIAN)
        for (uint32_t i = sp->cls == TOK_SPM_XLMR ? 3 : 0; i < m->n && s == VKF_OK; i++) {
            if (sp->cls == TOK_SPM_XLMR && tok_vocab_find(&t->vocab, m->pieces[i].s, m->pieces[i].len) >= 0) continue;
            s = add_token(L, m->pieces[i].s, m->pieces[i].len, i + (uint32_t)sp->offset, true, "pieces");
        }
    if (s != VKF_OK) return s;
    /* the class's options */
    sp->lower = get_bool(cfg, "do_lower_case", sp->cls == TOK_SPM_ALBERT);
    sp->remove_space = get_bool(cfg, "remove_space", true);
    sp->keep_accents = get_bool(cfg, "keep_accents", false);
    sp->legacy = get_bool(cfg, "legacy", true);
    sp->prefix_space = get_bool(cfg, "add_prefix_space", true);
    const char *unk = get_str(cfg, "unk_token");
    snprintf(sp->unk_token, sizeof sp->unk_token, "%s", unk ? unk : sp->cls == TOK_SPM_DEBERTA ? "[UNK]" : "<unk>");
    if (!sp->legacy && (sp->cls == TOK_SPM_T5 || sp->cls == TOK_SPM_LLAMA)) {
        /* legacy=False: no dummy prefix; texts are encoded after "<unk>", whose pieces are dropped */
        tok_str u = {0}, norm = {0};
        tok_toks toks = {0};
        size_t ul = strlen(sp->unk_token);
        bool ok = tok_str_push(&u, sp->unk_token, ul, 0, (uint32_t)ul) && tok_spm_encode(&sp->proc, &u, false, &norm, &toks);
        sp->unk_len = (uint32_t)toks.n;
        tok_str_free(&u), tok_str_free(&norm), free(toks.v);
        if (!ok) return fail_oom(L);
    }
    /* special tokens, in the order transformers adds them */
    cJSON *list = cJSON_CreateArray();
    if (!list) return fail_oom(L);
    if (sp->cls == TOK_SPM_T5) {
        const cJSON *ex = get(cfg, "extra_ids");
        int extra = cJSON_IsNumber(ex) && ex->valuedouble >= 0 && ex->valuedouble <= 10000 ? (int)ex->valuedouble : 100;
        for (int i = 0; i < extra && s == VKF_OK; i++) {
            char name[32];
            snprintf(name, sizeof name, "<extra_id_%d>", i);
            double id = (double)m->n + extra - 1 - i;
            if (tok_vocab_find(&t->vocab, name, strlen(name)) < 0) s = add_token(L, name, strlen(name), id, false, "extra_ids");
            cJSON *a = added_json(name, tok_vocab_find(&t->vocab, name, strlen(name)));
            cJSON_AddBoolToObject(a, "lstrip", 1);
            cJSON_AddBoolToObject(a, "rstrip", 1);
            cJSON_AddBoolToObject(a, "normalized", 0);
            cJSON_AddItemToArray(list, a);
        }
    }
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
    const char *dflt[7] = {0};
    switch (sp->cls) {
    case TOK_SPM_T5: case TOK_SPM_MARIAN: dflt[1] = "</s>", dflt[2] = "<unk>", dflt[4] = "<pad>"; break;
    case TOK_SPM_ALBERT:
        dflt[0] = dflt[5] = "[CLS]", dflt[1] = dflt[3] = "[SEP]", dflt[2] = "<unk>", dflt[4] = "<pad>", dflt[6] = "[MASK]";
        break;
    case TOK_SPM_DEBERTA:
        dflt[0] = dflt[5] = "[CLS]", dflt[1] = dflt[3] = "[SEP]", dflt[2] = "[UNK]", dflt[4] = "[PAD]", dflt[6] = "[MASK]";
        break;
    case TOK_SPM_XLMR: dflt[0] = dflt[5] = "<s>", dflt[1] = dflt[3] = "</s>", dflt[2] = "<unk>", dflt[4] = "<pad>", dflt[6] = "<mask>"; break;
    case TOK_SPM_LLAMA: dflt[0] = "<s>", dflt[1] = "</s>", dflt[2] = "<unk>"; break;
    default: break; /* no class: plain sentencepiece, no special tokens unless the config names them */
    }
    for (int i = 0; i < 7 && s == VKF_OK; i++) {
        if (i == 6 && sp->cls == TOK_SPM_XLMR && tok_vocab_find(&t->vocab, "<mask>", 6) < 0)
            s = add_token(L, "<mask>", 6, (double)m->n + 1, false, "mask_token"); /* after the offset pieces */
        if (s == VKF_OK) s = spm_special(L, cfg, keys[i], dflt[i], i == 6 && (sp->cls == TOK_SPM_ALBERT || sp->cls == TOK_SPM_XLMR), false, list);
    }
    const cJSON *more = get(cfg, "additional_special_tokens");
    for (const cJSON *e = cJSON_IsArray(more) ? more->child : NULL; e && s == VKF_OK; e = e->next) {
        const char *name = cJSON_IsString(e) ? e->valuestring : get_str(e, "content");
        if (name && sp->cls == TOK_SPM_T5 && !strncmp(name, "<extra_id_", 10)) continue;
        if (name) s = spm_special(L, NULL, NULL, name, false, false, list);
    }
    if (s == VKF_OK) s = add_added(L, list);
    cJSON_Delete(list);
    if (s != VKF_OK) return s;
    /* the template of build_inputs_with_special_tokens */
    const char *bos = get_str(cfg, "bos_token"), *eos = get_str(cfg, "eos_token");
    tok_tmpl *one = &t->single, *two = &t->pair;
    switch (sp->cls) {
    case TOK_SPM_T5:
    case TOK_SPM_MARIAN:
        if (!eos) eos = "</s>";
        if ((s = tmpl_add(L, one, 0, 0, NULL)) || (s = tmpl_add(L, one, -1, 0, eos)) || (s = tmpl_add(L, two, 0, 0, NULL))) break;
        if (sp->cls == TOK_SPM_T5 && (s = tmpl_add(L, two, -1, 0, eos))) break;
        if ((s = tmpl_add(L, two, 1, 0, NULL)) || (s = tmpl_add(L, two, -1, 0, eos))) break;
        break;
    case TOK_SPM_LLAMA: {
        bool add_bos = get_bool(cfg, "add_bos_token", true), add_eos = get_bool(cfg, "add_eos_token", false);
        if (!bos) bos = "<s>";
        if (!eos) eos = "</s>";
        for (int side = 0; side < 2 && s == VKF_OK; side++) {
            tok_tmpl *tm = side ? two : one;
            for (int seq = 0; seq <= side && s == VKF_OK; seq++) {
                if (add_bos && (s = tmpl_add(L, tm, -1, (uint32_t)seq, bos))) break;
                if ((s = tmpl_add(L, tm, seq, (uint32_t)seq, NULL))) break;
                if (add_eos) s = tmpl_add(L, tm, -1, (uint32_t)seq, eos);
            }
        }
        break;
    }
    case TOK_SPM_XLMR:
    case TOK_SPM_ALBERT:
    case TOK_SPM_DEBERTA: {
        const char *c = get_str(cfg, "cls_token"), *sep = get_str(cfg, "sep_token");
        bool x = sp->cls == TOK_SPM_XLMR;
        if (!c) c = x ? "<s>" : "[CLS]";
        if (!sep) sep = x ? "</s>" : "[SEP]";
        uint32_t b = x ? 0 : 1;
        if ((s = tmpl_add(L, one, -1, 0, c)) || (s = tmpl_add(L, one, 0, 0, NULL)) || (s = tmpl_add(L, one, -1, 0, sep)) ||
            (s = tmpl_add(L, two, -1, 0, c)) || (s = tmpl_add(L, two, 0, 0, NULL)) || (s = tmpl_add(L, two, -1, 0, sep)))
            break;
        if (x && (s = tmpl_add(L, two, -1, 0, sep))) break;
        if ((s = tmpl_add(L, two, 1, b, NULL)) || (s = tmpl_add(L, two, -1, b, sep))) break;
        break;
    }
    default:
        if ((s = tmpl_add(L, one, 0, 0, NULL)) || (s = tmpl_add(L, two, 0, 0, NULL)) || (s = tmpl_add(L, two, 1, 0, NULL))) break;
    }
    t->post = TOK_POST_TEMPLATE;
    return s;
}

/* ---- putting it together ---------------------------------------------------------------------------- */

static void set_roles(tok_tokenizer *t, const cJSON *cfg)
{
    static const char *const keys[] = {"pad_token", "unk_token", "cls_token", "sep_token", "mask_token", "bos_token", "eos_token"};
    static const char *const guesses[7][4] = {
        {"[PAD]", "<pad>", NULL}, {"[UNK]", "<unk>", "<|endoftext|>", NULL}, {"[CLS]", "<s>", "<|startoftext|>", NULL},
        {"[SEP]", "</s>", "<|endoftext|>", NULL}, {"[MASK]", "<mask>", NULL}, {"<s>", "<|startoftext|>", "<|endoftext|>", NULL},
        {"</s>", "<|endoftext|>", NULL}};
    int64_t *dst[] = {&t->pad_id, &t->unk_id, &t->cls_id, &t->sep_id, &t->mask_id, &t->bos_id, &t->eos_id};
    for (int i = 0; i < 7; i++) {
        *dst[i] = -1;
        const char *name = get_str(cfg, keys[i]);
        if (name) *dst[i] = tok_vocab_find(&t->vocab, name, strlen(name));
        for (int g = 0; !name && *dst[i] < 0 && g < 4 && guesses[i][g]; g++)
            *dst[i] = tok_vocab_find(&t->vocab, guesses[i][g], strlen(guesses[i][g]));
    }
}

static vkf_status build(loader *L, const cJSON *root, const char *dir, bool legacy)
{
    tok_tokenizer *t = L->t;
    vkf_status s = set_model(L, get(root, "model"), dir, legacy);
    if (s != VKF_OK) return s;
    const cJSON *n = get(root, "normalizer");
    if (n && !cJSON_IsNull(n) && (s = add_norm(L, n)) != VKF_OK) return s;
    const cJSON *p = get(root, "pre_tokenizer");
    if (p && !cJSON_IsNull(p) && (s = add_pre(L, p)) != VKF_OK) return s;
    if (!legacy && (s = add_added(L, get(root, "added_tokens"))) != VKF_OK) return s;
    if ((s = set_post(L, get(root, "post_processor"))) != VKF_OK) return s;
    if ((s = set_decoder(L, get(root, "decoder"))) != VKF_OK) return s;
    if (t->model.suffix[0] && t->decoder == TOK_DEC_BYTE_LEVEL) t->decoder = TOK_DEC_BPE_SUFFIX; /* as CLIPTokenizer decodes */
    return VKF_OK;
}

static vkf_status finish(loader *L)
{
    tok_tokenizer *t = L->t;
    for (uint32_t id = 0; id < t->vocab.n; id++)
        if (!t->vocab.tok[id])
            return base_fail(L->d, VKF_ERROR_FORMAT, "%s: the vocabulary has no token with id %u (ids must run from 0 to %u)",
                             L->file, id, t->vocab.n - 1);
    /* Tokens matched on normalized text are matched in their normalized form. */
    for (uint32_t i = 0; i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        if (!a->normalized || !t->n_norms) continue;
        tok_str s = {0};
        bool ok = tok_str_push(&s, a->content, a->len, 0, a->len);
        for (uint32_t k = 0; ok && k < t->n_norms; k++) ok = tok_normalize(&t->norms[k], &s, TOK_NORM_LIMIT(a->len));
        if (!ok && tok_fail_take() != TOK_FAIL_NONE)
            return tok_str_free(&s), base_fail(L->d, VKF_ERROR_FORMAT, "%s: the normalizers make added token '%.64s' over 64 "
                                               "times longer", L->file, a->content);
        if (ok && !s.n)
            return tok_str_free(&s), base_fail(L->d, VKF_ERROR_FORMAT, "%s: added token '%.64s' normalizes to nothing", L->file, a->content);
        /* HF spells such a token in its normalized form (decode, id_to_token) */
        if (ok && !t->vocab.in_model[a->id]) ok = tok_vocab_rename(&t->vocab, a->id, s.b, s.n);
        if (ok) {
            free(a->content);
            a->content = s.b, a->len = (uint32_t)s.n;
            s.b = NULL;
        }
        tok_str_free(&s);
        if (!ok) return fail_oom(L);
    }
    if (t->n_added) qsort(t->added, t->n_added, sizeof *t->added, by_length_desc);
    for (uint32_t i = 0; i < t->n_added; i++) {
        t->added_first_byte[(uint8_t)t->added[i].content[0]] = true;
        t->n_normalized_added += t->added[i].normalized;
        /* longest first, so a content given twice keeps its first entry, as the scan did */
        if (!tok_trie_insert(&t->added_trie[t->added[i].normalized], t->added[i].content, t->added[i].len, (int32_t)i))
            return fail_oom(L);
    }
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int k = tok_utf8_put(tok_byte_char((uint8_t)b), buf);
        t->model.byte_ids[b] = tok_vocab_find_model(&t->vocab, buf, (size_t)k);
        size_t sl = strlen(t->model.suffix);
        memcpy(buf + k, t->model.suffix, sl);
        t->model.byte_ids_suffix[b] = tok_vocab_find_model(&t->vocab, buf, (size_t)k + sl);
        uint32_t c = tok_byte_char((uint8_t)b);
        t->char_is_byte[c] = true;
        t->byte_of_char[c] = (uint8_t)b;
    }
    if (t->model.kind == TOK_MODEL_BPE && !t->model.byte_level && tok_vocab_find_model(&t->vocab, "\xe2\x96\x81", 3) >= 0) {
        bool inside = false;
        for (uint32_t id = 0; id < t->vocab.n && !inside; id++)
            for (uint32_t i = 1; t->vocab.in_model[id] && i + 3 <= t->vocab.len[id] && !inside; i++)
                inside = !memcmp(t->vocab.tok[id] + i, "\xe2\x96\x81", 3);
        t->model.split_meta = !inside;
    }
    if (!tok_model_init_cache(&t->model)) return fail_oom(L);
    return VKF_OK;
}

static bool has_prefix(const char *s, const char *p) { return s && !strncmp(s, p, strlen(p)); }

/* The SentencePiece model file of dir, if any (its name into name). */
static bool spm_file(const char *dir, char *name, size_t cap)
{
    char path[4096];
    for (size_t i = 0; i < BASE_ARRAY_LEN(SPM_FILES); i++)
        if (file_exists(dir, SPM_FILES[i], path, sizeof path)) return snprintf(name, cap, "%s", SPM_FILES[i]), true;
    return false;
}

bool tok_dir_has_files(const char *dir)
{
    static const char *const files[] = {"tokenizer.json", "vocab.txt", "vocab.json"};
    char path[4096], name[64];
    for (size_t i = 0; i < BASE_ARRAY_LEN(files); i++)
        if (file_exists(dir, files[i], path, sizeof path)) return true;
    return spm_file(dir, name, sizeof name);
}

vkf_status tok_load(base_diag *d, const char *dir, tok_tokenizer **out)
{
    *out = NULL;
    bad_bool = NULL;
    struct stat st;
    if (!dir || base_stat(dir, &st) != 0) return base_fail(d, VKF_ERROR_IO, "%s: cannot open: %s", dir ? dir : "(null)", dir ? strerror(errno) : "no path");
    tok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    loader L = {.d = d, .t = t};
    snprintf(L.file, sizeof L.file, "%s", dir);
    char path[4096], base[4096];
    /* A path to tokenizer.json itself is accepted too. */
    snprintf(base, sizeof base, "%s", dir);
    bool direct = S_ISREG(st.st_mode);
    if (direct) {
        char *slash = strrchr(base, '/');
        if (slash) *slash = 0;
        else snprintf(base, sizeof base, ".");
    }
    t->dir = base_strdup(base);
    cJSON *cfg = NULL, *mcfg = NULL, *root = NULL;
    vkf_status s = VKF_OK;
    if (file_exists(base, "tokenizer_config.json", path, sizeof path)) s = json_file(&L, path, &cfg);
    if (s == VKF_OK && file_exists(base, "config.json", path, sizeof path)) s = json_file(&L, path, &mcfg);
    if (s == VKF_OK && file_exists(base, "special_tokens_map.json", path, sizeof path)) {
        /* older directories name their special tokens here: a fallback for tokenizer_config.json */
        cJSON *map = NULL;
        s = json_file(&L, path, &map);
        if (s == VKF_OK && !cfg) cfg = cJSON_CreateObject();
        for (cJSON *e = map ? map->child : NULL; s == VKF_OK && e; e = e->next)
            if (!get(cfg, e->string)) cJSON_AddItemToObject(cfg, e->string, cJSON_Duplicate(e, 1));
        cJSON_Delete(map);
    }
    if (s == VKF_OK && cfg) {
        const cJSON *ml = get(cfg, "model_max_length");
        if (cJSON_IsNumber(ml) && ml->valuedouble >= 1 && ml->valuedouble < 1e9) t->model_max_length = (uint32_t)ml->valuedouble;
    }
    if (s != VKF_OK) goto done;
    if (direct || file_exists(base, "tokenizer.json", path, sizeof path)) {
        if (direct) snprintf(path, sizeof path, "%s", dir);
        snprintf(t->source, sizeof t->source, "tokenizer.json");
        s = json_file(&L, path, &root);
        if (s == VKF_OK) s = build(&L, root, base, false);
    } else if (spm_file(base, path, sizeof path)) {
        s = spm_load(&L, base, path, cfg, mcfg);
    } else {
        const char *cls = get_str(cfg, "tokenizer_class"), *mt = get_str(mcfg, "model_type");
        char vt[4096], vj[4096], mg[4096];
        bool has_txt = file_exists(base, "vocab.txt", vt, sizeof vt), has_json = file_exists(base, "vocab.json", vj, sizeof vj),
             has_merges = file_exists(base, "merges.txt", mg, sizeof mg);
        legacy_kind k;
        if (has_prefix(cls, "CLIP") || has_prefix(mt, "clip")) k = LEG_CLIP;
        else if (has_prefix(cls, "Roberta") || has_prefix(mt, "roberta")) k = LEG_ROBERTA;
        else if (has_prefix(cls, "GPT2") || has_prefix(mt, "gpt2")) k = LEG_GPT2;
        else if (has_prefix(cls, "Bert") || has_prefix(cls, "DistilBert") || has_prefix(mt, "bert") || has_prefix(mt, "distilbert")) k = LEG_BERT;
        else if (cls || mt) {
            s = base_fail(d, VKF_ERROR_UNSUPPORTED,
                          "%s: tokenizer '%s' is not supported (supported: BertTokenizer, DistilBertTokenizer, GPT2Tokenizer, "
                          "RobertaTokenizer, CLIPTokenizer, a SentencePiece model file (spiece.model, tokenizer.model, ...) "
                          "of T5, ALBERT, Llama, XLM-R, DeBERTa-v2 or Marian, or any tokenizer.json with WordPiece, BPE or "
                          "Unigram)", base, cls ? cls : mt);
            goto done;
        } else if (has_txt) k = LEG_BERT;
        else k = LEG_GPT2;
        if (k == LEG_BERT ? !has_txt : !(has_json && has_merges)) {
            s = base_fail(d, VKF_ERROR_IO, "%s: no tokenizer files: expected tokenizer.json, a SentencePiece model (spiece.model, "
                          "tokenizer.model, spm.model, sentencepiece.bpe.model, source.spm), or %s", base,
                          k == LEG_BERT ? "vocab.txt" : "vocab.json and merges.txt");
            goto done;
        }
        snprintf(t->source, sizeof t->source, "%s", k == LEG_BERT ? "vocab.txt" : "vocab.json+merges.txt");
        root = legacy_json(k, cfg);
        if (!root) {
            s = fail_oom(&L);
            goto done;
        }
        s = build(&L, root, base, true);
        if (s == VKF_OK) s = legacy_added(&L, k, cfg);
        if (s == VKF_OK && k == LEG_GPT2 && get_bool(cfg, "add_bos_token", false)) {
            const char *bos = get_str(cfg, "bos_token");
            s = tmpl_add(&L, &t->single, -1, 0, bos ? bos : "<|endoftext|>");
        }
        if (s == VKF_OK && k == LEG_GPT2) {
            tok_tmpl *both[2] = {&t->single, &t->pair};
            for (int i = 0; i < 2 && s == VKF_OK; i++) s = tmpl_add(&L, both[i], 0, 0, NULL);
            if (s == VKF_OK) s = tmpl_add(&L, &t->pair, 1, 1, NULL);
            t->post = TOK_POST_TEMPLATE;
        }
    }
    if (s == VKF_OK) s = finish(&L);
    if (s == VKF_OK) set_roles(t, cfg);
    if (s == VKF_OK && bad_bool)
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" in the tokenizer files is not true or false", base, bad_bool);
done:
    cJSON_Delete(cfg);
    cJSON_Delete(mcfg);
    cJSON_Delete(root);
    if (s != VKF_OK) {
        tok_free(t);
        return s;
    }
    *out = t;
    return VKF_OK;
}

static void tmpl_free(tok_tmpl *tm)
{
    for (uint32_t i = 0; i < tm->n; i++) free(tm->v[i].ids);
    free(tm->v);
}

void tok_free(tok_tokenizer *t)
{
    if (!t) return;
    tok_vocab_free(&t->vocab);
    tok_model_free(&t->model);
    tok_spm_free(t->spm);
    for (uint32_t i = 0; i < t->n_norms; i++) {
        tok_regex_free(t->norms[i].pattern), free(t->norms[i].content);
        if (t->norms[i].charsmap) tok_charsmap_free(t->norms[i].charsmap), free(t->norms[i].charsmap);
    }
    free(t->steps);
    free(t->norms);
    for (uint32_t i = 0; i < t->n_pres; i++) tok_regex_free(t->pres[i].pattern);
    free(t->pres);
    for (uint32_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    tok_trie_free(&t->added_trie[0]);
    tok_trie_free(&t->added_trie[1]);
    tmpl_free(&t->single);
    tmpl_free(&t->pair);
    free(t->dir);
    free(t);
}
