/* The parts of the Triton backend that read what the server hands over
 * (a model's config as JSON, a request's BYTES tensor), kept free of Triton
 * calls so that fuzz/fuzz_triton.c can drive them. */
#ifndef VKF_TRITON_PARSE_H
#define VKF_TRITON_PARSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VKFT_MAX_DEVICES 16

typedef enum vkft_task_kind { T_EMBED, T_TEXT_CLS, T_FILL_MASK, T_IMAGE_CLS, T_ZS_TEXT, T_ZS_IMAGE } vkft_task_kind;

typedef struct vkft_task {
    const char *name, *check; /* the HF task, and the one vkf_model_load checks */
    vkft_task_kind kind;
    bool image, labels;
} vkft_task;

/* The model's settings from config.pbtxt's "parameters" (as the server's JSON). */
typedef struct vkft_settings {
    const vkft_task *task;
    uint32_t top_k;   /* default 5 */
    int device;       /* a Vulkan device index for instances not of KIND_GPU, -1: the default */
    bool multi_label; /* default false */
    bool truncation;  /* texts past the model's positions cut (true) or refused (false); the
                         default false as HF's pipelines, true for zero-shot-classification */
    char template_[512];
} vkft_settings;

/* Reads the settings of cfg (the model config as JSON). Returns NULL, or a
 * message (into msg) naming what is wrong. */
const char *vkft_read_settings(const cJSON *cfg, vkft_settings *s, char *msg, size_t msg_size);

/* The name of the task's data input: "image" or "text". */
const char *vkft_data_input(const vkft_task *t);

/* Splits a BYTES tensor's joined buffers (p, size) into its count elements,
 * each a 4-byte little-endian length and the bytes, copied NUL-terminated
 * into items[i] (length lens[i]). Returns 0; 1 when element *bad is cut
 * short or bytes follow the last element (*bad = count); -1 when out of
 * memory. On failure nothing is left allocated. */
int vkft_split_bytes(const unsigned char *p, size_t size, uint64_t count, char ***items, size_t **lens, uint64_t *bad);

/* The zero-shot hypothesis: the template's first {} replaced by label (malloc'd; NULL when out of memory). */
char *vkft_fill_template(const char *tmpl, const char *label);

void vkft_free_items(char **items, uint64_t count);

#endif
