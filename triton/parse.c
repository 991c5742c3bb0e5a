/* Reading the model config and the BYTES tensors of the Triton backend (parse.h). */
#include "parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkformer.h"

static const vkft_task TASKS[] = {
    {"feature-extraction", "feature-extraction", T_EMBED, false, false},
    {"text-classification", "text-classification", T_TEXT_CLS, false, false},
    {"fill-mask", "fill-mask", T_FILL_MASK, false, false},
    {"image-classification", "image-classification", T_IMAGE_CLS, true, false},
    {"zero-shot-classification", "text-classification", T_ZS_TEXT, false, true},
    {"zero-shot-image-classification", "zero-shot-image-classification", T_ZS_IMAGE, true, true},
};

const char *vkft_data_input(const vkft_task *t) { return t->image ? "image" : "text"; }

/* A string parameter of the config's "parameters" (NULL when absent). */
static const char *param(const cJSON *cfg, const char *key)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "parameters"), key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "string_value");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *vkft_read_settings(const cJSON *cfg, vkft_settings *s, char *msg, size_t msg_size)
{
    memset(s, 0, sizeof *s);
    const char *task = param(cfg, "task");
    for (size_t i = 0; task && i < sizeof TASKS / sizeof TASKS[0]; i++)
        if (!strcmp(task, TASKS[i].name)) s->task = &TASKS[i];
    if (!s->task) {
        snprintf(msg, msg_size,
                 "config.pbtxt needs parameters { key: \"task\" value { string_value: ... } } with one of feature-extraction, "
                 "text-classification, fill-mask, image-classification, zero-shot-classification, zero-shot-image-classification%s%.200s",
                 task ? "; not " : "", task ? task : "");
        return msg;
    }
    const char *k = param(cfg, "top_k"), *ml = param(cfg, "multi_label"), *tmpl = param(cfg, "template"), *dv = param(cfg, "device"),
               *tr = param(cfg, "truncation");
    char *end = NULL, *dend = NULL;
    long kv = k ? strtol(k, &end, 10) : 5, dev = dv ? strtol(dv, &dend, 10) : -1;
    if ((k && (!*k || *end || kv < 1 || kv > 100000)) || (ml && strcmp(ml, "true") && strcmp(ml, "false")) ||
        (tr && strcmp(tr, "true") && strcmp(tr, "false")) ||
        (tmpl && (!strstr(tmpl, "{}") || strlen(tmpl) >= sizeof s->template_)) || (dv && (!*dv || *dend || dev < 0 || dev >= VKFT_MAX_DEVICES))) {
        snprintf(msg, msg_size,
                 "parameters: top_k takes a positive number, multi_label and truncation true or false, template a text with {} (under %zu bytes), "
                 "device a Vulkan device index below %d",
                 sizeof s->template_, VKFT_MAX_DEVICES);
        return msg;
    }
    s->device = (int)dev;
    s->top_k = (uint32_t)kv;
    s->multi_label = ml && !strcmp(ml, "true");
    s->truncation = tr ? !strcmp(tr, "true") : s->task->kind == T_ZS_TEXT;
    snprintf(s->template_, sizeof s->template_, "%s",
             tmpl ? tmpl : s->task->kind == T_ZS_IMAGE ? VKF_ZERO_SHOT_TEMPLATE : VKF_ZERO_SHOT_TEXT_TEMPLATE);
    return NULL;
}

char *vkft_fill_template(const char *tmpl, const char *label)
{
    const char *at = strstr(tmpl, "{}");
    size_t len = strlen(tmpl) + strlen(label) + 1;
    char *t = malloc(len);
    if (t && at) snprintf(t, len, "%.*s%s%s", (int)(at - tmpl), tmpl, label, at + 2);
    else if (t) snprintf(t, len, "%s", tmpl);
    return t;
}

void vkft_free_items(char **items, uint64_t count)
{
    for (uint64_t i = 0; items && i < count; i++) free(items[i]);
    free(items);
}

int vkft_split_bytes(const unsigned char *p, size_t size, uint64_t count, char ***items_out, size_t **lens_out, uint64_t *bad)
{
    *items_out = NULL, *lens_out = NULL;
    /* each element takes at least its 4-byte length: a count past size / 4 is cut short */
    if (count > size / 4) {
        *bad = size / 4;
        return 1;
    }
    char **items = calloc(count ? count : 1, sizeof *items);
    size_t *lens = calloc(count ? count : 1, sizeof *lens);
    if (!items || !lens) {
        free(items), free(lens);
        return -1;
    }
    const unsigned char *end = p + size;
    int rc = 0;
    for (uint64_t i = 0; i < count; i++) {
        if ((size_t)(end - p) < 4) {
            *bad = i, rc = 1;
            break;
        }
        uint32_t l = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        p += 4;
        if ((size_t)(end - p) < l) {
            *bad = i, rc = 1;
            break;
        }
        if (!(items[i] = malloc((size_t)l + 1))) {
            rc = -1;
            break;
        }
        memcpy(items[i], p, l), items[i][l] = 0, lens[i] = l;
        p += l;
    }
    if (!rc && p != end) *bad = count, rc = 1;
    if (rc) {
        vkft_free_items(items, count);
        free(lens);
        return rc;
    }
    *items_out = items, *lens_out = lens;
    return 0;
}
