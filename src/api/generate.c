/* vkformer.h: text generation sessions over a causal LM (GPT-2).
 *
 * A session owns the state its model's family declares (GPT-2: the KV cache
 * "kv.<layer>", one device buffer per layer) and its own compiled graphs
 * over it: PREFILL variants per prompt bucket and the DECODE step, keyed by
 * the candidates k they return, all recorded once against that state. Per
 * token the host writes the ids and the "positions" / "counts" meta slots,
 * submits, waits and reads the top candidates.
 *
 * An encoder-decoder (BART) encodes the prompts once (ENCODE: the decoder's
 * cross-attention keys and values into the state) and decodes from its
 * decoder_start_token_id through the same decode steps; a new call starts
 * afresh (the prompt is the encoder's).
 *
 * Every sequence holds `len` tokens in the cache and maybe one `pending`
 * token: generated, returned, not yet fed (it is fed first when the text
 * continues). Fresh sequences start with one prefill over all prompts
 * (right-padded: causal attention never looks past a token); everything else
 * goes through decode steps, in which a sequence with nothing to feed idles
 * (it rewrites the cache slot it will write next anyway). */
#include "api.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_MAX_BATCH 64
#define GEN_DEVICE_TOPK 64 /* sampling with top_k up to this picks from device candidates */
#define GEN_DEFAULT_TOKENS 50
#define GEN_MAX_BEAMS 64
#define GEN_MAX_BEAM_ROWS 256 /* prompts x beams on the device at once */

struct vkf_session {
    vkf_model *m;
    uint32_t B;
    graph_weights state; /* the family's declared state (model_declare_state) */
    rt_variants run;     /* the generation graphs over it */
    graph_weights beam_state; /* beam search: the state of B * num_beams rows, made on first use */
    rt_variants beam_run;
    uint32_t beam_rows;
    uint32_t *len;
    int32_t *pending;
    int32_t *hist;       /* [B, cache_positions]: the tokens in the cache (repetition penalty) */
    uint32_t *src_len;   /* encoder-decoders: each source's tokens (meta "src_counts") */
    api_gen_stats stats;
    atomic_bool busy;    /* a generation is running: a second one (another thread, a callback) is refused */
};

/* Marks s in use; false (with the error set) when it already is. */
static bool session_enter(vkf_session *s, const char *what)
{
    if (!atomic_exchange(&s->busy, true)) return true;
    base_fail(s->m->dev->diag, VKF_ERROR_INVALID_ARGUMENT,
              "%s: the session is already generating (another thread, or a callback of its own generation): a session is "
              "for one call at a time; give each thread its own session", what);
    return false;
}

static void session_leave(vkf_session *s) { atomic_store(&s->busy, false); }

/* Positions the session's cache holds per sequence: the decoder's. */
static uint32_t cache_positions(const model *mm) { return mm->encoder_decoder ? mm->max_target : mm->max_positions; }

void api_session_stats(const vkf_session *s, api_gen_stats *st) { *st = s->stats; }

vkf_status api_session_profile(vkf_session *s, char **table) { return rt_profile(&s->run, table); }

/* The state the family declares for `rows` sequences, and the generation
 * graphs over it. */
static vkf_status make_state(vkf_model *m, uint32_t rows, graph_weights *state, rt_variants *run)
{
    const model *mm = &m->m;
    model_state *states = malloc(MODEL_MAX_STATES * sizeof *states);
    if (!states) return base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    graph_weights_init(state, m->dev);
    uint32_t n_states = BASE_MIN(model_declare_state(mm, rows, states, MODEL_MAX_STATES), MODEL_MAX_STATES);
    vkf_status st = VKF_OK;
    for (uint32_t i = 0; i < n_states && st == VKF_OK; i++) {
        uint64_t bytes = graph_dtype_size(mm->dtype);
        for (uint32_t k = 0; k < states[i].rank; k++) bytes *= states[i].shape[k];
        int buf;
        st = graph_weights_alloc(state, bytes, "generation state (KV cache)", &buf);
        if (st == VKF_OK) st = graph_weights_add(state, states[i].name, mm->dtype, states[i].rank, states[i].shape, buf, 0);
    }
    free(states);
    if (st == VKF_OK) rt_variants_init(run, m->dev, mm, state, &(graph_compile_opts){.slots = 1}, 8);
    return st;
}

vkf_status vkf_session_create(vkf_model *m, uint32_t batch, vkf_session **out)
{
    if (!m || !out) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_session_create: NULL argument");
    *out = NULL;
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    if (!model_declare_state(mm, 1, NULL, 0))
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s (%s) is not a causal language model: it cannot generate", mm->model_type,
                         model_task_name(mm->task));
    if (!batch || batch > GEN_MAX_BATCH)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "a session holds 1 to %u sequences, not %u", GEN_MAX_BATCH, batch);
    vkf_session *s = calloc(1, sizeof *s);
    if (s) {
        s->len = calloc(batch, sizeof *s->len), s->pending = malloc(batch * sizeof *s->pending);
        s->hist = malloc((size_t)batch * cache_positions(mm) * sizeof *s->hist);
        s->src_len = calloc(batch, sizeof *s->src_len);
    }
    if (!s || !s->len || !s->pending || !s->hist || !s->src_len) {
        if (s) free(s->len), free(s->pending), free(s->hist), free(s->src_len);
        free(s);
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    s->m = m;
    s->B = batch;
    for (uint32_t b = 0; b < batch; b++) s->pending[b] = -1;
    vkf_status st = make_state(m, batch, &s->state, &s->run);
    if (st != VKF_OK) {
        vkf_session_destroy(s);
        return st;
    }
    *out = s;
    return VKF_OK;
}

void vkf_session_destroy(vkf_session *s)
{
    if (!s) return;
    rt_variants_destroy(&s->run);
    graph_weights_free(&s->state);
    rt_variants_destroy(&s->beam_run);
    graph_weights_free(&s->beam_state);
    free(s->len);
    free(s->pending);
    free(s->hist);
    free(s->src_len);
    free(s);
}

static void forget(vkf_session *s)
{
    for (uint32_t b = 0; b < s->B; b++) s->len[b] = 0, s->pending[b] = -1;
}

void vkf_session_reset(vkf_session *s)
{
    if (!s || !session_enter(s, "vkf_session_reset")) return;
    forget(s);
    session_leave(s);
}

uint32_t vkf_session_length(const vkf_session *s, uint32_t seq)
{
    if (!s || seq >= s->B) return 0;
    return s->len[seq] + (s->pending[seq] >= 0);
}

void vkf_generation_free(vkf_generation *g, uint32_t n)
{
    if (!g) return;
    for (uint32_t i = 0; i < n; i++) {
        free(g[i].ids);
        free(g[i].text);
        memset(&g[i], 0, sizeof g[i]);
    }
}

/* ---- sampling ------------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct cand {
    float z;
    int32_t id;
} cand;

static int by_logit_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->z != y->z) return x->z < y->z ? 1 : -1;
    return x->id - y->id;
}

/* HF's warpers in HF's order (temperature, top-k, top-p) over n candidates
 * sorted best first (or unsorted when neither top-k nor top-p cuts), then a
 * draw from the renormalised distribution; -1 when a candidate is NaN or
 * +infinity, where torch's multinomial raises (and a draw would be arbitrary). */
static int32_t sample(cand *c, uint32_t n, bool sorted, const vkf_generate_desc *d, uint64_t *rng)
{
    for (uint32_t i = 0; i < n; i++)
        if (isnan(c[i].z) || c[i].z == INFINITY || c[i].id < 0) return -1;
    if (!sorted && ((d->top_k && d->top_k < n) || (d->top_p > 0 && d->top_p < 1))) {
        qsort(c, n, sizeof *c, by_logit_desc);
        sorted = true;
    }
    if (d->top_k && d->top_k < n) n = d->top_k;
    double mx = -INFINITY; /* a compare loop, not fmax: see base_max_f32 */
    for (uint32_t i = 0; i < n; i++)
        if ((double)c[i].z / d->temperature > mx) mx = (double)c[i].z / d->temperature;
    if (mx == -INFINITY) return -1; /* every candidate masked */
    double *p = malloc(n * sizeof *p), total = 0;
    if (!p) return c[0].id;
    for (uint32_t i = 0; i < n; i++) total += (p[i] = isfinite(c[i].z) ? exp((double)c[i].z / d->temperature - mx) : 0.0);
    if (d->top_p > 0 && d->top_p < 1) {
        double cum = 0;
        uint32_t keep = 0;
        while (keep < n && (keep == 0 || cum < d->top_p * total)) cum += p[keep++];
        n = keep, total = cum;
    }
    double u = (double)(splitmix(rng) >> 11) * 0x1.0p-53 * total;
    int32_t id = c[n - 1].id;
    for (uint32_t i = 0; i < n; i++) {
        if (u < p[i]) {
            id = c[i].id;
            break;
        }
        u -= p[i];
    }
    free(p);
    return id;
}

/* ---- the generation loop ------------------------------------------------------------ */

typedef struct gen_seq {
    const int32_t *feed;   /* tokens to feed before generating */
    uint32_t n_feed, fed;
    int32_t next;          /* generated, to be fed next; -1 none */
    bool done;
    uint32_t cap;
    vkf_decode_stream *stream;
    char *text;
    size_t text_len, text_cap;
} gen_seq;

static vkf_status append_text(base_diag *d, gen_seq *q, const char *piece, size_t len)
{
    if (!len) return VKF_OK;
    if (q->text_len + len + 1 > q->text_cap) {
        size_t cap = BASE_MAX(q->text_cap * 2, q->text_len + len + 64);
        char *t = realloc(q->text, cap);
        if (!t) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        q->text = t, q->text_cap = cap;
    }
    memcpy(q->text + q->text_len, piece, len);
    q->text_len += len;
    q->text[q->text_len] = 0;
    return VKF_OK;
}

typedef struct gen_run {
    vkf_session *s;
    const vkf_generate_desc *d;
    uint32_t max_new, k;      /* k: device candidates (0: read the logits) */
    uint32_t min_new, no_repeat, num_beams; /* the settings resolved against the model's */
    float length_penalty;
    int early_stopping;       /* 0 false, 1 true, 2 never */
    bool greedy;
    uint64_t rng;
    gen_seq *q;
    vkf_generation *out;
    int32_t *ids;             /* [B, S] scratch */
    int32_t *top;             /* [B, k] */
    float *vals, *logits;     /* [B, k], [B, vocab] */
    cand *cands;              /* [vocab] */
    uint8_t *seen;            /* [vocab] scratch: ids already penalised (repetition penalty) */
} gen_run;

/* HF's StopStringCriteria: a stop string that ends in the text the last
 * token added (text[before, len)); it may start in earlier tokens. */
static bool ends_stop_string(const vkf_generate_desc *d, const char *text, size_t before, size_t len)
{
    for (uint32_t i = 0; i < d->n_stop_strings; i++) {
        size_t n = strlen(d->stop_strings[i]);
        if (!n || n > len) continue;
        size_t from = before + 1 >= n ? before + 1 - n : 0; /* the earliest start that ends past `before` */
        for (size_t at = from; at + n <= len; at++)
            if (!memcmp(text + at, d->stop_strings[i], n)) return true;
    }
    return false;
}

/* HF's NoRepeatNGramLogitsProcessor: every token that would complete an
 * n-gram seq already holds is banned (-inf). */
static void ban_ngrams(const int32_t *seq, uint32_t len, uint32_t n, float *x)
{
    if (!n || len + 1 < n) return;
    const int32_t *prefix = seq + len - (n - 1);
    for (uint32_t i = 0; i + n <= len; i++)
        if (!memcmp(seq + i, prefix, (n - 1) * sizeof *seq)) x[seq[i + n - 1]] = -INFINITY;
}

/* The processors HF applies before choosing from a row's scores (seq: the
 * row's tokens so far, n_new of them generated): repetition penalty,
 * no-repeat n-grams, EOS refused before min_new tokens. */
static void process_row(gen_run *r, const int32_t *seq, uint32_t len, uint32_t n_new, float *x)
{
    if (r->seen) {
        float p = r->d->repetition_penalty;
        for (uint32_t i = 0; i < len; i++) {
            if (r->seen[seq[i]]) continue;
            r->seen[seq[i]] = 1;
            float *v = &x[seq[i]];
            *v = *v > 0 ? *v / p : *v * p;
        }
        for (uint32_t i = 0; i < len; i++) r->seen[seq[i]] = 0;
    }
    ban_ngrams(seq, len, r->no_repeat, x);
    const model *mm = &r->s->m->m;
    /* HF's NoBadWordsLogitsProcessor: a one-token word never; a longer one's last
     * token when the sequence ends in the word's other tokens */
    for (uint32_t i = 0; i < mm->bad_words_len; i += 1 + (uint32_t)mm->bad_words[i]) {
        uint32_t n = (uint32_t)mm->bad_words[i];
        const int32_t *w = mm->bad_words + i + 1;
        if (n - 1 <= len && !memcmp(seq + len - (n - 1), w, (n - 1) * sizeof *w)) x[w[n - 1]] = -INFINITY;
    }
    for (uint32_t i = 0; n_new < r->min_new && i < mm->n_eos; i++) x[mm->eos_ids[i]] = -INFINITY;
}

/* Records a generated token for sequence b and decides whether it goes on. */
static vkf_status emit(gen_run *r, uint32_t b, int32_t id)
{
    vkf_session *s = r->s;
    gen_seq *q = &r->q[b];
    vkf_generation *o = &r->out[b];
    base_diag *d = s->m->dev->diag;
    if (o->n_ids == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 16;
        int32_t *ids = realloc(o->ids, cap * sizeof *ids);
        if (!ids) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        o->ids = ids, q->cap = cap;
    }
    o->ids[o->n_ids++] = id;
    int stop = 0;
    if (q->stream) {
        const char *piece;
        size_t len;
        vkf_status st = vkf_decode_stream_step(q->stream, id, &piece, &len);
        size_t before = q->text_len;
        if (st == VKF_OK) st = append_text(d, q, piece, len);
        if (st != VKF_OK) return st;
        if (r->d->on_token) stop = r->d->on_token(r->d->user, b, id, piece, len);
        if (len && ends_stop_string(r->d, q->text, before, q->text_len)) stop = 2;
    } else if (r->d->on_token) {
        stop = r->d->on_token(r->d->user, b, id, "", 0);
    }
    s->pending[b] = id;
    q->next = -1;
    if (!r->d->ignore_eos && model_is_eos(&s->m->m, id)) q->done = true, o->stop = VKF_STOP_EOS;
    else if (o->n_ids >= r->max_new) q->done = true, o->stop = VKF_STOP_MAX_TOKENS;
    else if (stop) q->done = true, o->stop = stop == 2 ? VKF_STOP_STRING : VKF_STOP_CALLBACK;
    else q->next = id;
    return VKF_OK;
}

/* One run of a generation graph (the prompts' prefill or a decode step):
 * the ids in, the named meta slots, and what pick reads out. */
static vkf_status run_step(gen_run *r, model_graph_kind kind, uint32_t seq, const rt_meta *meta, uint32_t n_meta)
{
    vkf_session *s = r->s;
    bool want_logits = !r->k || r->d->logits_out;
    rt_input in = {"input_ids", r->ids};
    rt_output out[3] = {{"top_ids", r->k ? r->top : NULL},
                        {"top_ids.values", r->k && !r->greedy ? r->vals : NULL},
                        {"logits", want_logits ? r->logits : NULL}};
    double waited = 0;
    rt_run_desc d = {.key = {.kind = kind, .batch = s->B, .seq = seq, .k = BASE_MAX(r->k, 1u)}, .in = &in, .n_in = 1, .meta = meta, .n_meta = n_meta,
                     .out = out, .n_out = 3, .waited = &waited};
    vkf_status st = rt_run(&s->run, &d);
    s->stats.wait_s += waited;
    s->stats.runs++;
    if (kind == MODEL_GRAPH_DECODE) s->stats.decode_wait_s += waited, s->stats.decode_runs++;
    return st;
}

/* HF's ForcedBOSTokenLogitsProcessor (an encoder-decoder's first token) and
 * ForcedEOSTokenLogitsProcessor (the last token max_new_tokens allows): the
 * forced id, or -1. */
static int32_t forced_token(const gen_run *r, uint32_t b)
{
    const model *mm = &r->s->m->m;
    uint32_t n = r->out[b].n_ids;
    if (mm->encoder_decoder && n == 0 && mm->forced_bos_id >= 0) return mm->forced_bos_id;
    if (mm->forced_eos_id >= 0 && n + 1 == r->max_new) return mm->forced_eos_id;
    return -1;
}

/* Picks the next token of every sequence whose feed just ended, from row b
 * of the last run's outputs. */
static vkf_status pick(gen_run *r, const bool *choose)
{
    vkf_session *s = r->s;
    uint32_t B = s->B, V = s->m->m.vocab_size;
    vkf_status st = VKF_OK;
    for (uint32_t b = 0; b < B && st == VKF_OK; b++) {
        if (!choose[b]) continue;
        if (r->d->logits_out)
            memcpy(r->d->logits_out + ((size_t)b * r->max_new + r->out[b].n_ids) * V, r->logits + (size_t)b * V, (size_t)V * 4);
        if (!r->k) process_row(r, s->hist + (size_t)b * cache_positions(&s->m->m), s->len[b], r->out[b].n_ids, r->logits + (size_t)b * V);
        int32_t id = forced_token(r, b);
        if (id >= 0) {
            /* every other logit is -inf: the forced id whatever the strategy */
        } else if (r->greedy && !r->k) { /* the penalised logits' argmax (ties to the lower id, as the device's) */
            const float *x = r->logits + (size_t)b * V;
            id = -1;
            for (uint32_t i = 0; i < V; i++)
                if (!isnan(x[i]) && (id < 0 || x[i] > x[id])) id = (int32_t)i;
            if (id < 0) return base_fail(s->m->dev->diag, VKF_ERROR_FORMAT, "sequence %u: every logit is NaN (broken weights?)", b);
        } else if (r->greedy) {
            id = r->top[(size_t)b * r->k];
            if (id < 0) return base_fail(s->m->dev->diag, VKF_ERROR_FORMAT, "sequence %u: every logit is NaN (broken weights?)", b);
        } else if (r->k) {
            for (uint32_t i = 0; i < r->k; i++) r->cands[i] = (cand){r->vals[(size_t)b * r->k + i], r->top[(size_t)b * r->k + i]};
            id = sample(r->cands, r->k, true, r->d, &r->rng);
        } else {
            for (uint32_t i = 0; i < V; i++) r->cands[i] = (cand){r->logits[(size_t)b * V + i], (int32_t)i};
            id = sample(r->cands, V, false, r->d, &r->rng);
        }
        if (id < 0)
            return base_fail(s->m->dev->diag, VKF_ERROR_FORMAT,
                             "sequence %u: the logits hold NaN or infinity (broken weights?): nothing to sample from", b);
        st = emit(r, b, id);
    }
    return st;
}

static vkf_status prefill(gen_run *r)
{
    vkf_session *s = r->s;
    const model *mm = &s->m->m;
    uint32_t B = s->B, longest = 0;
    for (uint32_t b = 0; b < B; b++) longest = BASE_MAX(longest, r->q[b].n_feed);
    uint32_t S = rt_seq_bucket(mm, longest);
    int32_t meta[GEN_MAX_BATCH];
    bool choose[GEN_MAX_BATCH];
    for (uint32_t b = 0; b < B; b++) {
        gen_seq *q = &r->q[b];
        for (uint32_t j = 0; j < S; j++) r->ids[(size_t)b * S + j] = j < q->n_feed ? q->feed[j] : (int32_t)mm->pad_id;
        memcpy(s->hist + (size_t)b * cache_positions(mm), q->feed, q->n_feed * sizeof *q->feed);
        meta[b] = (int32_t)q->n_feed;
        q->fed = q->n_feed;
        s->len[b] = q->n_feed;
        r->out[b].prompt_tokens = q->n_feed;
        choose[b] = true;
    }
    rt_meta lengths = {"lengths", meta};
    vkf_status st = run_step(r, MODEL_GRAPH_PREFILL, S, &lengths, 1);
    return st == VKF_OK ? pick(r, choose) : st;
}

/* Encoder-decoders: the prompts through the encoder once, right-padded to
 * their bucket (ENCODE writes the decoder's cross-attention keys and values
 * into the session's state). */
static vkf_status encode_prompts(gen_run *r, const int32_t *const *ids, const uint32_t *lens)
{
    vkf_session *s = r->s;
    const model *mm = &s->m->m;
    uint32_t B = s->B, longest = 0;
    for (uint32_t b = 0; b < B; b++) longest = BASE_MAX(longest, lens[b]);
    uint32_t S = rt_seq_bucket(mm, longest);
    int32_t *buf = malloc(2 * (size_t)B * S * sizeof *buf);
    if (!buf) return base_fail(s->m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t b = 0; b < B; b++) {
        for (uint32_t j = 0; j < S; j++) {
            buf[(size_t)b * S + j] = j < lens[b] ? ids[b][j] : (int32_t)mm->pad_id;
            buf[(size_t)(B + b) * S + j] = j < lens[b];
        }
        s->src_len[b] = lens[b];
        r->out[b].prompt_tokens = lens[b];
    }
    rt_input in[2] = {{"input_ids", buf}, {"attention_mask", buf + (size_t)B * S}};
    double waited = 0;
    rt_run_desc d = {.key = {.kind = MODEL_GRAPH_ENCODE, .batch = B, .seq = S}, .in = in, .n_in = 2, .waited = &waited};
    vkf_status st = rt_run(&s->run, &d);
    s->stats.wait_s += waited;
    s->stats.runs++;
    free(buf);
    return st;
}

static vkf_status decode_steps(gen_run *r)
{
    vkf_session *s = r->s;
    const model *mm = &s->m->m;
    uint32_t B = s->B, P = cache_positions(mm);
    int32_t meta[3 * GEN_MAX_BATCH];
    bool choose[GEN_MAX_BATCH], fed[GEN_MAX_BATCH];
    for (;;) {
        bool any = false;
        for (uint32_t b = 0; b < B; b++) {
            gen_seq *q = &r->q[b];
            int32_t feed = -1;
            fed[b] = choose[b] = false;
            if (!q->done) {
                if (q->fed < q->n_feed) feed = q->feed[q->fed];
                else if (q->next >= 0) feed = q->next;
                if (feed >= 0 && s->len[b] >= P) { /* the cache is full: the token stays pending */
                    q->done = true;
                    r->out[b].stop = VKF_STOP_CONTEXT;
                    feed = -1;
                }
            }
            if (feed >= 0) {
                any = fed[b] = true;
                if (q->fed < q->n_feed) q->fed++, r->out[b].prompt_tokens += !mm->encoder_decoder;
                else q->next = -1, s->pending[b] = -1;
                choose[b] = q->fed == q->n_feed; /* after a prompt's last token, or a generated one */
            }
            /* an idle sequence rewrites the slot it writes next anyway */
            r->ids[b] = feed >= 0 ? feed : (int32_t)mm->pad_id;
            meta[b] = (int32_t)BASE_MIN(s->len[b], P - 1);
            meta[B + b] = meta[b] + 1;
            meta[2 * B + b] = (int32_t)s->src_len[b];
        }
        if (!any) return VKF_OK;
        rt_meta slots[3] = {{"positions", meta}, {"counts", meta + B}, {"src_counts", meta + 2 * B}};
        vkf_status st = run_step(r, MODEL_GRAPH_DECODE, 1, slots, mm->encoder_decoder ? 3 : 2);
        if (st != VKF_OK) return st;
        for (uint32_t b = 0; b < B; b++)
            if (fed[b]) s->hist[(size_t)b * P + s->len[b]++] = r->ids[b];
        st = pick(r, choose);
        if (st != VKF_OK) return st;
    }
}

static vkf_status check_desc(base_diag *d, const vkf_generate_desc *desc)
{
    if (!(desc->temperature >= 0) || isinf(desc->temperature))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "temperature %g: must be 0 (greedy) or a positive number", (double)desc->temperature);
    if (!(desc->top_p >= 0 && desc->top_p <= 1))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "top_p %g: must be in (0, 1] (0: off)", (double)desc->top_p);
    if (!(desc->repetition_penalty >= 0) || isinf(desc->repetition_penalty))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "repetition_penalty %g: must be a positive number (0 or 1: off)",
                         (double)desc->repetition_penalty);
    if (desc->n_stop_strings && !desc->stop_strings)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "n_stop_strings %u with stop_strings NULL", desc->n_stop_strings);
    for (uint32_t i = 0; i < desc->n_stop_strings; i++)
        if (!desc->stop_strings[i] || !desc->stop_strings[i][0])
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "stop string %u is %s", i, desc->stop_strings[i] ? "empty" : "NULL");
    return VKF_OK;
}

static vkf_status generate_ids(vkf_session *s, const int32_t *const *ids, const uint32_t *lens, const vkf_generate_desc *desc,
                               vkf_generation *out);

vkf_status vkf_session_generate_ids(vkf_session *s, const int32_t *const *ids, const uint32_t *lens,
                                    const vkf_generate_desc *desc, vkf_generation *out)
{
    if (!s || !out || (!lens != !ids))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_session_generate_ids: NULL argument");
    if (!session_enter(s, "vkf_session_generate_ids")) {
        memset(out, 0, s->B * sizeof *out);
        return VKF_ERROR_INVALID_ARGUMENT;
    }
    vkf_status st = generate_ids(s, ids, lens, desc, out);
    session_leave(s);
    return st;
}

/* ---- beam search ------------------------------------------------------------------- */

/* One hypothesis of a prompt: its decoder tokens (the start token first) and score. */
typedef struct beam_hyp {
    int32_t *seq;
    uint32_t len;
    float score;
    bool finished;
} beam_hyp;

typedef struct beam_cand {
    float logp;
    uint32_t beam;
    int32_t id;
} beam_cand;

/* The top n of `have` candidates kept sorted best first (ties: the lower flat index, as torch.topk). */
static void cand_insert(beam_cand *top, uint32_t *have, uint32_t n, beam_cand c)
{
    if (*have == n && !(c.logp > top[n - 1].logp)) return;
    uint32_t at = *have < n ? (*have)++ : n - 1;
    while (at > 0 && c.logp > top[at - 1].logp) top[at] = top[at - 1], at--;
    top[at] = c;
}

static vkf_status beam_state(vkf_session *s, uint32_t rows)
{
    if (s->beam_rows == rows) return VKF_OK;
    rt_variants_destroy(&s->beam_run);
    graph_weights_free(&s->beam_state);
    s->beam_rows = 0;
    vkf_status st = make_state(s->m, rows, &s->beam_state, &s->beam_run);
    if (st == VKF_OK) s->beam_rows = rows;
    return st;
}

/* HF's beam search (transformers 5's vectorised _beam_search) for an
 * encoder-decoder: K running hypotheses per prompt as rows b*K + k of one
 * batch on the device; per step log_softmax, the processors, the running
 * scores added, the top 2K continuations of each prompt; those that end (EOS
 * or the length limit) among the first K enter the finished set with their
 * score / length^length_penalty, the best K that go on run next, and the
 * caches are reordered to them on the device (REORDER). Early stopping as
 * HF's: TRUE once K finished, FALSE / NEVER by its heuristic. */
static vkf_status beam_search(gen_run *r, const int32_t *const *ids, const uint32_t *lens)
{
    vkf_session *s = r->s;
    const model *mm = &s->m->m;
    base_diag *d = s->m->dev->diag;
    /* HF keeps max(2, 1 + EOS ids) x K continuations a step */
    uint32_t B = s->B, K = r->num_beams, M = BASE_MAX(2u, 1 + mm->n_eos) * K, V = mm->vocab_size, R = B * K;
    uint32_t max_len = r->max_new + 1; /* HF's max_length: the start token and the new ones */
    uint32_t P = cache_positions(mm);
    if (max_len > P) max_len = P;
    vkf_status st = beam_state(s, R);
    beam_hyp *run = calloc((size_t)2 * B * K, sizeof *run), *fin = run ? run + (size_t)B * K : NULL, *next = NULL;
    int32_t *seqs = malloc((size_t)3 * B * K * max_len * sizeof *seqs), *feed = malloc(R * sizeof *feed);
    int32_t *meta = malloc((size_t)3 * R * sizeof *meta), *rows = malloc((size_t)R * P * sizeof *rows);
    float *logits = malloc((size_t)R * V * sizeof *logits);
    beam_cand *top = malloc((size_t)B * M * sizeof *top);
    bool *hits = malloc((size_t)B * M * sizeof *hits), *heur = malloc(B * sizeof *heur);
    uint32_t *src = malloc(R * sizeof *src);
    next = malloc((size_t)B * K * sizeof *next);
    if (st == VKF_OK && (!run || !seqs || !feed || !meta || !rows || !logits || !top || !hits || !heur || !src || !next))
        st = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    /* the encoder once, each prompt repeated for its K rows (HF expands the inputs) */
    uint32_t longest = 0;
    for (uint32_t b = 0; b < B; b++) longest = BASE_MAX(longest, lens[b]);
    uint32_t S = rt_seq_bucket(mm, longest);
    int32_t *enc = st == VKF_OK ? malloc((size_t)2 * R * S * sizeof *enc) : NULL;
    if (st == VKF_OK && !enc) st = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t row = 0; enc && row < R; row++) {
        uint32_t b = row / K;
        for (uint32_t j = 0; j < S; j++) {
            enc[(size_t)row * S + j] = j < lens[b] ? ids[b][j] : (int32_t)mm->pad_id;
            enc[(size_t)(R + row) * S + j] = j < lens[b];
        }
    }
    if (st == VKF_OK) {
        rt_input in[2] = {{"input_ids", enc}, {"attention_mask", enc + (size_t)R * S}};
        double waited = 0;
        rt_run_desc rd = {.key = {.kind = MODEL_GRAPH_ENCODE, .batch = R, .seq = S}, .in = in, .n_in = 2, .waited = &waited};
        st = rt_run(&s->beam_run, &rd);
        s->stats.wait_s += waited, s->stats.runs++;
    }
    free(enc);
    for (uint32_t i = 0; st == VKF_OK && i < B * K; i++) {
        run[i] = (beam_hyp){.seq = seqs + (size_t)i * max_len, .len = 1, .score = i % K ? -1e9f : 0.0f};
        fin[i] = (beam_hyp){.seq = seqs + (size_t)(B * K + i) * max_len, .len = 0, .score = -1e9f};
        next[i].seq = seqs + (size_t)(2 * B * K + i) * max_len;
        run[i].seq[0] = mm->decoder_start_id;
    }
    for (uint32_t b = 0; b < B; b++) heur[b] = true, r->out[b].prompt_tokens = lens[b];
    uint32_t cur = 1; /* tokens in every running hypothesis */
    while (st == VKF_OK) {
        /* one decode step over every running hypothesis */
        for (uint32_t row = 0; row < R; row++) {
            feed[row] = run[row].seq[cur - 1];
            meta[row] = (int32_t)cur - 1, meta[R + row] = (int32_t)cur, meta[2 * R + row] = (int32_t)lens[row / K];
        }
        rt_input in = {"input_ids", feed};
        rt_meta slots[3] = {{"positions", meta}, {"counts", meta + R}, {"src_counts", meta + 2 * R}};
        rt_output out = {"logits", logits};
        double waited = 0;
        rt_run_desc rd = {.key = {.kind = MODEL_GRAPH_DECODE, .batch = R, .seq = 1, .k = 1}, .in = &in, .n_in = 1, .meta = slots,
                          .n_meta = 3, .out = &out, .n_out = 1, .waited = &waited};
        st = rt_run(&s->beam_run, &rd);
        s->stats.wait_s += waited, s->stats.runs++, s->stats.decode_wait_s += waited, s->stats.decode_runs++;
        if (st != VKF_OK) break;
        /* log-probabilities, HF's processors, the running scores; the top 2K continuations of each prompt */
        for (uint32_t b = 0; b < B; b++) {
            uint32_t have = 0;
            beam_cand *t = top + (size_t)b * M;
            for (uint32_t k = 0; k < K; k++) {
                uint32_t row = b * K + k;
                float *x = logits + (size_t)row * V;
                double mx = -INFINITY, sum = 0;
                for (uint32_t i = 0; i < V; i++) mx = x[i] > mx ? x[i] : mx;
                for (uint32_t i = 0; i < V; i++) sum += exp((double)x[i] - mx);
                float lse = (float)(mx + log(sum));
                for (uint32_t i = 0; i < V; i++) x[i] -= lse;
                process_row(r, run[row].seq, cur, cur - 1, x);
                int32_t forced = mm->forced_bos_id >= 0 && cur == 1 ? mm->forced_bos_id
                                 : mm->forced_eos_id >= 0 && cur == max_len - 1 ? mm->forced_eos_id : -1;
                if (forced >= 0)
                    for (uint32_t i = 0; i < V; i++) x[i] = i == (uint32_t)forced ? 0.0f : -INFINITY;
                for (uint32_t i = 0; i < V; i++)
                    cand_insert(t, &have, M, (beam_cand){x[i] + run[row].score, k, (int32_t)i});
            }
            for (uint32_t j = 0; j < M; j++)
                hits[b * M + j] = j < have && ((!r->d->ignore_eos && model_is_eos(mm, t[j].id)) || cur + 1 >= max_len);
            for (uint32_t j = have; j < M; j++) t[j] = (beam_cand){-INFINITY, 0, 0};
        }
        /* the finished set: candidates among the first K that end, scored by length */
        for (uint32_t b = 0; b < B; b++) {
            beam_cand *t = top + (size_t)b * M;
            bool all_done = true;
            for (uint32_t k = 0; k < K; k++) all_done = all_done && fin[b * K + k].finished;
            beam_hyp merged[10 * GEN_MAX_BEAMS]; /* K finished + up to 9K continuations */
            uint32_t n = 0;
            for (uint32_t k = 0; k < K; k++) merged[n++] = fin[b * K + k];
            for (uint32_t j = 0; j < M; j++) {
                float sc = t[j].logp / (float)pow((double)cur, (double)r->length_penalty);
                bool just = hits[b * M + j] && j < K;
                if (all_done && r->early_stopping == 1) sc += -1e9f;
                if (!heur[b]) sc += -1e9f;
                if (!just) sc += -1e9f;
                merged[n++] = (beam_hyp){.seq = NULL, .len = j, .score = sc, .finished = just};
            }
            /* the best K, ties to the earlier (torch.topk on the concatenation) */
            beam_hyp best[GEN_MAX_BEAMS];
            for (uint32_t k = 0; k < K; k++) {
                uint32_t pick = UINT32_MAX;
                for (uint32_t i = 0; i < n; i++)
                    if (merged[i].score > -INFINITY && (pick == UINT32_MAX || merged[i].score > merged[pick].score)) pick = i;
                if (pick == UINT32_MAX) pick = 0;
                best[k] = merged[pick];
                best[k].seq = pick < K ? merged[pick].seq : NULL;
                if (pick >= K) best[k].len = merged[pick].len | 0x80000000u; /* a candidate: its index */
                merged[pick].score = -INFINITY;
            }
            /* copy into fin (candidates: their running hypothesis + the token) */
            beam_hyp nf[GEN_MAX_BEAMS];
            for (uint32_t k = 0; k < K; k++) {
                nf[k] = best[k];
                nf[k].seq = next[b * K + k].seq;
                if (best[k].len & 0x80000000u) {
                    const beam_cand *c = &t[best[k].len & 0x7fffffffu];
                    const beam_hyp *h = &run[b * K + c->beam];
                    memcpy(nf[k].seq, h->seq, cur * sizeof *h->seq);
                    nf[k].seq[cur] = c->id;
                    nf[k].len = cur + 1;
                } else {
                    memcpy(nf[k].seq, best[k].seq, best[k].len * sizeof *best[k].seq);
                }
            }
            for (uint32_t k = 0; k < K; k++) {
                int32_t *keep = fin[b * K + k].seq;
                fin[b * K + k] = nf[k];
                next[b * K + k].seq = keep; /* the buffers rotate */
            }
        }
        /* the running set: the best K continuations that go on */
        for (uint32_t b = 0; b < B; b++) {
            beam_cand *t = top + (size_t)b * M;
            float adj[9 * GEN_MAX_BEAMS];
            for (uint32_t j = 0; j < M; j++) adj[j] = t[j].logp + (hits[b * M + j] ? -1e9f : 0.0f);
            for (uint32_t k = 0; k < K; k++) {
                uint32_t pick = 0;
                for (uint32_t j = 1; j < M; j++)
                    if (adj[j] > adj[pick]) pick = j;
                const beam_cand *c = &t[pick];
                beam_hyp *h = &next[b * K + k];
                memcpy(h->seq, run[b * K + c->beam].seq, cur * sizeof *h->seq);
                h->seq[cur] = c->id;
                h->len = cur + 1;
                h->score = adj[pick];
                src[b * K + k] = b * K + c->beam;
                adj[pick] = -INFINITY;
            }
            for (uint32_t k = 0; k < K; k++) {
                int32_t *keep = run[b * K + k].seq;
                run[b * K + k] = next[b * K + k];
                next[b * K + k].seq = keep;
            }
        }
        /* the caches follow the hypotheses (a permutation of the rows; none when each stays) */
        bool moved = false;
        for (uint32_t row = 0; row < R; row++) moved = moved || src[row] != row;
        if (moved) {
            for (uint32_t row = 0; row < R; row++)
                for (uint32_t p = 0; p < P; p++) rows[(size_t)row * P + p] = (int32_t)(src[row] * P + p) + 1;
            rt_meta bm = {"beam_rows", rows};
            rt_run_desc rd2 = {.key = {.kind = MODEL_GRAPH_REORDER, .batch = R}, .meta = &bm, .n_meta = 1};
            st = rt_run(&s->beam_run, &rd2);
            if (st != VKF_OK) break;
        }
        cur++;
        /* HF's stopping: an improvement still possible, an open beam, a continuation */
        bool improvable = false, all_finished = true, all_hit = true;
        for (uint32_t b = 0; b < B; b++) {
            uint32_t best_len = r->early_stopping == 2 && r->length_penalty > 0 ? max_len - 1 : cur - 1;
            float best_possible = run[b * K].score / (float)pow((double)best_len, (double)r->length_penalty);
            float worst = INFINITY;
            bool any = false;
            for (uint32_t k = 0; k < K; k++) worst = fin[b * K + k].score < worst ? fin[b * K + k].score : worst;
            for (uint32_t k = 0; k < K; k++) any = any || best_possible > (fin[b * K + k].finished ? worst : -1e9f);
            heur[b] = heur[b] && any;
            improvable = improvable || heur[b];
            for (uint32_t k = 0; k < K; k++) all_finished = all_finished && fin[b * K + k].finished;
            for (uint32_t j = 0; j < M; j++) all_hit = all_hit && hits[b * M + j];
        }
        if (!improvable || (all_finished && r->early_stopping == 1) || all_hit) break;
    }
    /* the best finished hypothesis of each prompt, without its start token */
    for (uint32_t b = 0; b < B && st == VKF_OK; b++) {
        const beam_hyp *h = &fin[b * K];
        if (!h->finished || h->len < 1) h = &run[b * K]; /* nothing finished (cannot happen past the length limit) */
        for (uint32_t i = 1; i < h->len && st == VKF_OK; i++) st = emit(r, b, h->seq[i]);
        if (st == VKF_OK && h->len > 1 && r->out[b].stop == VKF_STOP_EOS && !model_is_eos(mm, h->seq[h->len - 1]))
            r->out[b].stop = VKF_STOP_MAX_TOKENS;
        r->q[b].done = true;
    }
    free(run), free(seqs), free(feed), free(meta), free(rows), free(logits), free(top), free(hits), free(heur), free(src), free(next);
    return st;
}

static vkf_status generate_ids(vkf_session *s, const int32_t *const *ids, const uint32_t *lens, const vkf_generate_desc *desc,
                               vkf_generation *out)
{
    static const vkf_generate_desc zero;
    if (!desc) desc = &zero;
    vkf_model *m = s->m;
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    uint32_t B = s->B, P = cache_positions(mm), V = mm->vocab_size;
    bool ed = mm->encoder_decoder;
    memset(out, 0, B * sizeof *out);
    if (ed) forget(s); /* the prompt is the encoder's: every call starts afresh */
    vkf_status st = check_desc(d, desc);
    if (st == VKF_OK && desc->n_stop_strings && !m->tok)
        st = base_fail(d, VKF_ERROR_NOT_FOUND, "stop strings need the model's tokenizer, and the directory has none");
    gen_run r = {.s = s, .d = desc, .greedy = desc->temperature == 0, .rng = desc->seed, .out = out};
    /* the settings: the caller's, else the task's (task_specific_params), else the
     * model's generation config (HF's resolution) */
    const model_task_params *tp = model_task_params_find(mm, desc->task);
    const model_gen_config *gc = tp ? &tp->gen : &mm->gen;
    uint32_t ex = desc->explicit_fields;
    r.max_new = desc->max_new_tokens || (ex & VKF_GEN_MAX_NEW_TOKENS) ? desc->max_new_tokens
                : gc->max_new_tokens                               ? gc->max_new_tokens
                : ed && gc->max_length > 1                         ? gc->max_length - 1 /* the start token counts */
                                                                   : GEN_DEFAULT_TOKENS;
    r.num_beams = desc->num_beams || (ex & VKF_GEN_NUM_BEAMS) ? desc->num_beams : r.greedy ? gc->num_beams : 1;
    r.length_penalty = desc->length_penalty != 0 || (ex & VKF_GEN_LENGTH_PENALTY) ? desc->length_penalty : gc->length_penalty;
    r.early_stopping = desc->early_stopping == VKF_EARLY_STOPPING_TRUE    ? 1
                       : desc->early_stopping == VKF_EARLY_STOPPING_FALSE ? 0
                       : desc->early_stopping == VKF_EARLY_STOPPING_NEVER ? 2
                                                                          : gc->early_stopping;
    r.no_repeat = desc->no_repeat_ngram_size || (ex & VKF_GEN_NO_REPEAT_NGRAM) ? desc->no_repeat_ngram_size : gc->no_repeat_ngram;
    r.min_new = desc->min_new_tokens || (ex & VKF_GEN_MIN_NEW_TOKENS) ? desc->min_new_tokens
                : ed && gc->min_length > 1                          ? gc->min_length - 1
                                                                    : 0;
    if (st == VKF_OK && !r.max_new) st = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "max_new_tokens 0: nothing to generate");
    if (st == VKF_OK && (!r.num_beams || r.num_beams > GEN_MAX_BEAMS || (size_t)r.num_beams * B > GEN_MAX_BEAM_ROWS))
        st = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "num_beams %u: 1 to %u beams, at most %u prompts x beams", r.num_beams,
                       GEN_MAX_BEAMS, GEN_MAX_BEAM_ROWS);
    if (st == VKF_OK && !(r.length_penalty == r.length_penalty) )
        st = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "length_penalty is NaN");
    if (st == VKF_OK && r.num_beams > 1) {
        const char *why = !ed                   ? "a causal LM (beam search is for encoder-decoders here: greedy or sampling)"
                          : !r.greedy           ? "sampling (beam sampling is not supported: num_beams 1 to sample)"
                          : desc->logits_out    ? "logits_out (the raw logits are kept for greedy and sampling)"
                          : desc->n_stop_strings ? "stop strings (not with beams)"
                                                : NULL;
        if (why) st = base_fail(d, VKF_ERROR_UNSUPPORTED, "num_beams %u with %s", r.num_beams, why);
    }
    bool penalty = desc->repetition_penalty > 0 && desc->repetition_penalty != 1;
    /* processors change logits the device's top-k did not see: choose from all of them on the host */
    bool host = penalty || r.no_repeat || r.min_new || r.num_beams > 1 || mm->n_bad_words;
    r.k = host ? 0 : r.greedy ? 1 : (desc->top_k >= 1 && desc->top_k <= GEN_DEVICE_TOPK) ? desc->top_k : 0;
    r.seen = penalty ? calloc(V, 1) : NULL;
    /* what each sequence feeds: its pending token, then the new prompt (a
     * fresh sequence with an empty prompt starts from BOS) */
    int32_t *feeds = NULL;
    uint32_t total = 0;
    for (uint32_t b = 0; b < B; b++) total += (lens ? lens[b] : 0) + 1;
    r.q = calloc(B, sizeof *r.q);
    feeds = malloc(total * sizeof *feeds);
    size_t S_max = (size_t)rt_seq_bucket(mm, BASE_MAX(P, mm->max_positions));
    r.ids = malloc((size_t)B * BASE_MAX(S_max, 1u) * sizeof *r.ids);
    r.top = malloc((size_t)B * BASE_MAX(r.k, 1u) * sizeof *r.top);
    r.vals = malloc((size_t)B * BASE_MAX(r.k, 1u) * sizeof *r.vals);
    bool want_logits = !r.k || desc->logits_out;
    r.logits = want_logits ? malloc((size_t)B * V * sizeof *r.logits) : NULL;
    r.cands = malloc((size_t)BASE_MAX(V, r.k) * sizeof *r.cands);
    if (st == VKF_OK && (!r.q || !feeds || !r.ids || !r.top || !r.vals || !r.cands || (want_logits && !r.logits) || (penalty && !r.seen)))
        st = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    bool fresh = true;
    uint32_t at = 0;
    for (uint32_t b = 0; b < B && st == VKF_OK; b++) {
        gen_seq *q = &r.q[b];
        q->next = -1;
        q->feed = feeds + at;
        if (s->pending[b] >= 0) feeds[at + q->n_feed++] = s->pending[b];
        for (uint32_t i = 0; lens && i < lens[b] && st == VKF_OK; i++) {
            int32_t id = ids[b][i];
            if (id < 0 || (uint32_t)id >= V)
                st = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "prompt %u: token id %d is outside the vocabulary [0, %u)", b, id, V);
            if (!ed) feeds[at + q->n_feed++] = id;
        }
        if (ed && st == VKF_OK) { /* the prompt goes to the encoder; the decoder starts from decoder_start_token_id */
            uint32_t n = lens ? lens[b] : 0;
            if (!n || n > mm->max_positions)
                st = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "prompt %u: %u tokens: an encoder-decoder's source takes 1 to %u tokens", b,
                               n, mm->max_positions);
            else if (mm->decoder_start_id < 0)
                st = base_fail(d, VKF_ERROR_FORMAT, "the model's config sets no decoder_start_token_id: generation cannot start");
            feeds[at + q->n_feed++] = mm->decoder_start_id;
        }
        if (!q->n_feed && !s->len[b]) feeds[at + q->n_feed++] = mm->bos_id; /* HF: an empty prompt is BOS */
        if (st == VKF_OK && s->len[b] + q->n_feed > P)
            st = base_fail(d, VKF_ERROR_INVALID_ARGUMENT,
                           "prompt %u: %u tokens%s do not fit the model's context of %u positions (n_positions)", b,
                           q->n_feed, s->len[b] ? " after the ones already in the session" : "", P);
        fresh = fresh && !s->len[b] && s->pending[b] < 0;
        at += q->n_feed;
        if (st == VKF_OK && m->tok && vkf_decode_stream_create(m->tok, 1, &q->stream) != VKF_OK)
            st = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    /* pending tokens move into the feed: the session forgets them until fed */
    for (uint32_t b = 0; b < B && st == VKF_OK; b++) s->pending[b] = -1;
    if (st == VKF_OK && r.num_beams > 1) st = beam_search(&r, ids, lens);
    else if (st == VKF_OK && ed) st = encode_prompts(&r, ids, lens);
    else if (st == VKF_OK && fresh) st = prefill(&r);
    if (st == VKF_OK && r.num_beams == 1) st = decode_steps(&r);
    for (uint32_t b = 0; b < B && r.q; b++) {
        gen_seq *q = &r.q[b];
        if (st == VKF_OK && q->stream) {
            const char *piece;
            size_t len;
            st = vkf_decode_stream_finish(q->stream, &piece, &len);
            if (st == VKF_OK) st = append_text(d, q, piece, len);
            if (st == VKF_OK && len && desc->on_token) desc->on_token(desc->user, b, -1, piece, len);
        }
        vkf_decode_stream_destroy(q->stream);
        if (st == VKF_OK && m->tok && !q->text) q->text = calloc(1, 1);
        out[b].text = q->text, out[b].text_len = q->text_len;
        q->text = NULL;
    }
    if (st != VKF_OK) {
        vkf_generation_free(out, B);
        forget(s); /* the cache may hold a half-fed prompt */
    }
    free(r.q);
    free(feeds);
    free(r.ids);
    free(r.top);
    free(r.vals);
    free(r.logits);
    free(r.cands);
    free(r.seen);
    return st;
}

vkf_status vkf_session_generate(vkf_session *s, const char *const *prompts, const vkf_generate_desc *desc, vkf_generation *out)
{
    if (!s || !prompts || !out) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_session_generate: NULL argument");
    vkf_model *m = s->m;
    if (!m->tok)
        return base_fail(m->dev->diag, VKF_ERROR_NOT_FOUND, "the model directory has no tokenizer files: generate from token ids");
    vkf_encoding *enc = calloc(s->B, sizeof *enc);
    const int32_t **ids = calloc(s->B, sizeof *ids);
    uint32_t *lens = calloc(s->B, sizeof *lens);
    vkf_status st = enc && ids && lens ? VKF_OK : base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    /* the task's prefix before each prompt (T5's "translate English to German: "), as HF's pipelines */
    const model_task_params *tp = desc ? model_task_params_find(&m->m, desc->task) : NULL;
    const char *prefix = tp ? tp->prefix : "";
    for (uint32_t b = 0; b < s->B && st == VKF_OK; b++) {
        char *joined = NULL;
        if (prompts[b] && prefix[0]) {
            size_t np = strlen(prefix), nt = strlen(prompts[b]);
            joined = malloc(np + nt + 1);
            if (!joined) st = base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
            else memcpy(joined, prefix, np), memcpy(joined + np, prompts[b], nt + 1);
        }
        if (st != VKF_OK) break;
        if (!prompts[b]) st = base_fail(m->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "prompt %u is NULL", b);
        else st = vkf_tokenizer_encode(m->tok, joined ? joined : prompts[b], VKF_TEXT_NUL, NULL, 0, NULL, &enc[b]);
        free(joined);
        if (st == VKF_OK) ids[b] = enc[b].ids, lens[b] = enc[b].length;
    }
    if (st == VKF_OK) st = vkf_session_generate_ids(s, ids, lens, desc, out);
    for (uint32_t b = 0; enc && b < s->B; b++) vkf_encoding_free(&enc[b]);
    free(enc);
    free(ids);
    free(lens);
    return st;
}

vkf_status vkf_generate(vkf_model *m, const char *const *prompts, uint32_t n, const vkf_generate_desc *desc, vkf_generation *out)
{
    if (!m || !prompts || !out) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_generate: NULL argument");
    vkf_session *s;
    vkf_status st = vkf_session_create(m, n, &s);
    if (st != VKF_OK) return st;
    st = vkf_session_generate(s, prompts, desc, out);
    vkf_session_destroy(s);
    return st;
}
