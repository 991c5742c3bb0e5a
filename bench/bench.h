/* vkformer-bench: shared pieces of the subcommands. The benchmark links the
 * library's internals (it times single ops), unlike the samples. */
#ifndef VKF_BENCH_H
#define VKF_BENCH_H

#include <stdbool.h>
#include <stdio.h>

#include "api/api.h"
#include "ops/ops.h"

typedef struct bench_opts {
    int warmup, repeat;
    bool json;
    const char *filter;   /* substring of "op variant shape dtype" */
    int dtypes;           /* bit 0: f32, bit 1: f16 */
    double peak_gflops, peak_gbs; /* 0: unknown */
    bool all_variants;
    bool blas;
    /* vit */
    const char *model;    /* checkpoint directory, or NULL for a preset */
    const char *config;   /* preset: tiny, small, base, large (ViT); bert-base, bert-large, minilm-l6, minilm-l12, mpnet-base, deberta-v3-base, ... */
    uint32_t seq;         /* text models: tokens at batch 1 (default 128) */
    uint32_t image_size, patch_size;
    uint32_t batches[8];
    uint32_t n_batches;
    /* tokenize: a large text file; soak: the image */
    const char *text;
    /* soak */
    uint32_t soak_runs, soak_loads;
} bench_opts;

/* One measured row of a table. */
typedef struct bench_row {
    char op[32], variant[32], shape[64], dtype[8];
    double us;          /* median GPU time */
    double min_us;
    double flops, bytes;
    double blas_us;     /* OpenBLAS on the same shape; 0 when not measured */
    int dispatches;
} bench_row;

typedef struct bench_table {
    bench_row *rows;
    size_t n, cap;
} bench_table;

/* Median GPU time (microseconds) of an op list recorded once and replayed. */
vkf_status bench_time_list(vk_device *dev, const op_list *l, const bench_opts *o, double *median_us,
                           double *min_us);
double bench_median(double *v, int n);
void bench_table_add(bench_table *t, const bench_row *r);
void bench_table_print(const bench_table *t, const bench_opts *o, FILE *f);
/* Prints a JSON object {device, rows} (cJSON). */
void bench_table_json(const bench_table *t, const bench_opts *o, vkf_context *ctx, FILE *f);
bool bench_selected(const bench_opts *o, const bench_row *r);

int bench_ops(vkf_context *ctx, const bench_opts *o, bench_table *t);
int bench_model(vkf_context *ctx, const bench_opts *o);
int bench_soak(vkf_context *ctx, const bench_opts *o);
/* Needs no Vulkan device. */
int bench_tokenize(const bench_opts *o);

#endif
