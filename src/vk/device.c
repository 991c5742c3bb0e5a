#define _POSIX_C_SOURCE 200809L
#include "vk.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

static const char no_driver_hint[] =
    "install a Vulkan driver (on Debian: apt-get install mesa-vulkan-drivers for the CPU "
    "driver lavapipe) or check VK_ICD_FILENAMES / VK_DRIVER_FILES";

vkf_status vk_check(base_diag *d, VkResult r, const char *what)
{
    if (r == VK_SUCCESS) return VKF_OK;
    vkf_status s = VKF_ERROR_VULKAN;
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) s = VKF_ERROR_OUT_OF_MEMORY;
    if (r == VK_ERROR_DEVICE_LOST) s = VKF_ERROR_DEVICE_LOST;
    return base_fail(d, s, "%s failed: %s", what, vk_result_string(r));
}

bool vk_validation_wanted(vkf_toggle t)
{
    if (t == VKF_ON) return true;
    if (t == VKF_OFF) return false;
    return base_parse_bool(base_getenv("VKF_VALIDATION"), 0) == 1;
}

/* Routes validation messages to the logger and counts them. Loader chatter
 * (GENERAL type) is logged but not counted: it is not a usage error of ours. */
static VKAPI_ATTR VkBool32 VKAPI_CALL debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT types,
                                                     const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                     void *user)
{
    vk_instance *inst = user;
    bool counted = (types & (VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                             VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)) != 0;
    vkf_log_level level = VKF_LOG_DEBUG;
    if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        level = counted ? VKF_LOG_ERROR : VKF_LOG_INFO;
        if (counted) atomic_fetch_add(&inst->validation_errors, 1);
    } else if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        level = counted ? VKF_LOG_WARN : VKF_LOG_INFO;
        if (counted) atomic_fetch_add(&inst->validation_warnings, 1);
    }
    base_log(inst->diag, level, "vulkan [%s]: %s", data->pMessageIdName ? data->pMessageIdName : "-",
             data->pMessage ? data->pMessage : "");
    return VK_FALSE;
}

static bool layer_present(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n) return false;
    VkLayerProperties *p = calloc(n, sizeof(*p));
    bool found = false;
    if (p && vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(p[i].layerName, name) == 0) found = true;
    free(p);
    return found;
}

static bool instance_ext_present(const char *layer, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *p = calloc(n, sizeof(*p));
    bool found = false;
    if (p && vkEnumerateInstanceExtensionProperties(layer, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(p[i].extensionName, name) == 0) found = true;
    free(p);
    return found;
}

vkf_status vk_instance_create(base_diag *d, bool validation, vk_instance *inst)
{
    inst->diag = d;
    if (volkInitialize() != VK_SUCCESS)
        return base_fail(d, VKF_ERROR_NO_VULKAN, "the Vulkan loader (libvulkan.so.1) was not found; %s",
                         no_driver_hint);
    uint32_t loader = VK_API_VERSION_1_0;
    if (vkEnumerateInstanceVersion) vkEnumerateInstanceVersion(&loader);
    if (loader < VK_API_VERSION_1_1)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "the Vulkan loader is version 1.0; vkformer needs 1.1");

    const char *exts[4];
    uint32_t n_exts = 0;
    VkInstanceCreateFlags flags = 0;
    if (instance_ext_present(NULL, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_exts++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME; /* MoltenVK */
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    const char *layers[1];
    uint32_t n_layers = 0;
    VkValidationFeatureEnableEXT enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkValidationFeaturesEXT features = {
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .enabledValidationFeatureCount = 1,
        .pEnabledValidationFeatures = enables,
    };
    VkDebugUtilsMessengerCreateInfoEXT messenger_info = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_callback,
        .pUserData = inst,
    };
    const void *chain = NULL;
    if (validation) {
        if (!layer_present(VALIDATION_LAYER))
            return base_fail(d, VKF_ERROR_UNSUPPORTED,
                             "validation was requested but the layer %s is not installed "
                             "(on Debian: apt-get install vulkan-validationlayers)",
                             VALIDATION_LAYER);
        layers[n_layers++] = VALIDATION_LAYER;
        exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        exts[n_exts++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
        messenger_info.pNext = &features;
        chain = &messenger_info;
        inst->validation = true;
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "vkformer",
        .pEngineName = "vkformer",
        .engineVersion = VK_MAKE_API_VERSION(0, VKF_VERSION_MAJOR, VKF_VERSION_MINOR, VKF_VERSION_PATCH),
        .apiVersion = loader >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_1,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = chain,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = n_layers,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateInstance(&ci, NULL, &inst->instance);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
        return base_fail(d, VKF_ERROR_NO_VULKAN, "no Vulkan driver found (vkCreateInstance: %s); %s",
                         vk_result_string(r), no_driver_hint);
    if (r != VK_SUCCESS) return vk_check(d, r, "vkCreateInstance");
    volkLoadInstanceOnly(inst->instance);

    if (validation) {
        messenger_info.pNext = NULL;
        r = vkCreateDebugUtilsMessengerEXT(inst->instance, &messenger_info, NULL, &inst->messenger);
        if (r != VK_SUCCESS) return vk_check(d, r, "vkCreateDebugUtilsMessengerEXT");
    }

    uint32_t n = 0;
    r = vkEnumeratePhysicalDevices(inst->instance, &n, NULL);
    if (r == VK_ERROR_INITIALIZATION_FAILED || (r == VK_SUCCESS && n == 0))
        return base_fail(d, VKF_ERROR_NO_VULKAN, "no Vulkan devices found; %s", no_driver_hint);
    if (r != VK_SUCCESS) return vk_check(d, r, "vkEnumeratePhysicalDevices");
    inst->phys = calloc(n, sizeof(*inst->phys));
    if (!inst->phys) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    r = vkEnumeratePhysicalDevices(inst->instance, &n, inst->phys);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return vk_check(d, r, "vkEnumeratePhysicalDevices");
    inst->n_phys = n;
    return VKF_OK;
}

void vk_instance_destroy(vk_instance *inst)
{
    if (inst->messenger) vkDestroyDebugUtilsMessengerEXT(inst->instance, inst->messenger, NULL);
    if (inst->instance) vkDestroyInstance(inst->instance, NULL);
    free(inst->phys);
    inst->phys = NULL;
    inst->instance = VK_NULL_HANDLE;
    inst->messenger = VK_NULL_HANDLE;
}

/* A compute queue family, preferring one with timestamps. */
static bool pick_queue(VkPhysicalDevice phys, uint32_t *family, uint32_t *ts_bits)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(phys, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof(*q));
    if (!q) return false;
    vkGetPhysicalDeviceQueueFamilyProperties(phys, &n, q);
    int best = -1, best_score = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || q[i].queueCount == 0) continue;
        int score = q[i].timestampValidBits ? 2 : 0;
        if (q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) score += 1; /* the universal queue is the best-tested */
        if (score > best_score) {
            best = (int)i;
            best_score = score;
        }
    }
    if (best >= 0) {
        *family = (uint32_t)best;
        *ts_bits = q[best].timestampValidBits;
    }
    free(q);
    return best >= 0;
}

static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

static bool contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return true;
    return n == 0;
}

static vkf_status select_device(base_diag *d, const vk_instance *inst, const vk_device_desc *desc,
                                uint32_t *index)
{
    if (desc->use_index) {
        if (desc->index >= inst->n_phys)
            return base_fail(d, VKF_ERROR_NO_DEVICE, "device index %u does not exist (%u device%s present)",
                             desc->index, inst->n_phys, inst->n_phys == 1 ? "" : "s");
        *index = desc->index;
        return VKF_OK;
    }
    if (desc->select) {
        const char *s = desc->select;
        bool digits = true;
        for (const char *p = s; *p; p++) digits = digits && isdigit((unsigned char)*p);
        if (digits) {
            unsigned long i = strtoul(s, NULL, 10);
            if (i >= inst->n_phys)
                return base_fail(d, VKF_ERROR_NO_DEVICE, "VKF_DEVICE=%s: no such device (%u present)", s,
                                 inst->n_phys);
            *index = (uint32_t)i;
            return VKF_OK;
        }
        for (uint32_t i = 0; i < inst->n_phys; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(inst->phys[i], &p);
            if (contains_nocase(p.deviceName, s)) {
                *index = i;
                return VKF_OK;
            }
        }
        return base_fail(d, VKF_ERROR_NO_DEVICE, "VKF_DEVICE=%s matches no device name", s);
    }
    int best = -1, best_rank = -1;
    for (uint32_t i = 0; i < inst->n_phys; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(inst->phys[i], &p);
        if (p.apiVersion < VK_API_VERSION_1_1) continue;
        if (type_rank(p.deviceType) > best_rank) {
            best = (int)i;
            best_rank = type_rank(p.deviceType);
        }
    }
    if (best < 0) return base_fail(d, VKF_ERROR_NO_DEVICE, "no device supports Vulkan 1.1");
    *index = (uint32_t)best;
    return VKF_OK;
}

static bool device_has_ext(VkPhysicalDevice phys, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(phys, NULL, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *p = calloc(n, sizeof(*p));
    bool found = false;
    if (p && vkEnumerateDeviceExtensionProperties(phys, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(p[i].extensionName, name) == 0) found = true;
    free(p);
    return found;
}

/* Enables what the library believes it may use: a clamped-off feature is
 * really off, so the validation layer catches a kernel that still uses it. */
static vkf_status create_logical_device(vk_device *dev)
{
    const vk_caps *c = &dev->caps;
    uint32_t api = c->api_version;
    const char *exts[8];
    uint32_t n_exts = 0;
    if (api < VK_API_VERSION_1_2 && c->fp16) exts[n_exts++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
    if (api < VK_API_VERSION_1_2 && c->storage8) exts[n_exts++] = VK_KHR_8BIT_STORAGE_EXTENSION_NAME;
    if (api < VK_API_VERSION_1_3 && c->subgroup_size_control)
        exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    if (api < VK_API_VERSION_1_3 && c->int_dot) exts[n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    if (device_has_ext(dev->phys, "VK_KHR_portability_subset")) exts[n_exts++] = "VK_KHR_portability_subset";

    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = c->storage16,
    };
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .shaderFloat16 = c->fp16,
        .shaderInt8 = c->int8,
    };
    VkPhysicalDevice8BitStorageFeatures s8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
        .storageBuffer8BitAccess = c->storage8,
    };
    VkPhysicalDeviceSubgroupSizeControlFeatures sgsc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
        .subgroupSizeControl = c->subgroup_size_control,
        .computeFullSubgroups = c->subgroup_size_control && c->full_subgroups,
    };
    VkPhysicalDeviceShaderIntegerDotProductFeatures dot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
        .shaderIntegerDotProduct = c->int_dot,
    };
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s16};
    void **tail = &s16.pNext;
    if (c->fp16 || c->int8) {
        *tail = &f16;
        tail = &f16.pNext;
    }
    if (c->storage8) {
        *tail = &s8;
        tail = &s8.pNext;
    }
    if (c->subgroup_size_control) {
        *tail = &sgsc;
        tail = &sgsc.pNext;
    }
    if (c->int_dot) {
        *tail = &dot;
        tail = &dot.pNext;
    }
    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = dev->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkDeviceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &f2,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    atomic_fetch_add(&dev->calls.create, 1);
    VK_TRY(dev, vkCreateDevice(dev->phys, &ci, NULL, &dev->device));
    volkLoadDeviceTable(&dev->fn, dev->device);
    dev->fn.vkGetDeviceQueue(dev->device, dev->queue_family, 0, &dev->queue);
    return VKF_OK;
}

vkf_status vk_device_create(base_diag *d, const vk_device_desc *desc, vk_device **out)
{
    *out = NULL;
    vk_device *dev = calloc(1, sizeof(*dev));
    if (!dev) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    dev->diag = d;
    pthread_mutex_init(&dev->queue_lock, NULL);
    vkf_status s = vk_instance_create(d, desc->validation, &dev->inst);
    if (s != VKF_OK) goto fail;
    s = select_device(d, &dev->inst, desc, &dev->index);
    if (s != VKF_OK) goto fail;
    dev->phys = dev->inst.phys[dev->index];
    uint32_t ts_bits = 0;
    if (!pick_queue(dev->phys, &dev->queue_family, &ts_bits)) {
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "device %u has no compute queue", dev->index);
        goto fail;
    }
    vk_caps_query(dev->phys, ts_bits, &dev->real);
    vk_caps_query_coopmat(dev->inst.instance, dev->phys, &dev->real);
    if (dev->real.api_version < VK_API_VERSION_1_1) {
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "device %u (%s) supports only Vulkan 1.0; vkformer needs 1.1",
                      dev->index, dev->real.name);
        goto fail;
    }
    dev->caps = dev->real;
    if (desc->memory_budget && desc->memory_budget < dev->caps.memory_budget)
        dev->caps.memory_budget = desc->memory_budget;
    s = vk_caps_clamp(d, &dev->caps, desc->caps_clamp);
    if (s != VKF_OK) goto fail;
    s = create_logical_device(dev);
    if (s != VKF_OK) goto fail;

    s = vk_alloc_init(dev);
    if (s != VKF_OK) goto fail;
    s = vk_pipelines_init(dev, desc->cache_enabled, desc->cache_path);
    if (s != VKF_OK) goto fail;

    char line[1024];
    vk_caps_line(&dev->caps, line, sizeof line);
    base_log(d, VKF_LOG_INFO, "device %u: %s", dev->index, line);
    *out = dev;
    return VKF_OK;
fail:
    vk_device_destroy(dev);
    return s;
}

void vk_device_destroy(vk_device *dev)
{
    if (!dev) return;
    if (dev->device) {
        VkResult r = dev->fn.vkDeviceWaitIdle(dev->device);
        if (r != VK_SUCCESS) base_log(dev->diag, VKF_LOG_WARN, "vkDeviceWaitIdle at destroy: %s", vk_result_string(r));
        vk_pipelines_destroy(dev);
        vk_alloc_destroy(dev);
        dev->fn.vkDestroyDevice(dev->device, NULL);
    }
    vk_instance_destroy(&dev->inst);
    pthread_mutex_destroy(&dev->queue_lock);
    free(dev);
}
