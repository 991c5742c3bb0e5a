/* The on-disk pipeline cache: written, reloaded and used; corrupt or foreign
 * files are ignored with a warning. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static char path[512];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/vkf-cache-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pipelines.bin", dir); /* an explicit path: its directory must exist */
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Runs two different kernels so the cache has pipelines in it. */
static void use_pipelines(vkf_context *ctx)
{
    vk_device *dev = tctx_dev(ctx);
    vk_buf y = tbuf_alloc(dev, 64, OP_F32);
    op_list l = {0};
    op_eltwise_params fill = {.kind = OP_FILL, .value = 3, .n = 64};
    op_eltwise_params fill_odd = {.kind = OP_FILL, .value = 5, .n = 63};
    cr_assert_eq(op_eltwise(dev, &fill, (op_ref){0}, (op_ref){0}, op_ref_of(&y), &l), VKF_OK);
    cr_assert_eq(op_eltwise(dev, &fill_odd, (op_ref){0}, (op_ref){0}, op_ref_of(&y), &l), VKF_OK);
    cr_assert_eq(op_list_run(dev, &l), VKF_OK, "%s", vkf_last_error(ctx));
    float out[64];
    tbuf_download(dev, &y, out, 64, OP_F32);
    cr_assert_eq(out[0], 5.0f);
    cr_assert_eq(out[63], 3.0f);
    op_list_free(&l);
    vk_buf_free(dev, &y);
}

static vkf_context *open_with_cache(void)
{
    return tctx_create_desc((vkf_context_desc){.pipeline_cache = VKF_ON, .pipeline_cache_path = path});
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}



Test(pipeline_cache, written_reloaded_and_used, .init = setup, .fini = teardown)
{
    vkf_context *ctx = open_with_cache();
    cr_assert_eq(ctx->dev->pipes.cache_loaded_bytes, 0);
    use_pipelines(ctx);
    cr_assert_eq(ctx->dev->pipes.created, 2);
    tctx_destroy(ctx);
    long size = file_size(path);
    cr_assert_gt(size, 80, "no cache file written at %s", path);

    ctx = open_with_cache();
    size_t loaded = ctx->dev->pipes.cache_loaded_bytes;
    cr_assert_gt(loaded, 0, "the cache file was not handed to the driver");
    use_pipelines(ctx);
    /* Drivers that report creation feedback must report hits for both. */
    if (ctx->dev->pipes.hits) cr_assert_eq(ctx->dev->pipes.hits, 2);
    tctx_destroy(ctx);
    cr_assert_eq(file_size(path), size, "an unchanged cache was rewritten with another size");
}

static void damage(long offset, uint8_t xor_value)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, offset, SEEK_SET);
    int c = fgetc(f);
    fseek(f, offset, SEEK_SET);
    fputc(c ^ xor_value, f);
    fclose(f);
}

static void expect_ignored(const char *why)
{
    tlog_reset();
    vkf_context *ctx = open_with_cache();
    cr_assert_eq(ctx->dev->pipes.cache_loaded_bytes, 0, "an untrustworthy cache was used");
    cr_assert(tlog_contains("ignoring pipeline cache") && tlog_contains(why), "expected a warning with '%s'", why);
    use_pipelines(ctx); /* still works, from scratch */
    tctx_destroy(ctx);
}

static void make_cache(void)
{
    vkf_context *ctx = open_with_cache();
    use_pipelines(ctx);
    tctx_destroy(ctx);
    cr_assert_gt(file_size(path), 80);
}

Test(pipeline_cache, corrupt_payload_is_ignored, .init = setup, .fini = teardown)
{
    make_cache();
    damage(file_size(path) - 1, 0x5a);
    expect_ignored("corrupt");
}

Test(pipeline_cache, foreign_device_is_ignored, .init = setup, .fini = teardown)
{
    make_cache();
    damage(12, 0x01); /* vendor id in vkformer's header */
    expect_ignored("another device");
}

Test(pipeline_cache, other_driver_is_ignored, .init = setup, .fini = teardown)
{
    make_cache();
    damage(24, 0x01); /* pipelineCacheUUID */
    expect_ignored("another driver");
}

Test(pipeline_cache, truncated_and_garbage_files_are_ignored, .init = setup, .fini = teardown)
{
    make_cache();
    cr_assert_eq(truncate(path, 40), 0);
    expect_ignored("truncated");
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 4096; i++) fputc(i * 31, f);
    fclose(f);
    expect_ignored("not a vkformer pipeline cache");
}

static long max_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* A 3 GB file is judged by its header before anything else is read (it was
 * read whole first: 3.6 GB RSS, 20 s) */
Test(pipeline_cache, huge_files_are_not_read, .init = setup, .fini = teardown)
{
    make_cache();
    long before = max_rss_mb();
    cr_assert_eq(truncate(path, 3L << 30), 0); /* sparse: no disk used */
    expect_ignored("payload size mismatch");
    make_cache();
    long real = file_size(path);
    uint64_t claim = (3ull << 30) - 64;
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, 48, SEEK_SET); /* data_size in vkformer's header */
    fwrite(&claim, 8, 1, f);
    fclose(f);
    cr_assert_eq(truncate(path, (off_t)(claim + 64)), 0);
    expect_ignored("larger than any pipeline cache");
    cr_expect_lt(max_rss_mb() - before, 256, "RSS grew by %ld MB (a %ld-byte cache)", max_rss_mb() - before, real);
}

Test(pipeline_cache, disabled_writes_nothing, .init = setup, .fini = teardown)
{
    vkf_context *ctx = tctx_create_desc((vkf_context_desc){.pipeline_cache = VKF_OFF, .pipeline_cache_path = path});
    use_pipelines(ctx);
    tctx_destroy(ctx);
    cr_assert_eq(file_size(path), -1);
    /* ...and so does VKF_PIPELINE_CACHE=off with the default toggle. */
    setenv("VKF_PIPELINE_CACHE", "off", 1);
    vkf_context_desc d = {.validation = VKF_ON, .pipeline_cache_path = path};
    vkf_context *c2;
    cr_assert_eq(vkf_context_create(&d, &c2), VKF_OK);
    use_pipelines(c2);
    vkf_context_destroy(c2);
    cr_assert_eq(file_size(path), -1);
    unsetenv("VKF_PIPELINE_CACHE");
}

/* An explicit cache path is never made (no mkdir -p) and never replaces what
 * is not a regular file: a FIFO, a symbolic link (the write would land where
 * it points), a directory. Context creation says why. */
Test(pipeline_cache, only_regular_files_are_replaced, .init = setup, .fini = teardown)
{
    char p[700], target[700];
    vkf_context *ctx;
    snprintf(p, sizeof p, "%s/missing/dir/cache.bin", dir);
    vkf_context_desc d = {.pipeline_cache = VKF_ON, .pipeline_cache_path = p};
    cr_assert_eq(vkf_context_create(&d, &ctx), VKF_ERROR_IO);
    cr_assert(strstr(vkf_last_error(NULL), "does not exist"), "%s", vkf_last_error(NULL));
    snprintf(target, sizeof target, "%s/missing", dir);
    cr_assert_eq(file_size(target), -1, "no directory was created");
    snprintf(p, sizeof p, "%s/fifo", dir);
    cr_assert_eq(mkfifo(p, 0600), 0);
    cr_assert_eq(vkf_context_create(&d, &ctx), VKF_ERROR_IO);
    cr_assert(strstr(vkf_last_error(NULL), "not a regular file"), "%s", vkf_last_error(NULL));
    struct stat st;
    cr_assert(stat(p, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO is still there");
    snprintf(target, sizeof target, "%s/elsewhere", dir);
    FILE *f = fopen(target, "w");
    fputs("keep", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/link", dir);
    cr_assert_eq(symlink(target, p), 0);
    cr_assert_eq(vkf_context_create(&d, &ctx), VKF_ERROR_IO);
    cr_assert_eq(file_size(target), 4, "the link's target is untouched");
    /* and the writer refuses too, should the file change after the context opened */
    base_diag diag = {0};
    cr_assert_eq(base_write_file_atomic(&diag, p, "x", 1, false), VKF_ERROR_IO);
    cr_assert_eq(file_size(target), 4);
    snprintf(p, sizeof p, "%s/nodir/x.bin", dir);
    cr_assert_eq(base_write_file_atomic(&diag, p, "x", 1, false), VKF_ERROR_IO);
}
