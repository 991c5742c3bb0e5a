/* The weight set: device buffers owned by a model and the named, typed ranges
 * of them that graph weight tensors bind to (several names may view one
 * buffer, e.g. a fused QKV weight and its three parts). */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

void graph_weights_init(graph_weights *w, vk_device *dev)
{
    memset(w, 0, sizeof(*w));
    w->dev = dev;
}

void graph_weights_free(graph_weights *w)
{
    for (size_t i = 0; i < w->n; i++) free(w->e[i].name);
    for (size_t i = 0; i < w->n_bufs; i++) vk_buf_free(w->dev, &w->bufs[i]);
    free(w->e);
    free(w->bufs);
    vk_device *dev = w->dev;
    memset(w, 0, sizeof(*w));
    w->dev = dev;
}

vkf_status graph_weights_alloc(graph_weights *w, uint64_t bytes, const char *what, int *buf)
{
    if (!base_grow((void **)&w->bufs, &w->cap_bufs, w->n_bufs + 1, sizeof(*w->bufs)))
        return base_fail(w->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vkf_status s = vk_buf_alloc(w->dev, bytes, VK_MEM_DEVICE, what, &w->bufs[w->n_bufs]);
    if (s != VKF_OK) return s;
    w->bytes += bytes;
    *buf = (int)w->n_bufs++;
    return VKF_OK;
}

vkf_status graph_weights_add(graph_weights *w, const char *name, graph_dtype dtype, uint32_t rank,
                             const uint32_t *shape, int buf, VkDeviceSize offset)
{
    base_diag *d = w->dev->diag;
    if (rank == 0 || rank > GRAPH_MAX_RANK) return base_fail(d, VKF_ERROR_SHAPE, "weight %s: rank %u", name, rank);
    if (buf < 0 || (size_t)buf >= w->n_bufs) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "weight %s: no buffer", name);
    graph_tensor probe = {.rank = rank};
    memcpy(probe.shape, shape, rank * sizeof(uint32_t));
    if (offset + graph_numel(&probe) * graph_dtype_size(dtype) > w->bufs[buf].size)
        return base_fail(d, VKF_ERROR_SHAPE, "weight %s: range beyond its buffer", name);
    if (graph_weights_find(w, name)) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "weight %s added twice", name);
    if (!base_grow((void **)&w->e, &w->cap, w->n + 1, sizeof(*w->e)))
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    graph_weight_entry *e = &w->e[w->n];
    memset(e, 0, sizeof(*e));
    e->name = base_strdup(name);
    if (!e->name) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    e->dtype = dtype;
    e->rank = rank;
    memcpy(e->shape, shape, rank * sizeof(uint32_t));
    e->buf = buf;
    e->offset = offset;
    w->n++;
    return VKF_OK;
}

vkf_status graph_weights_write(graph_weights *w, int buf, VkDeviceSize offset, const void *data, size_t bytes)
{
    if (buf < 0 || (size_t)buf >= w->n_bufs || offset + bytes > w->bufs[buf].size)
        return base_fail(w->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "weight write outside its buffer");
    return vk_upload(w->dev, &w->bufs[buf], offset, data, bytes);
}

vkf_status graph_weights_upload(graph_weights *w, const char *name, graph_dtype dtype, uint32_t rank,
                                const uint32_t *shape, const float *data)
{
    graph_tensor probe = {.rank = rank};
    memcpy(probe.shape, shape, BASE_MIN(rank, (uint32_t)GRAPH_MAX_RANK) * sizeof(uint32_t));
    uint64_t n = graph_numel(&probe);
    uint32_t es = graph_dtype_size(dtype);
    int buf = -1;
    vkf_status s = graph_weights_alloc(w, n * es, name, &buf);
    if (s != VKF_OK) return s;
    if (dtype == GRAPH_F16) {
        uint16_t *h = malloc(n * 2 + 2);
        if (!h) return base_fail(w->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        for (uint64_t i = 0; i < n; i++) h[i] = base_f32_to_f16(data[i]);
        s = vk_upload(w->dev, &w->bufs[buf], 0, h, n * 2);
        free(h);
    } else {
        s = vk_upload(w->dev, &w->bufs[buf], 0, data, n * es);
    }
    if (s != VKF_OK) return s;
    return graph_weights_add(w, name, dtype, rank, shape, buf, 0);
}

const graph_weight_entry *graph_weights_find(const graph_weights *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0) return &w->e[i];
    return NULL;
}
