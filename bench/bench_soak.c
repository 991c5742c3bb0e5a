/* vkformer-bench soak: many inferences through the public API (the bundled
 * ViT-Tiny on the bundled photo, or --model / --image), host RSS and device
 * memory reported every 1,000 and checked flat after the first 1,000 (the
 * warm-up); then the model loaded and destroyed 200 times, checked the same
 * way. Fails (exit 1) when either grows. */
#include "bench.h"
#include "tool.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Resident set size from /proc/self/statm, in bytes (0 when unknown). */
static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

typedef struct soak_mark {
    uint64_t rss, device;
    uint32_t vk_allocations;
} soak_mark;

static soak_mark mark(vkf_context *ctx)
{
    vkf_memory_stats m;
    vkf_context_memory_stats(ctx, &m);
    return (soak_mark){rss_bytes(), m.device_bytes_in_use, m.vk_allocations};
}

/* RSS may wander by allocator noise; device memory may not move at all. */
#define RSS_SLACK (4u << 20)

static int check(const char *what, const soak_mark *base, const soak_mark *now)
{
    if (now->device > base->device || now->vk_allocations > base->vk_allocations) {
        fprintf(stderr, "vkformer-bench soak: %s: device memory grew from %llu to %llu bytes (%u to %u VkDeviceMemory)\n", what,
                (unsigned long long)base->device, (unsigned long long)now->device, base->vk_allocations, now->vk_allocations);
        return 1;
    }
    if (now->rss > base->rss + RSS_SLACK) {
        fprintf(stderr, "vkformer-bench soak: %s: host RSS grew from %.1f to %.1f MiB\n", what, base->rss / 1048576.0,
                now->rss / 1048576.0);
        return 1;
    }
    return 0;
}

int bench_soak(vkf_context *ctx, const bench_opts *o)
{
    char bundled_model[4096], bundled_image[4096];
    tool_bundled_path(TOOL_DEFAULT_MODEL, bundled_model, sizeof bundled_model);
    tool_bundled_path(TOOL_DEFAULT_IMAGE, bundled_image, sizeof bundled_image);
    const char *dir = o->model ? o->model : bundled_model, *image = o->text ? o->text : bundled_image;
    uint32_t runs = o->soak_runs ? o->soak_runs : 10000, loads = o->soak_loads ? o->soak_loads : 200;
    vkf_model *m;
    if (vkf_model_load(ctx, dir, NULL, &m) != VKF_OK) {
        fprintf(stderr, "vkformer-bench soak: %s\n", vkf_last_error(ctx));
        return 1;
    }
    printf("soak: %u classifications of %s with %s, then %u loads\n", runs, image, dir, loads);
    printf("%8s %10s %12s %8s\n", "runs", "RSS MiB", "device MiB", "VkMem");
    soak_mark base = {0};
    int rc = 0;
    double t0 = base_now();
    for (uint32_t i = 1; i <= runs && rc == 0; i++) {
        vkf_class_score top[1];
        if (vkf_classify_file(m, image, top, 1) != VKF_OK) {
            fprintf(stderr, "vkformer-bench soak: run %u: %s\n", i, vkf_last_error(ctx));
            rc = 1;
            break;
        }
        if (i % 1000 == 0 || i == runs) {
            soak_mark now = mark(ctx);
            printf("%8u %10.1f %12.1f %8u   (%.1f runs/s)\n", i, now.rss / 1048576.0, now.device / 1048576.0, now.vk_allocations,
                   i / (base_now() - t0));
            fflush(stdout);
            if (i == BASE_MIN(1000u, runs)) base = now; /* after the warm-up */
            else rc = check("inferences", &base, &now);
        }
    }
    vkf_model_destroy(m);
    soak_mark lbase = mark(ctx);
    for (uint32_t i = 1; i <= loads && rc == 0; i++) {
        if (vkf_model_load(ctx, dir, NULL, &m) != VKF_OK) {
            fprintf(stderr, "vkformer-bench soak: load %u: %s\n", i, vkf_last_error(ctx));
            rc = 1;
            break;
        }
        vkf_class_score top[1];
        if (vkf_classify_file(m, image, top, 1) != VKF_OK) rc = 1;
        vkf_model_destroy(m);
        if (i == 10) lbase = mark(ctx); /* after a few: the pipeline cache and allocator blocks settle */
        if (i > 10 && (i % 50 == 0 || i == loads)) {
            soak_mark now = mark(ctx);
            printf("load %4u %10.1f %12.1f %8u\n", i, now.rss / 1048576.0, now.device / 1048576.0, now.vk_allocations);
            rc = check("load and destroy", &lbase, &now);
        }
    }
    printf(rc ? "soak: FAILED\n" : "soak: memory flat\n");
    return rc;
}
