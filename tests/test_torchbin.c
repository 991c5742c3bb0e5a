/* PyTorch checkpoints (pytorch_model.bin, torch.save's zip format): the same
 * tensors, bit for bit, as the safetensors twin of each case made by
 * tools/make_torchbin_refs.py (single file, shards, fp16 / bf16 / int64,
 * storage offsets, tied tensors, zip64 records), the same logits through the
 * public API (from a folder and from memory), and hostile files refused with
 * their own message: pickles that call os.system / eval / exec, compressed
 * entries, non-contiguous tensors, tensors past their storage, truncations
 * and every single-byte corruption without a crash. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "io/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TB VKF_TEST_DATA "/torchbin"

static base_diag diag;
static char tmpdir[256];

static void init(void)
{
    base_diag_init(&diag, NULL, NULL, VKF_LOG_ERROR + 1);
    ttmpdir_create(tmpdir, sizeof tmpdir, "torchbin-test");
}

static void fini(void) { ttmpdir_remove(tmpdir); }

static st_checkpoint open_ok(const char *path)
{
    st_checkpoint ck;
    vkf_status s = st_open(&diag, path, &ck);
    cr_assert_eq(s, VKF_OK, "%s: %s", path, diag.error);
    return ck;
}

static void expect_error(const char *path, vkf_status want, const char *needle) { texpect_st_error(&diag, path, want, needle); }

/* Every tensor of a the same as b's: name, dtype, shape and bytes. */
static void assert_same_tensors(const char *pa, const char *pb)
{
    st_checkpoint a = open_ok(pa), b = open_ok(pb);
    cr_assert_eq(a.n_t, b.n_t, "%s has %zu tensors, %s %zu", pa, a.n_t, pb, b.n_t);
    for (size_t i = 0; i < a.n_t; i++) {
        const st_tensor *x = &a.t[i], *y = &b.t[i];
        cr_assert_str_eq(x->name, y->name);
        cr_assert_str_eq(x->dtype_name, y->dtype_name, "%s", x->name);
        cr_assert_eq(x->dtype, y->dtype, "%s", x->name);
        cr_assert_eq(x->rank, y->rank, "%s", x->name);
        for (uint32_t r = 0; r < x->rank; r++) cr_assert_eq(x->shape[r], y->shape[r], "%s dim %u", x->name, r);
        cr_assert_eq(x->bytes, y->bytes, "%s", x->name);
        cr_assert(x->bytes == 0 || memcmp(x->data, y->data, x->bytes) == 0, "%s: other bytes", x->name);
    }
    st_close(&a);
    st_close(&b);
}

Test(torchbin, bert_bit_for_bit_as_safetensors, .init = init, .fini = fini)
{
    assert_same_tensors(TB "/bert", TB "/bert_st");
    assert_same_tensors(TB "/bert/pytorch_model.bin", TB "/bert_st/model.safetensors");
}

Test(torchbin, sharded_bit_for_bit_as_safetensors, .init = init, .fini = fini)
{
    assert_same_tensors(TB "/bert_sharded", TB "/bert_st");
    st_checkpoint ck = open_ok(TB "/bert_sharded");
    cr_assert_eq(ck.n_files, 4);
    st_close(&ck);
}

/* f32, f16, bf16, int64, a scalar, an empty tensor, storage offsets, a tensor
 * under two names, two views of one storage, a Parameter, non-tensors skipped */
Test(torchbin, dtypes_views_and_ties, .init = init, .fini = fini)
{
    assert_same_tensors(TB "/dtypes.bin", TB "/dtypes.safetensors");
    assert_same_tensors(TB "/zip64.bin", TB "/dtypes.safetensors");
    st_checkpoint ck = open_ok(TB "/dtypes.bin");
    cr_assert_eq(st_find(&ck, "f16.weight")->dtype, ST_F16);
    cr_assert_eq(st_find(&ck, "bf16.weight")->dtype, ST_BF16);
    cr_assert_eq(st_find(&ck, "position_ids")->dtype, ST_OTHER);
    cr_assert_str_eq(st_find(&ck, "position_ids")->dtype_name, "I64");
    cr_assert_eq(st_find(&ck, "scalar")->rank, 0);
    cr_assert_eq(st_find(&ck, "embed.weight")->data, st_find(&ck, "decoder.weight")->data, "tied: one storage");
    cr_assert_eq(st_find(&ck, "row3")->data, st_find(&ck, "rows1to3")->data + 12 * 4, "views of one storage");
    cr_assert_null(st_find(&ck, "step"));
    cr_assert_null(st_find(&ck, "note"));
    float h[12], b[12];
    cr_assert_eq(st_convert(&diag, st_find(&ck, "f16.weight"), 0, 12, false, h), VKF_OK);
    cr_assert_eq(st_convert(&diag, st_find(&ck, "bf16.weight"), 0, 12, false, b), VKF_OK);
    st_close(&ck);
}

static float *logits_of(vkf_model *m)
{
    static int32_t ids[2][7] = {{2, 17, 40, 99, 5, 3, 0}, {2, 64, 11, 3, 0, 0, 0}};
    static int32_t mask[2][7] = {{1, 1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 0, 0, 0}};
    vkf_tensor in[2] = {{.name = "input_ids", .dtype = VKF_I32, .rank = 2, .shape = {2, 7}, .data = ids},
                        {.name = "attention_mask", .dtype = VKF_I32, .rank = 2, .shape = {2, 7}, .data = mask}};
    float *out = calloc(6, sizeof *out);
    vkf_tensor o = {.name = "logits", .data = out, .capacity = 6 * sizeof *out};
    cr_assert_eq(vkf_model_run(m, in, 2, &o, 1), VKF_OK, "%s", vkf_last_error(NULL));
    return out;
}

static void *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(*size ? *size : 1);
    cr_assert_eq(fread(p, 1, *size, f), *size);
    fclose(f);
    return p;
}

/* The .bin folder, the shards and the .bin handed in from memory give the
 * safetensors folder's logits to the bit */
Test(torchbin, same_logits_as_safetensors, .timeout = 300)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *st = tload_model(ctx, TB "/bert_st", VKF_FP32);
    float *want = logits_of(st);
    static const char *const dirs[] = {TB "/bert", TB "/bert_sharded"};
    for (size_t k = 0; k < 2; k++) {
        vkf_model *m = tload_model(ctx, dirs[k], VKF_FP32);
        float *got = logits_of(m);
        cr_assert(memcmp(got, want, 6 * sizeof *got) == 0, "%s: logits %g %g ... differ from safetensors' %g %g ...", dirs[k],
                  got[0], got[1], want[0], want[1]);
        free(got);
        vkf_model_destroy(m);
    }
    size_t n_cfg, n_bin;
    void *cfg = slurp(TB "/bert/config.json", &n_cfg), *bin = slurp(TB "/bert/pytorch_model.bin", &n_bin);
    vkf_memory_file files[] = {{"config.json", cfg, n_cfg}, {"pytorch_model.bin", bin, n_bin}};
    vkf_model *m = NULL;
    cr_assert_eq(vkf_model_load_memory(ctx, files, 2, &(vkf_model_desc){.precision = VKF_FP32}, &m), VKF_OK, "%s",
                 vkf_last_error(ctx));
    float *got = logits_of(m);
    cr_assert(memcmp(got, want, 6 * sizeof *got) == 0, "from memory: other logits");
    free(got);
    vkf_model_destroy(m);
    /* a broken .bin from memory is named as the app named it */
    files[1].size = n_bin / 2;
    cr_assert_eq(vkf_model_load_memory(ctx, files, 2, NULL, &m), VKF_ERROR_FORMAT);
    cr_assert(strstr(vkf_last_error(ctx), "(memory)/pytorch_model.bin: not a zip archive"), "%s", vkf_last_error(ctx));
    free(cfg), free(bin), free(want);
    vkf_model_destroy(st);
    tctx_destroy(ctx);
}

Test(torchbin, hostile_files_refused_by_name, .init = init, .fini = fini)
{
    expect_error(TB "/hostile/os_system.bin", VKF_ERROR_FORMAT,
                 "os_system.bin: pickle global posix.system is not allowed: only torch tensors and dicts are read");
    expect_error(TB "/hostile/eval.bin", VKF_ERROR_FORMAT, "pickle global __builtin__.eval is not allowed");
    expect_error(TB "/hostile/exec.bin", VKF_ERROR_FORMAT, "pickle global __builtin__.exec is not allowed");
    expect_error(TB "/hostile/deflated.bin", VKF_ERROR_FORMAT,
                 "entry dtypes/data.pkl is compressed (zip method 8): only stored entries are read");
    expect_error(TB "/hostile/noncontig.bin", VKF_ERROR_FORMAT, "tensor w is not contiguous");
    expect_error(TB "/hostile/past_storage.bin", VKF_ERROR_FORMAT,
                 "tensor w (elements 10..14 of its storage) runs past its storage of 12 elements");
    expect_error(TB "/hostile/short_entry.bin", VKF_ERROR_FORMAT,
                 "storage 0 (FloatStorage of 100 elements) needs 400 bytes, its entry has 48");
    expect_error(TB "/hostile/not_a_dict.bin", VKF_ERROR_FORMAT, "data.pkl holds a list, not a dict of tensors");
    expect_error(TB "/hostile/legacy.bin", VKF_ERROR_FORMAT, "the legacy format (before torch 1.6) is not read");
    char path[512];
    snprintf(path, sizeof path, "%s/empty.bin", tmpdir);
    twrite_file(tmpdir, "empty.bin", "", 0);
    expect_error(path, VKF_ERROR_FORMAT, "0 bytes is too short for a PyTorch checkpoint");
}

/* Every prefix of a valid file is refused (no end record, or offsets outside
 * it); every single-byte change is read or refused, never a crash */
Test(torchbin, truncated_and_corrupt_files, .init = init, .fini = fini)
{
    size_t n;
    uint8_t *bin = slurp(TB "/dtypes.bin", &n);
    char path[512];
    snprintf(path, sizeof path, "%s/x.bin", tmpdir);
    for (size_t len = 0; len < n; len += 1 + len / 64) {
        twrite_file(tmpdir, "x.bin", bin, len);
        st_checkpoint ck;
        vkf_status s = st_open(&diag, path, &ck);
        cr_assert_eq(s, VKF_ERROR_FORMAT, "truncated to %zu bytes: %s", len, diag.error);
        cr_assert(strstr(diag.error, "x.bin: "), "%s", diag.error);
    }
    twrite_file(tmpdir, "x.bin", bin, n - 1);
    expect_error(path, VKF_ERROR_FORMAT, "x.bin: not a zip archive (no end of central directory record): truncated");
    uint32_t ok = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t was = bin[i];
        bin[i] ^= (uint8_t)(i % 7 == 0 ? 0x80 : 0x01 << (i % 8));
        twrite_file(tmpdir, "x.bin", bin, n);
        st_checkpoint ck;
        vkf_status s = st_open(&diag, path, &ck);
        cr_assert(s == VKF_OK || s == VKF_ERROR_FORMAT, "byte %zu: %s", i, diag.error);
        if (s == VKF_OK) ok++, st_close(&ck);
        else refused++;
        bin[i] = was;
    }
    cr_assert(ok > 0 && refused > 0, "%u read, %u refused", ok, refused);
    free(bin);
}

/* A folder with other formats only: the error says what it has */
Test(torchbin, other_formats_named, .init = init, .fini = fini)
{
    char dir[512], sub[600];
    snprintf(dir, sizeof dir, "%s/tf", tmpdir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    twrite_file(dir, "tf_model.h5", "x", 1);
    twrite_file(dir, "model.onnx", "x", 1);
    expect_error(dir, VKF_ERROR_FORMAT,
                 "no model.safetensors or pytorch_model.bin in it, only tf_model.h5, model.onnx: only safetensors and "
                 "PyTorch (pytorch_model.bin) checkpoints are read");
    snprintf(dir, sizeof dir, "%s/other", tmpdir);
    snprintf(sub, sizeof sub, "%s/onnx", dir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    cr_assert_eq(mkdir(sub, 0700), 0);
    twrite_file(sub, "model.onnx", "x", 1);
    twrite_file(dir, "flax_model.msgpack", "x", 1);
    twrite_file(dir, "tiny-Q4_K_M.gguf", "x", 1);
    expect_error(dir, VKF_ERROR_FORMAT, "only flax_model.msgpack, onnx/model.onnx, tiny-Q4_K_M.gguf: only safetensors and PyTorch");
    /* through the public API, with a config.json beside them */
    size_t n;
    void *cfg = slurp(TB "/bert/config.json", &n);
    twrite_file(dir, "config.json", cfg, n);
    free(cfg);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = NULL;
    cr_assert_eq(vkf_model_load(ctx, dir, NULL, &m), VKF_ERROR_FORMAT);
    cr_assert(strstr(vkf_last_error(ctx), "only safetensors and PyTorch (pytorch_model.bin) checkpoints are read"), "%s",
              vkf_last_error(ctx));
    tctx_destroy(ctx);
    /* nothing at all: the old message */
    snprintf(dir, sizeof dir, "%s/empty", tmpdir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    expect_error(dir, VKF_ERROR_IO, "no model.safetensors or model.safetensors.index.json in it");
}
