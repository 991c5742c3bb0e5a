/* Compiled variants: one recorded command buffer per graph_key (graph kind,
 * batch size, sequence bucket, candidates), built on first use, bounded in
 * number. */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

bool graph_key_eq(const graph_key *a, const graph_key *b)
{
    return a->kind == b->kind && a->batch == b->batch && a->seq == b->seq && a->k == b->k && a->tgt == b->tgt && a->packed == b->packed;
}

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
    c->cap = c->max;
    c->e = calloc(c->cap, sizeof(*c->e));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->changed, NULL);
}

void graph_cache_destroy(graph_cache *c)
{
    for (uint32_t i = 0; i < c->n; i++) graph_exec_destroy(c->e[i].exec);
    graph_arenas_unref(c->arenas);
    free(c->e);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->changed);
    memset(c, 0, sizeof(*c));
}

/* Drops the unused variants recorded against a replaced reservation (lock held). */
static void drop_stale(graph_cache *c)
{
    for (uint32_t i = 0; i < c->n;) {
        graph_cache_entry *x = &c->e[i];
        if (x->exec && !x->users && graph_exec_arenas(x->exec) != c->arenas) {
            graph_exec_destroy(x->exec);
            c->e[i] = c->e[--c->n];
        } else {
            i++;
        }
    }
}

vkf_status graph_cache_get(graph_cache *c, const graph_key *key, graph_exec **out)
{
    *out = NULL;
    if (!c->e) return base_fail(c->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    pthread_mutex_lock(&c->lock);
    for (;;) {
        c->clock++;
        int hit = -1;
        for (uint32_t i = 0; i < c->n && hit < 0; i++)
            if (graph_key_eq(&c->e[i].key, key)) hit = (int)i;
        if (hit >= 0 && c->e[hit].exec) {
            c->e[hit].users++;
            c->e[hit].last_used = c->clock;
            *out = c->e[hit].exec;
            pthread_mutex_unlock(&c->lock);
            return VKF_OK;
        }
        if (hit >= 0) { /* another thread is compiling this shape */
            pthread_cond_wait(&c->changed, &c->lock);
            continue;
        }
        if (c->n < c->max) break;
        /* Make room: evict the least recently used variant nobody holds. */
        int victim = -1;
        for (uint32_t i = 0; i < c->n; i++)
            if (c->e[i].exec && !c->e[i].users && (victim < 0 || c->e[i].last_used < c->e[victim].last_used)) victim = (int)i;
        if (victim >= 0) {
            graph_exec_destroy(c->e[victim].exec);
            c->e[victim] = c->e[--c->n];
            break;
        }
        /* Every variant is in use (by this thread or others): go past the
         * bound for now; releases bring the cache back under it. */
        if (c->n == c->cap) {
            graph_cache_entry *ne = realloc(c->e, (c->cap * 2) * sizeof *ne);
            if (!ne) {
                pthread_mutex_unlock(&c->lock);
                return base_fail(c->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
            }
            c->e = ne;
            c->cap *= 2;
        }
        break;
    }
    /* A placeholder holds the shape's place while it compiles without the lock. */
    c->e[c->n++] = (graph_cache_entry){*key, NULL, 1, c->clock};
    pthread_mutex_unlock(&c->lock);
    vkf_status s = VKF_OK;
    graph_key k = *key; /* the caller's copy may change while this compiles */
    graph *g = c->build(c->user, &k);
    graph_exec *e = NULL;
    uint64_t need = 0;
    graph_compile_opts opts = c->opts;
    if (!g) s = base_fail(c->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory building a graph");
    else if (g->error == VKF_OK) s = graph_arena_need(c->dev, g, &need);
    if (s == VKF_OK && g && g->error == VKF_OK) {
        /* the model's one reservation: grown when this variant needs more */
        pthread_mutex_lock(&c->lock);
        if (!c->arenas || need > graph_arenas_bytes(c->arenas)) {
            graph_arenas *grown;
            s = graph_arenas_create(c->dev, c->opts.slots ? c->opts.slots : 2, need, &grown);
            if (s == VKF_OK) {
                graph_arenas_unref(c->arenas);
                c->arenas = grown;
                drop_stale(c);
            }
        }
        /* held for the compile, which runs without the lock */
        opts.shared = s == VKF_OK ? graph_arenas_ref(c->arenas) : NULL;
        pthread_mutex_unlock(&c->lock);
        if (s == VKF_OK) s = graph_compile(c->dev, g, c->weights, &opts, &e);
        else graph_destroy(g);
        graph_arenas_unref(opts.shared);
    } else if (g) {
        s = graph_compile(c->dev, g, c->weights, &opts, &e); /* reports the builder's error */
    }
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = 0; i < c->n; i++)
        if (graph_key_eq(&c->e[i].key, &k) && !c->e[i].exec) {
            if (s == VKF_OK) c->e[i].exec = e, c->compiles++;
            else c->e[i] = c->e[--c->n];
            break;
        }
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    if (s == VKF_OK) *out = e;
    return s;
}

void graph_cache_release(graph_cache *c, graph_exec *e)
{
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = 0; i < c->n; i++)
        if (c->e[i].exec == e && c->e[i].users) c->e[i].users--;
    drop_stale(c);
    /* back under the bound: drop unused variants, least recently used first */
    while (c->n > c->max) {
        int victim = -1;
        for (uint32_t i = 0; i < c->n; i++)
            if (c->e[i].exec && !c->e[i].users && (victim < 0 || c->e[i].last_used < c->e[victim].last_used)) victim = (int)i;
        if (victim < 0) break;
        graph_exec_destroy(c->e[victim].exec);
        c->e[victim] = c->e[--c->n];
    }
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}
