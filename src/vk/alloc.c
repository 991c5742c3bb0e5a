/* Sub-allocator: a few large VkDeviceMemory blocks per memory type, each
 * spanned by one VkBuffer; allocations are aligned ranges of it. Requests
 * larger than half a block get a dedicated block. */
#include "vk.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_BLOCK_SIZE (64ull << 20)

static uint32_t pick_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t allowed, vk_mem_kind kind,
                          const vk_caps *caps)
{
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int best = -1;
    uint64_t best_score = 0;
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        if (!(allowed & (1u << i))) continue;
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        uint64_t heap = mp->memoryHeaps[mp->memoryTypes[i].heapIndex].size;
        bool local = f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
        bool host = (f & hv) == hv;
        bool cached = f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
        if (f & (VK_MEMORY_PROPERTY_PROTECTED_BIT | VK_MEMORY_PROPERTY_LAZILY_ALLOCATED_BIT)) continue;
        uint64_t score;
        if (kind == VK_MEM_DEVICE) {
            /* The biggest device-local heap; among its types, one the host can map
             * (UMA, resizable BAR) so uploads skip staging. */
            score = ((local ? 1ull : 0ull) << 62) + (heap >> 8) * 2 + (host ? 1 : 0);
        } else {
            if (!host) continue;
            /* Upload: write-combined is fine; readback: cached reads are ~10x faster. */
            bool want_cached = kind == VK_MEM_READBACK;
            score = ((cached == want_cached) ? 4u : 0u) + ((!local || caps->uma) ? 2u : 0u) + 1u;
        }
        if (best < 0 || score > best_score) {
            best = (int)i;
            best_score = score;
        }
    }
    return best < 0 ? UINT32_MAX : (uint32_t)best;
}

vkf_status vk_alloc_init(vk_device *dev)
{
    vk_allocator *a = &dev->alloc;
    pthread_mutex_init(&a->lock, NULL);
    a->usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
               VK_BUFFER_USAGE_STORAGE_TEXEL_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT |
               VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = 4096,
        .usage = a->usage,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkBuffer probe;
    atomic_fetch_add(&dev->calls.create, 1);
    VK_TRY(dev, dev->fn.vkCreateBuffer(dev->device, &bci, NULL, &probe));
    VkMemoryRequirements req;
    dev->fn.vkGetBufferMemoryRequirements(dev->device, probe, &req);
    dev->fn.vkDestroyBuffer(dev->device, probe, NULL);

    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(dev->phys, &mp);
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++) {
        a->type_flags[i] = mp.memoryTypes[i].propertyFlags;
        a->type_heap[i] = mp.memoryTypes[i].heapIndex;
    }
    for (int k = 0; k < VK_MEM_KIND_COUNT; k++) {
        a->type_of[k] = pick_type(&mp, req.memoryTypeBits, (vk_mem_kind)k, &dev->caps);
        if (a->type_of[k] == UINT32_MAX)
            return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "no memory type usable for %s buffers",
                             k == VK_MEM_DEVICE ? "device" : "host-visible");
    }
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(dev->phys, &props);
    VkDeviceSize align = 64;
    align = BASE_MAX(align, props.limits.minStorageBufferOffsetAlignment);
    align = BASE_MAX(align, props.limits.minTexelBufferOffsetAlignment);
    align = BASE_MAX(align, props.limits.minUniformBufferOffsetAlignment);
    align = BASE_MAX(align, props.limits.nonCoherentAtomSize);
    align = BASE_MAX(align, req.alignment);
    a->alignment = align;
    a->budget = dev->caps.memory_budget;
    a->block_size = DEFAULT_BLOCK_SIZE;
    if (a->budget && a->budget < 16 * DEFAULT_BLOCK_SIZE)
        a->block_size = BASE_MAX(BASE_ALIGN_UP(a->budget / 16, align), (VkDeviceSize)1 << 20);
    if (dev->caps.max_alloc_size && a->block_size > dev->caps.max_alloc_size)
        a->block_size = dev->caps.max_alloc_size;
    return VKF_OK;
}

static void block_destroy(vk_device *dev, vk_block *b)
{
    if (b->buffer) dev->fn.vkDestroyBuffer(dev->device, b->buffer, NULL);
    if (b->memory) {
        if (b->mapped) dev->fn.vkUnmapMemory(dev->device, b->memory);
        dev->fn.vkFreeMemory(dev->device, b->memory, NULL);
        dev->alloc.vk_count--;
        dev->alloc.reserved -= b->size;
    }
    free(b->free);
    free(b);
}

void vk_alloc_destroy(vk_device *dev)
{
    vk_allocator *a = &dev->alloc;
    if (!a->usage) return; /* never initialised */
    for (size_t i = 0; i < a->n_blocks; i++) block_destroy(dev, a->blocks[i]);
    free(a->blocks);
    a->blocks = NULL;
    a->n_blocks = 0;
    pthread_mutex_destroy(&a->lock);
}

static vkf_status block_create(vk_device *dev, uint32_t type, VkDeviceSize size, bool dedicated,
                               const char *what, vk_block **out)
{
    vk_allocator *a = &dev->alloc;
    char b1[32], b2[32], b3[32];
    if (a->budget && a->reserved + size > a->budget)
        return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY,
                         "device memory exhausted allocating %s for %s: %s already held of a %s budget",
                         base_fmt_bytes(size, b1), what, base_fmt_bytes(a->reserved, b2),
                         base_fmt_bytes(a->budget, b3));
    if (dev->caps.max_alloc_count && a->vk_count >= dev->caps.max_alloc_count)
        return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY,
                         "allocating %s: the device allows only %u memory allocations", what,
                         dev->caps.max_alloc_count);
    if (!base_grow((void **)&a->blocks, &a->cap_blocks, a->n_blocks + 1, sizeof(*a->blocks)))
        return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vk_block *b = calloc(1, sizeof(*b));
    if (!b) return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    b->size = size;
    b->type = type;
    b->dedicated = dedicated;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = a->usage,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    atomic_fetch_add(&dev->calls.create, 1);
    VkResult r = dev->fn.vkCreateBuffer(dev->device, &bci, NULL, &b->buffer);
    if (r != VK_SUCCESS) {
        block_destroy(dev, b);
        return vk_check(dev->diag, r, "vkCreateBuffer");
    }
    VkMemoryRequirements req;
    dev->fn.vkGetBufferMemoryRequirements(dev->device, b->buffer, &req);
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = type,
    };
    atomic_fetch_add(&dev->calls.allocate, 1);
    r = dev->fn.vkAllocateMemory(dev->device, &mai, NULL, &b->memory);
    if (r != VK_SUCCESS) {
        b->memory = VK_NULL_HANDLE;
        block_destroy(dev, b);
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
            return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY,
                             "device memory exhausted allocating %s for %s (%s; %s held)",
                             base_fmt_bytes(size, b1), what, vk_result_string(r), base_fmt_bytes(a->reserved, b2));
        return vk_check(dev->diag, r, "vkAllocateMemory");
    }
    a->vk_count++;
    a->reserved += b->size;
    r = dev->fn.vkBindBufferMemory(dev->device, b->buffer, b->memory, 0);
    /* Only coherent memory is mapped, so no flush/invalidate is ever needed. */
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if (r == VK_SUCCESS && (a->type_flags[type] & hv) == hv)
        r = dev->fn.vkMapMemory(dev->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped);
    if (r != VK_SUCCESS) {
        block_destroy(dev, b);
        return vk_check(dev->diag, r, "vkBindBufferMemory/vkMapMemory");
    }
    b->free = malloc(sizeof(*b->free));
    if (!b->free) {
        block_destroy(dev, b);
        return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    b->free[0] = (vk_range){0, size};
    b->n_free = b->cap_free = 1;
    a->blocks[a->n_blocks++] = b;
    *out = b;
    return VKF_OK;
}

vkf_status vk_buf_alloc(vk_device *dev, VkDeviceSize size, vk_mem_kind kind, const char *what, vk_buf *out)
{
    vk_allocator *a = &dev->alloc;
    memset(out, 0, sizeof(*out));
    VkDeviceSize need = BASE_ALIGN_UP(BASE_MAX(size, (VkDeviceSize)1), a->alignment);
    char b1[32], b2[32];
    if (dev->caps.max_alloc_size && need > dev->caps.max_alloc_size)
        return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY,
                         "%s needs %s, more than the device's largest allocation (%s)", what,
                         base_fmt_bytes(need, b1), base_fmt_bytes(dev->caps.max_alloc_size, b2));
    uint32_t type = a->type_of[kind];
    pthread_mutex_lock(&a->lock);
    vk_block *block = NULL;
    size_t range = 0;
    for (size_t i = 0; i < a->n_blocks; i++) {
        vk_block *b = a->blocks[i];
        if (b->type != type || b->dedicated) continue;
        for (size_t j = 0; j < b->n_free; j++)
            if (b->free[j].size >= need && (!block || b->free[j].size < block->free[range].size)) {
                block = b;
                range = j;
            }
    }
    vkf_status s = VKF_OK;
    if (!block) {
        bool dedicated = need > a->block_size / 2;
        s = block_create(dev, type, dedicated ? need : a->block_size, dedicated, what, &block);
        /* Near the budget, a block sized to the request may still fit. */
        if (s == VKF_ERROR_OUT_OF_MEMORY && !dedicated)
            s = block_create(dev, type, need, true, what, &block);
        range = 0;
    }
    if (s == VKF_OK) {
        vk_range *r = &block->free[range];
        out->buffer = block->buffer;
        out->offset = r->offset;
        out->size = size;
        out->reserved = need;
        out->block = block;
        out->mapped = block->mapped ? (char *)block->mapped + r->offset : NULL;
        r->offset += need;
        r->size -= need;
        if (r->size == 0) {
            memmove(r, r + 1, (block->n_free - range - 1) * sizeof(*r));
            block->n_free--;
        }
        block->used += need;
        a->in_use += need;
        if (a->in_use > a->peak) a->peak = a->in_use;
        a->live++;
    }
    pthread_mutex_unlock(&a->lock);
    return s;
}

void vk_buf_free(vk_device *dev, vk_buf *buf)
{
    if (!buf || !buf->block) return;
    vk_allocator *a = &dev->alloc;
    pthread_mutex_lock(&a->lock);
    vk_block *b = buf->block;
    VkDeviceSize off = buf->offset, size = buf->reserved;
    size_t i = 0;
    while (i < b->n_free && b->free[i].offset < off) i++;
    bool merge_prev = i > 0 && b->free[i - 1].offset + b->free[i - 1].size == off;
    bool merge_next = i < b->n_free && off + size == b->free[i].offset;
    if (merge_prev && merge_next) {
        b->free[i - 1].size += size + b->free[i].size;
        memmove(&b->free[i], &b->free[i + 1], (b->n_free - i - 1) * sizeof(*b->free));
        b->n_free--;
    } else if (merge_prev) {
        b->free[i - 1].size += size;
    } else if (merge_next) {
        b->free[i].offset = off;
        b->free[i].size += size;
    } else if (base_grow((void **)&b->free, &b->cap_free, b->n_free + 1, sizeof(*b->free))) {
        memmove(&b->free[i + 1], &b->free[i], (b->n_free - i) * sizeof(*b->free));
        b->free[i] = (vk_range){off, size};
        b->n_free++;
    } /* else: out of host memory, the range leaks inside the block until destroy */
    b->used -= size;
    a->in_use -= size;
    a->live--;
    if (b->used == 0) {
        /* Give back dedicated blocks and all but one spare block per type. */
        bool spare_exists = false;
        for (size_t j = 0; j < a->n_blocks; j++)
            if (a->blocks[j] != b && a->blocks[j]->type == b->type && !a->blocks[j]->dedicated &&
                a->blocks[j]->used == 0)
                spare_exists = true;
        if (b->dedicated || spare_exists) {
            for (size_t j = 0; j < a->n_blocks; j++)
                if (a->blocks[j] == b) {
                    a->blocks[j] = a->blocks[--a->n_blocks];
                    break;
                }
            block_destroy(dev, b);
        }
    }
    pthread_mutex_unlock(&a->lock);
    memset(buf, 0, sizeof(*buf));
}

void vk_alloc_stats(vk_device *dev, vkf_memory_stats *st)
{
    vk_allocator *a = &dev->alloc;
    pthread_mutex_lock(&a->lock);
    st->device_bytes_in_use = a->in_use;
    st->device_bytes_peak = a->peak;
    st->device_bytes_reserved = a->reserved;
    st->allocations = a->live;
    st->vk_allocations = a->vk_count;
    pthread_mutex_unlock(&a->lock);
}
