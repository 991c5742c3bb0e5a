/* Compiled variants per shape: one recorded command buffer per (batch size,
 * sequence bucket), built on first use, bounded in number. */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

void graph_cache_init(graph_cache *c, vk_device *dev, const graph_weights *w, const graph_compile_opts *opts,
                      uint32_t max_entries, graph_build_fn build, void *user)
{
    memset(c, 0, sizeof(*c));
    c->dev = dev;
    c->weights = w;
    if (opts) c->opts = *opts;
    c->max = max_entries ? max_entries : 4;
    c->build = build;
    c->user = user;
    c->e = calloc(c->max, sizeof(*c->e));
    pthread_mutex_init(&c->lock, NULL);
}

void graph_cache_destroy(graph_cache *c)
{
    for (uint32_t i = 0; i < c->n; i++) graph_exec_destroy(c->e[i].exec);
    free(c->e);
    pthread_mutex_destroy(&c->lock);
    memset(c, 0, sizeof(*c));
}

vkf_status graph_cache_get(graph_cache *c, uint32_t batch, uint32_t seq, graph_exec **out)
{
    *out = NULL;
    if (!c->e) return base_fail(c->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    pthread_mutex_lock(&c->lock);
    c->clock++;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->e[i].batch == batch && c->e[i].seq == seq) {
            c->e[i].users++;
            c->e[i].last_used = c->clock;
            *out = c->e[i].exec;
            pthread_mutex_unlock(&c->lock);
            return VKF_OK;
        }
    /* Make room: evict the least recently used variant nobody holds. */
    if (c->n == c->max) {
        int victim = -1;
        for (uint32_t i = 0; i < c->n; i++)
            if (!c->e[i].users && (victim < 0 || c->e[i].last_used < c->e[victim].last_used)) victim = (int)i;
        if (victim < 0) {
            pthread_mutex_unlock(&c->lock);
            return base_fail(c->dev->diag, VKF_ERROR_OUT_OF_MEMORY,
                             "all %u shape variants are in use; cannot record another", c->max);
        }
        graph_exec_destroy(c->e[victim].exec);
        c->e[victim] = c->e[--c->n];
    }
    /* Compiling under the lock keeps two threads from recording the same shape. */
    vkf_status s = VKF_OK;
    graph *g = c->build(c->user, batch, seq);
    graph_exec *e = NULL;
    if (!g)
        s = base_fail(c->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory building a graph");
    else
        s = graph_compile(c->dev, g, c->weights, &c->opts, &e);
    if (s == VKF_OK) {
        c->e[c->n++] = (graph_cache_entry){batch, seq, e, 1, c->clock};
        c->compiles++;
        *out = e;
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

void graph_cache_release(graph_cache *c, graph_exec *e)
{
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = 0; i < c->n; i++)
        if (c->e[i].exec == e && c->e[i].users) c->e[i].users--;
    pthread_mutex_unlock(&c->lock);
}
