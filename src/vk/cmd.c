/* One-time command buffers, host<->device copies and barriers. One-time work
 * holds the queue lock from begin to the end of submit_wait: it is load-time
 * work, and the shared command pool needs external synchronisation. */
#include "vk.h"

#include <string.h>

#define STAGING_CHUNK (16ull << 20)

vkf_status vk_cmd_begin(vk_device *dev, VkCommandBuffer *cmd)
{
    pthread_mutex_lock(&dev->queue_lock);
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = dev->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    atomic_fetch_add(&dev->calls.allocate, 1);
    VkResult r = dev->fn.vkAllocateCommandBuffers(dev->device, &ai, cmd);
    if (r == VK_SUCCESS) {
        VkCommandBufferBeginInfo bi = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
            .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
        };
        atomic_fetch_add(&dev->calls.begin_cmd, 1);
        r = dev->fn.vkBeginCommandBuffer(*cmd, &bi);
        if (r != VK_SUCCESS) dev->fn.vkFreeCommandBuffers(dev->device, dev->cmd_pool, 1, cmd);
    }
    if (r != VK_SUCCESS) {
        pthread_mutex_unlock(&dev->queue_lock);
        return vk_check(dev->diag, r, "vkAllocateCommandBuffers/vkBeginCommandBuffer");
    }
    return VKF_OK;
}

static vkf_status submit_locked(vk_device *dev, VkCommandBuffer cmd, VkFence fence)
{
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cmd,
    };
    atomic_fetch_add(&dev->calls.submit, 1);
    return vk_check(dev->diag, dev->fn.vkQueueSubmit(dev->queue, 1, &si, fence), "vkQueueSubmit");
}

vkf_status vk_cmd_submit_wait(vk_device *dev, VkCommandBuffer cmd)
{
    VkFence fence = VK_NULL_HANDLE;
    VkResult r = dev->fn.vkEndCommandBuffer(cmd);
    vkf_status s = vk_check(dev->diag, r, "vkEndCommandBuffer");
    if (s == VKF_OK) {
        VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        atomic_fetch_add(&dev->calls.create, 1);
        s = vk_check(dev->diag, dev->fn.vkCreateFence(dev->device, &fci, NULL, &fence), "vkCreateFence");
    }
    if (s == VKF_OK) s = submit_locked(dev, cmd, fence);
    if (s == VKF_OK) s = vk_fence_wait(dev, fence);
    if (fence) dev->fn.vkDestroyFence(dev->device, fence, NULL);
    dev->fn.vkFreeCommandBuffers(dev->device, dev->cmd_pool, 1, &cmd);
    pthread_mutex_unlock(&dev->queue_lock);
    return s;
}

vkf_status vk_queue_submit(vk_device *dev, VkCommandBuffer cmd, VkFence fence)
{
    pthread_mutex_lock(&dev->queue_lock);
    vkf_status s = submit_locked(dev, cmd, fence);
    pthread_mutex_unlock(&dev->queue_lock);
    return s;
}

vkf_status vk_fence_wait(vk_device *dev, VkFence fence)
{
    atomic_fetch_add(&dev->calls.wait, 1);
    /* No timeout: a long inference on a slow CPU driver is legitimate; a hung
     * GPU ends as VK_ERROR_DEVICE_LOST from the driver. */
    return vk_check(dev->diag, dev->fn.vkWaitForFences(dev->device, 1, &fence, VK_TRUE, UINT64_MAX),
                    "vkWaitForFences");
}

void vk_cmd_barrier(vk_device *dev, VkCommandBuffer cmd)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                         VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    dev->fn.vkCmdPipelineBarrier(cmd, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
}

void vk_cmd_host_barrier(vk_device *dev, VkCommandBuffer cmd)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    dev->fn.vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                                 VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

static vkf_status copy_chunked(vk_device *dev, const vk_buf *dev_buf, VkDeviceSize offset, void *host,
                               size_t size, bool upload)
{
    if (offset + size > dev_buf->size)
        return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "%s of %zu bytes at offset %llu exceeds a %llu-byte buffer",
                         upload ? "upload" : "download", size, (unsigned long long)offset,
                         (unsigned long long)dev_buf->size);
    if (size == 0) return VKF_OK;
    if (dev_buf->mapped) {
        if (upload)
            memcpy((char *)dev_buf->mapped + offset, host, size);
        else
            memcpy(host, (char *)dev_buf->mapped + offset, size);
        return VKF_OK;
    }
    vk_buf staging;
    VkDeviceSize chunk = BASE_MIN((VkDeviceSize)size, STAGING_CHUNK);
    vkf_status s = vk_buf_alloc(dev, chunk, upload ? VK_MEM_UPLOAD : VK_MEM_READBACK, "staging", &staging);
    if (s != VKF_OK) return s;
    for (size_t done = 0; done < size && s == VKF_OK; done += chunk) {
        VkDeviceSize n = BASE_MIN((VkDeviceSize)(size - done), chunk);
        if (upload) memcpy(staging.mapped, (char *)host + done, n);
        VkCommandBuffer cmd;
        s = vk_cmd_begin(dev, &cmd);
        if (s != VKF_OK) break;
        VkBufferCopy region = {
            .srcOffset = upload ? staging.offset : dev_buf->offset + offset + done,
            .dstOffset = upload ? dev_buf->offset + offset + done : staging.offset,
            .size = n,
        };
        dev->fn.vkCmdCopyBuffer(cmd, upload ? staging.buffer : dev_buf->buffer,
                                upload ? dev_buf->buffer : staging.buffer, 1, &region);
        if (!upload) vk_cmd_host_barrier(dev, cmd);
        s = vk_cmd_submit_wait(dev, cmd);
        if (s == VKF_OK && !upload) memcpy((char *)host + done, staging.mapped, n);
    }
    vk_buf_free(dev, &staging);
    return s;
}

vkf_status vk_upload(vk_device *dev, const vk_buf *dst, VkDeviceSize offset, const void *src, size_t size)
{
    return copy_chunked(dev, dst, offset, (void *)(uintptr_t)src, size, true);
}

vkf_status vk_download(vk_device *dev, const vk_buf *src, VkDeviceSize offset, void *dst, size_t size)
{
    return copy_chunked(dev, src, offset, dst, size, false);
}
