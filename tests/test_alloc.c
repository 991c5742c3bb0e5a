/* The sub-allocator: churn with alignment and overlap checks, exhaustion. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

typedef struct live {
    vk_buf buf;
    uint8_t tag;
} live;

static bool overlap(const vk_buf *a, const vk_buf *b)
{
    return a->buffer == b->buffer && a->offset < b->offset + b->reserved && b->offset < a->offset + a->reserved;
}

Test(alloc, churn_mixed_sizes)
{
    vkf_context *ctx = tctx_create(NULL);
    vk_device *dev = tctx_dev(ctx);
    VkDeviceSize align = BASE_MAX(dev->real.min_storage_align, dev->real.min_texel_align);
    enum { SLOTS = 300, ROUNDS = 4000 };
    live *slots = calloc(SLOTS, sizeof(*slots));
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    uint64_t expected_in_use = 0;
    uint32_t expected_live = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int i = (int)(trand_u64(&rng) % SLOTS);
        live *s = &slots[i];
        if (s->buf.block) {
            /* Its bytes must still carry its tag: nothing else overlapped it. */
            if (s->buf.mapped) {
                const uint8_t *p = s->buf.mapped;
                cr_assert(p[0] == s->tag && p[s->buf.size - 1] == s->tag, "allocation %d was overwritten", i);
            }
            expected_in_use -= s->buf.reserved;
            expected_live--;
            vk_buf_free(dev, &s->buf);
            continue;
        }
        uint64_t r = trand_u64(&rng);
        VkDeviceSize size;
        switch (r % 10) {
        case 0: size = 1 + r % 16; break;                   /* tiny */
        case 1: size = (40ull << 20) + r % 4096; break;     /* dedicated block */
        default: size = 1 + (r >> 8) % (2u << 20); break;   /* up to 2 MiB */
        }
        if (r % 10 == 1 && (r >> 32) % 8) size = 1 + (r >> 8) % 100000; /* keep big ones rare */
        vkf_status st = vk_buf_alloc(dev, size, (vk_mem_kind)(r % 3 == 0 ? VK_MEM_UPLOAD : VK_MEM_DEVICE), "churn", &s->buf);
        cr_assert_eq(st, VKF_OK, "%s", vkf_last_error(ctx));
        cr_assert_eq(s->buf.offset % align, 0, "offset %llu not aligned to %llu", (unsigned long long)s->buf.offset,
                     (unsigned long long)align);
        cr_assert_geq(s->buf.reserved, size);
        for (int j = 0; j < SLOTS; j++)
            if (j != i && slots[j].buf.block) cr_assert(!overlap(&s->buf, &slots[j].buf), "allocations %d and %d overlap", i, j);
        s->tag = (uint8_t)(round * 7 + 1);
        if (s->buf.mapped) {
            memset(s->buf.mapped, s->tag, 1);
            ((uint8_t *)s->buf.mapped)[size - 1] = s->tag;
        }
        expected_in_use += s->buf.reserved;
        expected_live++;
        vkf_memory_stats st2;
        vkf_context_memory_stats(ctx, &st2);
        cr_assert_eq(st2.device_bytes_in_use, expected_in_use);
        cr_assert_eq(st2.allocations, expected_live);
        cr_assert_geq(st2.device_bytes_peak, st2.device_bytes_in_use);
        cr_assert_geq(st2.device_bytes_reserved, st2.device_bytes_in_use);
    }
    for (int i = 0; i < SLOTS; i++) vk_buf_free(dev, &slots[i].buf);
    vkf_memory_stats st;
    vkf_context_memory_stats(ctx, &st);
    cr_assert_eq(st.device_bytes_in_use, 0);
    cr_assert_eq(st.allocations, 0);
    cr_assert_gt(st.device_bytes_peak, 0);
    /* Emptied blocks go back, but for one spare per memory type. */
    cr_assert_leq(st.vk_allocations, 3);
    free(slots);
    tctx_destroy(ctx);
}

Test(alloc, exhaustion_is_a_status_not_a_crash)
{
    vkf_context *ctx = tctx_create_desc((vkf_context_desc){.memory_budget = 64ull << 20});
    vk_device *dev = tctx_dev(ctx);
    vk_buf bufs[64];
    int n = 0;
    vkf_status st = VKF_OK;
    while (n < 64 && (st = vk_buf_alloc(dev, 5ull << 20, VK_MEM_DEVICE, "filler", &bufs[n])) == VKF_OK) n++;
    cr_assert_eq(st, VKF_ERROR_OUT_OF_MEMORY, "got %s", vkf_status_string(st));
    cr_assert(n >= 8 && n < 13, "%d allocations of 5 MiB fit a 64 MiB budget", n);
    cr_assert(strstr(vkf_last_error(ctx), "exhausted") && strstr(vkf_last_error(ctx), "filler"), "%s",
              vkf_last_error(ctx));
    /* Freeing makes room again. */
    vk_buf_free(dev, &bufs[--n]);
    cr_assert_eq(vk_buf_alloc(dev, 5ull << 20, VK_MEM_DEVICE, "again", &bufs[n]), VKF_OK, "%s", vkf_last_error(ctx));
    n++;
    /* A request beyond what the device can allocate at all. */
    vk_buf huge;
    cr_assert_eq(vk_buf_alloc(dev, 1ull << 40, VK_MEM_DEVICE, "huge tensor", &huge), VKF_ERROR_OUT_OF_MEMORY);
    cr_assert(strstr(vkf_last_error(ctx), "huge tensor"), "%s", vkf_last_error(ctx));
    while (n) vk_buf_free(dev, &bufs[--n]);
    tctx_destroy(ctx);
}

Test(alloc, allocation_count_limit)
{
    vkf_context *ctx = tctx_create_desc((vkf_context_desc){.caps_override = "max_alloc_count=2,mem=1073741824"});
    vk_device *dev = tctx_dev(ctx);
    /* Each dedicated (big) buffer needs its own VkDeviceMemory. */
    vk_buf a, b, c;
    cr_assert_eq(vk_buf_alloc(dev, 48ull << 20, VK_MEM_DEVICE, "first", &a), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(vk_buf_alloc(dev, 48ull << 20, VK_MEM_DEVICE, "second", &b), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(vk_buf_alloc(dev, 48ull << 20, VK_MEM_DEVICE, "third", &c), VKF_ERROR_OUT_OF_MEMORY);
    cr_assert(strstr(vkf_last_error(ctx), "allows only 2"), "%s", vkf_last_error(ctx));
    vk_buf_free(dev, &a);
    vk_buf_free(dev, &b);
    tctx_destroy(ctx);
}
