/* Config pieces every family reads the same way: activations by HF name,
 * id2label / num_labels. */
#include "model.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vkf_status model_parse_act(base_diag *d, const char *file, const char *name, op_act *act)
{
    static const struct {
        const char *name;
        op_act act;
    } acts[] = {{"gelu", OP_ACT_GELU},           {"gelu_new", OP_ACT_GELU_TANH},     {"gelu_pytorch_tanh", OP_ACT_GELU_TANH},
                {"gelu_fast", OP_ACT_GELU_TANH}, {"quick_gelu", OP_ACT_QUICK_GELU}, {"relu", OP_ACT_RELU}};
    for (size_t i = 0; i < BASE_ARRAY_LEN(acts); i++)
        if (strcmp(name, acts[i].name) == 0) {
            *act = acts[i].act;
            return VKF_OK;
        }
    return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (gelu, gelu_new, quick_gelu, relu)",
                     file, name);
}

/* id2label: {"0": "tench", ...}; indices must cover 0..n-1 exactly once. */
vkf_status model_parse_labels(base_diag *d, const char *file, const cJSON *root, uint32_t *num_labels, char ***labels)
{
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    uint32_t n = 0;
    vkf_status s = VKF_OK;
    if (map && !cJSON_IsNull(map)) {
        if (!cJSON_IsObject(map)) return base_fail(d, VKF_ERROR_FORMAT, "%s: \"id2label\" must be an object", file);
        for (const cJSON *it = map->child; it; it = it->next) n++;
    }
    uint32_t declared = 0;
    s = io_json_u32(d, file, root, "num_labels", n ? n : 2, 1, 1u << 20, &declared);
    if (s != VKF_OK) return s;
    if (n && declared != n)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: num_labels %u disagrees with %u id2label entries", file, declared, n);
    *num_labels = n ? n : declared;
    (*labels) = calloc(*num_labels, sizeof(char *));
    if (!(*labels)) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (const cJSON *it = n ? map->child : NULL; it && s == VKF_OK; it = it->next) {
        char *end;
        unsigned long idx = strtoul(it->string, &end, 10);
        if (*end || idx >= *num_labels || !cJSON_IsString(it) || (*labels)[idx])
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: id2label entry \"%s\" is not a unique index below %u with a string",
                          file, it->string, *num_labels);
        else
            (*labels)[idx] = base_strdup(it->valuestring);
    }
    for (uint32_t i = 0; i < *num_labels && s == VKF_OK; i++) {
        if ((*labels)[i]) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "LABEL_%u", i); /* HF's default names */
        (*labels)[i] = base_strdup(buf);
    }
    return s;
}

void model_free_labels(uint32_t n, char **labels)
{
    if (labels)
        for (uint32_t i = 0; i < n; i++) free(labels[i]);
    free(labels);
}
