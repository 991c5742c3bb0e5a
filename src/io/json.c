/* JSON files with cJSON, and typed getters that apply HF's defaults for
 * omitted keys and name the file and key when a value has the wrong type. */
#include "io.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

vkf_status io_json_load(base_diag *d, const char *path, cJSON **root)
{
    *root = NULL;
    void *text;
    size_t size;
    vkf_status s = base_read_file(d, path, &text, &size);
    if (s != VKF_OK) return s;
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!*root) {
        /* Line and column of where parsing stopped. */
        const char *t = text, *at = end ? end : t;
        if (at < t || at > t + size) at = t;
        int line = 1, col = 1;
        for (const char *c = t; c < at; c++) {
            if (*c == '\n') line++, col = 1;
            else col++;
        }
        free(text);
        return base_fail(d, VKF_ERROR_FORMAT, "%s: malformed JSON at line %d, column %d", path, line, col);
    }
    /* Only white space may follow the value (a NUL or a second value means
     * the file is not what it claims to be). */
    const char *rest = end ? end : (const char *)text + size;
    while (rest < (const char *)text + size && (*rest == ' ' || *rest == '\t' || *rest == '\n' || *rest == '\r')) rest++;
    if (rest < (const char *)text + size) {
        size_t at = (size_t)(rest - (const char *)text);
        free(text);
        cJSON_Delete(*root);
        *root = NULL;
        return base_fail(d, VKF_ERROR_FORMAT, "%s: unexpected data after the JSON value at byte %zu", path, at);
    }
    free(text);
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return base_fail(d, VKF_ERROR_FORMAT, "%s: the top level is not a JSON object", path);
    }
    return VKF_OK;
}

void io_json_free(cJSON *root) { cJSON_Delete(root); }

static const cJSON *get(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

vkf_status io_json_u32(base_diag *d, const char *file, const cJSON *obj, const char *key, uint32_t dflt, uint32_t min,
                       uint32_t max, uint32_t *out)
{
    const cJSON *v = get(obj, key);
    if (!v) {
        *out = dflt;
        return VKF_OK;
    }
    double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(x >= min && x <= max) || x != floor(x))
        return base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" must be an integer from %u to %u", file, key, min, max);
    *out = (uint32_t)x;
    return VKF_OK;
}

vkf_status io_json_f64(base_diag *d, const char *file, const cJSON *obj, const char *key, double dflt, double *out)
{
    const cJSON *v = get(obj, key);
    if (!v) {
        *out = dflt;
        return VKF_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" must be a number", file, key);
    *out = v->valuedouble;
    return VKF_OK;
}

vkf_status io_json_bool(base_diag *d, const char *file, const cJSON *obj, const char *key, bool dflt, bool *out)
{
    const cJSON *v = get(obj, key);
    if (!v) {
        *out = dflt;
        return VKF_OK;
    }
    if (!cJSON_IsBool(v)) return base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" must be true or false", file, key);
    *out = cJSON_IsTrue(v);
    return VKF_OK;
}

const char *io_json_token(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

vkf_status io_json_str(base_diag *d, const char *file, const cJSON *obj, const char *key, const char *dflt,
                       const char **out)
{
    const cJSON *v = get(obj, key);
    if (!v) {
        *out = dflt;
        return VKF_OK;
    }
    if (!cJSON_IsString(v)) return base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" must be a string", file, key);
    *out = v->valuestring;
    return VKF_OK;
}

vkf_status io_json_f32n(base_diag *d, const char *file, const cJSON *obj, const char *key, const float *dflt,
                        uint32_t n, float *out)
{
    const cJSON *v = get(obj, key);
    if (!v) {
        memcpy(out, dflt, n * sizeof(float));
        return VKF_OK;
    }
    if (cJSON_IsNumber(v)) {
        for (uint32_t i = 0; i < n; i++) out[i] = (float)v->valuedouble;
        return VKF_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != (int)n)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" must be a list of %u numbers", file, key, n);
    for (uint32_t i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, (int)i);
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" must be a list of %u numbers", file, key, n);
        out[i] = (float)e->valuedouble;
    }
    return VKF_OK;
}
