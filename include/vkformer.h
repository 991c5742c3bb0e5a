/*
 * vkformer: Hugging Face transformer models on any Vulkan GPU.
 *
 * Usage, step by step:
 *
 *   1. Create a context. A zero-initialised desc picks the best device
 *      (discrete, then integrated, virtual, CPU) and sensible defaults:
 *
 *          vkf_context *ctx;
 *          if (vkf_context_create(&(vkf_context_desc){0}, &ctx) != VKF_OK) {
 *              fprintf(stderr, "%s\n", vkf_last_error(NULL));
 *              return 1;
 *          }
 *
 *   2. Every call returns a vkf_status. On failure, vkf_last_error(ctx) holds a
 *      message naming the file, tensor or Vulkan call and what was wrong. Calls
 *      that have no context yet (vkf_context_create, vkf_list_devices) leave
 *      their message in vkf_last_error(NULL), which is per thread.
 *
 *   3. Destroy what you created: vkf_context_destroy(ctx).
 *
 * Environment variables (a desc field, where set, wins):
 *   VKF_DEVICE=N|name       device index, or a substring of its name
 *   VKF_VALIDATION=1        enable the Khronos validation layer, with
 *                           synchronization validation
 *   VKF_CAPS="k=v,..."      clamp what the library believes about the device,
 *                           e.g. "subgroup=64,shared=16384,fp16=0,max_range=134217728"
 *   VKF_PIPELINE_CACHE=PATH|off   pipeline cache file (default
 *                           $XDG_CACHE_HOME/vkformer/pipelines-<vendor>-<device>.bin)
 *   VKF_LOG=error|warn|info|debug   log level of the default stderr logger
 *
 * Threading: contexts are independent (no global state), so two contexts on
 * two GPUs work side by side. One context may be shared between threads; the
 * library serialises its queue submissions internally.
 */
#ifndef VKFORMER_H
#define VKFORMER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VKF_VERSION_MAJOR 0
#define VKF_VERSION_MINOR 1
#define VKF_VERSION_PATCH 0

typedef enum vkf_status {
    VKF_OK = 0,
    VKF_ERROR_INVALID_ARGUMENT, /* a NULL pointer, an out-of-range value */
    VKF_ERROR_NO_VULKAN,        /* no Vulkan loader, or no driver (ICD) */
    VKF_ERROR_NO_DEVICE,        /* no device, or the one asked for does not exist */
    VKF_ERROR_UNSUPPORTED,      /* the device or build lacks something needed */
    VKF_ERROR_OUT_OF_MEMORY,    /* device memory (or its budget) or host memory exhausted */
    VKF_ERROR_VULKAN,           /* a Vulkan call failed */
    VKF_ERROR_DEVICE_LOST,      /* the GPU was lost (driver reset, timeout) */
    VKF_ERROR_IO,               /* a file is missing or unreadable */
    VKF_ERROR_FORMAT,           /* a file's content is malformed */
    VKF_ERROR_SHAPE,            /* tensor shapes or dtypes do not fit */
    VKF_ERROR_NOT_FOUND,        /* a named thing (tensor, shader, label) is missing */
    VKF_STATUS_COUNT
} vkf_status;

/* A short fixed description of a status code ("out of memory"). */
const char *vkf_status_string(vkf_status status);

typedef struct vkf_context vkf_context;

typedef enum vkf_log_level {
    VKF_LOG_ERROR = 0,
    VKF_LOG_WARN,
    VKF_LOG_INFO,
    VKF_LOG_DEBUG
} vkf_log_level;

typedef void (*vkf_log_fn)(void *user, vkf_log_level level, const char *message);

typedef enum vkf_toggle {
    VKF_DEFAULT = 0, /* the environment variable decides, else the built-in default */
    VKF_ON,
    VKF_OFF
} vkf_toggle;

typedef struct vkf_context_desc {
    /* With use_device_index set, the device at device_index as listed by
     * vkf_list_devices; unset: VKF_DEVICE, else the best device. */
    int use_device_index;
    uint32_t device_index;
    vkf_toggle validation;         /* Khronos validation + synchronization validation */
    const char *caps_override;     /* same syntax as VKF_CAPS; NULL: use VKF_CAPS */
    vkf_toggle pipeline_cache;     /* persist the VkPipelineCache to disk (default on) */
    const char *pipeline_cache_path; /* NULL: VKF_PIPELINE_CACHE, else the XDG default */
    uint64_t memory_budget;        /* cap on device memory in bytes; 0: the heap size */
    vkf_log_fn log_fn;             /* NULL: stderr */
    void *log_user;
    int log_level;                 /* 0: VKF_LOG or warn; else vkf_log_level + 1 */
} vkf_context_desc;

vkf_status vkf_context_create(const vkf_context_desc *desc, vkf_context **out);
void vkf_context_destroy(vkf_context *ctx);

/* The last error message of calls on ctx; with ctx NULL, of this thread's
 * context-less calls. Never NULL; "" when there was none. */
const char *vkf_last_error(const vkf_context *ctx);

typedef enum vkf_device_type {
    VKF_DEVICE_OTHER = 0,
    VKF_DEVICE_INTEGRATED,
    VKF_DEVICE_DISCRETE,
    VKF_DEVICE_VIRTUAL,
    VKF_DEVICE_CPU
} vkf_device_type;

typedef struct vkf_device_info {
    uint32_t index;
    char name[256];
    vkf_device_type type;
    uint32_t vendor_id, device_id;
    char driver[256];              /* driver name and version as the driver reports them */
    uint32_t api_version;          /* VK_MAKE_API_VERSION encoding */
    uint32_t subgroup_size;
    uint32_t shared_memory;        /* bytes per workgroup */
    uint64_t max_storage_buffer_range;
    uint64_t device_local_bytes;   /* size of the largest device-local heap */
    int fp16;                      /* fp16 arithmetic in shaders */
    int storage16;                 /* 16-bit storage buffers */
    char caps_line[1024];          /* every capability on one line */
} vkf_device_info;

/* Lists the Vulkan devices. Fills up to `capacity` entries of `infos` (which may
 * be NULL with capacity 0) and sets *count to the number of devices. The desc's
 * caps_override applies; its device_index is ignored. */
vkf_status vkf_list_devices(const vkf_context_desc *desc, vkf_device_info *infos,
                            uint32_t capacity, uint32_t *count);

/* Every device with every capability as a JSON array. Free with vkf_free. */
vkf_status vkf_list_devices_json(const vkf_context_desc *desc, char **json);

/* The device the context runs on, its capabilities as the library believes them. */
vkf_status vkf_context_device(const vkf_context *ctx, vkf_device_info *info);

typedef struct vkf_memory_stats {
    uint64_t device_bytes_in_use;   /* bytes handed out to buffers now */
    uint64_t device_bytes_peak;     /* the most ever in use at once */
    uint64_t device_bytes_reserved; /* VkDeviceMemory held in blocks */
    uint32_t allocations;           /* live sub-allocations */
    uint32_t vk_allocations;        /* live VkDeviceMemory objects */
} vkf_memory_stats;

void vkf_context_memory_stats(const vkf_context *ctx, vkf_memory_stats *stats);

/* Validation messages received since the context was created (0 when the
 * validation layer is off). */
void vkf_context_validation_counts(const vkf_context *ctx, uint32_t *errors, uint32_t *warnings);

/* Writes the pipeline cache now (it is also written at destroy when it changed). */
vkf_status vkf_context_save_pipeline_cache(vkf_context *ctx);

/* Frees memory the library returned to the caller (JSON strings). */
void vkf_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
