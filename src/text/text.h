/* Tokenizers: the Hugging Face `tokenizers` pipeline in C, for the models this
 * library runs (WordPiece for BERT-style encoders, byte-level BPE for GPT-2 and
 * RoBERTa, CLIP's BPE with `</w>`). A tokenizer is read from tokenizer.json or
 * from the legacy files and then applies, in HF's order:
 *
 *   raw bytes -> U+FFFD for invalid UTF-8 (Python's "replace")
 *             -> added/special tokens split out of the raw text
 *             -> normalizer -> pre-tokenizer -> model (WordPiece / BPE)
 *             -> truncation -> post-processor (special tokens, type ids)
 *
 * Every intermediate string carries, per byte, the range of original bytes it
 * came from, so tokens get byte offsets into the caller's text. Unicode data
 * comes from utf8proc; pre-tokenizer regexes run on PCRE2 (UTF + UCP), with
 * `\s` and `\w` rewritten to mean what they mean in Oniguruma, HF's engine.
 * Depends on base and io (JSON) only. A loaded tokenizer is immutable apart
 * from its word cache, which has its own lock: share it between threads. */
#ifndef VKF_TEXT_H
#define VKF_TEXT_H

#include <pthread.h>

#include "../io/io.h"

#define TOK_MAX_TEXT_BYTES ((size_t)INT32_MAX) /* offsets are 32-bit */
#define TOK_MAX_FILE_BYTES ((size_t)512 << 20)

/* ---- strings with alignments ----------------------------------------------- */

/* A UTF-8 string whose byte i came from original bytes [os[i], oe[i]). */
typedef struct tok_str {
    char *b;
    uint32_t *os, *oe;
    size_t n, cap;
} tok_str;

bool tok_str_reserve(tok_str *s, size_t need);
/* Appends bytes that all align to [os, oe). */
bool tok_str_push(tok_str *s, const char *b, size_t n, uint32_t os, uint32_t oe);
void tok_str_free(tok_str *s);

/* Decodes UTF-8; invalid input yields U+FFFD per maximal invalid subpart, as
 * Python's bytes.decode("utf-8", "replace") and Rust's from_utf8_lossy. */
bool tok_from_raw(const char *raw, size_t n, tok_str *out);
/* Next code point of valid UTF-8 at s[i] (i advanced); s must be valid. */
uint32_t tok_utf8_next(const char *s, size_t n, size_t *i);
int tok_utf8_put(uint32_t cp, char out[4]);
/* Whether s[0, n) is valid UTF-8. */
bool tok_utf8_valid(const char *s, size_t n);
/* Length of the longest prefix of s that is complete, valid-or-finished
 * UTF-8: an incomplete but so-far valid sequence at the end is excluded. */
size_t tok_utf8_complete(const uint8_t *s, size_t n);

bool tok_is_whitespace(uint32_t c);   /* Rust char::is_whitespace (White_Space) */
bool tok_is_punctuation(uint32_t c);  /* ASCII punctuation or Unicode P* (BERT) */

/* ---- regex (PCRE2) --------------------------------------------------- */

typedef struct tok_regex tok_regex;
vkf_status tok_regex_new(base_diag *d, const char *pattern, bool literal, tok_regex **out);
void tok_regex_free(tok_regex *r);
/* First match in s[from, n): returns false when none. */
bool tok_regex_find(tok_regex *r, const char *s, size_t n, size_t from, size_t *ms, size_t *me);

/* ---- normalizers ----------------------------------------------------------- */

typedef enum tok_norm_kind {
    TOK_NORM_BERT, TOK_NORM_NFC, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD,
    TOK_NORM_LOWERCASE, TOK_NORM_STRIP_ACCENTS, TOK_NORM_REPLACE, TOK_NORM_STRIP,
    TOK_NORM_PREPEND, TOK_NORM_PRECOMPILED
} tok_norm_kind;

typedef struct tok_norm {
    tok_norm_kind kind;
    /* BertNormalizer */
    bool clean_text, chinese_chars, strip_accents, lowercase;
    /* Replace / Prepend */
    tok_regex *pattern;
    char *content;
    /* Strip */
    bool left, right;
    /* Precompiled */
    struct tok_charsmap *charsmap;
} tok_norm;

/* Applies one normalizer; *s is replaced by the result. Past limit bytes of
 * output it stops (false, with TOK_FAIL_TOO_LONG): a file's Replace or
 * character map can multiply a text without bound. */
bool tok_normalize(const tok_norm *nz, tok_str *s, size_t limit);
/* The limit for a text of n bytes: 64 times it, and 4 KiB. */
#define TOK_NORM_LIMIT(n) ((size_t)(n) <= TOK_MAX_TEXT_BYTES / 64 ? 64 * (size_t)(n) + 4096 : (size_t)TOK_MAX_TEXT_BYTES)

/* Why text processing on this thread failed or must fail, beyond running out
 * of memory: set where it happens, taken (and cleared) by the caller that reports it. */
typedef enum tok_fail { TOK_FAIL_NONE, TOK_FAIL_TOO_LONG, TOK_FAIL_REGEX } tok_fail;
void tok_fail_set(tok_fail f);
tok_fail tok_fail_take(void);

/* ---- pre-tokenizers ----------------------------------------------------------- */

typedef enum tok_pre_kind {
    TOK_PRE_BERT, TOK_PRE_BYTE_LEVEL, TOK_PRE_SPLIT, TOK_PRE_WHITESPACE, TOK_PRE_WHITESPACE_SPLIT, TOK_PRE_METASPACE
} tok_pre_kind;

/* Metaspace's prepend_scheme. */
typedef enum tok_prepend { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER } tok_prepend;

typedef enum tok_split_behavior {
    TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT, TOK_SPLIT_CONTIGUOUS
} tok_split_behavior;

typedef struct tok_pre {
    tok_pre_kind kind;
    tok_regex *pattern;          /* Split; ByteLevel with use_regex; Whitespace */
    tok_split_behavior behavior;
    bool invert;
    bool add_prefix_space;       /* ByteLevel */
    char replacement[8];         /* Metaspace: its character (UTF-8) */
    tok_prepend prepend;
    bool split;
} tok_pre;

/* A piece of a tok_str: bytes [s, e). */
typedef struct tok_piece {
    uint32_t s, e;
} tok_piece;

typedef struct tok_pieces {
    tok_piece *v;
    size_t n, cap;
} tok_pieces;

/* Refines the pieces of str (may append to str, for ByteLevel's prefix space). */
bool tok_pretokenize(const tok_pre *p, tok_str *str, tok_pieces *pieces, tok_pieces *scratch);

/* One token of a word: id and the bytes [s, e) of the piece it covers. */
typedef struct tok_tok {
    uint32_t id;
    uint32_t s, e;
} tok_tok;

typedef struct tok_toks {
    tok_tok *v;
    size_t n, cap;
} tok_toks;

bool tok_toks_push(tok_toks *t, uint32_t id, uint32_t s, uint32_t e);

/* ---- SentencePiece (spm.c) ------------------------------------------------------------ */

typedef enum tok_sp_type {
    TOK_SP_NORMAL = 1, TOK_SP_UNKNOWN, TOK_SP_CONTROL, TOK_SP_USER, TOK_SP_UNUSED, TOK_SP_BYTE
} tok_sp_type;

/* A precompiled character map: [uint32 trie bytes][darts-clone double array]
 * [NUL-terminated replacement strings], as sentencepiece's normalizer and
 * HF's Precompiled normalizer read it. */
typedef struct tok_charsmap {
    uint8_t *blob;          /* owned copy */
    const uint8_t *units;   /* little-endian uint32 units */
    uint32_t n_units;
    const char *norm;
    size_t n_norm;
} tok_charsmap;

/* strict: sentencepiece's checks too (a .model file): the trie a multiple of
 * 1024 bytes, replacement strings present and NUL-terminated. */
bool tok_charsmap_init(tok_charsmap *cm, const void *data, size_t n, bool strict, const char **why);
void tok_charsmap_free(tok_charsmap *cm);
/* The rules whose keys prefix key[0, n), shortest first: lengths and values. */
size_t tok_charsmap_prefixes(const tok_charsmap *cm, const char *key, size_t n, uint32_t *lens, uint32_t *vals, size_t max);
/* A rule's replacement, or NULL when the value points outside the map. */
const char *tok_charsmap_string(const tok_charsmap *cm, uint32_t val, size_t *len);

/* The byte of a sentencepiece byte piece "<0xXX>" (upper-case hex), else -1. */
int tok_byte_piece(const char *s, size_t n);

/* A byte trie: string -> value (first insertion wins); node 0 is the root. */
typedef struct tok_trie {
    uint64_t *keys;   /* (node << 8 | byte) + 1, 0 empty */
    uint32_t *child;
    size_t mask, used;
    int32_t *value;   /* per node; -1 none */
    uint32_t n_nodes, cap;
} tok_trie;

bool tok_trie_insert(tok_trie *t, const char *s, size_t n, int32_t value);
uint32_t tok_trie_step(const tok_trie *t, uint32_t node, uint8_t b); /* 0: no edge */
void tok_trie_free(tok_trie *t);

/* A Unigram model: pieces with scores, Viterbi segmentation. */
typedef struct tok_unigram {
    tok_trie trie;
    double *score;         /* by id */
    uint8_t *type;         /* by id (tok_sp_type); NULL: all normal */
    double unk_score;      /* the lowest score - 10 */
    bool spm;              /* sentencepiece's float arithmetic (else tokenizers' f64) */
    int64_t unk_id;
} tok_unigram;

/* The best segmentation of s[0, n) onto out (id UINT32_MAX or unk_id for an
 * unknown character, one token each). */
bool tok_unigram_encode(const tok_unigram *u, const char *s, size_t n, tok_toks *out);
void tok_unigram_free(tok_unigram *u);

typedef struct tok_sp_piece {
    char *s;
    uint32_t len;
    float score;
    uint8_t type;
} tok_sp_piece;

typedef struct tok_spm_norm {
    char name[64];
    tok_charsmap charsmap;  /* n_units 0: identity */
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
} tok_spm_norm;

/* What a .model file says (ModelProto). */
typedef struct tok_spm_model {
    tok_sp_piece *pieces;
    uint32_t n;
    int model_type;         /* 1 Unigram, 2 BPE */
    bool byte_fallback, treat_ws_suffix, has_denorm;
    int32_t unk_id, bos_id, eos_id, pad_id;
    char *unk_surface;      /* NULL: " \u2047 " */
    tok_spm_norm norm, denorm;
} tok_spm_model;

vkf_status tok_spm_parse(base_diag *d, const char *file, const uint8_t *data, size_t n, tok_spm_model *m);
void tok_spm_model_free(tok_spm_model *m);

/* A model ready to encode as sentencepiece does. */
typedef struct tok_spm_proc {
    const tok_spm_model *m;
    tok_unigram uni;        /* the pieces encoding may produce (normal, user-defined, unused) and all scores */
    tok_trie user;          /* user-defined symbols */
    tok_trie reserved;      /* control, unknown and byte pieces */
    int32_t byte_id[256];   /* id + 1 of <0xXX>, 0 none */
    bool split_meta;        /* BPE: no piece has "▁" after its start: text split before each "▁" */
} tok_spm_proc;

vkf_status tok_spm_proc_init(base_diag *d, const char *file, const tok_spm_model *m, tok_spm_proc *p);
void tok_spm_proc_free(tok_spm_proc *p);
/* sentencepiece's Normalize of in (a tok_str with alignments) into o; with
 * dummy_prefix as the spec says or as the caller overrides. */
bool tok_spm_normalize(const tok_spm_proc *p, const tok_spm_norm *nz, bool dummy_prefix, const tok_str *in, tok_str *o);
/* Encode: normalize in into *norm and segment it onto out (token bytes index
 * *norm): byte pieces for unknown characters with byte_fallback, else one
 * unknown piece per run of them. */
bool tok_spm_encode(const tok_spm_proc *p, const tok_str *in, bool dummy_prefix, tok_str *norm, tok_toks *out);
/* The id sentencepiece gives a piece string (PieceToId), unk_id when none. */
int32_t tok_spm_piece_id(const tok_spm_proc *p, const char *s, size_t n);

/* A growing output string. */
typedef struct tok_buf {
    char *b;
    size_t n, cap;
} tok_buf;

bool tok_buf_put(tok_buf *o, const char *s, size_t n);
/* sentencepiece's DecodePieces appended to o. */
bool tok_spm_decode(const tok_spm_proc *p, const char *const *pieces, const uint32_t *lens, size_t n, tok_buf *o);

/* ---- vocabularies and models ------------------------------------------------------ */

/* String -> id hash map (open addressing). */
typedef struct tok_map {
    uint32_t *slots;   /* id + 1; 0 empty */
    size_t mask;
    char **keys;       /* by id (shared with the vocab) */
    uint32_t *lens;
} tok_map;

typedef struct tok_vocab {
    char **tok;          /* id -> token (NUL-terminated), NULL in gaps */
    uint32_t *len;
    uint8_t *in_model;   /* 1: the model's own vocabulary; 0: an added token only */
    uint32_t n;          /* ids 0..n-1 */
    tok_map map;
} tok_vocab;

/* Adds token with id; false on duplicate token or id (*dup says which). */
bool tok_vocab_add(tok_vocab *v, const char *t, size_t len, uint32_t id, bool in_model, int *dup);
/* The id of a token, or -1. */
int64_t tok_vocab_find(const tok_vocab *v, const char *t, size_t len);
/* The same among the model's own tokens (what WordPiece and BPE may produce). */
int64_t tok_vocab_find_model(const tok_vocab *v, const char *t, size_t len);
/* Gives id another spelling; false when out of memory. */
bool tok_vocab_rename(tok_vocab *v, uint32_t id, const char *t, size_t len);
void tok_vocab_free(tok_vocab *v);

typedef enum tok_model_kind { TOK_MODEL_WORDPIECE, TOK_MODEL_BPE, TOK_MODEL_UNIGRAM } tok_model_kind;

typedef struct tok_merge_slot {
    uint64_t key;      /* (a << 32 | b) + 1; 0 empty */
    uint32_t rank, id;
} tok_merge_slot;

typedef struct tok_cache tok_cache;

typedef struct tok_model {
    tok_model_kind kind;
    int64_t unk_id;            /* -1: none */
    char *prefix;              /* continuing_subword_prefix ("##" or "") */
    char *suffix;              /* end_of_word_suffix ("</w>" or "") */
    uint32_t max_chars;        /* WordPiece max_input_chars_per_word */
    bool fuse_unk, byte_fallback, ignore_merges;
    bool byte_level;           /* BPE symbols are byte-level characters */
    bool split_meta;           /* BPE: no token has "▁" after its start, "▁" is one: words split before each */
    tok_merge_slot *merges;
    size_t merge_mask, n_merges;
    int64_t byte_ids[256];     /* byte-level: id of each byte's symbol (with and without suffix) */
    int64_t byte_ids_suffix[256];
    tok_unigram uni;           /* Unigram: pieces and scores (tokenizers' f64 semantics) */
    tok_cache *cache;
} tok_model;


/* Adds merge (a, b) -> id with rank; false if already present. */
bool tok_merge_add(tok_model *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t id);
bool tok_merges_init(tok_model *m, size_t n);
/* Tokenizes word w[0, n) (piece bytes, offsets relative to w) onto out. */
bool tok_model_word(const tok_model *m, const tok_vocab *v, const char *w, size_t n, tok_toks *out);
bool tok_model_init_cache(tok_model *m);
void tok_model_free(tok_model *m);

/* ---- the whole tokenizer -------------------------------------------------------------- */

typedef struct tok_added {
    char *content;
    uint32_t len;
    uint32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} tok_added;

typedef enum tok_post_kind { TOK_POST_NONE, TOK_POST_TEMPLATE, TOK_POST_BYTE_LEVEL } tok_post_kind;

/* A template item: a special token's ids or sequence A / B, with a type id. */
typedef struct tok_tmpl_item {
    int seq;               /* 0: A, 1: B, -1: special */
    uint32_t type_id;
    uint32_t *ids;
    uint32_t n_ids;
} tok_tmpl_item;

typedef struct tok_tmpl {
    tok_tmpl_item *v;
    uint32_t n;
} tok_tmpl;

typedef enum tok_dec_kind { TOK_DEC_NONE, TOK_DEC_WORDPIECE, TOK_DEC_BYTE_LEVEL, TOK_DEC_BPE_SUFFIX } tok_dec_kind;

/* The decoders that work token by token on strings (tokenizers' decode_chain),
 * run in sequence: SentencePiece-style tokenizer.json files. */
typedef enum tok_step_kind { TOK_STEP_METASPACE, TOK_STEP_REPLACE, TOK_STEP_BYTE_FALLBACK, TOK_STEP_FUSE, TOK_STEP_STRIP } tok_step_kind;

typedef struct tok_step {
    tok_step_kind kind;
    char from[16], to[16];   /* Replace: a literal pattern; Metaspace: from = replacement */
    uint32_t start, stop;    /* Strip: at most this many `from` characters off each end */
    tok_prepend prepend;     /* Metaspace */
} tok_step;

struct tok_tokenizer;

/* The slow `transformers` tokenizers over a SentencePiece model (spm_hf.c):
 * the class decides preprocessing, _tokenize and decoding. */
typedef enum tok_spm_class {
    TOK_SPM_GENERIC = 0, TOK_SPM_T5, TOK_SPM_ALBERT, TOK_SPM_LLAMA, TOK_SPM_XLMR, TOK_SPM_DEBERTA, TOK_SPM_MARIAN
} tok_spm_class;

typedef struct tok_spm {
    tok_spm_class cls;
    tok_spm_model model, tmodel;   /* Marian: source and target models */
    tok_spm_proc proc, tproc;
    bool has_target;
    bool lower;                    /* do_lower_case */
    bool remove_space, keep_accents; /* ALBERT's preprocess_text */
    bool legacy, prefix_space;     /* T5 / Llama: legacy=False prepends U+2581 and encodes "<unk>"-prefixed */
    uint32_t unk_len;              /* pieces of encode(unk_token) (legacy=False) */
    char unk_token[64];
    int32_t offset;                /* XLM-R: tokenizer id = spm id + 1 (fairseq's) */
} tok_spm;

/* The text of one segment (between added tokens) as the class tokenizes it. */
bool tok_spm_tokenize(const tok_spm *sp, const struct tok_tokenizer *t, const tok_str *seg, bool first, tok_toks *out);
/* Ids back to text as the class's decode does (skip_special as HF's). */
bool tok_spm_decode_ids(const tok_spm *sp, const struct tok_tokenizer *t, const uint32_t *ids, size_t n, bool skip_special,
                        tok_buf *o);
void tok_spm_free(tok_spm *sp);

typedef struct tok_tokenizer {
    char *dir;
    tok_spm *spm;              /* a SentencePiece model read directly (slow semantics); NULL otherwise */
    char kind[32];             /* "wordpiece", "bpe" */
    char source[32];           /* "tokenizer.json" or the legacy files */
    tok_vocab vocab;           /* model vocab and added tokens */
    tok_model model;
    tok_norm *norms;
    uint32_t n_norms;
    tok_pre *pres;
    uint32_t n_pres;
    tok_added *added;          /* longest first */
    uint32_t n_added, n_normalized_added;
    bool added_first_byte[256];
    tok_trie added_trie[2];    /* contents -> index into added: [1] normalized ones, [0] the others */
    tok_post_kind post;
    tok_tmpl single, pair;
    bool trim_offsets;
    tok_dec_kind decoder;
    tok_step *steps;           /* a decode_chain of string decoders (decoder NONE then) */
    uint32_t n_steps;
    bool wp_cleanup;
    uint8_t byte_of_char[0x180]; /* byte-level alphabet, inverse */
    bool char_is_byte[0x180];
    /* special tokens by role, -1 when absent */
    int64_t pad_id, unk_id, cls_id, sep_id, mask_id, bos_id, eos_id;
    uint32_t model_max_length; /* 0 when unknown */
} tok_tokenizer;

/* Whether dir holds tokenizer files tok_load reads (tokenizer.json, vocab.txt,
 * vocab.json or a SentencePiece model file such as spiece.model). */
bool tok_dir_has_files(const char *dir);
vkf_status tok_load(base_diag *d, const char *dir, tok_tokenizer **out);
void tok_free(tok_tokenizer *t);

/* An encoding being built (arrays of n). */
typedef struct tok_enc {
    uint32_t *ids, *type_ids, *special;
    uint32_t *os, *oe;
    uint32_t *seq;  /* 0: first text, 1: second, UINT32_MAX: added by the post-processor */
    size_t n, cap;
} tok_enc;

bool tok_enc_push(tok_enc *e, uint32_t id, uint32_t type_id, bool special, uint32_t os, uint32_t oe);
void tok_enc_free(tok_enc *e);

/* The tokens of a text, without post-processing. */
vkf_status tok_encode_text(base_diag *d, const tok_tokenizer *t, const char *text, size_t n, tok_enc *out);
/* Truncates (as `strategy` says, to max_len including the special tokens
 * that post-processing adds) and post-processes a and optional b into out. */
vkf_status tok_finish(base_diag *d, const tok_tokenizer *t, tok_enc *a, tok_enc *b, bool add_special,
                      uint32_t max_len, vkf_truncation strategy, tok_enc *out);
/* Number of special tokens post-processing adds. */
uint32_t tok_added_count(const tok_tokenizer *t, bool pair);

/* Decodes ids to text (malloc'd, NUL-terminated, *n bytes). */
vkf_status tok_decode(base_diag *d, const tok_tokenizer *t, const uint32_t *ids, size_t n_ids, bool skip_special,
                      char **text, size_t *n);

/* The regex of GPT-2's pre-tokenizer (ByteLevel with use_regex). */
const char *tok_gpt2_pattern(void);

/* Byte-level alphabet: the character for byte b (GPT-2's bytes_to_unicode). */
uint32_t tok_byte_char(uint8_t b);

#endif
