/* vkformer.h: contexts and device listing. */
#include "api.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const vkf_context_desc zero_desc;

static bool cache_wanted(const vkf_context_desc *desc, const char **path)
{
    *path = desc->pipeline_cache_path;
    if (desc->pipeline_cache == VKF_OFF) return false;
    const char *env = base_getenv("VKF_PIPELINE_CACHE");
    if (desc->pipeline_cache == VKF_DEFAULT && env) {
        if (base_parse_bool(env, -1) == 0) return false;
        if (!*path && base_parse_bool(env, -1) == -1) *path = env;
    }
    return true;
}

vkf_status vkf_context_create(const vkf_context_desc *desc, vkf_context **out)
{
    base_diag *td = base_thread_diag();
    td->error[0] = 0;
    if (!out) return base_fail(td, VKF_ERROR_INVALID_ARGUMENT, "vkf_context_create: out is NULL");
    *out = NULL;
    if (!desc) desc = &zero_desc;
    vkf_context *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) return base_fail(td, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    base_diag_init(&ctx->diag, desc->log_fn, desc->log_user, desc->log_level);
    /* a context is shared by threads: each reads its own calls' errors */
    if (!base_diag_per_thread(&ctx->diag)) {
        free(ctx);
        return base_fail(td, VKF_ERROR_OUT_OF_MEMORY, "out of thread-local keys");
    }
    vk_device_desc dd = {
        .validation = vk_validation_wanted(desc->validation),
        .use_index = desc->use_device_index != 0,
        .index = desc->device_index,
        .select = base_getenv("VKF_DEVICE"),
        .caps_clamp = desc->caps_override ? desc->caps_override : base_getenv("VKF_CAPS"),
        .memory_budget = desc->memory_budget,
    };
    dd.cache_enabled = cache_wanted(desc, &dd.cache_path);
    vkf_status s = vk_device_create(&ctx->diag, &dd, &ctx->dev);
    if (s != VKF_OK) {
        memcpy(td->error, base_diag_error(&ctx->diag), sizeof td->error);
        base_diag_destroy(&ctx->diag);
        free(ctx);
        return s;
    }
    *out = ctx;
    return VKF_OK;
}

void vkf_context_destroy(vkf_context *ctx)
{
    if (!ctx) return;
    vk_device_destroy(ctx->dev);
    base_diag_destroy(&ctx->diag);
    free(ctx);
}

const char *vkf_last_error(const vkf_context *ctx)
{
    return ctx ? base_diag_error((base_diag *)&ctx->diag) : base_thread_diag()->error;
}

/* Device listing needs an instance but no logical device. */
typedef void (*device_visit_fn)(void *user, uint32_t index, const vk_caps *caps);

static vkf_status visit_devices(const vkf_context_desc *desc, device_visit_fn visit, void *user,
                                uint32_t *count)
{
    base_diag *td = base_thread_diag();
    td->error[0] = 0;
    if (!desc) desc = &zero_desc;
    base_diag d;
    base_diag_init(&d, desc->log_fn, desc->log_user, desc->log_level);
    vk_instance inst = {0};
    vkf_status s = vk_instance_create(&d, vk_validation_wanted(desc->validation), &inst);
    const char *clamp = desc->caps_override ? desc->caps_override : base_getenv("VKF_CAPS");
    for (uint32_t i = 0; s == VKF_OK && i < inst.n_phys; i++) {
        vk_caps caps;
        uint32_t nq = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(inst.phys[i], &nq, NULL);
        VkQueueFamilyProperties q[16];
        nq = nq > 16 ? 16 : nq;
        vkGetPhysicalDeviceQueueFamilyProperties(inst.phys[i], &nq, q);
        uint32_t ts = 0;
        for (uint32_t j = 0; j < nq; j++)
            if ((q[j].queueFlags & VK_QUEUE_COMPUTE_BIT) && q[j].timestampValidBits > ts) ts = q[j].timestampValidBits;
        vk_caps_query(inst.phys[i], ts, &caps);
        vk_caps_query_coopmat(inst.instance, inst.phys[i], &caps);
        if (desc->memory_budget && desc->memory_budget < caps.memory_budget) caps.memory_budget = desc->memory_budget;
        s = vk_caps_clamp(&d, &caps, clamp);
        if (s == VKF_OK) visit(user, i, &caps);
    }
    if (count) *count = s == VKF_OK ? inst.n_phys : 0;
    vk_instance_destroy(&inst);
    if (s != VKF_OK) memcpy(td->error, d.error, sizeof td->error);
    return s;
}

typedef struct list_state {
    vkf_device_info *infos;
    uint32_t capacity;
} list_state;

static void visit_info(void *user, uint32_t index, const vk_caps *caps)
{
    list_state *ls = user;
    if (index < ls->capacity) vk_caps_to_info(caps, index, &ls->infos[index]);
}

vkf_status vkf_list_devices(const vkf_context_desc *desc, vkf_device_info *infos, uint32_t capacity,
                            uint32_t *count)
{
    if (!count || (capacity && !infos))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_list_devices: NULL argument");
    list_state ls = {infos, capacity};
    return visit_devices(desc, visit_info, &ls, count);
}

static void visit_json(void *user, uint32_t index, const vk_caps *caps)
{
    cJSON *o = vk_caps_json(caps, index);
    if (o) cJSON_AddItemToArray((cJSON *)user, o);
}

vkf_status vkf_list_devices_json(const vkf_context_desc *desc, char **json)
{
    if (!json) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_list_devices_json: NULL argument");
    *json = NULL;
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return base_fail(base_thread_diag(), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vkf_status s = visit_devices(desc, visit_json, arr, NULL);
    if (s == VKF_OK) {
        *json = cJSON_Print(arr);
        if (!*json) s = base_fail(base_thread_diag(), VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    cJSON_Delete(arr);
    return s;
}

vkf_status vkf_context_device(const vkf_context *ctx, vkf_device_info *info)
{
    if (!ctx || !info) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_context_device: NULL argument");
    vk_caps_to_info(&ctx->dev->caps, ctx->dev->index, info);
    return VKF_OK;
}

void vkf_context_memory_stats(const vkf_context *ctx, vkf_memory_stats *stats)
{
    memset(stats, 0, sizeof(*stats));
    if (ctx) vk_alloc_stats(ctx->dev, stats);
}

void vkf_context_validation_counts(const vkf_context *ctx, uint32_t *errors, uint32_t *warnings)
{
    if (errors) *errors = ctx ? atomic_load(&ctx->dev->inst.validation_errors) : 0;
    if (warnings) *warnings = ctx ? atomic_load(&ctx->dev->inst.validation_warnings) : 0;
}

vkf_status vkf_context_save_pipeline_cache(vkf_context *ctx)
{
    if (!ctx) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "NULL context");
    return vk_pipelines_save(ctx->dev);
}
