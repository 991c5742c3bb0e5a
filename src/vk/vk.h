/* Vulkan plumbing: instance and device (volk), capabilities, memory allocator,
 * buffers, embedded SPIR-V, pipelines and their on-disk cache, and the
 * dispatch recorder (vk_stream) used by both eager op calls and compiled graphs.
 * Knows nothing about ops, graphs or models. */
#ifndef VKF_VK_H
#define VKF_VK_H

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <volk.h>

#include <pthread.h>
#include <stdatomic.h>

#include "../base/base.h"

/* ---- capabilities ------------------------------------------------------ */

#define VK_MAX_COOPMAT 16

typedef struct vk_coopmat_shape {
    uint32_t m, n, k;
    uint32_t a_type, b_type, c_type, result_type; /* VkComponentTypeKHR values */
} vk_coopmat_shape;

typedef struct vk_caps {
    char name[256];
    char driver[256];          /* "<driverName> <driverInfo>" or decoded version */
    VkPhysicalDeviceType type;
    uint32_t vendor_id, device_id, driver_version, api_version;
    uint8_t cache_uuid[VK_UUID_SIZE];

    uint32_t subgroup_size;    /* what kernels are chosen for */
    uint32_t subgroup_min, subgroup_max;
    bool subgroup_size_control; /* VK_EXT_subgroup_size_control usable for compute */
    bool full_subgroups;
    bool subgroup_arith, subgroup_shuffle, subgroup_ballot; /* in compute */

    uint32_t shared_memory;
    uint64_t max_storage_buffer_range;
    uint32_t max_texel_buffer_elements;
    uint32_t max_workgroup_size[3];
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_count[3];
    uint32_t max_push_constants;
    uint64_t min_storage_align, min_texel_align;

    bool fp16;        /* shaderFloat16 */
    bool storage16;   /* storageBuffer16BitAccess */
    bool storage8;    /* storageBuffer8BitAccess */
    bool int8;        /* shaderInt8 */
    bool int_dot;     /* shaderIntegerDotProduct */
    bool coopmat_khr; /* VK_KHR_cooperative_matrix present */
    uint32_t n_coopmat;
    vk_coopmat_shape coopmat[VK_MAX_COOPMAT];

    bool cpu_kernels; /* kernels shaped for SIMD-on-CPU drivers (lavapipe) */

    bool timestamps;
    float timestamp_period_ns;
    uint32_t timestamp_bits;

    uint32_t n_heaps;
    uint64_t heap_size[VK_MAX_MEMORY_HEAPS];
    bool heap_device_local[VK_MAX_MEMORY_HEAPS];
    bool uma;                /* device-local memory is host-visible */
    uint64_t max_alloc_size;
    uint32_t max_alloc_count;
    uint64_t memory_budget;  /* bytes the allocator may hold; from the heap or a clamp */

    char clamped[256];       /* which values a clamp changed, "" when none */
} vk_caps;

/* Reads the device's properties and features. */
void vk_caps_query(VkPhysicalDevice phys, uint32_t queue_timestamp_bits, vk_caps *caps);
/* Cooperative-matrix shapes (an instance-level query). */
void vk_caps_query_coopmat(VkInstance instance, VkPhysicalDevice phys, vk_caps *caps);
/* Applies "key=value,..." (VKF_CAPS syntax) to caps. Unknown keys or bad
 * values fail with a message naming them. */
vkf_status vk_caps_clamp(base_diag *d, vk_caps *caps, const char *spec);
/* One line with every capability. */
void vk_caps_line(const vk_caps *caps, char *buf, size_t size);
/* Fills the public info struct. */
void vk_caps_to_info(const vk_caps *caps, uint32_t index, vkf_device_info *info);
/* A JSON object (cJSON *) with every capability; the caller owns it. */
void *vk_caps_json(const vk_caps *caps, uint32_t index);

const char *vk_result_string(VkResult r);
const char *vk_device_type_string(VkPhysicalDeviceType t);

/* ---- instance ----------------------------------------------------------- */

typedef struct vk_instance {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    bool validation;
    base_diag *diag;
    atomic_uint validation_errors, validation_warnings;
    VkPhysicalDevice *phys;
    uint32_t n_phys;
} vk_instance;

/* Loads Vulkan, creates the instance (with validation when asked) and lists the
 * physical devices. *inst must be zeroed; on failure it is left destroyable. */
vkf_status vk_instance_create(base_diag *d, bool validation, vk_instance *inst);
void vk_instance_destroy(vk_instance *inst);
/* Whether validation was asked for by the desc toggle or VKF_VALIDATION. */
bool vk_validation_wanted(vkf_toggle t);

/* ---- memory --------------------------------------------------------------- */

typedef enum vk_mem_kind {
    VK_MEM_DEVICE = 0, /* device-local: weights, activations */
    VK_MEM_UPLOAD,     /* host-visible, write-combined where possible */
    VK_MEM_READBACK,   /* host-visible, cached where possible */
    VK_MEM_KIND_COUNT
} vk_mem_kind;

typedef struct vk_range {
    VkDeviceSize offset, size;
} vk_range;

typedef struct vk_block {
    VkDeviceMemory memory;
    VkBuffer buffer;      /* one buffer spans the block; allocations are ranges of it */
    VkDeviceSize size, used;
    uint32_t type;
    bool dedicated;
    void *mapped;
    vk_range *free;       /* sorted by offset, coalesced */
    size_t n_free, cap_free;
} vk_block;

/* A buffer as the rest of the library sees it: a range of a block's buffer. */
typedef struct vk_buf {
    VkBuffer buffer;
    VkDeviceSize offset, size;
    void *mapped;          /* non-NULL when host-visible */
    vk_block *block;
    VkDeviceSize reserved; /* aligned size taken from the block */
} vk_buf;

typedef struct vk_allocator {
    pthread_mutex_t lock;
    vk_block **blocks;
    size_t n_blocks, cap_blocks;
    uint32_t type_of[VK_MEM_KIND_COUNT];
    VkMemoryPropertyFlags type_flags[VK_MAX_MEMORY_TYPES];
    uint32_t type_heap[VK_MAX_MEMORY_TYPES];
    VkDeviceSize block_size, alignment;
    VkBufferUsageFlags usage;
    uint64_t budget, reserved, in_use, peak;
    uint32_t live, vk_count;
} vk_allocator;

/* ---- SPIR-V registry (generated at build time) ----------------------------- */

typedef struct vk_spirv {
    const char *name;
    const uint32_t *code;
    size_t size; /* bytes */
} vk_spirv;

const vk_spirv *vk_spirv_find(const char *name);
/* Hash of every embedded module: a pipeline cache built from other SPIR-V is stale. */
uint64_t vk_spirv_hash(void);

/* ---- pipelines ------------------------------------------------------------ */

#define VK_MAX_ARGS 8
#define VK_MAX_SPEC 16
#define VK_MAX_PUSH 128

typedef enum vk_arg_kind {
    VK_ARG_STORAGE = 0,  /* storage buffer */
    VK_ARG_TEXEL,        /* uniform texel buffer (samplerBuffer), read-only */
} vk_arg_kind;

typedef struct vk_pipeline_key {
    const char *shader;
    uint32_t spec[VK_MAX_SPEC]; /* ids 0..2 are local_size_x/y/z */
    uint32_t n_spec;
    uint32_t subgroup_size;     /* required subgroup size; 0 = the driver's choice */
    uint8_t arg_kinds[VK_MAX_ARGS];
    uint32_t n_args;
    uint32_t push_size;
} vk_pipeline_key;

typedef struct vk_pipeline {
    vk_pipeline_key key;
    uint64_t hash;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    bool cache_hit; /* the driver reported a pipeline-cache hit */
} vk_pipeline;

typedef struct vk_pipelines {
    pthread_mutex_t lock;
    vk_pipeline **items;
    size_t n, cap;
    VkPipelineCache cache;
    char *cache_path;           /* NULL: not persisted */
    bool cache_default;         /* the XDG default path (its directory may be created) */
    size_t cache_loaded_bytes;  /* initial data handed to the driver */
    uint32_t created, hits;
    bool dirty;
} vk_pipelines;

/* ---- device ----------------------------------------------------------------- */

/* Vulkan calls made, by kind; the graph's run path must not add to most of them. */
typedef struct vk_counters {
    atomic_uint create;       /* vkCreate* */
    atomic_uint allocate;     /* vkAllocate* */
    atomic_uint update_sets;  /* vkUpdateDescriptorSets */
    atomic_uint begin_cmd;    /* vkBeginCommandBuffer */
    atomic_uint submit;       /* vkQueueSubmit */
    atomic_uint wait;         /* vkWaitForFences */
} vk_counters;

typedef struct vk_device {
    base_diag *diag;
    vk_instance inst;
    uint32_t index;
    VkPhysicalDevice phys;
    VkDevice device;
    struct VolkDeviceTable fn;
    uint32_t queue_family;
    VkQueue queue;
    pthread_mutex_t queue_lock;
    vk_caps real;                /* as the driver reports */
    vk_caps caps;                /* as the library believes (after clamps) */
    vk_allocator alloc;
    vk_pipelines pipes;
    vk_counters calls;
} vk_device;

typedef struct vk_device_desc {
    bool validation;
    bool use_index;
    uint32_t index;
    const char *select;          /* VKF_DEVICE: index or name substring */
    const char *caps_clamp;
    bool cache_enabled;
    const char *cache_path;      /* NULL: the XDG default */
    uint64_t memory_budget;
} vk_device_desc;

vkf_status vk_device_create(base_diag *d, const vk_device_desc *desc, vk_device **out);
void vk_device_destroy(vk_device *dev);

/* Checks a VkResult; on failure records "<what>: <result>" and returns a status. */
vkf_status vk_check(base_diag *d, VkResult r, const char *what);
#define VK_TRY(dev, call)                                                              \
    do {                                                                               \
        VkResult vk_try_r_ = (call);                                                   \
        if (vk_try_r_ != VK_SUCCESS) return vk_check((dev)->diag, vk_try_r_, #call);   \
    } while (0)

/* ---- allocator API ------------------------------------------------------- */

vkf_status vk_alloc_init(vk_device *dev);
void vk_alloc_destroy(vk_device *dev);
/* A buffer of `size` bytes; `what` names it in error messages. */
vkf_status vk_buf_alloc(vk_device *dev, VkDeviceSize size, vk_mem_kind kind, const char *what,
                        vk_buf *out);
void vk_buf_free(vk_device *dev, vk_buf *buf);
void vk_alloc_stats(vk_device *dev, vkf_memory_stats *stats);

/* ---- pipeline API ------------------------------------------------------------ */

vkf_status vk_pipelines_init(vk_device *dev, bool cache_enabled, const char *cache_path);
void vk_pipelines_destroy(vk_device *dev);
vkf_status vk_pipelines_save(vk_device *dev);
vkf_status vk_pipeline_get(vk_device *dev, const vk_pipeline_key *key, vk_pipeline **out);
/* The default cache file for a device ($XDG_CACHE_HOME or ~/.cache). */
void vk_pipeline_cache_default_path(const vk_caps *caps, char *buf, size_t size);

/* ---- commands ------------------------------------------------------------------ */

/* Submits a recorded command buffer and signals fence (no wait). */
vkf_status vk_queue_submit(vk_device *dev, VkCommandBuffer cmd, VkFence fence);
vkf_status vk_fence_wait(vk_device *dev, VkFence fence);

/* Host <-> device copies. Host-visible buffers are copied directly; others go
 * through bounded staging in chunks, each an eager vk_stream. */
vkf_status vk_upload(vk_device *dev, const vk_buf *dst, VkDeviceSize offset, const void *src,
                     size_t size);
vkf_status vk_download(vk_device *dev, const vk_buf *src, VkDeviceSize offset, void *dst,
                       size_t size);

/* A global compute/transfer -> compute/transfer memory barrier. */
void vk_cmd_barrier(vk_device *dev, VkCommandBuffer cmd);
/* Makes device writes visible to host reads after the fence. */
void vk_cmd_host_barrier(vk_device *dev, VkCommandBuffer cmd);

/* ---- dispatch recorder ------------------------------------------------------- */

typedef struct vk_arg {
    VkBuffer buffer;
    VkDeviceSize offset, size;
    uint8_t kind;    /* vk_arg_kind */
    bool write;      /* the shader writes it */
    VkFormat format; /* texel args */
} vk_arg;

/* One compute dispatch, fully described: what the ops produce and what a
 * stream turns into pipeline, descriptor set, barriers and vkCmdDispatch. */
typedef struct vk_dispatch {
    const char *shader;
    uint32_t spec[VK_MAX_SPEC];
    uint32_t n_spec;
    uint32_t subgroup_size;
    uint8_t push[VK_MAX_PUSH];
    uint32_t push_size;
    vk_arg args[VK_MAX_ARGS];
    uint32_t n_args;
    uint32_t groups[3];
    const char *label;
} vk_dispatch;

typedef struct vk_access {
    VkBuffer buffer;
    VkDeviceSize begin, end;
} vk_access;

enum {
    VK_STREAM_PROFILE = 1u << 0, /* timestamp after every dispatch, barriers between all */
    VK_STREAM_REUSABLE = 1u << 1 /* recorded once, submitted many times */
};

typedef struct vk_stream {
    vk_device *dev;
    unsigned flags;
    VkCommandBuffer cmd;
    VkCommandPool pool;        /* own pool for reusable streams */
    VkFence fence;
    VkDescriptorPool *pools;
    size_t n_pools, cap_pools;
    uint32_t pool_sets_left;
    VkBufferView *views;
    size_t n_views, cap_views;
    vk_access *written, *read; /* since the last barrier */
    size_t n_written, cap_written, n_read, cap_read;
    uint32_t n_dispatches, n_barriers;
    VkQueryPool queries;
    uint32_t n_queries, cap_queries;
    const char **query_labels; /* label of the dispatch that ends at query i */
    bool recording, in_flight;
} vk_stream;

vkf_status vk_stream_begin(vk_device *dev, vk_stream *s, unsigned flags);
vkf_status vk_stream_dispatch(vk_stream *s, const vk_dispatch *d);
/* A buffer copy, ordered against dispatches like any other access. */
vkf_status vk_stream_copy(vk_stream *s, const vk_buf *src, VkDeviceSize src_off, const vk_buf *dst,
                          VkDeviceSize dst_off, VkDeviceSize size);
/* Writes a timestamp now; returns its index through *index (when timestamps exist). */
vkf_status vk_stream_timestamp(vk_stream *s, uint32_t *index);
vkf_status vk_stream_end(vk_stream *s);
/* Submit and wait (eager streams: also the end of the stream's use). */
vkf_status vk_stream_submit(vk_stream *s);
vkf_status vk_stream_wait(vk_stream *s);
/* Timestamp values in nanoseconds (after wait). */
vkf_status vk_stream_read_timestamps(vk_stream *s, double *ns, uint32_t count);
void vk_stream_destroy(vk_stream *s);

/* Convenience for one-off use: begin, dispatch all, end, submit, wait, destroy. */
vkf_status vk_run_dispatches(vk_device *dev, const vk_dispatch *ds, size_t n);

/* A storage argument over a range of a buffer. */
vk_arg vk_arg_range(const vk_buf *b, VkDeviceSize offset, VkDeviceSize size, bool write);

#endif
