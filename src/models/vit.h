/* ViT (HF ViTForImageClassification / ViTModel, DeiT checkpoints in the ViT
 * layout): config, weights from safetensors (or random for benchmarks), and
 * the graph for a batch size. Knows nothing about Vulkan. */
#ifndef VKF_MODELS_VIT_H
#define VKF_MODELS_VIT_H

#include "loader.h"

typedef struct vit_config {
    uint32_t hidden, layers, heads, intermediate;
    uint32_t image_size, patch_size, channels;
    float eps;
    op_act act;
    bool qkv_bias;
    uint32_t num_labels;
    char **labels; /* num_labels strings (owned) */
} vit_config;

/* config.json with ViTConfig's defaults for omitted keys. */
vkf_status vit_config_load(base_diag *d, const char *dir, vit_config *cfg);
/* "tiny" (ViT-Ti/16) or "base" (ViT-B/16) with another image or patch size
 * when nonzero; 1000 labels. */
vkf_status vit_config_preset(base_diag *d, const char *name, uint32_t image_size, uint32_t patch_size, vit_config *cfg);
void vit_config_free(vit_config *cfg);

typedef model_progress_fn vit_progress_fn;

typedef struct vit_model {
    vit_config cfg;
    graph_dtype dtype;
    graph_weights w;
    model_decl decl;       /* the declared weights: loading and graph building */
    bool has_classifier;
    uint64_t params;
    base_diag *diag;
} vit_model;

/* Weights from a checkpoint (ck) or, with ck NULL, random values from seed.
 * Converted to dtype and uploaded in bounded chunks; progress may be NULL.
 * On success the model owns cfg's labels (do not free cfg afterwards). */
vkf_status vit_create(vk_device *dev, const vit_config *cfg, const st_checkpoint *ck, graph_dtype dtype, uint64_t seed,
                      vit_progress_fn progress, void *progress_user, vit_model **out);
void vit_destroy(vit_model *m);

/* The graph for `batch` images: input "pixel_values" [batch, C, H, W];
 * outputs "last_hidden_state" [batch, S, hidden], "pooled" [batch, hidden]
 * (the CLS row after the final LayerNorm) and, with a classifier, "logits". */
graph *vit_build(vit_model *m, uint32_t batch);

/* HF's ViTImageProcessor defaults for this config. */
io_preproc vit_default_preproc(const vit_config *cfg);

#endif
