/* vkformer.h: models, classification, tensor-level runs. */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/io.h"

#define MAX_BATCH_PER_RUN 32


static vkf_status read_signature(vkf_model *m);

typedef struct progress_relay {
    vkf_progress_fn fn;
    void *user;
    uint32_t bytes_per_element;
} progress_relay;

static void relay_progress(void *user, uint64_t done, uint64_t total)
{
    progress_relay *r = user;
    if (r->fn) r->fn(r->user, done * r->bytes_per_element, total * r->bytes_per_element);
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

vkf_status vkf_model_load_memory(vkf_context *ctx, const vkf_memory_file *files, uint32_t n_files,
                                 const vkf_model_desc *desc, vkf_model **out)
{
    base_diag *td = base_thread_diag();
    if (!ctx || !out || (n_files && !files))
        return base_fail(td, VKF_ERROR_INVALID_ARGUMENT, "vkf_model_load_memory: NULL argument");
    *out = NULL;
    for (uint32_t i = 0; i < n_files; i++) {
        const char *name = files[i].name;
        if (!base_relative_path_ok(name))
            return base_fail(&ctx->diag, VKF_ERROR_INVALID_ARGUMENT, "vkf_model_load_memory: file %u: the name '%s' is not "
                             "a file name in the model directory (\"config.json\", \"1_Pooling/config.json\", ...)", i,
                             name ? name : "(null)");
        if (!files[i].data && files[i].size)
            return base_fail(&ctx->diag, VKF_ERROR_INVALID_ARGUMENT, "vkf_model_load_memory: %s: NULL data", name);
    }
    /* a name given twice: the sorted names side by side (n log n; pairwise took a minute for 100,000 files) */
    const char **names = malloc((n_files ? n_files : 1) * sizeof *names);
    if (!names) return base_fail(&ctx->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t i = 0; i < n_files; i++) names[i] = files[i].name;
    qsort(names, n_files, sizeof *names, by_name);
    for (uint32_t i = 1; i < n_files; i++)
        if (!strcmp(names[i - 1], names[i])) {
            vkf_status dup = base_fail(&ctx->diag, VKF_ERROR_INVALID_ARGUMENT, "vkf_model_load_memory: %s is given twice", names[i]);
            free(names);
            return dup;
        }
    free(names);
    base_memdir_mount(files, n_files);
    vkf_status s = vkf_model_load(ctx, BASE_MEMDIR, desc, out);
    base_memdir_mount(NULL, 0);
    return s;
}

vkf_status vkf_model_load(vkf_context *ctx, const char *dir, const vkf_model_desc *desc, vkf_model **out)
{
    static const vkf_model_desc zero;
    if (!ctx || !dir || !out) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_load: NULL argument");
    *out = NULL;
    if (!desc) desc = &zero;
    base_diag *d = &ctx->diag;
    vk_device *dev = ctx->dev;
    vkf_precision prec = desc->precision;
    /* Default: fp16 storage halves the bandwidth on GPUs; CPU drivers convert
     * halves lane by lane, so they keep fp32. */
    if (prec == VKF_PRECISION_DEFAULT) prec = dev->caps.storage16 && !dev->caps.cpu_kernels ? VKF_FP16 : VKF_FP32;
    if (prec == VKF_FP16 && !dev->caps.storage16)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "fp16 precision needs 16-bit storage buffers, which %s lacks",
                         dev->caps.name);
    char resolved[4096];
    vkf_status s = io_model_path(d, dir, resolved, sizeof resolved);
    if (s != VKF_OK) return s;
    dir = resolved;
    vkf_model *m = calloc(1, sizeof(*m));
    if (!m) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    m->ctx = ctx;
    m->dev = dev;
    m->precision = prec;
    s = model_open(d, dir, &m->m);
    if (s == VKF_OK && m->m.image_size) s = io_preproc_load(d, dir, &m->m.preproc, &m->pp);
    if (s == VKF_OK && m->m.image_size) {
        char file[4200];
        snprintf(file, sizeof file, "%s/preprocessor_config.json", dir);
        s = io_preproc_check(d, file, &m->pp, m->m.image_size, m->m.image_size);
    }
    if (s == VKF_OK) {
        graph_dtype dt = prec == VKF_FP16 ? GRAPH_F16 : GRAPH_F32;
        progress_relay relay = {desc->progress, desc->progress_user, graph_dtype_size(dt)};
        s = model_load(dev, &m->m, dir, desc->task, dt, 0, desc->progress ? relay_progress : NULL, &relay);
    }
    if (s == VKF_OK && m->m.vocab_size) s = api_load_tokenizer(m, dir);
    if (s == VKF_OK && m->m.sampling_rate) s = api_load_speech(m, dir);
    if (s == VKF_OK) s = read_signature(m);
    if (s != VKF_OK) {
        model_close(&m->m);
        vkf_tokenizer_destroy(m->tok);
        api_free_speech(m->speech);
        free(m);
        return s;
    }
    graph_compile_opts opts = {.slots = desc->max_in_flight ? desc->max_in_flight : 2, .profile = desc->profile != 0};
    if (opts.slots > GRAPH_MAX_SLOTS) {
        model_close(&m->m);
        vkf_tokenizer_destroy(m->tok);
        api_free_speech(m->speech);
        free(m);
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "max_in_flight %u is more than the %u inferences a variant can have in flight",
                         desc->max_in_flight, GRAPH_MAX_SLOTS);
    }
    rt_variants_init(&m->run, dev, &m->m, NULL, &opts, desc->max_variants ? desc->max_variants : 4);
    *out = m;
    return VKF_OK;
}

vkf_status api_model_wrap(vkf_context *ctx, model *mm, vkf_model **out)
{
    *out = NULL;
    vkf_model *m = calloc(1, sizeof(*m));
    if (!m) return base_fail(&ctx->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    m->ctx = ctx;
    m->dev = ctx->dev;
    m->m = *mm;
    memset(mm, 0, sizeof *mm);
    m->precision = m->m.dtype == GRAPH_F16 ? VKF_FP16 : VKF_FP32;
    vkf_status s = read_signature(m);
    if (s != VKF_OK) {
        model_close(&m->m);
        free(m);
        return s;
    }
    rt_variants_init(&m->run, m->dev, &m->m, NULL, &(graph_compile_opts){.slots = 2}, 4);
    *out = m;
    return VKF_OK;
}

void vkf_model_destroy(vkf_model *m)
{
    if (!m) return;
    rt_variants_destroy(&m->run);
    model_close(&m->m);
    vkf_tokenizer_destroy(m->tok);
    api_free_speech(m->speech);
    free(m);
}

vkf_status vkf_model_get_info(const vkf_model *m, vkf_model_info *info)
{
    if (!m || !info) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_get_info: NULL argument");
    const model *mm = &m->m;
    *info = (vkf_model_info){
        .type = mm->model_type, .family = mm->family->name, .task = model_task_name(mm->task), .precision = m->precision,
        .image_height = mm->image_size, .image_width = mm->image_size, .channels = mm->channels,
        .num_labels = mm->num_labels, .hidden_size = mm->hidden, .num_layers = mm->layers, .seq_len = mm->seq_len,
        .parameters = mm->params, .weight_bytes = mm->w.bytes, .vocab_size = mm->vocab_size, .max_positions = mm->max_positions,
        .embedding_size = mm->embed_dim ? mm->embed_dim : mm->hidden,
    };
    if (mm->sampling_rate) {
        info->sampling_rate = api_speech_rate(m);
        info->frame_samples = model_audio_hop(mm);
    }
    info->n_inputs = m->sig.n_inputs, info->n_outputs = m->sig.n_outputs;
    memcpy(info->inputs, m->sig.inputs, sizeof info->inputs);
    memcpy(info->outputs, m->sig.outputs, sizeof info->outputs);
    return VKF_OK;
}

/* The signature, read once at load off the graphs (vkf_model_get_info). */
static vkf_status read_signature(vkf_model *m)
{
    const model *mm = &m->m;
    vkf_status s = rt_signature(mm, m->sig.inputs, &m->sig.n_inputs, m->sig.outputs, &m->sig.n_outputs, 8);
    if (s != VKF_OK) return s;
    if (mm->task == MODEL_TASK_ZERO_SHOT_IMAGE) /* computed from the two towers' embeddings */
        for (int k = 0; k < 2 && m->sig.n_outputs < 8; k++)
            m->sig.outputs[m->sig.n_outputs++] = (vkf_tensor_info){.name = {0}, .dtype = VKF_F32, .rank = 2};
    if (mm->task == MODEL_TASK_ZERO_SHOT_IMAGE) {
        snprintf(m->sig.outputs[m->sig.n_outputs - 2].name, sizeof m->sig.outputs[0].name, "logits_per_image");
        snprintf(m->sig.outputs[m->sig.n_outputs - 1].name, sizeof m->sig.outputs[0].name, "logits_per_text");
    }
    return VKF_OK;
}

vkf_status vkf_model_prepare(vkf_model *m, uint32_t batch, uint32_t seq)
{
    if (!m || batch == 0 || batch > 4096)
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_prepare: bad model or batch size");
    const model *mm = &m->m;
    if (mm->vocab_size && seq > mm->max_positions)
        return base_fail(m->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "vkf_model_prepare: %u tokens is more than the model's %u positions",
                         seq, mm->max_positions);
    /* images: the vision graph; texts: the bucket's text graph (CLIP: both, or the text one when seq is given) */
    vkf_status s = VKF_OK;
    if (mm->image_size && !(mm->vocab_size && seq)) s = rt_prepare(&m->run, &(graph_key){.kind = MODEL_GRAPH_VISION, .batch = batch});
    if (s == VKF_OK && mm->vocab_size && (seq || !mm->image_size))
        s = rt_prepare(&m->run, &(graph_key){.kind = MODEL_GRAPH_TEXT, .batch = batch, .seq = rt_seq_bucket(mm, seq ? seq : mm->max_positions)});
    return s;
}

const char *vkf_model_label(const vkf_model *m, uint32_t index)
{
    if (!m || index >= m->m.num_labels) return NULL;
    return m->m.labels[index];
}

/* Fills outputs' shapes from the variant's graph (token dimension `keep`
 * where the graph has the bucket's), and checks their capacities. */
static vkf_status output_shapes(vkf_model *m, const graph_key *key, uint32_t keep, uint32_t keep_tgt, vkf_tensor *outputs, uint32_t n)
{
    vkf_status s = VKF_OK;
    for (uint32_t i = 0; i < n && s == VKF_OK; i++) {
        vkf_tensor *o = &outputs[i];
        s = rt_output_shape(&m->run, key, keep, keep_tgt, o->name, &o->rank, o->shape);
        if (s != VKF_OK) break;
        o->dtype = VKF_F32;
        uint64_t count = 1;
        for (uint32_t k = 0; k < o->rank; k++) count *= o->shape[k];
        if (o->data && o->capacity < count * 4)
            s = base_fail(m->dev->diag, VKF_ERROR_SHAPE, "output \"%s\" needs %llu bytes, %llu given", o->name,
                          (unsigned long long)(count * 4), (unsigned long long)o->capacity);
    }
    return s;
}

/* An integer input [B, S] as int32 (from int32 or int64), checked against [lo, hi). */
static vkf_status int_input(base_diag *d, const vkf_tensor *t, uint32_t B, uint32_t S, int64_t lo, int64_t hi, int32_t *out)
{
    if (t->dtype != VKF_I32 && t->dtype != VKF_I64)
        return base_fail(d, VKF_ERROR_SHAPE, "%s must be int32 or int64", t->name);
    if (t->rank != 2 || t->shape[0] != B || t->shape[1] != S)
        return base_fail(d, VKF_ERROR_SHAPE, "%s must be [%u, %u] like %s", t->name, B, S,
                         strncmp(t->name, "decoder_", 8) ? "input_ids" : "decoder_input_ids");
    for (size_t i = 0; i < (size_t)B * S; i++) {
        int64_t v = t->dtype == VKF_I32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
        if (v < lo || v >= hi)
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s[%zu][%zu] = %lld is outside [%lld, %lld)", t->name, i / S, i % S,
                             (long long)v, (long long)lo, (long long)hi);
        out[i] = (int32_t)v;
    }
    return VKF_OK;
}

static const vkf_tensor *find_input(const vkf_tensor *in, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (in[i].name && !strcmp(in[i].name, name)) return &in[i];
    return NULL;
}

/* Text encoders through the tensor API: input_ids, attention_mask,
 * token_type_ids, position_ids, each int32 or int64 [B, S], checked. */
static vkf_status run_text(vkf_model *m, const vkf_tensor *inputs, uint32_t n_inputs, vkf_tensor *outputs, uint32_t n_outputs)
{
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    bool ed = mm->encoder_decoder;
    for (uint32_t i = 0; i < n_inputs; i++) {
        const char *n = inputs[i].name;
        bool dec = n && ed && (!strcmp(n, "decoder_input_ids") || !strcmp(n, "decoder_attention_mask"));
        if (!n || (!dec && strcmp(n, "input_ids") && strcmp(n, "attention_mask") && strcmp(n, "token_type_ids") && strcmp(n, "position_ids")))
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "input \"%s\" is not one of input_ids, attention_mask, %s",
                             n ? n : "(null)", ed ? "decoder_input_ids, decoder_attention_mask" : "token_type_ids, position_ids");
        if (!inputs[i].data) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "input \"%s\" has no data", n);
    }
    const vkf_tensor *ids = find_input(inputs, n_inputs, "input_ids");
    if (!ids) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "a %s model needs \"input_ids\" [N, tokens]", mm->model_type);
    if (ids->rank != 2 || !ids->shape[0] || !ids->shape[1] || ids->shape[0] > 4096)
        return base_fail(d, VKF_ERROR_SHAPE, "input_ids must be [N, tokens] with 1 <= N <= 4096 and at least one token");
    uint32_t B = ids->shape[0], S = ids->shape[1];
    if (S > mm->max_positions)
        return base_fail(d, VKF_ERROR_SHAPE, "%u tokens is more than this model's %u positions (truncate the text)", S,
                         mm->max_positions);
    size_t n = (size_t)B * S;
    int32_t *buf = calloc(4 * n, sizeof *buf);
    if (!buf) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    int32_t *id32 = buf, *mask = buf + n, *tt = buf + 2 * n, *pos = buf + 3 * n;
    const vkf_tensor *tm = find_input(inputs, n_inputs, "attention_mask"), *tt_in = find_input(inputs, n_inputs, "token_type_ids"),
                     *pos_in = find_input(inputs, n_inputs, "position_ids");
    vkf_status s = int_input(d, ids, B, S, 0, mm->vocab_size, id32);
    if (s == VKF_OK && tm) s = int_input(d, tm, B, S, 0, 2, mask);
    if (s == VKF_OK && tt_in && !mm->type_vocab)
        s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "a %s model takes no token_type_ids", mm->model_type);
    if (s == VKF_OK && tt_in) s = int_input(d, tt_in, B, S, 0, mm->type_vocab, tt);
    if (s == VKF_OK && pos_in && !mm->position_ids)
        s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "a %s model takes no position_ids", mm->model_type);
    if (s == VKF_OK && pos_in) s = int_input(d, pos_in, B, S, 0, mm->max_positions + mm->pad_id + 1, pos);
    /* an encoder-decoder's decoder side: decoder_input_ids [N, T] (HF's
     * shift of input_ids is for training: the caller gives them) */
    const vkf_tensor *dids = ed ? find_input(inputs, n_inputs, "decoder_input_ids") : NULL,
                     *dm = ed ? find_input(inputs, n_inputs, "decoder_attention_mask") : NULL;
    uint32_t T = dids && dids->rank == 2 ? dids->shape[1] : 0;
    int32_t *dec = NULL;
    if (s == VKF_OK && ed && !dids)
        s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "a %s model needs \"decoder_input_ids\" [N, tokens] (generation starts them "
                      "with decoder_start_token_id %d)", mm->model_type, (int)mm->decoder_start_id);
    if (s == VKF_OK && dids && (dids->rank != 2 || dids->shape[0] != B || !T))
        s = base_fail(d, VKF_ERROR_SHAPE, "decoder_input_ids must be [%u, tokens] with at least one token", B);
    if (s == VKF_OK && T > mm->max_target)
        s = base_fail(d, VKF_ERROR_SHAPE, "%u decoder tokens is more than this model's %u positions", T, mm->max_target);
    if (s == VKF_OK && dids && !(dec = calloc(2 * (size_t)B * T, sizeof *dec)))
        s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK && dids) s = int_input(d, dids, B, T, 0, mm->vocab_size, dec);
    if (s == VKF_OK && dm) s = int_input(d, dm, B, T, 0, 2, dec + (size_t)B * T);
    if (s == VKF_OK && n_outputs > 8) s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "at most 8 outputs per run");
    graph_key key = {MODEL_GRAPH_TEXT, B, rt_seq_bucket(mm, S), 0, T ? rt_seq_bucket_target(mm, T) : 0, 0};
    if (s == VKF_OK) s = output_shapes(m, &key, S, T, outputs, n_outputs);
    if (s == VKF_OK) {
        rt_output out[8];
        for (uint32_t i = 0; i < n_outputs; i++) out[i] = (rt_output){outputs[i].name, outputs[i].data};
        rt_text t = {.B = B, .S = S, .ids = id32, .mask = tm ? mask : NULL, .tt = tt_in ? tt : NULL, .pos = pos_in ? pos : NULL,
                     .T = T, .dec_ids = dec, .dec_mask = dm ? dec + (size_t)B * T : NULL};
        s = rt_run_text(&m->run, &t, out, n_outputs);
    }
    free(dec);
    free(buf);
    return s;
}

/* Images through the tensor API: "pixel_values" [N, C, S, S] float32, checked. */
static vkf_status run_image(vkf_model *m, const vkf_tensor *in, vkf_tensor *outputs, uint32_t n_outputs)
{
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    uint32_t C = mm->channels, S = mm->image_size;
    if (!in || !in->data)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "this model takes \"pixel_values\" [N, %u, %u, %u]", C, S, S);
    if (in->dtype != VKF_F32) return base_fail(d, VKF_ERROR_SHAPE, "pixel_values must be float32");
    if (in->rank != 4 || in->shape[1] != C || in->shape[2] != S || in->shape[3] != S || in->shape[0] == 0 || in->shape[0] > 4096)
        return base_fail(d, VKF_ERROR_SHAPE, "pixel_values must be [N, %u, %u, %u] with 1 <= N <= 4096", C, S, S);
    uint32_t batch = in->shape[0];
    if (n_outputs > 8) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "at most 8 outputs per run");
    vkf_status s = output_shapes(m, &(graph_key){.kind = MODEL_GRAPH_VISION, .batch = batch}, 0, 0, outputs, n_outputs);
    if (s != VKF_OK) return s;
    rt_output out[8];
    for (uint32_t i = 0; i < n_outputs; i++) out[i] = (rt_output){outputs[i].name, outputs[i].data};
    return rt_run_images(&m->run, batch, in->data, out, n_outputs);
}

/* Speech through the tensor API: "input_values" [N, samples] float32 and,
 * optionally, HF's "attention_mask" [N, samples]: each clip's frames are the
 * feature encoder's of its mask's sum, as HF counts them. */
static vkf_status run_audio(vkf_model *m, const vkf_tensor *inputs, uint32_t n_inputs, vkf_tensor *outputs, uint32_t n_outputs)
{
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    const vkf_tensor *x = NULL, *am = NULL;
    for (uint32_t i = 0; i < n_inputs; i++) {
        const char *n = inputs[i].name;
        if (n && !strcmp(n, "input_values")) x = &inputs[i];
        else if (n && !strcmp(n, "attention_mask")) am = &inputs[i];
        else return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "input \"%s\" is not one of input_values, attention_mask", n ? n : "(null)");
    }
    if (!x || !x->data) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "this model takes \"input_values\" [N, samples] (float32)");
    if (x->dtype != VKF_F32 || x->rank != 2 || x->shape[0] == 0 || x->shape[0] > 4096 || x->shape[1] == 0 || x->shape[1] > UINT32_MAX / 2)
        return base_fail(d, VKF_ERROR_SHAPE, "input_values must be float32 [N, samples] with 1 <= N <= 4096");
    uint32_t B = x->shape[0], L = (uint32_t)x->shape[1], T = model_audio_frames(mm, L);
    if (!T) return base_fail(d, VKF_ERROR_SHAPE, "%u samples are too few for the model's feature encoder", L);
    if (n_outputs > 8) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "at most 8 outputs per run");
    graph_key key = {.kind = MODEL_GRAPH_AUDIO, .batch = B, .seq = L};
    vkf_status s = output_shapes(m, &key, 0, 0, outputs, n_outputs);
    int32_t *mask = malloc(((size_t)B * T + B + (am ? (size_t)B * L : 0)) * sizeof(int32_t));
    if (s == VKF_OK && !mask) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    int32_t *frames = mask + (size_t)B * T, *samples = frames + B;
    if (s == VKF_OK && am) s = int_input(d, am, B, L, 0, 2, samples);
    for (uint32_t b = 0; s == VKF_OK && b < B; b++) {
        uint64_t n = L;
        if (am) {
            n = 0;
            for (uint32_t j = 0; j < L; j++) n += (uint64_t)samples[(size_t)b * L + j];
        }
        frames[b] = (int32_t)model_audio_frames(mm, n);
        if (!frames[b]) s = base_fail(d, VKF_ERROR_SHAPE, "clip %u: its attention_mask keeps %llu samples, too few for one frame", b, (unsigned long long)n);
        for (uint32_t j = 0; j < T; j++) mask[(size_t)b * T + j] = (int32_t)j < frames[b];
    }
    rt_output out[8];
    for (uint32_t i = 0; i < n_outputs; i++) out[i] = (rt_output){outputs[i].name, outputs[i].data};
    if (s == VKF_OK) s = rt_run_audio(&m->run, B, L, x->data, mask, frames, out, n_outputs);
    free(mask);
    return s;
}

void api_clip_logits(const model *mm, const float *img, uint32_t ni, const float *txt, uint32_t nt, float *per_image,
                     float *per_text)
{
    uint32_t E = mm->embed_dim;
    for (uint32_t i = 0; i < ni; i++)
        for (uint32_t j = 0; j < nt; j++) {
            double dot = 0;
            for (uint32_t k = 0; k < E; k++) dot += (double)img[(size_t)i * E + k] * txt[(size_t)j * E + k];
            float v = (float)(mm->logit_scale * dot);
            per_image[(size_t)i * nt + j] = v;
            if (per_text) per_text[(size_t)j * ni + i] = v;
        }
}

/* CLIP through the tensor API: the vision tower for pixel_values, the text
 * tower for input_ids / attention_mask, logits_per_image / logits_per_text
 * from both towers' embeddings. */
static vkf_status run_dual(vkf_model *m, const vkf_tensor *inputs, uint32_t n_inputs, vkf_tensor *outputs, uint32_t n_outputs)
{
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    const vkf_tensor *px = NULL, *ids = NULL;
    vkf_tensor text_in[2];
    uint32_t n_text = 0;
    for (uint32_t i = 0; i < n_inputs; i++) {
        const char *n = inputs[i].name ? inputs[i].name : "(null)";
        if (!strcmp(n, "pixel_values")) px = &inputs[i];
        else if (!strcmp(n, "input_ids") || !strcmp(n, "attention_mask")) {
            if (!strcmp(n, "input_ids")) ids = &inputs[i];
            if (n_text < 2) text_in[n_text++] = inputs[i];
        } else
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "input \"%s\" is not one of pixel_values, input_ids, attention_mask", n);
    }
    if (n_outputs > 8) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "at most 8 outputs per run");
    /* which tower each output comes from */
    vkf_tensor vis[9], txt[9];
    uint32_t nv = 0, ntx = 0;
    vkf_tensor *lpi = NULL, *lpt = NULL;
    for (uint32_t i = 0; i < n_outputs; i++) {
        const char *n = outputs[i].name ? outputs[i].name : "";
        if (!strcmp(n, "logits_per_image")) lpi = &outputs[i];
        else if (!strcmp(n, "logits_per_text")) lpt = &outputs[i];
        else if (!strncmp(n, "text_", 5)) txt[ntx++] = outputs[i];
        else vis[nv++] = outputs[i];
    }
    if ((lpi || lpt) && (!px || !ids))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "logits_per_image / logits_per_text need pixel_values and input_ids");
    if (nv && !px) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "the vision outputs need \"pixel_values\"");
    if (ntx && !ids) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "the text outputs need \"input_ids\"");
    uint32_t ni = px && px->rank == 4 ? px->shape[0] : 0, nt = ids && ids->rank == 2 ? ids->shape[0] : 0, E = mm->embed_dim;
    float *emb = (lpi || lpt) ? malloc(((size_t)ni + nt) * E * sizeof(float)) : NULL;
    if ((lpi || lpt) && !emb) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (lpi || lpt) {
        /* the embeddings the logits come from (run again if the caller asked for them too) */
        vis[nv++] = (vkf_tensor){.name = "image_embeds", .data = emb, .capacity = (uint64_t)ni * E * 4};
        txt[ntx++] = (vkf_tensor){.name = "text_embeds", .data = emb + (size_t)ni * E, .capacity = (uint64_t)nt * E * 4};
    }
    vkf_status s = VKF_OK;
    if (px && nv) s = run_image(m, px, vis, nv);
    if (s == VKF_OK && ids && ntx) s = run_text(m, text_in, n_text, txt, ntx);
    /* shapes and data back to the caller's outputs, in their order */
    for (uint32_t i = 0, iv = 0, it = 0; i < n_outputs && s == VKF_OK; i++) {
        vkf_tensor *o = &outputs[i];
        if (o == lpi || o == lpt) {
            uint32_t r = o == lpi ? ni : nt, c = o == lpi ? nt : ni;
            o->rank = 2, o->shape[0] = r, o->shape[1] = c, o->dtype = VKF_F32;
            if (o->data && o->capacity < (uint64_t)r * c * 4)
                s = base_fail(d, VKF_ERROR_SHAPE, "output \"%s\" needs %llu bytes, %llu given", o->name, (unsigned long long)r * c * 4,
                              (unsigned long long)o->capacity);
            continue;
        }
        const vkf_tensor *from = !strncmp(o->name ? o->name : "", "text_", 5) ? &txt[it++] : &vis[iv++];
        o->rank = from->rank, o->dtype = from->dtype;
        memcpy(o->shape, from->shape, sizeof o->shape);
    }
    if (s == VKF_OK && (lpi || lpt)) {
        float *per_image = malloc((size_t)ni * nt * 2 * sizeof(float));
        if (!per_image) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        else {
            api_clip_logits(mm, emb, ni, emb + (size_t)ni * E, nt, per_image, per_image + (size_t)ni * nt);
            if (lpi && lpi->data) memcpy(lpi->data, per_image, (size_t)ni * nt * 4);
            if (lpt && lpt->data) memcpy(lpt->data, per_image + (size_t)ni * nt, (size_t)ni * nt * 4);
            free(per_image);
        }
    }
    free(emb);
    return s;
}

vkf_status vkf_model_run(vkf_model *m, const vkf_tensor *inputs, uint32_t n_inputs, vkf_tensor *outputs,
                         uint32_t n_outputs)
{
    if (!m || (n_inputs && !inputs) || (n_outputs && !outputs))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_run: NULL argument");
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    /* a name given twice: one of them would be dropped silently */
    for (uint32_t i = 0; i < n_inputs; i++)
        for (uint32_t j = 0; j < i && inputs[i].name; j++)
            if (inputs[j].name && !strcmp(inputs[i].name, inputs[j].name))
                return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "input \"%s\" is given twice", inputs[i].name);
    for (uint32_t i = 0; i < n_outputs; i++)
        for (uint32_t j = 0; j < i && outputs[i].name; j++)
            if (outputs[j].name && !strcmp(outputs[i].name, outputs[j].name))
                return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "output \"%s\" is asked for twice", outputs[i].name);
    if (mm->sampling_rate) return run_audio(m, inputs, n_inputs, outputs, n_outputs);
    if (mm->image_size && mm->vocab_size) return run_dual(m, inputs, n_inputs, outputs, n_outputs);
    if (!mm->image_size) return run_text(m, inputs, n_inputs, outputs, n_outputs);
    if (n_inputs != 1 || !inputs[0].name || strcmp(inputs[0].name, "pixel_values") != 0)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "this model takes one input, \"pixel_values\" [N, %u, %u, %u]", mm->channels,
                         mm->image_size, mm->image_size);
    return run_image(m, &inputs[0], outputs, n_outputs);
}

vkf_status vkf_top_k(const vkf_model *m, const float *logits, vkf_class_score *top, uint32_t k)
{
    if (!m || !logits || (k && !top)) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_top_k: NULL argument");
    uint32_t n = m->m.num_labels;
    if (!n) return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "this model has no classification head");
    double mx = base_max_f32(logits, n), sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    model_score fn = m->m.score; /* as HF's pipelines: softmax, a sigmoid each, or the raw logit (regression) */
    k = BASE_MIN(k, n);
    for (uint32_t j = 0; j < k; j++) {
        int best = -1;
        for (uint32_t i = 0; i < n; i++) {
            bool taken = false;
            for (uint32_t q = 0; q < j; q++) taken = taken || top[q].index == i;
            if (!taken && (best < 0 || logits[i] > logits[best])) best = (int)i;
        }
        double p = fn == MODEL_SCORE_SIGMOID ? 1.0 / (1.0 + exp(-(double)logits[best]))
                 : fn == MODEL_SCORE_NONE    ? (double)logits[best]
                                             : exp((double)logits[best] - mx) / sum;
        top[j] = (vkf_class_score){(uint32_t)best, m->m.labels[best], (float)p, logits[best]};
    }
    return VKF_OK;
}

/* A decoded image into the model input; errors prefixed with the image's name. */
static vkf_status preprocess_decoded(vkf_model *m, io_image *img, const char *name, float *pixels)
{
    vkf_status s;
    if (!m->m.image_size) s = base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "this model does not take images");
    else s = io_preprocess(m->dev->diag, img, &m->pp, m->m.image_size, m->m.image_size, pixels);
    if (s != VKF_OK) base_fail_prefix(m->dev->diag, s, "%s: ", name);
    io_image_free(img);
    return s;
}

vkf_status vkf_image_preprocess_file(vkf_model *m, const char *path, float *pixels)
{
    if (!m || !path || !pixels)
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_image_preprocess_file: NULL argument");
    io_image img;
    vkf_status s = io_image_load(m->dev->diag, path, IO_MAX_PIXELS_DEFAULT, &img);
    return s != VKF_OK ? s : preprocess_decoded(m, &img, path, pixels);
}

vkf_status vkf_image_preprocess_memory(vkf_model *m, const void *data, size_t size, float *pixels)
{
    if (!m || (!data && size) || !pixels)
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_image_preprocess_memory: NULL argument");
    io_image img;
    vkf_status s = io_image_decode(m->dev->diag, data, size, BASE_MEMDIR, IO_MAX_PIXELS_DEFAULT, &img);
    return s != VKF_OK ? s : preprocess_decoded(m, &img, BASE_MEMDIR, pixels);
}

vkf_status vkf_image_preprocess(vkf_model *m, const vkf_image *im, float *pixels)
{
    if (!m || !im || !pixels) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_image_preprocess: NULL argument");
    base_diag *d = m->dev->diag;
    static const uint32_t bpp[] = {[VKF_PIXELS_RGB8] = 3, [VKF_PIXELS_RGBA8] = 4, [VKF_PIXELS_BGRA8] = 4};
    if ((unsigned)im->format > VKF_PIXELS_BGRA8)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_image: unknown pixel format %d", (int)im->format);
    uint32_t w = im->width, h = im->height, c = bpp[im->format];
    if (!w || !h || (uint64_t)w * h > IO_MAX_PIXELS_DEFAULT)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_image: %ux%u pixels (1 to %llu allowed)", w, h,
                         (unsigned long long)IO_MAX_PIXELS_DEFAULT);
    size_t stride = im->stride ? im->stride : (size_t)w * c;
    if (stride < (size_t)w * c)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_image: a stride of %zu bytes is less than a row (%u x %u bytes)",
                         stride, w, c);
    if (!im->data) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_image: NULL data");
    io_image img = {w, h, malloc((size_t)w * h * 3)};
    if (!img.rgb) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory for a %ux%u image", w, h);
    bool bgr = im->format == VKF_PIXELS_BGRA8;
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *src = (const uint8_t *)im->data + stride * y;
        uint8_t *dst = img.rgb + (size_t)w * 3 * y;
        for (uint32_t x = 0; x < w; x++, src += c, dst += 3) {
            dst[0] = src[bgr ? 2 : 0];
            dst[1] = src[1];
            dst[2] = src[bgr ? 0 : 2];
        }
    }
    return preprocess_decoded(m, &img, "image", pixels);
}

/* Image i of a caller's array into the model input. */
typedef vkf_status (*preprocess_nth)(vkf_model *m, const void *inputs, uint32_t i, float *pixels);

static vkf_status preprocess_path(vkf_model *m, const void *inputs, uint32_t i, float *pixels)
{
    return vkf_image_preprocess_file(m, ((const char *const *)inputs)[i], pixels);
}

static vkf_status preprocess_image(vkf_model *m, const void *inputs, uint32_t i, float *pixels)
{
    return vkf_image_preprocess(m, (const vkf_image *)inputs + i, pixels);
}

/* n images classified in batched inferences; top holds n * k scores. */
static vkf_status classify_images(vkf_model *m, const char *fn, const void *inputs, uint32_t n, preprocess_nth pre,
                                  vkf_class_score *top, uint32_t k)
{
    if (!m || (n && (!inputs || (k && !top))))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "%s: NULL argument", fn);
    const model *mm = &m->m;
    if (mm->task != MODEL_TASK_IMAGE_CLASSIFICATION)
        return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "this model has no image classification head (%s, %s)",
                         mm->model_type, model_task_name(mm->task));
    size_t per = (size_t)mm->channels * mm->image_size * mm->image_size;
    uint32_t chunk = BASE_MIN(n, (uint32_t)MAX_BATCH_PER_RUN);
    float *pixels = malloc(per * chunk * sizeof(float));
    float *logits = malloc((size_t)mm->num_labels * chunk * sizeof(float));
    vkf_status s = (pixels && logits) ? VKF_OK : base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t first = 0; first < n && s == VKF_OK; first += chunk) {
        uint32_t b = BASE_MIN(chunk, n - first);
        for (uint32_t i = 0; i < b && s == VKF_OK; i++) s = pre(m, inputs, first + i, pixels + per * i);
        rt_output out = {"logits", logits};
        if (s == VKF_OK) s = rt_run_images(&m->run, b, pixels, &out, 1);
        for (uint32_t i = 0; i < b && s == VKF_OK; i++) s = vkf_top_k(m, logits + (size_t)i * mm->num_labels, top + (size_t)(first + i) * k, k);
    }
    free(pixels);
    free(logits);
    return s;
}

vkf_status vkf_classify_files(vkf_model *m, const char *const *paths, uint32_t n, vkf_class_score *top, uint32_t k)
{
    return classify_images(m, "vkf_classify_files", paths, n, preprocess_path, top, k);
}

vkf_status vkf_classify_images(vkf_model *m, const vkf_image *images, uint32_t n, vkf_class_score *top, uint32_t k)
{
    return classify_images(m, "vkf_classify_images", images, n, preprocess_image, top, k);
}

vkf_status vkf_classify_file(vkf_model *m, const char *path, vkf_class_score *top, uint32_t k)
{
    return vkf_classify_files(m, &path, 1, top, k);
}

vkf_status vkf_model_profile(vkf_model *m, char **table)
{
    if (!m || !table) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_profile: NULL argument");
    *table = NULL;
    if (rt_profile(&m->run, table) != VKF_OK)
        return base_fail(m->dev->diag, VKF_ERROR_INVALID_ARGUMENT,
                         "no profile: load with desc.profile (or VKF_PROFILE=1) and run first");
    return VKF_OK;
}
