/* Memory plan: intermediates share one arena. Each lives from the first node
 * that writes it to the last node that reads it (in execution order); tensors
 * are placed largest first at the lowest offset that no overlapping-lifetime
 * tensor occupies (greedy by size, as in TFLite's arena planner). */
#include "graph.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct span {
    int t;
    int first, last;
    uint64_t size;
} span;

static int by_size_desc(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->t - y->t; /* stable: deterministic plans */
}

static int root_of(const graph *g, int t) { return g->t[t].role == GRAPH_VIEW ? g->t[t].view_of : t; }

static bool in_arena(const graph_tensor *t) { return t->role == GRAPH_TEMP && !t->output; }

vkf_status graph_plan_memory(const graph *g, uint64_t align, graph_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    size_t n = g->n_t;
    plan->offset = calloc(n ? n : 1, sizeof(*plan->offset));
    int *first = malloc((n ? n : 1) * sizeof(int)), *last = malloc((n ? n : 1) * sizeof(int));
    span *spans = calloc(n ? n : 1, sizeof(*spans));
    if (!plan->offset || !first || !last || !spans) {
        free(first), free(last), free(spans);
        graph_plan_free(plan);
        return base_fail(g->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    for (size_t i = 0; i < n; i++) first[i] = INT_MAX, last[i] = -1;
    /* Nodes are stored in a topological order (compile checks it). */
    for (size_t i = 0; i < g->n_nodes; i++) {
        const graph_node *nd = &g->nodes[i];
        for (uint32_t j = 0; j < nd->n_out; j++) {
            int r = root_of(g, nd->out[j]);
            if ((int)i < first[r]) first[r] = (int)i;
            if ((int)i > last[r]) last[r] = (int)i;
        }
        for (uint32_t j = 0; j < nd->n_in; j++) {
            if (nd->in[j] < 0) continue;
            int r = root_of(g, nd->in[j]);
            if ((int)i > last[r]) last[r] = (int)i;
        }
    }
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_arena(&g->t[i]) || first[i] == INT_MAX) continue;
        uint64_t bytes = graph_numel(&g->t[i]) * graph_dtype_size(g->t[i].dtype);
        spans[ns++] = (span){(int)i, first[i], last[i], BASE_ALIGN_UP(bytes, align)};
        plan->naive_bytes += BASE_ALIGN_UP(bytes, align);
    }
    qsort(spans, ns, sizeof(*spans), by_size_desc);
    /* Place each span below, between or above the already placed spans it
     * overlaps in time (O(n^2): graphs have a few thousand tensors at most). */
    for (size_t i = 0; i < ns; i++) {
        uint64_t offset = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (size_t j = 0; j < i; j++) {
                if (spans[j].last < spans[i].first || spans[i].last < spans[j].first) continue;
                uint64_t o = plan->offset[spans[j].t];
                if (offset < o + spans[j].size && o < offset + spans[i].size) {
                    offset = o + spans[j].size;
                    moved = true;
                }
            }
        }
        plan->offset[spans[i].t] = offset;
        if (offset + spans[i].size > plan->arena_bytes) plan->arena_bytes = offset + spans[i].size;
    }
    plan->n_temps = (uint32_t)ns;
    free(first);
    free(last);
    free(spans);
    return VKF_OK;
}

void graph_plan_free(graph_plan *plan)
{
    free(plan->offset);
    memset(plan, 0, sizeof(*plan));
}
