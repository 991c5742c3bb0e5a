/* vkformer-bench: GPU-timestamp benchmarks of ops and models. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"
#include "tool.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkformer-bench ops [options]\n"
            "       vkformer-bench model [--model DIR | --config NAME] [--batches 1,8,32] [--seq N]\n"
            "                          [--image-size N] [--patch-size N] [options]\n"
            "       vkformer-bench tokenize --text FILE [--model DIR] [options]\n"
            "       vkformer-bench soak [--model DIR] [--image FILE] [--runs N] [--loads N]\n"
            "\n"
            "ops      every op and kernel variant on real model shapes: median GPU time\n"
            "         (timestamps) after warm-up, GFLOP/s or GB/s, and OpenBLAS sgemm on the\n"
            "         same matmul shapes as a fixed CPU yardstick\n"
            "model    a whole model of any family: latency (median wall time after warm-up) and\n"
            "         its GPU/host split, throughput at each batch size (and with two\n"
            "         inferences in flight at batch 1), load and recording time, memory plan,\n"
            "         peak device memory. --config builds random weights: ViT tiny, small,\n"
            "         base, large (--config base --image-size 384 --patch-size 32 is\n"
            "         ViT-B/32@384), bert-base, bert-large, minilm-l6, minilm-l12, mpnet-base,\n"
            "         deberta-v3-base, or gpt2,\n"
            "         distilgpt2, gpt2-medium, gpt2-large, or clip-b32, clip-b16 (image tower at\n"
            "         each batch, then the text tower on 100 labels), or bart-base, bart-large,\n"
            "         opus-mt, t5-small, flan-t5-base (encoder-decoders), or wav2vec2-base\n"
            "         (speech). Text encoders run batch 1 at --seq\n"
            "         tokens (default 128) and larger batches of mixed lengths (8 to 64\n"
            "         tokens). Causal LMs: prefill of --seq tokens, decode tokens/s at that\n"
            "         context and near n_positions, host time per token, weights and KV\n"
            "         cache, and decode as a fraction of the device's copy bandwidth\n"
            "         (bytes a token reads / its time); encoder-decoders: the encoder over\n"
            "         --seq tokens and greedy decode tokens/s; audio models: one clip of 10\n"
            "         and 60 s (or --seq seconds), latency and real-time factor. (vit is\n"
            "         another name for model.)\n"
            "soak     N inferences (default 10,000) through the public API, host RSS and device\n"
            "         memory every 1,000 and failing if either grows after the first 1,000;\n"
            "         then load and destroy the model N times (default 200), the same way\n"
            "tokenize tokenizer throughput on one thread (MB/s, tokens/s) over a large\n"
            "         text, line by line and as one string; default tokenizers (in\n"
            "         tests/data/tokenizers): BERT WordPiece, GPT-2 byte-level BPE, T5's\n"
            "         Unigram and a Llama-style BPE with byte fallback, each as\n"
            "         tokenizer.json and as a SentencePiece .model file. No GPU used.\n"
            "         tools/bench_text.sh makes a 4.4 MB English text (KJV Bible, Debian).\n"
            "\n"
            "options:\n"
            "  --json               machine-readable output instead of the table\n"
            "  --repeat N           timed runs (default ops 10, vit 5; fewer at large batches)\n"
            "  --warmup N           untimed runs first (default ops 3, vit 1)\n"
            "  --dtype, --precision f32|f16|both (or fp32|fp16): storage precisions (default both)\n"
            "  --filter TEXT        ops: only entries whose op/variant/shape/dtype contain TEXT\n"
            "  --auto-only          ops: only the variant the library picks\n"
            "  --no-blas            ops: skip the OpenBLAS yardstick\n"
            "  --peak-gflops X      ops: the device's peak, to print the fraction reached\n"
            "  --peak-gbs X         ops: the device's memory bandwidth, likewise\n"
            "  --device N           device index (default: VKF_DEVICE or the best)\n"
            "Environment: VKF_CAPS clamps capabilities (e.g. cpu_kernels=0 to time GPU\n"
            "variants on lavapipe), VKF_DEVICE picks the device.\n");
}

static int parse_int(const char *s, int lo, const char *what)
{
    unsigned v;
    if (!tool_parse_u32(s, (unsigned)lo, 100000, &v)) exit(tool_usage_error("bad %s '%s'", what, s));
    return (int)v;
}

const char *tool_name = "vkformer-bench";

int main(int argc, char **argv)
{
    bench_opts o = {.warmup = -1, .repeat = -1, .dtypes = 3, .all_variants = true, .blas = true,
                    .batches = {1, 8, 32}, .n_batches = 3};
    vkf_context_desc desc = {0};
    const char *cmd = NULL;
    enum { REPEAT = 1000, WARMUP, FILTER, DTYPE, MODEL, SEQ, TEXT, RUNS, LOADS, CONFIG, IMAGE_SIZE, PATCH_SIZE, BATCHES,
           AUTO_ONLY, NO_BLAS, PEAK_GFLOPS, PEAK_GBS, DEVICE };
    static const struct option longopts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {"repeat", required_argument, 0, REPEAT}, {"warmup", required_argument, 0, WARMUP},
        {"filter", required_argument, 0, FILTER}, {"dtype", required_argument, 0, DTYPE},
        {"precision", required_argument, 0, DTYPE}, {"model", required_argument, 0, MODEL},
        {"seq", required_argument, 0, SEQ}, {"text", required_argument, 0, TEXT}, {"image", required_argument, 0, TEXT},
        {"runs", required_argument, 0, RUNS}, {"loads", required_argument, 0, LOADS},
        {"config", required_argument, 0, CONFIG}, {"image-size", required_argument, 0, IMAGE_SIZE},
        {"patch-size", required_argument, 0, PATCH_SIZE}, {"batches", required_argument, 0, BATCHES},
        {"auto-only", no_argument, 0, AUTO_ONLY}, {"no-blas", no_argument, 0, NO_BLAS},
        {"peak-gflops", required_argument, 0, PEAK_GFLOPS}, {"peak-gbs", required_argument, 0, PEAK_GBS},
        {"device", required_argument, 0, DEVICE}, {0, 0, 0, 0}};
    int c;
    while ((c = tool_getopt(argc, argv, "jhV", longopts)) != -1) {
        const char *d = optarg;
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'V': tool_print_version(); return 0;
        case 'j': o.json = true; break;
        case REPEAT: o.repeat = parse_int(d, 1, "--repeat"); break;
        case WARMUP: o.warmup = parse_int(d, 0, "--warmup"); break;
        case FILTER: o.filter = d; break;
        case DTYPE:
            o.dtypes = (!strcmp(d, "f32") || !strcmp(d, "fp32")) ? 1 : (!strcmp(d, "f16") || !strcmp(d, "fp16")) ? 2 : !strcmp(d, "both") ? 3 : 0;
            if (!o.dtypes) return tool_usage_error("--precision takes fp32, fp16 or both, not '%s'", d);
            break;
        case MODEL: o.model = d; break;
        case SEQ: o.seq = (uint32_t)parse_int(d, 1, "--seq"); break;
        case TEXT: o.text = d; break;
        case RUNS: o.soak_runs = (uint32_t)parse_int(d, 1, "--runs"); break;
        case LOADS: o.soak_loads = (uint32_t)parse_int(d, 1, "--loads"); break;
        case CONFIG: o.config = d; break;
        case IMAGE_SIZE: o.image_size = (uint32_t)parse_int(d, 1, "--image-size"); break;
        case PATCH_SIZE: o.patch_size = (uint32_t)parse_int(d, 1, "--patch-size"); break;
        case BATCHES: {
            char *list = optarg, *save = NULL;
            o.n_batches = 0;
            for (char *tok = strtok_r(list, ",", &save); tok && o.n_batches < 8; tok = strtok_r(NULL, ",", &save))
                o.batches[o.n_batches++] = (uint32_t)parse_int(tok, 1, "--batches");
            if (!o.n_batches) return tool_usage_error("--batches takes a list like 1,8,32");
            break;
        }
        case AUTO_ONLY: o.all_variants = false; break;
        case NO_BLAS: o.blas = false; break;
        case PEAK_GFLOPS: o.peak_gflops = atof(d); break;
        case PEAK_GBS: o.peak_gbs = atof(d); break;
        case DEVICE:
            desc.use_device_index = 1;
            desc.device_index = (uint32_t)parse_int(d, 0, "--device");
            break;
        default: return TOOL_USAGE; /* tool_getopt said why */
        }
    }
    if (optind < argc) cmd = argv[optind++];
    if (optind < argc) return tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (!cmd) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(cmd, "tokenize")) {
        if (o.warmup < 0) o.warmup = 1;
        if (o.repeat < 0) o.repeat = 5;
        return bench_tokenize(&o);
    }
    bool vit = strcmp(cmd, "vit") == 0 || strcmp(cmd, "model") == 0, soak = strcmp(cmd, "soak") == 0;
    if (o.warmup < 0) o.warmup = vit ? 1 : 3;
    if (o.repeat < 0) o.repeat = vit ? 5 : 10;
    if (o.model && o.config) {
        fprintf(stderr, "vkformer-bench: give --model or --config, not both\n");
        return 2;
    }
    if (!vit && !soak && strcmp(cmd, "ops") != 0) {
        fprintf(stderr, "vkformer-bench: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    vkf_context *ctx;
    if (vkf_context_create(&desc, &ctx) != VKF_OK) {
        fprintf(stderr, "vkformer-bench: %s\n", vkf_last_error(NULL));
        return 1;
    }
    vkf_device_info info;
    vkf_context_device(ctx, &info);
    if (!o.json) printf("device: %s\n", info.caps_line);
    if (!ctx->dev->caps.timestamps) {
        fprintf(stderr, "vkformer-bench: the device has no timestamp queries\n");
        vkf_context_destroy(ctx);
        return 1;
    }
    if (soak) {
        int rc = bench_soak(ctx, &o);
        vkf_context_destroy(ctx);
        return rc;
    }
    if (vit) {
        int rc = bench_model(ctx, &o);
        vkf_context_destroy(ctx);
        return rc;
    }
    bench_table t = {0};
    int rc = bench_ops(ctx, &o, &t);
    if (rc == 0) {
        if (o.json)
            bench_table_json(&t, &o, ctx, stdout);
        else
            bench_table_print(&t, &o, stdout);
    }
    free(t.rows);
    vkf_context_destroy(ctx);
    return rc;
}

double bench_median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

vkf_status bench_time_list(vk_device *dev, const op_list *l, const bench_opts *o, double *median_us, double *min_us)
{
    vk_stream s;
    vkf_status st = vk_stream_begin(dev, &s, VK_STREAM_REUSABLE);
    uint32_t q0 = 0, q1 = 0;
    if (st == VKF_OK) st = vk_stream_timestamp(&s, &q0);
    if (st == VKF_OK) st = op_list_record(&s, l);
    if (st == VKF_OK) st = vk_stream_timestamp(&s, &q1);
    if (st == VKF_OK) st = vk_stream_end(&s);
    double *times = calloc((size_t)o->repeat, sizeof(double));
    for (int i = 0; st == VKF_OK && i < o->warmup + o->repeat; i++) {
        st = vk_stream_submit(&s);
        if (st == VKF_OK) st = vk_stream_wait(&s);
        double ns[2];
        if (st == VKF_OK) st = vk_stream_read_timestamps(&s, ns, 2);
        if (st == VKF_OK && i >= o->warmup) times[i - o->warmup] = (ns[1] - ns[0]) * 1e-3;
    }
    if (st == VKF_OK) {
        *median_us = bench_median(times, o->repeat); /* sorts */
        if (min_us) *min_us = times[0];
    }
    free(times);
    vk_stream_destroy(&s);
    return st;
}

void bench_table_add(bench_table *t, const bench_row *r)
{
    if (!base_grow((void **)&t->rows, &t->cap, t->n + 1, sizeof(*t->rows))) return;
    t->rows[t->n++] = *r;
}

bool bench_selected(const bench_opts *o, const bench_row *r)
{
    if (!o->filter) return true;
    char all[256];
    snprintf(all, sizeof all, "%s %s %s %s", r->op, r->variant, r->shape, r->dtype);
    return strstr(all, o->filter) != NULL;
}

void bench_table_print(const bench_table *t, const bench_opts *o, FILE *f)
{
    fprintf(f, "%-10s %-8s %-22s %-4s %11s %11s %9s %9s %9s %8s\n", "op", "variant", "shape", "type", "median us",
            "min us", "GFLOP/s", "GB/s", "BLAS x", "peak %");
    for (size_t i = 0; i < t->n; i++) {
        const bench_row *r = &t->rows[i];
        double s = r->us * 1e-6;
        char gf[16] = "-", gb[16] = "-", bl[16] = "-", pk[16] = "-";
        if (r->flops) snprintf(gf, sizeof gf, "%.2f", r->flops / s * 1e-9);
        if (r->bytes) snprintf(gb, sizeof gb, "%.2f", r->bytes / s * 1e-9);
        if (r->blas_us > 0) snprintf(bl, sizeof bl, "%.3f", r->blas_us / r->us);
        if (r->flops && o->peak_gflops > 0) snprintf(pk, sizeof pk, "%.1f", 100 * r->flops / s * 1e-9 / o->peak_gflops);
        else if (!r->flops && r->bytes && o->peak_gbs > 0) snprintf(pk, sizeof pk, "%.1f", 100 * r->bytes / s * 1e-9 / o->peak_gbs);
        fprintf(f, "%-10s %-8s %-22s %-4s %11.1f %11.1f %9s %9s %9s %8s\n", r->op, r->variant, r->shape, r->dtype, r->us,
                r->min_us, gf, gb, bl, pk);
    }
    fprintf(f, "Rates use the median. BLAS x: the op's speed as a fraction of OpenBLAS sgemm (median) on the same\n"
               "shape on this machine's CPU, measured in the same run. * marks the variant the library picks.\n");
}

void bench_table_json(const bench_table *t, const bench_opts *o, vkf_context *ctx, FILE *f)
{
    cJSON *root = cJSON_CreateObject();
    vkf_device_info info;
    vkf_context_device(ctx, &info);
    cJSON_AddStringToObject(root, "device", info.name);
    cJSON_AddStringToObject(root, "caps", info.caps_line);
    cJSON_AddNumberToObject(root, "warmup", o->warmup);
    cJSON_AddNumberToObject(root, "repeat", o->repeat);
    cJSON *rows = cJSON_AddArrayToObject(root, "results");
    for (size_t i = 0; i < t->n; i++) {
        const bench_row *r = &t->rows[i];
        double s = r->us * 1e-6;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "op", r->op);
        cJSON_AddStringToObject(e, "variant", r->variant);
        cJSON_AddStringToObject(e, "shape", r->shape);
        cJSON_AddStringToObject(e, "dtype", r->dtype);
        cJSON_AddNumberToObject(e, "median_us", r->us);
        cJSON_AddNumberToObject(e, "min_us", r->min_us);
        cJSON_AddNumberToObject(e, "dispatches", r->dispatches);
        if (r->flops) cJSON_AddNumberToObject(e, "gflops", r->flops / s * 1e-9);
        if (r->bytes) cJSON_AddNumberToObject(e, "gbs", r->bytes / s * 1e-9);
        if (r->blas_us > 0) {
            cJSON_AddNumberToObject(e, "blas_us", r->blas_us);
            cJSON_AddNumberToObject(e, "blas_ratio", r->blas_us / r->us);
        }
        if (r->flops && o->peak_gflops > 0) cJSON_AddNumberToObject(e, "peak_fraction", r->flops / s * 1e-9 / o->peak_gflops);
        cJSON_AddItemToArray(rows, e);
    }
    char *text = cJSON_Print(root);
    if (text) fprintf(f, "%s\n", text);
    free(text);
    cJSON_Delete(root);
}
