/* Queue submission, host<->device copies and barriers. */
#include "vk.h"

#include <string.h>

#define STAGING_CHUNK (16ull << 20)

vkf_status vk_queue_submit(vk_device *dev, VkCommandBuffer cmd, VkFence fence)
{
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cmd,
    };
    /* vkQueueSubmit needs the queue externally synchronised. */
    pthread_mutex_lock(&dev->queue_lock);
    atomic_fetch_add(&dev->calls.submit, 1);
    VkResult r = dev->fn.vkQueueSubmit(dev->queue, 1, &si, fence);
    pthread_mutex_unlock(&dev->queue_lock);
    return vk_check(dev->diag, r, "vkQueueSubmit");
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
        vk_stream st;
        s = vk_stream_begin(dev, &st, 0);
        if (s == VKF_OK)
            s = upload ? vk_stream_copy(&st, &staging, 0, dev_buf, offset + done, n)
                       : vk_stream_copy(&st, dev_buf, offset + done, &staging, 0, n);
        if (s == VKF_OK) s = vk_stream_end(&st);
        if (s == VKF_OK) s = vk_stream_submit(&st);
        if (s == VKF_OK) s = vk_stream_wait(&st);
        vk_stream_destroy(&st);
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
