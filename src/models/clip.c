/* CLIP: CLIPModel (both towers), CLIPVisionModelWithProjection and
 * CLIPTextModelWithProjection (one tower each; CLIPVisionModel and
 * CLIPTextModel without the projection too).
 *   vision  patch embedding without bias, class embedding, positions,
 *           pre_layrnorm (HF's spelling), pre-LN blocks, post_layernorm on the
 *           class token, visual_projection
 *   text    token + position embeddings, pre-LN blocks with causal attention
 *           and the padding mask, final_layer_norm, the row of the EOS token
 *           (its position comes from the host through meta: HF's rule),
 *           text_projection
 * Two graphs, one per tower: seq 0 is the vision tower over pixel_values
 * [B, 3, S, S]; seq > 0 the text tower over input_ids / attention_mask
 * [B, seq]. CLIPModel's embeddings are L2-normalised (as its forward
 * returns them); the single-tower classes' are not (as HF returns them).
 * logits = exp(logit_scale) * image_embeds . text_embeds, on the host. */
#include "model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct clip_tower {
    uint32_t hidden, layers, heads, intermediate;
    float eps;
    op_act act;
} clip_tower;

typedef struct clip_config {
    bool want_text, want_vision;   /* what model_type asks for */
    clip_tower text, vision;
    uint32_t vocab, max_pos, pad, bos, eos;
    uint32_t image_size, patch_size, channels;
    uint32_t projection_dim;
    float logit_scale_init;
    /* what the checkpoint has */
    bool has_text, has_vision, text_proj, vision_proj;
} clip_config;

static vkf_status parse_tower(base_diag *d, const char *path, const cJSON *o, bool vision, clip_tower *t)
{
    const char *act = NULL;
    double eps = 1e-5;
    vkf_status s = io_json_u32(d, path, o, "hidden_size", vision ? 768 : 512, 1, 65536, &t->hidden);
    if (s == VKF_OK) s = io_json_u32(d, path, o, "num_hidden_layers", 12, 1, 1024, &t->layers);
    if (s == VKF_OK) s = io_json_u32(d, path, o, "num_attention_heads", vision ? 12 : 8, 1, 1024, &t->heads);
    if (s == VKF_OK) s = io_json_u32(d, path, o, "intermediate_size", vision ? 3072 : 2048, 1, 1u << 20, &t->intermediate);
    if (s == VKF_OK) s = io_json_f64(d, path, o, "layer_norm_eps", 1e-5, &eps);
    /* quick_gelu is CLIP's default, so HF leaves it out of config.json */
    if (s == VKF_OK) s = io_json_str(d, path, o, "hidden_act", "quick_gelu", &act);
    if (s == VKF_OK) s = model_parse_act(d, path, act, &t->act);
    if (s != VKF_OK) return s;
    if (!(eps > 0) || eps > 1) return base_fail(d, VKF_ERROR_FORMAT, "%s: layer_norm_eps %g is not in (0, 1]", path, eps);
    t->eps = (float)eps;
    if (t->hidden % t->heads || (t->hidden / t->heads) % 4 || t->hidden / t->heads > 256)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: %s hidden size %u over %u heads: the head size must be a multiple of 4 up to 256",
                         path, vision ? "vision" : "text", t->hidden, t->heads);
    return VKF_OK;
}

/* A tower's config: the legacy "<x>_config_dict" wins over "<x>_config", as in HF's CLIPConfig. */
static const cJSON *sub_config(const cJSON *root, const char *key)
{
    char legacy[64];
    snprintf(legacy, sizeof legacy, "%s_dict", key);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, legacy);
    if (!cJSON_IsObject(o)) o = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsObject(o) ? o : NULL;
}

static vkf_status parse_config(base_diag *d, const char *path, const cJSON *root, const char *type, void *cfg)
{
    clip_config *c = cfg;
    memset(c, 0, sizeof *c);
    c->want_text = strcmp(type, "clip_vision_model") != 0;
    c->want_vision = strcmp(type, "clip_text_model") != 0;
    bool dual = c->want_text && c->want_vision;
    static const cJSON empty = {0};
    const cJSON *tc = dual ? sub_config(root, "text_config") : root, *vc = dual ? sub_config(root, "vision_config") : root;
    if (!tc) tc = &empty;
    if (!vc) vc = &empty;
    double scale = 2.6592;
    vkf_status s = VKF_OK;
    if (c->want_text) {
        s = parse_tower(d, path, tc, false, &c->text);
        if (s == VKF_OK) s = io_json_u32(d, path, tc, "vocab_size", 49408, 1, 1u << 24, &c->vocab);
        if (s == VKF_OK) s = io_json_u32(d, path, tc, "max_position_embeddings", 77, 1, 1u << 16, &c->max_pos);
        if (s == VKF_OK) s = io_json_u32(d, path, tc, "pad_token_id", 1, 0, 1u << 24, &c->pad);
        if (s == VKF_OK) s = io_json_u32(d, path, tc, "bos_token_id", 49406, 0, 1u << 24, &c->bos);
        if (s == VKF_OK) s = io_json_u32(d, path, tc, "eos_token_id", 49407, 0, 1u << 24, &c->eos);
        if (s == VKF_OK && (c->eos >= c->vocab || c->pad >= c->vocab))
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: eos_token_id %u or pad_token_id %u is outside the vocabulary of %u", path, c->eos,
                          c->pad, c->vocab);
    }
    if (s == VKF_OK && c->want_vision) {
        s = parse_tower(d, path, vc, true, &c->vision);
        if (s == VKF_OK) s = io_json_u32(d, path, vc, "image_size", 224, 1, 8192, &c->image_size);
        if (s == VKF_OK) s = io_json_u32(d, path, vc, "patch_size", 32, 1, 1024, &c->patch_size);
        if (s == VKF_OK) s = io_json_u32(d, path, vc, "num_channels", 3, 3, 3, &c->channels);
        if (s == VKF_OK && c->image_size % c->patch_size)
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: image_size %u is not a multiple of patch_size %u", path, c->image_size, c->patch_size);
    }
    if (s == VKF_OK) s = io_json_u32(d, path, root, "projection_dim", 512, 1, 65536, &c->projection_dim);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "logit_scale_init_value", 2.6592, &scale);
    c->logit_scale_init = (float)scale;
    return s;
}

static void describe(model *m)
{
    const clip_config *c = m->cfg;
    m->task = c->want_text && c->want_vision ? MODEL_TASK_ZERO_SHOT_IMAGE : MODEL_TASK_FEATURES;
    if (c->want_vision) {
        uint32_t np = c->image_size / c->patch_size;
        m->image_size = c->image_size;
        m->channels = c->channels;
        m->seq_len = np * np + 1;
        /* CLIPImageProcessor: shortest side to 224 (bicubic), center crop, OpenAI's mean and std */
        m->preproc = (io_preproc){.do_resize = true, .shortest_edge = c->image_size, .resample = IO_BICUBIC,
                                  .do_center_crop = true, .crop_h = c->image_size, .crop_w = c->image_size,
                                  .do_rescale = true, .rescale_factor = 1.0 / 255.0, .do_normalize = true,
                                  .mean = {0.48145466f, 0.4578275f, 0.40821073f},
                                  .std = {0.26862954f, 0.26130258f, 0.27577711f}};
    }
    if (c->want_text) {
        m->vocab_size = c->vocab;
        m->max_positions = c->max_pos;
        m->pad_id = c->pad;
        m->bos_id = (int32_t)c->bos;
        m->eos_id = (int32_t)c->eos;
        m->text_pooled = true;
    }
    m->hidden = c->want_vision ? c->vision.hidden : c->text.hidden;
    m->layers = c->want_vision ? c->vision.layers : c->text.layers;
    m->embed_dim = c->projection_dim;
    m->logit_scale = expf(c->logit_scale_init);
}

static vkf_status family_config_preset(base_diag *d, const char *preset, const model_preset_opts *o, void *cfg)
{
    clip_config *c = cfg;
    /* the ViT-B/32 CLIP (openai/clip-vit-base-patch32) and the ViT-B/16 one */
    if (strcmp(preset, "clip-b32") && strcmp(preset, "clip-b16"))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "unknown CLIP preset \"%s\" (clip-b32, clip-b16)", preset);
    *c = (clip_config){.want_text = true, .want_vision = true,
                       .text = {512, 12, 8, 2048, 1e-5f, OP_ACT_QUICK_GELU}, .vision = {768, 12, 12, 3072, 1e-5f, OP_ACT_QUICK_GELU},
                       .vocab = 49408, .max_pos = 77, .pad = 1, .bos = 49406, .eos = 49407,
                       .image_size = o->image_size ? o->image_size : 224, .patch_size = o->patch_size ? o->patch_size : preset[6] == '1' ? 16 : 32,
                       .channels = 3, .projection_dim = 512, .logit_scale_init = 2.6592f};
    if (c->image_size % c->patch_size)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "image size %u is not a multiple of patch size %u", c->image_size, c->patch_size);
    return VKF_OK;
}

/* ---- weights ------------------------------------------------------------------------ */

/* One tower's encoder layers, Q, K and V fused into the block's packed qkv. */
static void declare_layers(model_decl *t, const char *g, const char *hf, const clip_tower *tw)
{
    uint64_t H = tw->hidden, I = tw->intermediate;
    for (uint32_t l = 0; l < tw->layers; l++) {
        char name[64], base[96], parts[3][160];
        const char *pp[3] = {parts[0], parts[1], parts[2]};
        static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
        snprintf(base, sizeof base, "%s.encoder.layers.%u.", hf, l);
        for (int k = 0; k < 3; k++) snprintf(parts[k], sizeof parts[k], "%sself_attn.%s.weight", base, qkv[k]);
        snprintf(name, sizeof name, "%s.l%u.qkv.weight", g, l);
        model_decl_fused(t, name, pp, 3, MODEL_INIT_SMALL, 2, (uint64_t[]){H, H});
        for (int k = 0; k < 3; k++) snprintf(parts[k], sizeof parts[k], "%sself_attn.%s.bias", base, qkv[k]);
        snprintf(name, sizeof name, "%s.l%u.qkv.bias", g, l);
        model_decl_fused(t, name, pp, 3, MODEL_INIT_SMALL, 1, (uint64_t[]){H});
        static const struct {
            const char *n, *hf;
            int out, in; /* 0: H, 1: I */
        } lin[] = {{"o", "self_attn.out_proj", 0, 0}, {"fc1", "mlp.fc1", 1, 0}, {"fc2", "mlp.fc2", 0, 1}};
        for (size_t i = 0; i < BASE_ARRAY_LEN(lin); i++) {
            uint64_t dims[2] = {H, I};
            snprintf(name, sizeof name, "%s.l%u.%s", g, l, lin[i].n);
            snprintf(parts[0], sizeof parts[0], "%s%s", base, lin[i].hf);
            model_decl_linear(t, name, parts[0], dims[lin[i].out], dims[lin[i].in], true);
        }
        snprintf(name, sizeof name, "%s.l%u.ln1", g, l), snprintf(parts[0], sizeof parts[0], "%slayer_norm1", base);
        model_decl_layernorm(t, name, parts[0], H);
        snprintf(name, sizeof name, "%s.l%u.ln2", g, l), snprintf(parts[0], sizeof parts[0], "%slayer_norm2", base);
        model_decl_layernorm(t, name, parts[0], H);
    }
}

static vkf_status family_declare(model *m, const st_checkpoint *ck, const char **prefix, model_decl *t)
{
    clip_config *c = m->cfg;
    *prefix = "";
    c->has_text = c->want_text, c->has_vision = c->want_vision;
    c->text_proj = c->has_text, c->vision_proj = c->has_vision;
    if (ck) {
        const char *path = ck->files[0].path;
        c->has_text = c->want_text && model_ck_has(ck, "", "text_model.embeddings.token_embedding.weight");
        c->has_vision = c->want_vision && model_ck_has(ck, "", "vision_model.embeddings.patch_embedding.weight");
        if (c->want_text && !c->has_text)
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: missing tensor text_model.embeddings.token_embedding.weight (%s)", path,
                             c->want_vision ? "CLIPModel needs both towers" : "not a CLIP text checkpoint?");
        if (c->want_vision && !c->has_vision)
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: missing tensor vision_model.embeddings.patch_embedding.weight (%s)", path,
                             c->want_text ? "CLIPModel needs both towers" : "not a CLIP vision checkpoint?");
        c->text_proj = c->has_text && model_ck_has(ck, "", "text_projection.weight");
        c->vision_proj = c->has_vision && model_ck_has(ck, "", "visual_projection.weight");
        if (c->want_text && c->want_vision && (!c->text_proj || !c->vision_proj))
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: CLIPModel without text_projection / visual_projection", path);
        const st_tensor *ls = st_find(ck, "logit_scale");
        float v;
        if (ls && st_numel(ls) == 1 && st_convert(m->diag, ls, 0, 1, false, &v) == VKF_OK && isfinite(v) && v < 80)
            m->logit_scale = expf(v);
        else if (ls)
            return base_fail(m->diag, VKF_ERROR_FORMAT, "%s: logit_scale is not one finite number below 80", path);
    }
    /* what the API offers follows what the checkpoint has */
    m->embed_dim = (c->text_proj || c->vision_proj) ? c->projection_dim : m->hidden;
    if (c->has_text) {
        const clip_tower *tw = &c->text;
        model_decl_add(t, "t.wte", "text_model.embeddings.token_embedding.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){c->vocab, tw->hidden});
        model_decl_add(t, "t.wpe", "text_model.embeddings.position_embedding.weight", MODEL_INIT_SMALL, 2,
                       (uint64_t[]){c->max_pos, tw->hidden});
        declare_layers(t, "t", "text_model", tw);
        model_decl_layernorm(t, "t.ln_f", "text_model.final_layer_norm", tw->hidden);
        if (c->text_proj) model_decl_linear(t, "t.proj", "text_projection", c->projection_dim, tw->hidden, false);
    }
    if (c->has_vision) {
        const clip_tower *tw = &c->vision;
        uint64_t H = tw->hidden, C = c->channels, P = c->patch_size, S = (c->image_size / P) * (c->image_size / P) + 1;
        model_weight_reshape(model_decl_add(t, "v.patch", "vision_model.embeddings.patch_embedding.weight", MODEL_INIT_SMALL, 4,
                                            (uint64_t[]){H, C, P, P}),
                             2, (uint32_t[]){(uint32_t)H, (uint32_t)(C * P * P)});
        model_decl_add(t, "v.cls", "vision_model.embeddings.class_embedding", MODEL_INIT_SMALL, 1, (uint64_t[]){H});
        model_decl_add(t, "v.pos", "vision_model.embeddings.position_embedding.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){S, H});
        model_decl_layernorm(t, "v.pre_ln", "vision_model.pre_layrnorm", H);
        declare_layers(t, "v", "vision_model", tw);
        model_decl_layernorm(t, "v.post_ln", "vision_model.post_layernorm", H);
        if (c->vision_proj) model_decl_linear(t, "v.proj", "visual_projection", c->projection_dim, H, false);
    }
    return VKF_OK;
}

/* ---- graphs ---------------------------------------------------------------------------- */

#define W(name) model_graph_weight(g, t, name)

/* seg: 0, or 1 + the meta index of packed texts' attention segments */
static int blocks(const model_decl *t, graph *g, const char *tower, const clip_tower *tw, uint32_t B, uint32_t S, bool causal,
                  int mask, uint32_t seg, int h)
{
    for (uint32_t l = 0; l < tw->layers; l++) {
        char w[32], node[48];
        snprintf(w, sizeof w, "%s.l%u", tower, l), snprintf(node, sizeof node, "%s.layer%u", tower, l);
        model_block blk = {.w = w, .node = node, .layout = OP_W_NT, .act = tw->act, .eps = tw->eps, .mask = mask,
                           .at = {.batch = B, .q_len = S, .kv_len = S, .heads = tw->heads, .head_dim = tw->hidden / tw->heads,
                                  .causal = causal, .segments = seg > 0, .seg_index = seg ? seg - 1 : 0}};
        h = model_block_build(g, t, &blk, h);
    }
    return h;
}

/* pooled -> projection -> (CLIPModel) L2 normalised, as `name` */
static void project(graph *g, const model_decl *t, const clip_config *c, int pooled, const char *w, bool has, const char *name)
{
    if (!has) return;
    bool dual = c->want_text && c->want_vision;
    int e = graph_matmul(g, dual ? "projection" : name, pooled, W(w), -1, -1, &(graph_matmul_desc){.layout = OP_W_NT});
    if (dual) {
        op_rows_params l2 = {.mode = OP_ROWS_L2, .batch = g->t[e].shape[0], .dim = c->projection_dim, .eps = 1e-30f};
        e = graph_rows(g, name, e, -1, -1, &l2);
    }
    graph_output(g, e);
}

static graph *clip_build(const model *m, const graph_key *key)
{
    const clip_config *c = m->cfg;
    const model_decl *t = &m->decl;
    if ((key->kind == MODEL_GRAPH_VISION && !c->want_vision) || (key->kind == MODEL_GRAPH_TEXT && !c->want_text) ||
        (key->kind != MODEL_GRAPH_VISION && key->kind != MODEL_GRAPH_TEXT))
        return model_no_graph(m, key);
    uint32_t B = key->batch, seq = key->seq;
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    if (key->kind == MODEL_GRAPH_VISION) {
        const clip_tower *tw = &c->vision;
        uint32_t H = tw->hidden, P = c->patch_size, S = (c->image_size / P) * (c->image_size / P) + 1;
        int px = graph_input(g, "pixel_values", m->dtype, 4, (uint32_t[]){B, c->channels, c->image_size, c->image_size});
        int patches = graph_patchify(g, "patches", px, P, P);
        int pe = graph_matmul(g, "patch_embeddings", patches, W("v.patch"), -1, -1, &(graph_matmul_desc){.layout = OP_W_NT});
        op_rows_params prepend = {.mode = OP_ROWS_PREPEND, .batch = B, .seq = S, .dim = H};
        int h = graph_rows(g, "embeddings", pe, W("v.cls"), W("v.pos"), &prepend);
        h = graph_layernorm(g, "pre_layrnorm", h, -1, W("v.pre_ln.weight"), W("v.pre_ln.bias"), tw->eps, NULL);
        h = blocks(t, g, "v", tw, B, S, false, -1, 0, h);
        /* HF's last_hidden_state is the encoder's output; post_layernorm is on the class token only */
        int last = graph_eltwise(g, "vision_last_hidden_state", OP_SCALE, OP_ACT_NONE, h, -1, 1.0f);
        graph_output(g, last);
        op_rows_params first = {.mode = OP_ROWS_GATHER, .batch = B, .seq = S, .dim = H, .index = 0};
        int cls = graph_rows(g, "class_token", h, -1, -1, &first);
        int pooled = graph_layernorm(g, "vision_pooled", cls, -1, W("v.post_ln.weight"), W("v.post_ln.bias"), tw->eps, NULL);
        graph_output(g, pooled);
        project(g, t, c, pooled, "v.proj.weight", c->vision_proj, "image_embeds");
        return g;
    }
    const clip_tower *tw = &c->text;
    uint32_t H = tw->hidden;
    /* packed (key->packed texts in one token dimension): positions per text, attention
       causal within each text's segment, each text pooled at its EOS in the packed rows */
    model_text_in in = model_text_inputs(g, key);
    uint32_t eos = graph_meta_named(g, "pool_rows", in.NB); /* per text: the EOS position + 1 (prepare_text) */
    int pos = in.packed ? graph_input(g, "position_ids", GRAPH_I32, 2, (uint32_t[]){in.B, seq}) : -1;
    int h = model_embed_tokens(g, "embeddings", in.ids, -1, W("t.wte"), W("t.wpe"), -1, pos);
    h = blocks(t, g, "t", tw, in.B, seq, true, in.mask, in.packed ? in.seg + 1 : 0, h);
    int last = graph_layernorm(g, "text_last_hidden_state", h, -1, W("t.ln_f.weight"), W("t.ln_f.bias"), tw->eps, NULL);
    graph_output(g, last);
    op_rows_params at_eos = {.mode = OP_ROWS_GATHER, .batch = in.NB, .seq = seq, .dim = H, .use_meta = true, .meta_index = eos,
                             .x_shared = in.packed};
    int pooled = graph_rows(g, "text_pooled", last, -1, -1, &at_eos);
    graph_output(g, pooled);
    project(g, t, c, pooled, "t.proj.weight", c->text_proj, "text_embeds");
    return g;
}

/* Each text pools at its EOS token, found as HF does: the legacy configs
 * (eos_token_id 2) take the highest id, others the first eos_token_id (none:
 * row 0, as argmax gives). The graph reads the row + 1 from "pool_rows". */
static vkf_status prepare_text(const model *m, model_text_batch *b)
{
    for (uint32_t i = 0; i < b->B; i++) {
        const int32_t *row = b->raw_ids + (size_t)i * b->S;
        uint32_t at = 0;
        if (m->eos_id == 2) {
            for (uint32_t j = 1; j < b->S; j++)
                if (row[j] > row[at]) at = j;
        } else {
            for (uint32_t j = 0; j < b->S; j++)
                if (row[j] == m->eos_id) {
                    at = j;
                    break;
                }
        }
        b->meta[i] = (int32_t)at + 1;
    }
    b->meta_name = "pool_rows";
    return VKF_OK;
}

static const char *const clip_types[] = {"clip", "clip_vision_model", "clip_text_model", NULL};

const model_family clip_family = {
    .name = "clip",
    .model_types = clip_types,
    .cfg_size = sizeof(clip_config),
    .config_parse = parse_config,
    .config_preset = family_config_preset,
    .describe = describe,
    .declare = family_declare,
    .build = clip_build,
    .prepare_text = prepare_text,
    .packed_text = true,
};
