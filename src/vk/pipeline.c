/* Compute pipelines from embedded SPIR-V, shared by key, and the on-disk
 * VkPipelineCache. A cache file is trusted only when its header matches this
 * device, driver and SPIR-V and its payload hash checks: drivers may crash on
 * foreign or corrupt cache data. */
#define _POSIX_C_SOURCE 200809L
#include "vk.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAGIC "VKFPIPE1"
/* No driver's cache of vkformer's pipelines comes near this; a file claiming more is not read. */
#define VK_PIPELINE_CACHE_MAX_BYTES ((uint64_t)512 << 20)

typedef struct cache_header {
    char magic[8];
    uint32_t header_size;
    uint32_t vendor_id;
    uint32_t device_id;
    uint32_t driver_version;
    uint8_t uuid[VK_UUID_SIZE];
    uint64_t spirv_hash;
    uint64_t data_size;
    uint64_t data_hash;
} cache_header;

void vk_pipeline_cache_default_path(const vk_caps *caps, char *buf, size_t size)
{
    const char *xdg = base_getenv("XDG_CACHE_HOME");
    const char *home = base_getenv("HOME");
    /* per driver build too (the first 8 bytes of its pipelineCacheUUID; lavapipe reports
       driverVersion 1 in every release): two drivers of one device, Debian's lavapipe and a
       newer one beside it, would otherwise throw away each other's cache at every switch */
    char id[17];
    for (int i = 0; i < 8; i++) snprintf(id + 2 * i, 3, "%02x", caps->cache_uuid[i]);
    if (xdg)
        snprintf(buf, size, "%s/vkformer/pipelines-%04x-%04x-%s.bin", xdg, caps->vendor_id, caps->device_id, id);
    else if (home)
        snprintf(buf, size, "%s/.cache/vkformer/pipelines-%04x-%04x-%s.bin", home, caps->vendor_id, caps->device_id, id);
    else
        buf[0] = 0;
}

static void fill_header(const vk_device *dev, cache_header *h, const void *data, size_t size)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, CACHE_MAGIC, 8);
    h->header_size = sizeof(*h);
    h->vendor_id = dev->real.vendor_id;
    h->device_id = dev->real.device_id;
    h->driver_version = dev->real.driver_version;
    memcpy(h->uuid, dev->real.cache_uuid, VK_UUID_SIZE);
    h->spirv_hash = vk_spirv_hash();
    h->data_size = size;
    h->data_hash = base_hash64(data, size, BASE_HASH_SEED);
}

/* What a cache file's header alone says against it (checked before the
 * payload is read: a 3 GB file is not read to find it is not a cache), or NULL. */
static const char *header_problem(const vk_device *dev, const cache_header *got, size_t size, bool *stale)
{
    *stale = false;
    if (memcmp(got->magic, CACHE_MAGIC, 8) != 0 || got->header_size != sizeof *got) return "not a vkformer pipeline cache";
    if (got->vendor_id != dev->real.vendor_id || got->device_id != dev->real.device_id) return "written for another device";
    if (got->driver_version != dev->real.driver_version || memcmp(got->uuid, dev->real.cache_uuid, VK_UUID_SIZE) != 0)
        return "written by another driver version";
    if (got->spirv_hash != vk_spirv_hash()) return *stale = true, "written for other shaders (vkformer was rebuilt)";
    if (got->data_size != size - sizeof *got) return "corrupt (payload size mismatch)";
    if (got->data_size > VK_PIPELINE_CACHE_MAX_BYTES) return "larger than any pipeline cache vkformer writes";
    return NULL;
}

/* Returns the payload to hand to the driver, or NULL (with a warning) when the
 * file must not be trusted. */
static const void *check_cache_file(vk_device *dev, const char *path, const void *file, size_t size,
                                    size_t *payload)
{
    cache_header want, got;
    if (size < sizeof got) {
        base_log(dev->diag, VKF_LOG_WARN, "ignoring pipeline cache %s: truncated (%zu bytes)", path, size);
        return NULL;
    }
    memcpy(&got, file, sizeof got);
    const uint8_t *data = (const uint8_t *)file + sizeof got;
    size_t n = size - sizeof got;
    fill_header(dev, &want, data, n);
    const char *why = NULL;
    if (memcmp(got.magic, CACHE_MAGIC, 8) != 0 || got.header_size != sizeof got)
        why = "not a vkformer pipeline cache";
    else if (got.vendor_id != want.vendor_id || got.device_id != want.device_id)
        why = "written for another device";
    else if (got.driver_version != want.driver_version || memcmp(got.uuid, want.uuid, VK_UUID_SIZE) != 0)
        why = "written by another driver version";
    else if (got.spirv_hash != want.spirv_hash)
        why = "written for other shaders (vkformer was rebuilt)";
    else if (got.data_size != n || got.data_hash != want.data_hash)
        why = "corrupt (payload size or hash mismatch)";
    else if (n < 16 + VK_UUID_SIZE)
        why = "corrupt (no Vulkan cache header)";
    if (!why) {
        /* The driver's own header (VkPipelineCacheHeaderVersionOne) must agree too. */
        uint32_t vh[4];
        memcpy(vh, data, sizeof vh);
        if (vh[0] < 16 + VK_UUID_SIZE || vh[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE ||
            vh[2] != dev->real.vendor_id || vh[3] != dev->real.device_id ||
            memcmp(data + 16, dev->real.cache_uuid, VK_UUID_SIZE) != 0)
            why = "corrupt (Vulkan cache header mismatch)";
    }
    if (why) {
        /* A rebuilt library invalidates its cache in the normal course of
         * things; anything else (another device, corruption) deserves a warning. */
        bool stale = got.spirv_hash != want.spirv_hash && got.vendor_id == want.vendor_id &&
                     got.device_id == want.device_id;
        base_log(dev->diag, stale ? VKF_LOG_INFO : VKF_LOG_WARN, "ignoring pipeline cache %s: %s", path, why);
        return NULL;
    }
    *payload = n;
    return data;
}

vkf_status vk_pipelines_init(vk_device *dev, bool cache_enabled, const char *cache_path)
{
    vk_pipelines *p = &dev->pipes;
    pthread_mutex_init(&p->lock, NULL);
    char path[4096] = "";
    if (cache_enabled) {
        if (cache_path)
            snprintf(path, sizeof path, "%s", cache_path);
        else
            vk_pipeline_cache_default_path(&dev->real, path, sizeof path);
        p->cache_default = !cache_path; /* only the default directory is created */
        if (!path[0])
            base_log(dev->diag, VKF_LOG_INFO,
                     "no pipeline cache: neither XDG_CACHE_HOME nor HOME is set, so pipelines are compiled at every "
                     "start (set vkf_context_desc.pipeline_cache_path, e.g. to a file in an Android app's cache "
                     "directory, or VKF_PIPELINE_CACHE)");
        if (cache_path) {
            /* an explicit path: its directory must exist, and what is there
             * must be a regular file (never a device, FIFO or link to replace) */
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", path);
            char *slash = strrchr(dir, '/');
            if (slash) *(slash == dir ? slash + 1 : slash) = 0;
            else snprintf(dir, sizeof dir, ".");
            struct stat st;
            if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
                return base_fail(dev->diag, VKF_ERROR_IO, "pipeline cache %s: the directory %s does not exist", path, dir);
            if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
                return base_fail(dev->diag, VKF_ERROR_IO, "pipeline cache %s: exists and is not a regular file", path);
        }
    }
    void *file = NULL;
    size_t file_size = 0;
    const void *initial = NULL;
    size_t initial_size = 0;
    if (path[0]) {
        p->cache_path = base_strdup(path);
        base_diag quiet = *dev->diag;
        struct stat st;
        cache_header h;
        FILE *f = base_stat(path, &st) == 0 && S_ISREG(st.st_mode) ? fopen(path, "rb") : NULL;
        bool have = f && fread(&h, sizeof h, 1, f) == 1;
        if (f) fclose(f);
        bool stale = false;
        const char *why = !f ? NULL : !have ? "truncated" : header_problem(dev, &h, (size_t)st.st_size, &stale);
        if (!f)
            base_log(dev->diag, VKF_LOG_DEBUG, "no pipeline cache yet at %s", path);
        else if (why) /* a rebuilt library invalidates its cache in the normal course of things */
            base_log(dev->diag, stale ? VKF_LOG_INFO : VKF_LOG_WARN, "ignoring pipeline cache %s: %s", path, why);
        else if (base_read_file(&quiet, path, &file, &file_size) == VKF_OK)
            initial = check_cache_file(dev, path, file, file_size, &initial_size);
    }
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = initial_size,
        .pInitialData = initial,
    };
    atomic_fetch_add(&dev->calls.create, 1);
    VkResult r = dev->fn.vkCreatePipelineCache(dev->device, &ci, NULL, &p->cache);
    if (r != VK_SUCCESS && initial) {
        base_log(dev->diag, VKF_LOG_WARN, "pipeline cache %s rejected by the driver (%s); starting empty",
                 path, vk_result_string(r));
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        initial_size = 0;
        r = dev->fn.vkCreatePipelineCache(dev->device, &ci, NULL, &p->cache);
    }
    free(file);
    if (r != VK_SUCCESS) return vk_check(dev->diag, r, "vkCreatePipelineCache");
    p->cache_loaded_bytes = initial_size;
    if (initial_size)
        base_log(dev->diag, VKF_LOG_INFO, "pipeline cache: loaded %zu bytes from %s", initial_size, path);
    return VKF_OK;
}

vkf_status vk_pipelines_save(vk_device *dev)
{
    vk_pipelines *p = &dev->pipes;
    if (!p->cache_path || !p->cache) return VKF_OK;
    size_t size = 0;
    VK_TRY(dev, dev->fn.vkGetPipelineCacheData(dev->device, p->cache, &size, NULL));
    if (size > VK_PIPELINE_CACHE_MAX_BYTES) {
        base_log(dev->diag, VKF_LOG_WARN, "pipeline cache: %zu bytes is more than the %llu a cache file may hold; not saved", size,
                 (unsigned long long)VK_PIPELINE_CACHE_MAX_BYTES);
        return VKF_OK;
    }
    uint8_t *buf = malloc(sizeof(cache_header) + size);
    if (!buf) return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    VkResult r = dev->fn.vkGetPipelineCacheData(dev->device, p->cache, &size, buf + sizeof(cache_header));
    if (r != VK_SUCCESS) {
        free(buf);
        return vk_check(dev->diag, r, "vkGetPipelineCacheData");
    }
    cache_header h;
    fill_header(dev, &h, buf + sizeof h, size);
    memcpy(buf, &h, sizeof h);
    vkf_status s = base_write_file_atomic(dev->diag, p->cache_path, buf, sizeof h + size, p->cache_default);
    free(buf);
    if (s == VKF_OK) {
        p->dirty = false;
        base_log(dev->diag, VKF_LOG_DEBUG, "pipeline cache: wrote %zu bytes to %s", size, p->cache_path);
    }
    return s;
}

void vk_pipelines_destroy(vk_device *dev)
{
    vk_pipelines *p = &dev->pipes;
    if (p->dirty && vk_pipelines_save(dev) != VKF_OK)
        base_log(dev->diag, VKF_LOG_WARN, "pipeline cache not saved: %s", base_diag_error(dev->diag));
    for (size_t i = 0; i < p->n; i++) {
        vk_pipeline *pl = p->items[i];
        if (pl->pipeline) dev->fn.vkDestroyPipeline(dev->device, pl->pipeline, NULL);
        if (pl->layout) dev->fn.vkDestroyPipelineLayout(dev->device, pl->layout, NULL);
        if (pl->set_layout) dev->fn.vkDestroyDescriptorSetLayout(dev->device, pl->set_layout, NULL);
        free(pl);
    }
    free(p->items);
    p->items = NULL;
    p->n = 0;
    if (p->cache) dev->fn.vkDestroyPipelineCache(dev->device, p->cache, NULL);
    p->cache = VK_NULL_HANDLE;
    free(p->cache_path);
    p->cache_path = NULL;
    pthread_mutex_destroy(&p->lock);
}

static uint64_t key_hash(const vk_pipeline_key *k)
{
    uint64_t h = base_hash64(k->shader, strlen(k->shader), BASE_HASH_SEED);
    h = base_hash64(k->spec, k->n_spec * sizeof(uint32_t), h);
    h = base_hash64(&k->n_spec, sizeof k->n_spec, h);
    h = base_hash64(&k->subgroup_size, sizeof k->subgroup_size, h);
    h = base_hash64(k->arg_kinds, k->n_args, h);
    h = base_hash64(&k->n_args, sizeof k->n_args, h);
    return base_hash64(&k->push_size, sizeof k->push_size, h);
}

static bool key_equal(const vk_pipeline_key *a, const vk_pipeline_key *b)
{
    return strcmp(a->shader, b->shader) == 0 && a->n_spec == b->n_spec &&
           memcmp(a->spec, b->spec, a->n_spec * sizeof(uint32_t)) == 0 && a->subgroup_size == b->subgroup_size &&
           a->n_args == b->n_args && memcmp(a->arg_kinds, b->arg_kinds, a->n_args) == 0 &&
           a->push_size == b->push_size;
}

static vkf_status create_pipeline(vk_device *dev, vk_pipeline *pl)
{
    const vk_pipeline_key *k = &pl->key;
    const vk_spirv *spv = vk_spirv_find(k->shader);
    if (!spv) return base_fail(dev->diag, VKF_ERROR_NOT_FOUND, "no embedded shader named '%s'", k->shader);

    VkDescriptorSetLayoutBinding bindings[VK_MAX_ARGS];
    for (uint32_t i = 0; i < k->n_args; i++)
        bindings[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = k->arg_kinds[i] == VK_ARG_TEXEL ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                                              : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = k->n_args,
        .pBindings = bindings,
    };
    atomic_fetch_add(&dev->calls.create, 3);
    VK_TRY(dev, dev->fn.vkCreateDescriptorSetLayout(dev->device, &dci, NULL, &pl->set_layout));
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = k->push_size};
    VkPipelineLayoutCreateInfo lci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &pl->set_layout,
        .pushConstantRangeCount = k->push_size ? 1 : 0,
        .pPushConstantRanges = &pcr,
    };
    VK_TRY(dev, dev->fn.vkCreatePipelineLayout(dev->device, &lci, NULL, &pl->layout));

    VkShaderModuleCreateInfo mci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = spv->size,
        .pCode = spv->code,
    };
    VkShaderModule module;
    VK_TRY(dev, dev->fn.vkCreateShaderModule(dev->device, &mci, NULL, &module));

    VkSpecializationMapEntry entries[VK_MAX_SPEC];
    for (uint32_t i = 0; i < k->n_spec; i++)
        entries[i] = (VkSpecializationMapEntry){.constantID = i, .offset = i * 4, .size = 4};
    VkSpecializationInfo spec = {
        .mapEntryCount = k->n_spec,
        .pMapEntries = entries,
        .dataSize = k->n_spec * 4u,
        .pData = k->spec,
    };
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfo sgsize = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
        .requiredSubgroupSize = k->subgroup_size,
    };
    bool pin = k->subgroup_size && dev->caps.subgroup_size_control && k->subgroup_size >= dev->real.subgroup_min &&
               k->subgroup_size <= dev->real.subgroup_max;
    VkPipelineCreationFeedback feedback = {0};
    VkPipelineCreationFeedbackCreateInfo fci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO,
        .pPipelineCreationFeedback = &feedback,
    };
    VkComputePipelineCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .pNext = dev->caps.api_version >= VK_API_VERSION_1_3 ? &fci : NULL,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .pNext = pin ? &sgsize : NULL,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = module,
            .pName = "main",
            .pSpecializationInfo = k->n_spec ? &spec : NULL,
        },
        .layout = pl->layout,
    };
    atomic_fetch_add(&dev->calls.create, 1);
    VkResult r = dev->fn.vkCreateComputePipelines(dev->device, dev->pipes.cache, 1, &pci, NULL, &pl->pipeline);
    dev->fn.vkDestroyShaderModule(dev->device, module, NULL);
    if (r != VK_SUCCESS) {
        pl->pipeline = VK_NULL_HANDLE;
        return base_fail(dev->diag, r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY
                                        ? VKF_ERROR_OUT_OF_MEMORY
                                        : VKF_ERROR_VULKAN,
                         "vkCreateComputePipelines for shader '%s' failed: %s", k->shader, vk_result_string(r));
    }
    pl->cache_hit = (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT) &&
                    (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT);
    return VKF_OK;
}

vkf_status vk_pipeline_get(vk_device *dev, const vk_pipeline_key *key, vk_pipeline **out)
{
    vk_pipelines *p = &dev->pipes;
    if (key->n_args > VK_MAX_ARGS || key->n_spec > VK_MAX_SPEC || key->push_size > VK_MAX_PUSH ||
        key->push_size > dev->caps.max_push_constants)
        return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "pipeline '%s': too many args/specs or push bytes",
                         key->shader);
    uint64_t h = key_hash(key);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n; i++)
        if (p->items[i]->hash == h && key_equal(&p->items[i]->key, key)) {
            *out = p->items[i];
            pthread_mutex_unlock(&p->lock);
            return VKF_OK;
        }
    vkf_status s = VKF_OK;
    vk_pipeline *pl = calloc(1, sizeof(*pl));
    if (!pl || !base_grow((void **)&p->items, &p->cap, p->n + 1, sizeof(*p->items))) {
        free(pl);
        pthread_mutex_unlock(&p->lock);
        return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    pl->key = *key;
    pl->hash = h;
    s = create_pipeline(dev, pl);
    if (s != VKF_OK) {
        if (pl->layout) dev->fn.vkDestroyPipelineLayout(dev->device, pl->layout, NULL);
        if (pl->set_layout) dev->fn.vkDestroyDescriptorSetLayout(dev->device, pl->set_layout, NULL);
        free(pl);
    } else {
        /* The key's shader name must outlive callers' strings: point at the registry's. */
        pl->key.shader = vk_spirv_find(key->shader)->name;
        p->items[p->n++] = pl;
        p->created++;
        if (pl->cache_hit) p->hits++;
        p->dirty = true;
        *out = pl;
    }
    pthread_mutex_unlock(&p->lock);
    return s;
}
