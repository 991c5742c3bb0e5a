#define _POSIX_C_SOURCE 200809L
#include "vk.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* VK_KHR_cooperative_matrix is newer than Debian 12's headers (1.3.239); the
 * few definitions needed to list its shapes, with the registry's values. */
#ifndef VK_KHR_cooperative_matrix
#define VKF_STYPE_COOPMAT_PROPS_KHR ((VkStructureType)1000506001)
typedef struct vkf_coopmat_props_khr {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize;
    uint32_t AType, BType, CType, ResultType;
    VkBool32 saturatingAccumulation;
    uint32_t scope;
} vkf_coopmat_props_khr;
typedef VkResult(VKAPI_PTR *vkf_get_coopmat_props_fn)(VkPhysicalDevice, uint32_t *,
                                                       vkf_coopmat_props_khr *);
#endif

const char *vk_result_string(VkResult r)
{
    switch (r) {
#define R(x) \
    case x: return #x;
        R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_EVENT_SET) R(VK_EVENT_RESET)
        R(VK_INCOMPLETE) R(VK_ERROR_OUT_OF_HOST_MEMORY) R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        R(VK_ERROR_INITIALIZATION_FAILED) R(VK_ERROR_DEVICE_LOST) R(VK_ERROR_MEMORY_MAP_FAILED)
        R(VK_ERROR_LAYER_NOT_PRESENT) R(VK_ERROR_EXTENSION_NOT_PRESENT)
        R(VK_ERROR_FEATURE_NOT_PRESENT) R(VK_ERROR_INCOMPATIBLE_DRIVER)
        R(VK_ERROR_TOO_MANY_OBJECTS) R(VK_ERROR_FORMAT_NOT_SUPPORTED) R(VK_ERROR_FRAGMENTED_POOL)
        R(VK_ERROR_UNKNOWN) R(VK_ERROR_OUT_OF_POOL_MEMORY) R(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        R(VK_ERROR_FRAGMENTATION) R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        R(VK_PIPELINE_COMPILE_REQUIRED) R(VK_ERROR_VALIDATION_FAILED_EXT)
#undef R
    default: return "VkResult(unknown)";
    }
}

const char *vk_device_type_string(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

static bool has_ext(const VkExtensionProperties *exts, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(exts[i].extensionName, name) == 0) return true;
    return false;
}

/* Vendors encode driverVersion differently; without VK_KHR_driver_properties
 * this is the best a bug report gets. */
static void decode_driver_version(uint32_t vendor, uint32_t v, char *buf, size_t size)
{
    if (vendor == 0x10de) /* NVIDIA: 10.8.8.6 bits */
        snprintf(buf, size, "%u.%u.%u.%u", v >> 22, (v >> 14) & 0xff, (v >> 6) & 0xff, v & 0x3f);
    else
        snprintf(buf, size, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
                 VK_API_VERSION_PATCH(v));
}

void vk_caps_query(VkPhysicalDevice phys, uint32_t queue_timestamp_bits, vk_caps *c)
{
    memset(c, 0, sizeof(*c));
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(phys, &props);
    uint32_t api = props.apiVersion;

    uint32_t n_ext = 0;
    VkExtensionProperties *exts = NULL;
    if (vkEnumerateDeviceExtensionProperties(phys, NULL, &n_ext, NULL) == VK_SUCCESS && n_ext) {
        exts = calloc(n_ext, sizeof(*exts));
        if (!exts || vkEnumerateDeviceExtensionProperties(phys, NULL, &n_ext, exts) != VK_SUCCESS)
            n_ext = 0;
    }
    bool api12 = api >= VK_API_VERSION_1_2, api13 = api >= VK_API_VERSION_1_3;
    bool ext_sgsc = api13 || has_ext(exts, n_ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    bool ext_drv = api12 || has_ext(exts, n_ext, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    bool ext_f16 = api12 || has_ext(exts, n_ext, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    bool ext_s8 = api12 || has_ext(exts, n_ext, VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
    bool ext_dot = api13 || has_ext(exts, n_ext, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    c->coopmat_khr = has_ext(exts, n_ext, "VK_KHR_cooperative_matrix");

    /* Properties: chain only what the device knows, or validation complains. */
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceSubgroupSizeControlProperties sgsc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    sg.pNext = &m3;
    void **tail = &m3.pNext;
    if (ext_sgsc) {
        *tail = &sgsc;
        tail = &sgsc.pNext;
    }
    if (ext_drv) {
        *tail = &drv;
        tail = &drv.pNext;
    }
    vkGetPhysicalDeviceProperties2(phys, &p2);

    VkPhysicalDevice16BitStorageFeatures f16s = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice8BitStorageFeatures s8 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
    VkPhysicalDeviceSubgroupSizeControlFeatures sgscf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
    VkPhysicalDeviceShaderIntegerDotProductFeatures dot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16s};
    tail = &f16s.pNext;
    if (ext_f16) {
        *tail = &f16;
        tail = &f16.pNext;
    }
    if (ext_s8) {
        *tail = &s8;
        tail = &s8.pNext;
    }
    if (ext_sgsc) {
        *tail = &sgscf;
        tail = &sgscf.pNext;
    }
    if (ext_dot) {
        *tail = &dot;
        tail = &dot.pNext;
    }
    vkGetPhysicalDeviceFeatures2(phys, &f2);

    snprintf(c->name, sizeof c->name, "%s", props.deviceName);
    c->type = props.deviceType;
    c->vendor_id = props.vendorID;
    c->device_id = props.deviceID;
    c->driver_version = props.driverVersion;
    c->api_version = api;
    memcpy(c->cache_uuid, props.pipelineCacheUUID, VK_UUID_SIZE);
    if (ext_drv && drv.driverName[0])
        snprintf(c->driver, sizeof c->driver, "%s %s", drv.driverName, drv.driverInfo);
    else
        decode_driver_version(c->vendor_id, c->driver_version, c->driver, sizeof c->driver);

    c->subgroup_size = c->subgroup_min = c->subgroup_max = sg.subgroupSize;
    bool sg_compute = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
    c->subgroup_arith = sg_compute && (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    c->subgroup_shuffle = sg_compute && (sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    c->subgroup_ballot = sg_compute && (sg.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT);
    if (ext_sgsc && sgscf.subgroupSizeControl &&
        (sgsc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
        c->subgroup_size_control = true;
        c->full_subgroups = sgscf.computeFullSubgroups;
        c->subgroup_min = sgsc.minSubgroupSize;
        c->subgroup_max = sgsc.maxSubgroupSize;
    }

    const VkPhysicalDeviceLimits *l = &props.limits;
    c->shared_memory = l->maxComputeSharedMemorySize;
    c->max_storage_buffer_range = l->maxStorageBufferRange;
    c->max_texel_buffer_elements = l->maxTexelBufferElements;
    for (int i = 0; i < 3; i++) {
        c->max_workgroup_size[i] = l->maxComputeWorkGroupSize[i];
        c->max_workgroup_count[i] = l->maxComputeWorkGroupCount[i];
    }
    c->max_workgroup_invocations = l->maxComputeWorkGroupInvocations;
    c->max_push_constants = l->maxPushConstantsSize;
    c->min_storage_align = l->minStorageBufferOffsetAlignment;
    c->min_texel_align = l->minTexelBufferOffsetAlignment;

    c->storage16 = f16s.storageBuffer16BitAccess;
    c->fp16 = ext_f16 && f16.shaderFloat16;
    c->int8 = ext_f16 && f16.shaderInt8;
    c->storage8 = ext_s8 && s8.storageBuffer8BitAccess;
    c->int_dot = ext_dot && dot.shaderIntegerDotProduct;

    /* Driver quirk: lavapipe on 64-bit ARM with LLVM 15 (Debian 12's Mesa
     * 22.3) aborts the whole process compiling any kernel that reads 16-bit
     * storage: "LLVM ERROR: Cannot select: v4f32 = fp_extend" (LLVM's AArch64
     * instruction selection has no pattern for widening a v4f16 vector when
     * the CPU target lacks full fp16). The device never gets fp16 storage
     * kernels there; LLVM 16 and later are not known to be affected. */
#if defined(__aarch64__)
    unsigned llvm_major = 0;
    if (ext_drv && drv.driverID == VK_DRIVER_ID_MESA_LLVMPIPE && sscanf(c->name, "llvmpipe (LLVM %u", &llvm_major) == 1 &&
        llvm_major <= 15)
        c->storage16 = false;
#endif

    c->cpu_kernels = c->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    c->timestamp_bits = queue_timestamp_bits;
    c->timestamps = l->timestampComputeAndGraphics && queue_timestamp_bits > 0;
    c->timestamp_period_ns = l->timestampPeriod;

    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(phys, &mem);
    c->n_heaps = mem.memoryHeapCount;
    uint64_t largest_local = 0;
    for (uint32_t i = 0; i < mem.memoryHeapCount; i++) {
        c->heap_size[i] = mem.memoryHeaps[i].size;
        c->heap_device_local[i] = (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
        if (c->heap_device_local[i] && c->heap_size[i] > largest_local) largest_local = c->heap_size[i];
    }
    c->uma = true;
    for (uint32_t i = 0; i < mem.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mem.memoryTypes[i].propertyFlags;
        if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && !(f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT))
            c->uma = false;
    }
    c->max_alloc_size = m3.maxMemoryAllocationSize;
    c->max_alloc_count = l->maxMemoryAllocationCount;
    c->memory_budget = largest_local;
    free(exts);
}

void vk_caps_query_coopmat(VkInstance instance, VkPhysicalDevice phys, vk_caps *c)
{
    if (!c->coopmat_khr) return;
#ifndef VK_KHR_cooperative_matrix
    vkf_get_coopmat_props_fn get = (vkf_get_coopmat_props_fn)vkGetInstanceProcAddr(
        instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    if (!get) return;
    uint32_t n = 0;
    if (get(phys, &n, NULL) != VK_SUCCESS) return;
    vkf_coopmat_props_khr p[VK_MAX_COOPMAT * 2];
    if (n > BASE_ARRAY_LEN(p)) n = BASE_ARRAY_LEN(p);
    for (uint32_t i = 0; i < n; i++) p[i] = (vkf_coopmat_props_khr){.sType = VKF_STYPE_COOPMAT_PROPS_KHR};
    VkResult r = get(phys, &n, p);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return;
    for (uint32_t i = 0; i < n && c->n_coopmat < VK_MAX_COOPMAT; i++) {
        if (p[i].scope != 3 /* VK_SCOPE_SUBGROUP_KHR */) continue;
        c->coopmat[c->n_coopmat++] = (vk_coopmat_shape){p[i].MSize, p[i].NSize, p[i].KSize, p[i].AType,
                                                         p[i].BType, p[i].CType, p[i].ResultType};
    }
#else
    (void)instance;
    (void)phys;
#endif
}

/* ---- clamping ------------------------------------------------------------ */

typedef enum { CLAMP_MIN, CLAMP_SET, CLAMP_BOOL } clamp_mode;

typedef struct clamp_key {
    const char *key;
    clamp_mode mode;
    size_t offset;
    int width; /* 4 or 8 bytes for numbers, 1 for bools */
} clamp_key;

#define CK(k, m, field) {k, m, offsetof(vk_caps, field), sizeof(((vk_caps *)0)->field)}
static const clamp_key clamp_keys[] = {
    CK("subgroup", CLAMP_SET, subgroup_size),
    CK("shared", CLAMP_MIN, shared_memory),
    CK("max_range", CLAMP_MIN, max_storage_buffer_range),
    CK("max_texels", CLAMP_MIN, max_texel_buffer_elements),
    CK("max_invocations", CLAMP_MIN, max_workgroup_invocations),
    CK("fp16", CLAMP_BOOL, fp16),
    CK("storage16", CLAMP_BOOL, storage16),
    CK("storage8", CLAMP_BOOL, storage8),
    CK("int_dot", CLAMP_BOOL, int_dot),
    CK("subgroup_control", CLAMP_BOOL, subgroup_size_control),
    CK("subgroup_arith", CLAMP_BOOL, subgroup_arith),
    CK("timestamps", CLAMP_BOOL, timestamps),
    CK("cpu_kernels", CLAMP_BOOL, cpu_kernels),
    CK("mem", CLAMP_MIN, memory_budget),
    CK("max_alloc", CLAMP_MIN, max_alloc_size),
    CK("max_alloc_count", CLAMP_MIN, max_alloc_count),
};
#undef CK

static uint64_t get_field(const vk_caps *c, const clamp_key *k)
{
    const char *p = (const char *)c + k->offset;
    if (k->width == 8) return *(const uint64_t *)(const void *)p;
    if (k->width == 4) return *(const uint32_t *)(const void *)p;
    return *(const bool *)(const void *)p;
}

static void set_field(vk_caps *c, const clamp_key *k, uint64_t v)
{
    char *p = (char *)c + k->offset;
    if (k->width == 8)
        *(uint64_t *)(void *)p = v;
    else if (k->width == 4)
        *(uint32_t *)(void *)p = (uint32_t)v;
    else
        *(bool *)(void *)p = v != 0;
}

vkf_status vk_caps_clamp(base_diag *d, vk_caps *c, const char *spec)
{
    if (!spec || !*spec) return VKF_OK;
    char buf[1024];
    if (strlen(spec) >= sizeof buf)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "VKF_CAPS: value longer than %zu characters",
                         sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "VKF_CAPS: '%s' is not key=value", tok);
        *eq = 0;
        const char *val = eq + 1;
        const clamp_key *k = NULL;
        for (size_t i = 0; i < BASE_ARRAY_LEN(clamp_keys); i++)
            if (strcmp(clamp_keys[i].key, tok) == 0) k = &clamp_keys[i];
        if (!k) {
            char known[512] = "";
            for (size_t i = 0; i < BASE_ARRAY_LEN(clamp_keys); i++) {
                strncat(known, clamp_keys[i].key, sizeof known - strlen(known) - 2);
                if (i + 1 < BASE_ARRAY_LEN(clamp_keys)) strncat(known, " ", sizeof known - strlen(known) - 1);
            }
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "VKF_CAPS: unknown key '%s' (known: %s)", tok,
                             known);
        }
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 0);
        if (errno || end == val || *end || (k->mode == CLAMP_BOOL && v > 1) ||
            (k->width == 4 && v > UINT32_MAX))
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "VKF_CAPS: bad value '%s' for %s", val, tok);
        if (k->mode == CLAMP_SET && (v == 0 || (v & (v - 1))))
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "VKF_CAPS: %s must be a power of two, got %s",
                             tok, val);
        uint64_t old = get_field(c, k);
        uint64_t nv = k->mode == CLAMP_SET ? v : BASE_MIN(old, (uint64_t)v);
        set_field(c, k, nv);
        if (nv != old) {
            size_t len = strlen(c->clamped);
            snprintf(c->clamped + len, sizeof c->clamped - len, "%s%s=%llu", len ? "," : "", tok,
                     (unsigned long long)nv);
        }
    }
    /* A believed subgroup size outside the real range cannot be pinned; kernels
     * are written to stay correct whatever the real size is. */
    if (c->subgroup_size < c->subgroup_min || c->subgroup_size > c->subgroup_max)
        c->subgroup_size_control = false;
    return VKF_OK;
}

/* ---- reporting --------------------------------------------------------------- */

static void api_string(uint32_t v, char *buf, size_t n)
{
    snprintf(buf, n, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
}

static const char *component_name(uint32_t t)
{
    static const char *const names[] = {"f16", "f32", "f64", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64"};
    return t < BASE_ARRAY_LEN(names) ? names[t] : "?";
}

void vk_caps_line(const vk_caps *c, char *buf, size_t size)
{
    char api[32], heaps[256] = "", coop[256] = "";
    api_string(c->api_version, api, sizeof api);
    for (uint32_t i = 0; i < c->n_heaps; i++) {
        char b[32];
        size_t len = strlen(heaps);
        snprintf(heaps + len, sizeof heaps - len, "%s%s%s", i ? " " : "", base_fmt_bytes(c->heap_size[i], b),
                 c->heap_device_local[i] ? " local" : "");
    }
    if (c->n_coopmat == 0) snprintf(coop, sizeof coop, "%s", c->coopmat_khr ? "khr(no shapes)" : "none");
    for (uint32_t i = 0; i < c->n_coopmat; i++) {
        size_t len = strlen(coop);
        const vk_coopmat_shape *s = &c->coopmat[i];
        snprintf(coop + len, sizeof coop - len, "%s%ux%ux%u:%s>%s", i ? " " : "", s->m, s->n, s->k,
                 component_name(s->a_type), component_name(s->result_type));
    }
    char sg[64];
    if (c->subgroup_size_control)
        snprintf(sg, sizeof sg, "%u (%u..%u control)", c->subgroup_size, c->subgroup_min, c->subgroup_max);
    else
        snprintf(sg, sizeof sg, "%u", c->subgroup_size);
    snprintf(buf, size,
             "%s [%s] vendor=0x%04x device=0x%04x driver=\"%s\" api=%s subgroup=%s shared=%u "
             "max_range=%llu wg=%u (%ux%ux%u) fp16=%d storage16=%d storage8=%d int_dot=%d coopmat=%s "
             "timestamps=%d (%.3g ns) heaps=[%s] uma=%d kernels=%s%s%s",
             c->name, vk_device_type_string(c->type), c->vendor_id, c->device_id, c->driver, api, sg,
             c->shared_memory, (unsigned long long)c->max_storage_buffer_range, c->max_workgroup_invocations,
             c->max_workgroup_size[0], c->max_workgroup_size[1], c->max_workgroup_size[2], c->fp16, c->storage16,
             c->storage8, c->int_dot, coop, c->timestamps, (double)c->timestamp_period_ns, heaps, c->uma,
             c->cpu_kernels ? "cpu" : "gpu", c->clamped[0] ? " clamped:" : "", c->clamped);
}

void vk_caps_to_info(const vk_caps *c, uint32_t index, vkf_device_info *info)
{
    memset(info, 0, sizeof(*info));
    info->index = index;
    snprintf(info->name, sizeof info->name, "%s", c->name);
    switch (c->type) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: info->type = VKF_DEVICE_INTEGRATED; break;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: info->type = VKF_DEVICE_DISCRETE; break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: info->type = VKF_DEVICE_VIRTUAL; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: info->type = VKF_DEVICE_CPU; break;
    default: info->type = VKF_DEVICE_OTHER; break;
    }
    info->vendor_id = c->vendor_id;
    info->device_id = c->device_id;
    snprintf(info->driver, sizeof info->driver, "%s", c->driver);
    info->api_version = c->api_version;
    info->subgroup_size = c->subgroup_size;
    info->shared_memory = c->shared_memory;
    info->max_storage_buffer_range = c->max_storage_buffer_range;
    for (uint32_t i = 0; i < c->n_heaps; i++)
        if (c->heap_device_local[i] && c->heap_size[i] > info->device_local_bytes)
            info->device_local_bytes = c->heap_size[i];
    info->fp16 = c->fp16;
    info->storage16 = c->storage16;
    vk_caps_line(c, info->caps_line, sizeof info->caps_line);
}

void *vk_caps_json(const vk_caps *c, uint32_t index)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char api[32];
    api_string(c->api_version, api, sizeof api);
    cJSON_AddNumberToObject(o, "index", index);
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddStringToObject(o, "type", vk_device_type_string(c->type));
    cJSON_AddNumberToObject(o, "vendor_id", c->vendor_id);
    cJSON_AddNumberToObject(o, "device_id", c->device_id);
    cJSON_AddStringToObject(o, "driver", c->driver);
    cJSON_AddNumberToObject(o, "driver_version", c->driver_version);
    cJSON_AddStringToObject(o, "api_version", api);
    cJSON *sg = cJSON_AddObjectToObject(o, "subgroup");
    cJSON_AddNumberToObject(sg, "size", c->subgroup_size);
    cJSON_AddNumberToObject(sg, "min", c->subgroup_min);
    cJSON_AddNumberToObject(sg, "max", c->subgroup_max);
    cJSON_AddBoolToObject(sg, "size_control", c->subgroup_size_control);
    cJSON_AddBoolToObject(sg, "arithmetic", c->subgroup_arith);
    cJSON_AddBoolToObject(sg, "shuffle", c->subgroup_shuffle);
    cJSON_AddNumberToObject(o, "shared_memory", c->shared_memory);
    cJSON_AddNumberToObject(o, "max_storage_buffer_range", (double)c->max_storage_buffer_range);
    cJSON_AddNumberToObject(o, "max_texel_buffer_elements", c->max_texel_buffer_elements);
    cJSON_AddNumberToObject(o, "max_workgroup_invocations", c->max_workgroup_invocations);
    cJSON_AddItemToObject(o, "max_workgroup_size",
                          cJSON_CreateIntArray((const int[]){(int)c->max_workgroup_size[0],
                                                             (int)c->max_workgroup_size[1],
                                                             (int)c->max_workgroup_size[2]},
                                               3));
    cJSON_AddBoolToObject(o, "fp16", c->fp16);
    cJSON_AddBoolToObject(o, "storage16", c->storage16);
    cJSON_AddBoolToObject(o, "storage8", c->storage8);
    cJSON_AddBoolToObject(o, "int_dot", c->int_dot);
    cJSON *cm = cJSON_AddArrayToObject(o, "cooperative_matrix");
    for (uint32_t i = 0; i < c->n_coopmat; i++) {
        const vk_coopmat_shape *s = &c->coopmat[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "m", s->m);
        cJSON_AddNumberToObject(e, "n", s->n);
        cJSON_AddNumberToObject(e, "k", s->k);
        cJSON_AddStringToObject(e, "a", component_name(s->a_type));
        cJSON_AddStringToObject(e, "b", component_name(s->b_type));
        cJSON_AddStringToObject(e, "c", component_name(s->c_type));
        cJSON_AddStringToObject(e, "result", component_name(s->result_type));
        cJSON_AddItemToArray(cm, e);
    }
    cJSON_AddBoolToObject(o, "timestamps", c->timestamps);
    cJSON_AddNumberToObject(o, "timestamp_period_ns", (double)c->timestamp_period_ns);
    cJSON *heaps = cJSON_AddArrayToObject(o, "heaps");
    for (uint32_t i = 0; i < c->n_heaps; i++) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "size", (double)c->heap_size[i]);
        cJSON_AddBoolToObject(h, "device_local", c->heap_device_local[i]);
        cJSON_AddItemToArray(heaps, h);
    }
    cJSON_AddBoolToObject(o, "uma", c->uma);
    cJSON_AddStringToObject(o, "kernels", c->cpu_kernels ? "cpu" : "gpu");
    cJSON_AddNumberToObject(o, "max_allocation_size", (double)c->max_alloc_size);
    cJSON_AddNumberToObject(o, "max_allocation_count", c->max_alloc_count);
    cJSON_AddNumberToObject(o, "memory_budget", (double)c->memory_budget);
    cJSON_AddStringToObject(o, "clamped", c->clamped);
    char line[1024];
    vk_caps_line(c, line, sizeof line);
    cJSON_AddStringToObject(o, "line", line);
    return o;
}
