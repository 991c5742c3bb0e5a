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

struct vkf_session {
    vkf_model *m;
    uint32_t B;
    graph_weights state; /* the family's declared state (model_declare_state) */
    rt_variants run;     /* the generation graphs over it */
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
    model_state *states = malloc(MODEL_MAX_STATES * sizeof *states);
    vkf_session *s = states ? calloc(1, sizeof *s) : NULL;
    if (s) {
        s->len = calloc(batch, sizeof *s->len), s->pending = malloc(batch * sizeof *s->pending);
        s->hist = malloc((size_t)batch * cache_positions(mm) * sizeof *s->hist);
        s->src_len = calloc(batch, sizeof *s->src_len);
    }
    if (!s || !s->len || !s->pending || !s->hist || !s->src_len) {
        if (s) free(s->len), free(s->pending), free(s->hist), free(s->src_len);
        free(s);
        free(states);
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    s->m = m;
    s->B = batch;
    for (uint32_t b = 0; b < batch; b++) s->pending[b] = -1;
    graph_weights_init(&s->state, m->dev);
    uint32_t n_states = BASE_MIN(model_declare_state(mm, batch, states, MODEL_MAX_STATES), MODEL_MAX_STATES);
    vkf_status st = VKF_OK;
    for (uint32_t i = 0; i < n_states && st == VKF_OK; i++) {
        uint64_t bytes = graph_dtype_size(mm->dtype);
        for (uint32_t k = 0; k < states[i].rank; k++) bytes *= states[i].shape[k];
        int buf;
        st = graph_weights_alloc(&s->state, bytes, "generation state (KV cache)", &buf);
        if (st == VKF_OK) st = graph_weights_add(&s->state, states[i].name, mm->dtype, states[i].rank, states[i].shape, buf, 0);
    }
    free(states);
    if (st == VKF_OK) rt_variants_init(&s->run, m->dev, mm, &s->state, &(graph_compile_opts){.slots = 1}, 8);
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

/* HF's RepetitionPenaltyLogitsProcessor on sequence b's logits: each id the
 * sequence holds, once, divided by p when positive and multiplied when not. */
static void penalise(gen_run *r, uint32_t b, float *logits)
{
    const vkf_session *s = r->s;
    float p = r->d->repetition_penalty;
    const int32_t *h = s->hist + (size_t)b * cache_positions(&s->m->m);
    for (uint32_t i = 0; i < s->len[b]; i++) {
        if (r->seen[h[i]]) continue;
        r->seen[h[i]] = 1;
        float *x = &logits[h[i]];
        *x = *x > 0 ? *x / p : *x * p;
    }
    for (uint32_t i = 0; i < s->len[b]; i++) r->seen[h[i]] = 0;
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
    if (!r->d->ignore_eos && id == s->m->m.eos_id) q->done = true, o->stop = VKF_STOP_EOS;
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
        if (r->seen) penalise(r, b, r->logits + (size_t)b * V);
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
    gen_run r = {.s = s, .d = desc, .max_new = desc->max_new_tokens ? desc->max_new_tokens : GEN_DEFAULT_TOKENS,
                 .greedy = desc->temperature == 0, .rng = desc->seed, .out = out};
    bool penalty = desc->repetition_penalty > 0 && desc->repetition_penalty != 1;
    /* a penalty changes every logit the sequence holds: choose from all of them on the host */
    r.k = penalty ? 0 : r.greedy ? 1 : (desc->top_k >= 1 && desc->top_k <= GEN_DEVICE_TOPK) ? desc->top_k : 0;
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
    if (st == VKF_OK && ed) st = encode_prompts(&r, ids, lens);
    else if (st == VKF_OK && fresh) st = prefill(&r);
    if (st == VKF_OK) st = decode_steps(&r);
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
    for (uint32_t b = 0; b < s->B && st == VKF_OK; b++) {
        if (!prompts[b]) st = base_fail(m->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "prompt %u is NULL", b);
        else st = vkf_tokenizer_encode(m->tok, prompts[b], VKF_TEXT_NUL, NULL, 0, NULL, &enc[b]);
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
