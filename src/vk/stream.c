/* The dispatch recorder. Ops describe dispatches (vk_dispatch); a stream turns
 * each into pipeline + descriptor set + barrier + vkCmdDispatch. Eager calls
 * record, submit and drop a stream; a compiled graph records one reusable
 * stream and only submits it afterwards.
 *
 * Barriers come from tracking the buffer ranges read and written since the
 * last barrier: a dispatch that reads or writes what an earlier one wrote
 * (RAW, WAW), or writes what an earlier one read (WAR), gets one global
 * memory barrier first; independent dispatches get none. */
#include "vk.h"

#include <stdlib.h>
#include <string.h>

#define SETS_PER_POOL 256
#define MAX_QUERIES 8192

static VkResult new_descriptor_pool(vk_stream *s)
{
    vk_device *dev = s->dev;
    if (!base_grow((void **)&s->pools, &s->cap_pools, s->n_pools + 1, sizeof(*s->pools)))
        return VK_ERROR_OUT_OF_HOST_MEMORY;
    VkDescriptorPoolSize sizes[] = {
        {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * VK_MAX_ARGS},
        {VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, SETS_PER_POOL * VK_MAX_ARGS},
    };
    VkDescriptorPoolCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = SETS_PER_POOL,
        .poolSizeCount = 2,
        .pPoolSizes = sizes,
    };
    atomic_fetch_add(&dev->calls.create, 1);
    VkResult r = dev->fn.vkCreateDescriptorPool(dev->device, &ci, NULL, &s->pools[s->n_pools]);
    if (r == VK_SUCCESS) {
        s->n_pools++;
        s->pool_sets_left = SETS_PER_POOL;
    }
    return r;
}

vkf_status vk_stream_begin(vk_device *dev, vk_stream *s, unsigned flags)
{
    memset(s, 0, sizeof(*s));
    s->dev = dev;
    s->flags = flags;
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = (flags & VK_STREAM_REUSABLE) ? 0 : VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
        .queueFamilyIndex = dev->queue_family,
    };
    atomic_fetch_add(&dev->calls.create, 2);
    VK_TRY(dev, dev->fn.vkCreateCommandPool(dev->device, &pci, NULL, &s->pool));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_TRY(dev, dev->fn.vkCreateFence(dev->device, &fci, NULL, &s->fence));
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = s->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    atomic_fetch_add(&dev->calls.allocate, 1);
    VK_TRY(dev, dev->fn.vkAllocateCommandBuffers(dev->device, &ai, &s->cmd));
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = (flags & VK_STREAM_REUSABLE) ? 0 : VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    atomic_fetch_add(&dev->calls.begin_cmd, 1);
    VK_TRY(dev, dev->fn.vkBeginCommandBuffer(s->cmd, &bi));
    s->recording = true;
    return VKF_OK;
}

static bool overlaps(const vk_access *list, size_t n, VkBuffer buffer, VkDeviceSize begin, VkDeviceSize end)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].buffer == buffer && list[i].begin < end && begin < list[i].end) return true;
    return false;
}

static bool push_access(vk_access **list, size_t *n, size_t *cap, VkBuffer buffer, VkDeviceSize begin,
                        VkDeviceSize end)
{
    if (!base_grow((void **)list, cap, *n + 1, sizeof(**list))) return false;
    (*list)[(*n)++] = (vk_access){buffer, begin, end};
    return true;
}

/* Orders an access set against what came before since the last barrier. */
static vkf_status track(vk_stream *s, const vk_arg *args, uint32_t n)
{
    bool hazard = (s->flags & VK_STREAM_PROFILE) && s->n_dispatches > 0;
    for (uint32_t i = 0; i < n && !hazard; i++) {
        VkDeviceSize b = args[i].offset, e = args[i].offset + args[i].size;
        if (overlaps(s->written, s->n_written, args[i].buffer, b, e)) hazard = true;
        if (args[i].write && overlaps(s->read, s->n_read, args[i].buffer, b, e)) hazard = true;
    }
    if (hazard) {
        vk_cmd_barrier(s->dev, s->cmd);
        s->n_barriers++;
        s->n_written = s->n_read = 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        VkDeviceSize b = args[i].offset, e = args[i].offset + args[i].size;
        bool ok = args[i].write ? push_access(&s->written, &s->n_written, &s->cap_written, args[i].buffer, b, e)
                                : push_access(&s->read, &s->n_read, &s->cap_read, args[i].buffer, b, e);
        if (!ok) return base_fail(s->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    return VKF_OK;
}

static vkf_status check_dispatch(vk_stream *s, const vk_dispatch *d)
{
    const vk_caps *c = &s->dev->caps;
    base_diag *diag = s->dev->diag;
    if (d->n_args > VK_MAX_ARGS || d->push_size > VK_MAX_PUSH)
        return base_fail(diag, VKF_ERROR_INVALID_ARGUMENT, "dispatch of '%s': too many args or push bytes", d->shader);
    for (int i = 0; i < 3; i++)
        if (d->groups[i] > s->dev->real.max_workgroup_count[i])
            return base_fail(diag, VKF_ERROR_UNSUPPORTED, "dispatch of '%s': %u workgroups in dimension %d exceed the device's %u",
                             d->shader, d->groups[i], i, s->dev->real.max_workgroup_count[i]);
    for (uint32_t i = 0; i < d->n_args; i++) {
        const vk_arg *a = &d->args[i];
        if (a->buffer == VK_NULL_HANDLE || a->size == 0)
            return base_fail(diag, VKF_ERROR_INVALID_ARGUMENT, "dispatch of '%s': argument %u is empty", d->shader, i);
        if (a->kind == VK_ARG_STORAGE) {
            if (a->size > c->max_storage_buffer_range)
                return base_fail(diag, VKF_ERROR_UNSUPPORTED,
                                 "dispatch of '%s': argument %u spans %llu bytes, beyond the device's storage range %llu",
                                 d->shader, i, (unsigned long long)a->size,
                                 (unsigned long long)c->max_storage_buffer_range);
            if (a->offset % s->dev->real.min_storage_align)
                return base_fail(diag, VKF_ERROR_INVALID_ARGUMENT, "dispatch of '%s': argument %u offset %llu is not aligned to %llu",
                                 d->shader, i, (unsigned long long)a->offset,
                                 (unsigned long long)s->dev->real.min_storage_align);
        } else if (a->offset % s->dev->real.min_texel_align) {
            return base_fail(diag, VKF_ERROR_INVALID_ARGUMENT, "dispatch of '%s': texel argument %u offset %llu is not aligned to %llu",
                             d->shader, i, (unsigned long long)a->offset, (unsigned long long)s->dev->real.min_texel_align);
        }
    }
    return VKF_OK;
}

static uint32_t texel_bytes(VkFormat f)
{
    switch (f) {
    case VK_FORMAT_R32G32B32A32_SFLOAT: return 16;
    case VK_FORMAT_R16G16B16A16_SFLOAT: return 8;
    case VK_FORMAT_R32_SFLOAT: return 4;
    case VK_FORMAT_R16_SFLOAT: return 2;
    case VK_FORMAT_R32_SINT:
    case VK_FORMAT_R32_UINT: return 4;
    default: return 0;
    }
}

vkf_status vk_stream_dispatch(vk_stream *s, const vk_dispatch *d)
{
    vk_device *dev = s->dev;
    vkf_status st = check_dispatch(s, d);
    if (st != VKF_OK) return st;
    if (!d->groups[0] || !d->groups[1] || !d->groups[2]) return VKF_OK; /* empty shape: nothing to do */

    vk_pipeline_key key = {
        .shader = d->shader,
        .n_spec = d->n_spec,
        .subgroup_size = d->subgroup_size,
        .n_args = d->n_args,
        .push_size = d->push_size,
    };
    memcpy(key.spec, d->spec, sizeof key.spec);
    for (uint32_t i = 0; i < d->n_args; i++) key.arg_kinds[i] = d->args[i].kind;
    vk_pipeline *pl;
    st = vk_pipeline_get(dev, &key, &pl);
    if (st != VKF_OK) return st;

    if (s->pool_sets_left == 0) VK_TRY(dev, new_descriptor_pool(s));
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = s->pools[s->n_pools - 1],
        .descriptorSetCount = 1,
        .pSetLayouts = &pl->set_layout,
    };
    VkDescriptorSet set;
    atomic_fetch_add(&dev->calls.allocate, 1);
    VK_TRY(dev, dev->fn.vkAllocateDescriptorSets(dev->device, &ai, &set));
    s->pool_sets_left--;

    VkWriteDescriptorSet writes[VK_MAX_ARGS];
    VkDescriptorBufferInfo infos[VK_MAX_ARGS];
    VkBufferView views[VK_MAX_ARGS];
    for (uint32_t i = 0; i < d->n_args; i++) {
        const vk_arg *a = &d->args[i];
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = i,
            .descriptorCount = 1,
        };
        if (a->kind == VK_ARG_TEXEL) {
            uint32_t tb = texel_bytes(a->format);
            if (!tb || a->size % tb || a->size / tb > dev->caps.max_texel_buffer_elements)
                return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED,
                                 "dispatch of '%s': texel argument %u (%llu bytes) does not fit a texel buffer",
                                 d->shader, i, (unsigned long long)a->size);
            if (!base_grow((void **)&s->views, &s->cap_views, s->n_views + 1, sizeof(*s->views)))
                return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
            VkBufferViewCreateInfo vci = {
                .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                .buffer = a->buffer,
                .format = a->format,
                .offset = a->offset,
                .range = a->size,
            };
            atomic_fetch_add(&dev->calls.create, 1);
            VK_TRY(dev, dev->fn.vkCreateBufferView(dev->device, &vci, NULL, &views[i]));
            s->views[s->n_views++] = views[i];
            writes[i].descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
            writes[i].pTexelBufferView = &views[i];
        } else {
            infos[i] = (VkDescriptorBufferInfo){a->buffer, a->offset, a->size};
            writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
            writes[i].pBufferInfo = &infos[i];
        }
    }
    atomic_fetch_add(&dev->calls.update_sets, 1);
    dev->fn.vkUpdateDescriptorSets(dev->device, d->n_args, writes, 0, NULL);

    st = track(s, d->args, d->n_args);
    if (st != VKF_OK) return st;
    dev->fn.vkCmdBindPipeline(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pl->pipeline);
    dev->fn.vkCmdBindDescriptorSets(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pl->layout, 0, 1, &set, 0, NULL);
    if (d->push_size)
        dev->fn.vkCmdPushConstants(s->cmd, pl->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, d->push_size, d->push);
    dev->fn.vkCmdDispatch(s->cmd, d->groups[0], d->groups[1], d->groups[2]);
    s->n_dispatches++;
    if (s->flags & VK_STREAM_PROFILE) {
        uint32_t q;
        st = vk_stream_timestamp(s, &q);
        if (st == VKF_OK && q != UINT32_MAX) s->query_labels[q] = d->label ? d->label : d->shader;
    }
    return st;
}

vkf_status vk_stream_copy(vk_stream *s, const vk_buf *src, VkDeviceSize src_off, const vk_buf *dst,
                          VkDeviceSize dst_off, VkDeviceSize size)
{
    if (size == 0) return VKF_OK;
    if (src_off + size > src->size || dst_off + size > dst->size)
        return base_fail(s->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "buffer copy of %llu bytes out of range",
                         (unsigned long long)size);
    vk_arg args[2] = {vk_arg_range(src, src_off, size, false), vk_arg_range(dst, dst_off, size, true)};
    vkf_status st = track(s, args, 2);
    if (st != VKF_OK) return st;
    VkBufferCopy region = {src->offset + src_off, dst->offset + dst_off, size};
    s->dev->fn.vkCmdCopyBuffer(s->cmd, src->buffer, dst->buffer, 1, &region);
    return VKF_OK;
}

vkf_status vk_stream_timestamp(vk_stream *s, uint32_t *index)
{
    vk_device *dev = s->dev;
    *index = UINT32_MAX;
    if (!dev->caps.timestamps) return VKF_OK;
    if (!s->queries) {
        VkQueryPoolCreateInfo qci = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = MAX_QUERIES,
        };
        atomic_fetch_add(&dev->calls.create, 1);
        VK_TRY(dev, dev->fn.vkCreateQueryPool(dev->device, &qci, NULL, &s->queries));
        s->query_labels = calloc(MAX_QUERIES, sizeof(*s->query_labels));
        if (!s->query_labels) return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        s->cap_queries = MAX_QUERIES;
    }
    if (s->n_queries >= s->cap_queries) return VKF_OK; /* past the pool: no more timestamps */
    uint32_t q = s->n_queries++;
    /* Reset right before the write, inside the command buffer, so a reusable
     * stream resets its queries on every submission. */
    dev->fn.vkCmdResetQueryPool(s->cmd, s->queries, q, 1);
    dev->fn.vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->queries, q);
    *index = q;
    return VKF_OK;
}

vkf_status vk_stream_read_timestamps(vk_stream *s, double *ns, uint32_t count)
{
    vk_device *dev = s->dev;
    if (!s->queries || count > s->n_queries)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "no timestamps recorded");
    uint64_t *raw = calloc(count ? count : 1, sizeof(*raw));
    if (!raw) return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    VkResult r = dev->fn.vkGetQueryPoolResults(dev->device, s->queries, 0, count, count * sizeof(uint64_t), raw,
                                               sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r == VK_SUCCESS) {
        uint64_t mask = dev->caps.timestamp_bits >= 64 ? ~0ull : ((1ull << dev->caps.timestamp_bits) - 1);
        for (uint32_t i = 0; i < count; i++)
            ns[i] = (double)((raw[i] - raw[0]) & mask) * (double)dev->caps.timestamp_period_ns;
    }
    free(raw);
    return vk_check(dev->diag, r, "vkGetQueryPoolResults");
}

vkf_status vk_stream_end(vk_stream *s)
{
    if (!s->recording) return VKF_OK;
    vk_cmd_host_barrier(s->dev, s->cmd);
    s->recording = false;
    VK_TRY(s->dev, s->dev->fn.vkEndCommandBuffer(s->cmd));
    return VKF_OK;
}

vkf_status vk_stream_submit(vk_stream *s)
{
    VK_TRY(s->dev, s->dev->fn.vkResetFences(s->dev->device, 1, &s->fence));
    vkf_status st = vk_queue_submit(s->dev, s->cmd, s->fence);
    s->in_flight = st == VKF_OK;
    return st;
}

vkf_status vk_stream_wait(vk_stream *s)
{
    if (!s->in_flight) return VKF_OK;
    vkf_status st = vk_fence_wait(s->dev, s->fence);
    s->in_flight = false;
    return st;
}

void vk_stream_destroy(vk_stream *s)
{
    vk_device *dev = s->dev;
    if (!dev) return;
    if (s->fence) {
        /* A submitted stream must finish before its objects go. */
        if (s->in_flight) {
            VkResult r = dev->fn.vkWaitForFences(dev->device, 1, &s->fence, VK_TRUE, UINT64_MAX);
            if (r != VK_SUCCESS) base_log(dev->diag, VKF_LOG_WARN, "vkWaitForFences at destroy: %s", vk_result_string(r));
        }
        dev->fn.vkDestroyFence(dev->device, s->fence, NULL);
    }
    for (size_t i = 0; i < s->n_views; i++) dev->fn.vkDestroyBufferView(dev->device, s->views[i], NULL);
    for (size_t i = 0; i < s->n_pools; i++) dev->fn.vkDestroyDescriptorPool(dev->device, s->pools[i], NULL);
    if (s->queries) dev->fn.vkDestroyQueryPool(dev->device, s->queries, NULL);
    if (s->pool) dev->fn.vkDestroyCommandPool(dev->device, s->pool, NULL);
    free(s->views);
    free(s->pools);
    free(s->written);
    free(s->read);
    free(s->query_labels);
    memset(s, 0, sizeof(*s));
}

vkf_status vk_run_dispatches(vk_device *dev, const vk_dispatch *ds, size_t n)
{
    vk_stream s;
    vkf_status st = vk_stream_begin(dev, &s, 0);
    for (size_t i = 0; i < n && st == VKF_OK; i++) st = vk_stream_dispatch(&s, &ds[i]);
    if (st == VKF_OK) st = vk_stream_end(&s);
    if (st == VKF_OK) st = vk_stream_submit(&s);
    if (st == VKF_OK) st = vk_stream_wait(&s);
    vk_stream_destroy(&s);
    return st;
}

vk_arg vk_arg_range(const vk_buf *b, VkDeviceSize offset, VkDeviceSize size, bool write)
{
    return (vk_arg){.buffer = b->buffer, .offset = b->offset + offset, .size = size, .kind = VK_ARG_STORAGE, .write = write};
}
