/* The runtime layer's runs: variants, buckets, padding, named I/O, profiles. */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Beam search's reorder: each state that follows the beams, [B, P, X], is
 * gathered row by row (position by position) from the rows meta
 * "beam_rows" names (B * P values: source row * P + position, + 1), into a
 * temporary, then copied back. */
static graph *build_reorder(const model *m, const graph_key *key)
{
    uint32_t n = model_declare_state(m, key->batch, NULL, 0);
    model_state *st = malloc((n ? n : 1) * sizeof *st);
    graph *g = st ? graph_create(m->diag, m->dtype) : NULL;
    if (!g) {
        free(st);
        return NULL;
    }
    model_declare_state(m, key->batch, st, n);
    uint32_t rows = 0, meta = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!st[i].beams || st[i].rank != 3) continue;
        uint32_t B = st[i].shape[0], P = st[i].shape[1], X = st[i].shape[2];
        if (!rows) rows = B * P, meta = graph_meta_named(g, "beam_rows", rows);
        if (rows != B * P) {
            g->error = base_fail(m->diag, VKF_ERROR_UNSUPPORTED, "beam search: the states that follow the beams differ in size");
            break;
        }
        char name[64];
        int s = graph_state(g, st[i].name, st[i].rank, st[i].shape);
        snprintf(name, sizeof name, "%s.gather", st[i].name);
        op_rows_params gp = {.mode = OP_ROWS_GATHER, .batch = rows, .seq = rows, .dim = X, .x_rs = X, .use_meta = true,
                             .meta_index = meta, .x_shared = true};
        int t = graph_rows(g, name, s, -1, -1, &gp);
        snprintf(name, sizeof name, "%s.store", st[i].name);
        op_rows_params cp = {.mode = OP_ROWS_COPY, .batch = B, .seq = P, .dim = X, .x_rs = X, .y_bs = P * X, .y_rs = X, .y_len = P};
        graph_store(g, name, t, 0, s, &cp);
    }
    free(st);
    return g;
}

static graph *build_variant(void *user, const graph_key *key)
{
    const model *m = ((rt_variants *)user)->m;
    return key->kind == MODEL_GRAPH_REORDER ? build_reorder(m, key) : model_build(m, key);
}

void rt_variants_init(rt_variants *v, vk_device *dev, const model *m, const graph_weights *state, const graph_compile_opts *opts,
                      uint32_t max)
{
    v->m = m;
    graph_compile_opts o = opts ? *opts : (graph_compile_opts){0};
    o.state = state;
    graph_cache_init(&v->cache, dev, &m->w, &o, max, build_variant, v);
}

void rt_variants_destroy(rt_variants *v)
{
    if (v->m) graph_cache_destroy(&v->cache);
    v->m = NULL;
}

vkf_status rt_prepare(rt_variants *v, const graph_key *key)
{
    graph_exec *e;
    vkf_status s = graph_cache_get(&v->cache, key, &e);
    if (s == VKF_OK) graph_cache_release(&v->cache, e);
    return s;
}

static uint32_t bucket(uint32_t n, uint32_t max)
{
    uint32_t b = 8;
    while (b < n) b *= 2;
    return BASE_MIN(b, BASE_MAX(max, n));
}

uint32_t rt_seq_bucket(const model *m, uint32_t n) { return bucket(n, m->max_positions); }

uint32_t rt_seq_bucket_target(const model *m, uint32_t n) { return bucket(n, m->max_target); }

static base_diag *diag_of(rt_variants *v) { return v->cache.dev->diag; }

/* The names of a graph's outputs, for messages. */
static void list_outputs(const graph *g, char *list, size_t size)
{
    list[0] = 0;
    for (size_t k = 0; k < g->n_t; k++)
        if (g->t[k].output) snprintf(list + strlen(list), size - strlen(list), "%s%s", list[0] ? ", " : "", g->t[k].name);
}

static int find_output(const graph *g, const char *name)
{
    int t = name ? graph_find(g, name) : -1;
    return t >= 0 && g->t[t].output ? t : -1;
}

/* The tokens output t keeps of its second dimension (0: all): the decoder's
 * outputs over the key's tgt, others over its seq. */
static uint32_t kept(const graph_tensor *t, const graph_key *key, uint32_t keep, uint32_t keep_tgt)
{
    uint32_t from = t->target_tokens ? key->tgt : key->seq, to = t->target_tokens ? keep_tgt : keep;
    return to && to < from && t->rank == 3 && t->shape[1] == from ? to : 0;
}

vkf_status rt_run(rt_variants *v, const rt_run_desc *d)
{
    base_diag *diag = diag_of(v);
    graph_exec *e;
    vkf_status s = graph_cache_get(&v->cache, &d->key, &e);
    if (s != VKF_OK) return s;
    const graph *g = graph_exec_graph(e);
    uint32_t slot;
    graph_exec_acquire(e, &slot);
    for (uint32_t i = 0; i < d->n_in && s == VKF_OK; i++) {
        int t = graph_find(g, d->in[i].name);
        if ((d->optional_in >> i & 1u) && (t < 0 || g->t[t].role != GRAPH_INPUT)) continue;
        if (t < 0 || g->t[t].role != GRAPH_INPUT) s = base_fail(diag, VKF_ERROR_NOT_FOUND, "this model has no input \"%s\"", d->in[i].name);
        else s = graph_exec_write(e, slot, t, d->in[i].data, graph_numel(&g->t[t]) * 4);
    }
    for (uint32_t i = 0; i < d->n_meta && s == VKF_OK; i++) {
        uint32_t count = 0;
        int first = graph_find_meta(g, d->meta[i].name, &count);
        if (first < 0) s = base_fail(diag, VKF_ERROR_NOT_FOUND, "this graph has no run-time values \"%s\"", d->meta[i].name);
        for (uint32_t k = 0; k < count && s == VKF_OK; k++) s = graph_exec_set_meta(e, slot, (uint32_t)first + k, d->meta[i].values[k]);
    }
    if (s == VKF_OK) s = graph_exec_submit(e, slot);
    double t0 = base_now();
    if (s == VKF_OK) s = graph_exec_wait(e, slot);
    if (d->waited) *d->waited += base_now() - t0;
    for (uint32_t i = 0; i < d->n_out && s == VKF_OK; i++) {
        int t = find_output(g, d->out[i].name);
        if (t < 0) {
            s = base_fail(diag, VKF_ERROR_NOT_FOUND, "this model has no output \"%s\"", d->out[i].name ? d->out[i].name : "(null)");
            break;
        }
        if (!d->out[i].data) continue;
        const graph_tensor *gt = &g->t[t];
        uint64_t n = graph_numel(gt);
        uint32_t keep = kept(gt, &d->key, d->keep, d->keep_tgt);
        if (keep) {
            uint32_t B = gt->shape[0], S = gt->shape[1], X = gt->shape[2];
            float *tmp = malloc(n * 4);
            if (!tmp) s = base_fail(diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
            if (s == VKF_OK) s = graph_exec_read(e, slot, t, tmp, n * 4);
            for (uint32_t b = 0; b < B && s == VKF_OK; b++)
                memcpy((float *)d->out[i].data + (size_t)b * keep * X, tmp + (size_t)b * S * X, (size_t)keep * X * 4);
            free(tmp);
        } else {
            s = graph_exec_read(e, slot, t, d->out[i].data, n * 4);
        }
    }
    graph_exec_release(e, slot);
    graph_cache_release(&v->cache, e);
    return s;
}

vkf_status rt_output_shape(rt_variants *v, const graph_key *key, uint32_t keep, uint32_t keep_tgt, const char *name,
                           uint32_t *rank, uint32_t shape[4])
{
    graph_exec *e;
    vkf_status s = graph_cache_get(&v->cache, key, &e);
    if (s != VKF_OK) return s;
    const graph *g = graph_exec_graph(e);
    int t = find_output(g, name);
    if (t < 0) {
        char list[256];
        list_outputs(g, list, sizeof list);
        s = base_fail(diag_of(v), VKF_ERROR_NOT_FOUND, "this model has no output \"%s\" (%s)", name ? name : "(null)", list);
    } else {
        *rank = g->t[t].rank;
        memcpy(shape, g->t[t].shape, sizeof g->t[t].shape);
        uint32_t k = kept(&g->t[t], key, keep, keep_tgt);
        if (k) shape[1] = k;
    }
    graph_cache_release(&v->cache, e);
    return s;
}

uint32_t rt_packed_bucket(uint32_t n)
{
    if (n <= 16) return 16;
    uint32_t p = 16;
    while (p * 2 < n) p *= 2; /* p < n <= 2p */
    uint32_t step = p / 16;
    return (n + step - 1) / step * step;
}

/* Each text's tokens: its mask's leading ones; false when a mask has a one
 * after a zero (holes, left padding: the padded path takes those). */
static bool text_lengths(const rt_text *t, uint32_t *len)
{
    for (uint32_t b = 0; b < t->B; b++) {
        const int32_t *m = t->mask ? t->mask + (size_t)b * t->S : NULL;
        uint32_t n = 0;
        while (n < t->S && (!m || m[n])) n++;
        for (uint32_t j = n; m && j < t->S; j++)
            if (m[j]) return false;
        len[b] = n;
    }
    return true;
}

/* The packed run (rt_text.packed): the texts' tokens back to back, the rest of
 * the bucket padding tokens that attend to nothing; per-token outputs
 * unpacked to [B, S, X] (zeros at padding), pooled ones cut to B rows. */
static vkf_status run_text_packed(rt_variants *v, const rt_text *t, const uint32_t *len, const rt_output *out, uint32_t n_out)
{
    const model *mm = v->m;
    base_diag *diag = diag_of(v);
    uint32_t B = t->B, S = t->S, total = 0;
    for (uint32_t b = 0; b < B; b++) total += len[b];
    uint32_t T = rt_packed_bucket(BASE_MAX(total, 1u)), NB = rt_seq_bucket(mm, B);
    NB = BASE_MAX(NB, B);
    size_t pad_n = (size_t)B * S;
    int32_t *buf = calloc(5 * (size_t)T + NB + pad_n + B, sizeof *buf);
    if (!buf) return base_fail(diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    int32_t *ids = buf, *tt = buf + T, *pos = buf + 2 * (size_t)T, *segs = buf + 3 * (size_t)T, *starts = buf + 5 * (size_t)T;
    int32_t *pad_pos = starts + NB, *meta = pad_pos + pad_n;
    /* positions as the padded path has them: the family's (RoBERTa: from
       padding_idx, skipping padding), the caller's, or 0, 1, ... per text */
    model_text_batch tb = {.B = B, .S = S, .Sb = S, .ids = t->ids, .raw_ids = t->ids, .positions = pad_pos,
                           .positions_given = t->pos != NULL, .meta = meta};
    for (uint32_t b = 0; b < B; b++)
        for (uint32_t j = 0; j < S; j++) pad_pos[(size_t)b * S + j] = t->pos ? t->pos[(size_t)b * S + j] : (int32_t)j;
    vkf_status s = model_prepare_text(mm, &tb);
    uint32_t at = 0;
    for (uint32_t b = 0; b < B; b++) {
        starts[b] = (int32_t)at + 1;
        /* the family's per-text meta (a token of the text + 1) to the packed rows */
        if (tb.meta_name) meta[b] = (int32_t)at + BASE_MIN(BASE_MAX(meta[b], 1), (int32_t)BASE_MAX(len[b], 1u));
        for (uint32_t j = 0; j < len[b]; j++, at++) {
            size_t i = (size_t)b * S + j;
            ids[at] = t->ids[i], tt[at] = t->tt ? t->tt[i] : 0, pos[at] = pad_pos[i];
            segs[2 * at] = (int32_t)(at - j), segs[2 * at + 1] = (int32_t)(at - j + len[b]);
        }
    }
    for (uint32_t b = B; b < NB; b++) starts[b] = 1;
    int32_t *fmeta = NULL;
    if (tb.meta_name && !(fmeta = calloc(NB, sizeof *fmeta))) s = base_fail(diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t b = 0; fmeta && b < NB; b++) fmeta[b] = b < B ? meta[b] : 1;
    for (; at < T; at++) /* the bucket's tail: padding that attends to nothing */
        ids[at] = (int32_t)mm->pad_id, pos[at] = mm->position_ids ? (int32_t)mm->pad_id : 0, segs[2 * at] = segs[2 * at + 1] = (int32_t)T;
    rt_input in[3] = {{"input_ids", ids}, {"position_ids", pos}};
    uint32_t n_in = 2;
    if (mm->type_vocab) in[n_in++] = (rt_input){"token_type_ids", tt};
    rt_meta metas[3] = {{"segments", segs}, {"starts", starts}, {tb.meta_name, fmeta}};
    graph_key key = {.kind = MODEL_GRAPH_TEXT, .batch = 1, .seq = T, .packed = NB};
    /* outputs into temporaries of the packed shapes, then unpacked */
    rt_output tmp[8] = {{0}};
    uint32_t shapes[8][4], ranks[8];
    if (s == VKF_OK && n_out > 8) s = base_fail(diag, VKF_ERROR_INVALID_ARGUMENT, "at most 8 outputs per run");
    for (uint32_t i = 0; i < n_out && s == VKF_OK; i++) {
        s = rt_output_shape(v, &key, 0, 0, out[i].name, &ranks[i], shapes[i]);
        uint64_t n = 1;
        for (uint32_t k = 0; k < ranks[i]; k++) n *= shapes[i][k];
        tmp[i] = (rt_output){out[i].name, NULL};
        if (s == VKF_OK && out[i].data && !(tmp[i].data = malloc(n * 4))) s = base_fail(diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    rt_run_desc d = {.key = key, .in = in, .n_in = n_in, .optional_in = 2u /* position_ids */, .meta = metas, .n_meta = tb.meta_name ? 3 : 2, .out = tmp, .n_out = n_out};
    if (s == VKF_OK) s = rt_run(v, &d);
    for (uint32_t i = 0; i < n_out && s == VKF_OK; i++) {
        if (!out[i].data) continue;
        const float *x = tmp[i].data;
        float *y = out[i].data;
        if (ranks[i] == 3 && shapes[i][0] == 1 && shapes[i][1] == T) { /* per token: [1, T, X] to [B, S, X] */
            size_t X = shapes[i][2];
            memset(y, 0, (size_t)B * S * X * 4);
            for (uint32_t b = 0, a = 0; b < B; a += len[b], b++) memcpy(y + (size_t)b * S * X, x + (size_t)a * X, (size_t)len[b] * X * 4);
        } else if (shapes[i][0] == NB) { /* pooled: [NB, ...] to [B, ...] */
            size_t row = 1;
            for (uint32_t k = 1; k < ranks[i]; k++) row *= shapes[i][k];
            memcpy(y, x, (size_t)B * row * 4);
        } else {
            s = base_fail(diag, VKF_ERROR_SHAPE, "packed texts: output %s has an unexpected shape", out[i].name);
        }
    }
    for (uint32_t i = 0; i < n_out; i++) free(tmp[i].data);
    free(fmeta);
    free(buf);
    return s;
}

static bool packing_off(void)
{
    const char *e = base_getenv("VKF_TEXT_PACKING");
    return e && (!strcmp(e, "off") || !strcmp(e, "0"));
}

vkf_status rt_run_text(rt_variants *v, const rt_text *t, const rt_output *out, uint32_t n_out)
{
    const model *mm = v->m;
    if (t->packed && !t->T && mm->family->packed_text && !mm->encoder_decoder && t->B && !packing_off()) {
        uint32_t *len = malloc(t->B * sizeof *len);
        if (!len) return base_fail(diag_of(v), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        vkf_status s = text_lengths(t, len) ? run_text_packed(v, t, len, out, n_out) : VKF_ERROR_UNSUPPORTED;
        free(len);
        if (s != VKF_ERROR_UNSUPPORTED) return s;
    }
    uint32_t B = t->B, S = t->S, Sb = rt_seq_bucket(mm, S);
    size_t n = (size_t)B * Sb;
    int32_t *buf = calloc(4 * n + B, sizeof *buf);
    if (!buf) return base_fail(diag_of(v), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    int32_t *id_b = buf, *mask_b = buf + n, *tt_b = buf + 2 * n, *pos_b = buf + 3 * n;
    /* padded up to the bucket: pad ids, mask 0 (so the padding changes nothing) */
    for (uint32_t b = 0; b < B; b++)
        for (uint32_t j = 0; j < Sb; j++) {
            size_t o = (size_t)b * Sb + j, i = (size_t)b * S + j;
            id_b[o] = j < S ? t->ids[i] : (int32_t)mm->pad_id;
            mask_b[o] = j < S ? (t->mask ? t->mask[i] : 1) : 0;
            tt_b[o] = j < S && t->tt ? t->tt[i] : 0;
            pos_b[o] = j < S && t->pos ? t->pos[i] : (int32_t)mm->pad_id;
        }
    model_text_batch tb = {.B = B, .S = S, .Sb = Sb, .ids = id_b, .raw_ids = t->ids, .positions = pos_b,
                           .positions_given = t->pos != NULL, .meta = buf + 4 * n};
    vkf_status s = model_prepare_text(mm, &tb);
    rt_input in[6] = {{"input_ids", id_b}, {"attention_mask", mask_b}};
    uint32_t n_in = 2;
    if (mm->type_vocab) in[n_in++] = (rt_input){"token_type_ids", tt_b};
    if (mm->position_ids) in[n_in++] = (rt_input){"position_ids", pos_b};
    /* the decoder's side, padded to its own bucket */
    uint32_t T = t->T, Tb = T ? rt_seq_bucket_target(mm, T) : 0;
    int32_t *dec = T ? calloc(2 * (size_t)B * Tb, sizeof *dec) : NULL;
    if (T && !dec) s = base_fail(diag_of(v), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t b = 0; dec && b < B; b++)
        for (uint32_t j = 0; j < Tb; j++) {
            size_t o = (size_t)b * Tb + j, i = (size_t)b * T + j;
            dec[o] = j < T ? t->dec_ids[i] : (int32_t)mm->pad_id;
            dec[(size_t)B * Tb + o] = j < T ? (t->dec_mask ? t->dec_mask[i] : 1) : 0;
        }
    if (dec) {
        in[n_in++] = (rt_input){"decoder_input_ids", dec};
        in[n_in++] = (rt_input){"decoder_attention_mask", dec + (size_t)B * Tb};
    }
    rt_meta meta = {tb.meta_name, tb.meta};
    rt_run_desc d = {.key = {.kind = MODEL_GRAPH_TEXT, .batch = B, .seq = Sb, .tgt = Tb}, .in = in, .n_in = n_in, .meta = &meta, .n_meta = tb.meta_name != NULL,
                     .out = out, .n_out = n_out, .keep = S, .keep_tgt = T};
    if (s == VKF_OK) s = rt_run(v, &d);
    free(dec);
    free(buf);
    return s;
}

vkf_status rt_run_audio(rt_variants *v, uint32_t B, uint32_t L, const float *samples, const int32_t *frame_mask, const int32_t *frames,
                        const rt_output *out, uint32_t n_out)
{
    rt_input in[2] = {{"input_values", samples}, {"frame_mask", frame_mask}};
    rt_meta meta = {"frames", frames};
    rt_run_desc d = {.key = {.kind = MODEL_GRAPH_AUDIO, .batch = B, .seq = L}, .in = in, .n_in = 2, .meta = &meta, .n_meta = 1,
                     .out = out, .n_out = n_out};
    return rt_run(v, &d);
}

vkf_status rt_run_images(rt_variants *v, uint32_t batch, const float *pixels, const rt_output *out, uint32_t n_out)
{
    rt_input in = {"pixel_values", pixels};
    rt_run_desc d = {.key = {.kind = MODEL_GRAPH_VISION, .batch = batch}, .in = &in, .n_in = 1, .out = out, .n_out = n_out};
    return rt_run(v, &d);
}

vkf_status rt_signature(const model *m, vkf_tensor_info *in, uint32_t *n_in, vkf_tensor_info *out, uint32_t *n_out, uint32_t max)
{
    /* image models: the vision graph; text models: a text graph; CLIP: both */
    graph_key probes[3];
    uint32_t n_probes = 0;
    if (m->image_size) probes[n_probes++] = (graph_key){.kind = MODEL_GRAPH_VISION, .batch = 1};
    if (m->sampling_rate) probes[n_probes++] = (graph_key){.kind = MODEL_GRAPH_AUDIO, .batch = 1, .seq = m->sampling_rate};
    if (m->vocab_size)
        probes[n_probes++] = (graph_key){.kind = MODEL_GRAPH_TEXT, .batch = 1, .seq = BASE_MIN(8u, m->max_positions), .tgt = m->encoder_decoder ? BASE_MIN(8u, m->max_target) : 0};
    *n_in = *n_out = 0;
    for (uint32_t p = 0; p < n_probes; p++) {
        graph *g = model_build(m, &probes[p]);
        if (!g || g->error != VKF_OK) {
            vkf_status s = g ? g->error : VKF_ERROR_OUT_OF_MEMORY;
            graph_destroy(g);
            return base_fail_prefix(m->diag, s, "building the model's graph: ");
        }
        for (size_t i = 0; i < g->n_t; i++) {
            const graph_tensor *t = &g->t[i];
            bool input = t->role == GRAPH_INPUT;
            if (!input && !t->output) continue;
            uint32_t *n = input ? n_in : n_out;
            if (*n == max) continue;
            vkf_tensor_info *ti = input ? &in[(*n)++] : &out[(*n)++];
            snprintf(ti->name, sizeof ti->name, "%s", t->name);
            ti->dtype = t->dtype == GRAPH_I32 ? VKF_I32 : VKF_F32;
            ti->rank = t->rank;
            for (uint32_t k = 0; k < t->rank; k++) ti->shape[k] = t->shape[k];
            ti->shape[0] = 0;
            uint32_t tokens = t->target_tokens || (input && !strncmp(t->name, "decoder_", 8)) ? probes[p].tgt : probes[p].seq;
            if (tokens && t->rank >= 2 && t->shape[1] == tokens) ti->shape[1] = 0;
        }
        graph_destroy(g);
    }
    return VKF_OK;
}

vkf_status rt_profile(rt_variants *v, char **table)
{
    *table = NULL;
    size_t len = 0;
    graph_cache *c = &v->cache;
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = 0; i < c->n; i++) {
        char *t, label[96];
        if (!c->e[i].exec || graph_exec_profile_table(c->e[i].exec, &t) != VKF_OK) continue;
        model_graph_label(&c->e[i].key, label, sizeof label);
        size_t add = strlen(t) + strlen(label) + 8;
        char *grown = realloc(*table, len + add);
        if (grown) {
            *table = grown;
            len += (size_t)snprintf(*table + len, add, "%s:\n%s", label, t);
        }
        free(t);
    }
    pthread_mutex_unlock(&c->lock);
    return *table ? VKF_OK : VKF_ERROR_NOT_FOUND;
}
