/* vkformer-bench vit: whole-model latency and throughput of a ViT. */
#include "bench.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/model.h"

typedef struct vit_row {
    const char *precision;
    uint32_t batch;
    double wall_ms, wall_min_ms, gpu_ms, host_ms, img_s, img_s_overlap;
    int runs;
} vit_row;

static graph *build(void *user, uint32_t batch, uint32_t seq) { return model_build(user, batch, seq); }

/* Median wall time of `runs` inferences at batch b, and the GPU/host split. */
static vkf_status measure(graph_exec *e, int in, const float *pixels, size_t n_pixels, const bench_opts *o, int runs,
                          vit_row *r)
{
    double *wall = calloc((size_t)runs, sizeof(double)), *gpu = calloc((size_t)runs, sizeof(double));
    vkf_status s = wall && gpu ? VKF_OK : VKF_ERROR_OUT_OF_MEMORY;
    for (int i = 0; i < o->warmup + runs && s == VKF_OK; i++) {
        uint32_t slot;
        double t0 = base_now();
        graph_exec_acquire(e, &slot);
        s = graph_exec_write(e, slot, in, pixels, n_pixels * 4);
        if (s == VKF_OK) s = graph_exec_submit(e, slot);
        if (s == VKF_OK) s = graph_exec_wait(e, slot);
        double t1 = base_now();
        double g = 0;
        if (s == VKF_OK && graph_exec_gpu_time(e, slot, &g) != VKF_OK) g = 0;
        graph_exec_release(e, slot);
        if (i >= o->warmup) {
            wall[i - o->warmup] = (t1 - t0) * 1e3;
            gpu[i - o->warmup] = g * 1e-3;
        }
    }
    if (s == VKF_OK) {
        double host = 0;
        for (int i = 0; i < runs; i++) host += wall[i] - gpu[i];
        r->gpu_ms = bench_median(gpu, runs);
        r->wall_ms = bench_median(wall, runs);
        r->wall_min_ms = wall[0];
        r->host_ms = host / runs;
        r->img_s = r->batch / (r->wall_ms * 1e-3);
        r->runs = runs;
    }
    free(wall);
    free(gpu);
    return s;
}

/* Throughput with two inferences in flight: one slot's host work overlaps
 * the other's device work. */
static vkf_status overlapped(graph_exec *e, int in, const float *pixels, size_t n_pixels, int runs, vit_row *r)
{
    uint32_t slots[2];
    graph_exec_acquire(e, &slots[0]);
    graph_exec_acquire(e, &slots[1]);
    vkf_status s = VKF_OK;
    double t0 = base_now();
    for (int i = 0; i < runs + 2 && s == VKF_OK; i++) {
        uint32_t sl = slots[i % 2];
        if (i >= 2) s = graph_exec_wait(e, sl);
        if (i < runs && s == VKF_OK) {
            s = graph_exec_write(e, sl, in, pixels, n_pixels * 4);
            if (s == VKF_OK) s = graph_exec_submit(e, sl);
        }
    }
    double t = base_now() - t0;
    graph_exec_release(e, slots[0]);
    graph_exec_release(e, slots[1]);
    if (s == VKF_OK) r->img_s_overlap = (double)runs * r->batch / t;
    return s;
}

int bench_vit(vkf_context *ctx, const bench_opts *o)
{
    vk_device *dev = ctx->dev;
    base_diag *d = dev->diag;
    cJSON *json = o->json ? cJSON_CreateObject() : NULL;
    cJSON *jrows = json ? cJSON_AddArrayToObject(json, "results") : NULL;
    int rc = 0;
    for (int p = 0; p < 2 && rc == 0; p++) {
        if (!(o->dtypes & (1 << p))) continue;
        graph_dtype dt = p ? GRAPH_F16 : GRAPH_F32;
        const char *pname = p ? "fp16" : "fp32";
        if (dt == GRAPH_F16 && !dev->caps.storage16) {
            if (!o->json) printf("(no 16-bit storage: fp16 skipped)\n");
            continue;
        }
        model mm, *m = &mm;
        vkf_status s = o->model ? model_open(d, o->model, m)
                                : model_open_preset(d, "vit", o->config ? o->config : "base", o->image_size, o->patch_size, m);
        if (s != VKF_OK) {
            fprintf(stderr, "vkformer-bench: %s\n", d->error);
            rc = 1;
            break;
        }
        uint32_t img = m->image_size, tokens = m->seq_len, patch = img / (uint32_t)lround(sqrt((double)(tokens - 1)));
        vkf_memory_stats m0;
        vk_alloc_stats(dev, &m0);
        double t0 = base_now();
        s = model_load(dev, m, o->model, dt, 1234, NULL, NULL);
        if (s != VKF_OK) {
            model_close(m);
            fprintf(stderr, "vkformer-bench: %s\n", d->error);
            rc = 1;
            break;
        }
        double t_weights = base_now() - t0;
        graph_cache cache;
        graph_cache_init(&cache, dev, &m->w, &(graph_compile_opts){.slots = 2}, 8, build, m);
        if (!o->json)
            printf("\nViT %s: hidden %u, %u layers, %ux%u image, patch %u (%u tokens), %llu parameters, %s\n",
                   o->model ? o->model : (o->config ? o->config : "base"), m->hidden, m->layers, img, img, patch, tokens,
                   (unsigned long long)m->params, pname);
        for (uint32_t bi = 0; bi < o->n_batches && rc == 0; bi++) {
            uint32_t b = o->batches[bi];
            vit_row r = {.precision = pname, .batch = b};
            double tc = base_now();
            graph_exec *e;
            s = graph_cache_get(&cache, b, 0, &e);
            double t_record = base_now() - tc;
            size_t n = (size_t)b * 3 * img * img;
            float *pixels = malloc(n * sizeof(float));
            if (s == VKF_OK && !pixels) s = VKF_ERROR_OUT_OF_MEMORY;
            for (size_t i = 0; pixels && i < n; i++) pixels[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
            int in = s == VKF_OK ? graph_find(graph_exec_graph(e), "pixel_values") : -1;
            /* Fewer timed runs as batches grow: the work per run grows too. */
            int runs = BASE_MAX(1, o->repeat / (int)BASE_MAX(1u, b / 4));
            if (s == VKF_OK) s = measure(e, in, pixels, n, o, runs, &r);
            if (s == VKF_OK && b == 1) s = overlapped(e, in, pixels, n, runs, &r);
            if (s == VKF_OK) graph_cache_release(&cache, e);
            free(pixels);
            if (s != VKF_OK) {
                fprintf(stderr, "vkformer-bench: batch %u: %s\n", b, d->error);
                rc = 1;
                break;
            }
            graph_exec_stats st;
            graph_exec_get_stats(e, &st);
            if (bi == 0 && !o->json) {
                char b1[32], b2[32];
                printf("load: weights %.0f ms, recording batch %u %.0f ms; arena %s (naive sum %s), %u dispatches, %u barriers\n",
                       t_weights * 1e3, b, t_record * 1e3, base_fmt_bytes(st.arena_bytes, b1), base_fmt_bytes(st.naive_bytes, b2),
                       st.dispatches, st.barriers);
                printf("%-6s %11s %11s %11s %11s %10s %14s\n", "batch", "latency ms", "min ms", "gpu ms", "host ms",
                       "img/s", "img/s 2-flight");
            }
            if (!o->json) {
                char ov[32] = "-";
                if (r.img_s_overlap > 0) snprintf(ov, sizeof ov, "%.2f", r.img_s_overlap);
                printf("%-6u %11.1f %11.1f %11.1f %11.2f %10.2f %14s   (%d runs)\n", b, r.wall_ms, r.wall_min_ms, r.gpu_ms,
                       r.host_ms, r.img_s, ov, r.runs);
            } else {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddStringToObject(j, "model", o->model ? o->model : (o->config ? o->config : "base"));
                cJSON_AddNumberToObject(j, "image_size", img);
                cJSON_AddNumberToObject(j, "patch_size", patch);
                cJSON_AddStringToObject(j, "precision", pname);
                cJSON_AddNumberToObject(j, "batch", b);
                cJSON_AddNumberToObject(j, "latency_ms", r.wall_ms);
                cJSON_AddNumberToObject(j, "min_ms", r.wall_min_ms);
                cJSON_AddNumberToObject(j, "gpu_ms", r.gpu_ms);
                cJSON_AddNumberToObject(j, "host_ms", r.host_ms);
                cJSON_AddNumberToObject(j, "images_per_s", r.img_s);
                if (r.img_s_overlap > 0) cJSON_AddNumberToObject(j, "images_per_s_2_in_flight", r.img_s_overlap);
                cJSON_AddNumberToObject(j, "load_weights_ms", t_weights * 1e3);
                cJSON_AddNumberToObject(j, "record_ms", t_record * 1e3);
                cJSON_AddNumberToObject(j, "arena_bytes", (double)st.arena_bytes);
                cJSON_AddNumberToObject(j, "naive_bytes", (double)st.naive_bytes);
                cJSON_AddNumberToObject(j, "runs", r.runs);
                cJSON_AddItemToArray(jrows, j);
            }
        }
        vkf_memory_stats m1;
        vk_alloc_stats(dev, &m1);
        if (!o->json && rc == 0) {
            char b1[32], b2[32];
            printf("peak device memory: %s (weights %s)\n", base_fmt_bytes(m1.device_bytes_peak - m0.device_bytes_in_use, b1),
                   base_fmt_bytes(m->w.bytes, b2));
        }
        graph_cache_destroy(&cache);
        model_close(m);
        /* peaks are per process: later precisions include earlier ones */
        dev->alloc.peak = dev->alloc.in_use;
    }
    if (json) {
        char *text = cJSON_Print(json);
        if (text && rc == 0) printf("%s\n", text);
        free(text);
        cJSON_Delete(json);
    }
    return rc;
}
