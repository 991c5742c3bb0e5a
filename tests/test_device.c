/* Device listing and selection, capability clamping, missing drivers, two contexts. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static vkf_device_info first_device(uint32_t *count)
{
    vkf_device_info info[8];
    vkf_status s = vkf_list_devices(NULL, info, 8, count);
    cr_assert_eq(s, VKF_OK, "%s", vkf_last_error(NULL));
    cr_assert_geq(*count, 1);
    return info[0];
}

Test(device, list_reports_capabilities)
{
    uint32_t count;
    vkf_device_info d = first_device(&count);
    cr_assert_neq(d.name[0], 0);
    cr_assert_gt(d.subgroup_size, 0);
    cr_assert_gt(d.shared_memory, 0);
    cr_assert(strstr(d.caps_line, "subgroup=") && strstr(d.caps_line, "max_range="), "%s", d.caps_line);
    char *json = NULL;
    cr_assert_eq(vkf_list_devices_json(NULL, &json), VKF_OK);
    cr_assert(strstr(json, "\"subgroup\"") && strstr(json, d.name), "%s", json);
    vkf_free(json);
}

Test(device, select_by_index)
{
    uint32_t count;
    vkf_device_info d = first_device(&count);
    vkf_context *ctx = tctx_create_desc((vkf_context_desc){.use_device_index = 1, .device_index = 0});
    vkf_device_info got;
    cr_assert_eq(vkf_context_device(ctx, &got), VKF_OK);
    cr_assert_str_eq(got.name, d.name);
    cr_assert_eq(got.index, 0);
    tctx_destroy(ctx);

    vkf_context *bad = NULL;
    vkf_context_desc desc = {.use_device_index = 1, .device_index = count, .pipeline_cache = VKF_OFF};
    cr_assert_eq(vkf_context_create(&desc, &bad), VKF_ERROR_NO_DEVICE);
    cr_assert_null(bad);
    cr_assert(strstr(vkf_last_error(NULL), "does not exist"), "%s", vkf_last_error(NULL));
}

Test(device, select_by_env)
{
    uint32_t count;
    vkf_device_info d = first_device(&count);
    setenv("VKF_DEVICE", "0", 1);
    vkf_context *ctx = tctx_create(NULL);
    vkf_device_info got;
    vkf_context_device(ctx, &got);
    cr_assert_str_eq(got.name, d.name);
    tctx_destroy(ctx);

    /* A name substring, case-insensitive. */
    char part[8] = {0};
    for (int i = 0; i < 4 && d.name[i]; i++) part[i] = (char)((d.name[i] >= 'a' && d.name[i] <= 'z') ? d.name[i] - 32 : d.name[i]);
    setenv("VKF_DEVICE", part, 1);
    ctx = tctx_create(NULL);
    vkf_context_device(ctx, &got);
    cr_assert_str_eq(got.name, d.name);
    tctx_destroy(ctx);

    vkf_context_desc desc = {.pipeline_cache = VKF_OFF};
    vkf_context *bad = NULL;
    char idx[16];
    snprintf(idx, sizeof idx, "%u", count + 3);
    setenv("VKF_DEVICE", idx, 1);
    cr_assert_eq(vkf_context_create(&desc, &bad), VKF_ERROR_NO_DEVICE);
    cr_assert(strstr(vkf_last_error(NULL), "VKF_DEVICE"), "%s", vkf_last_error(NULL));
    setenv("VKF_DEVICE", "no-such-gpu-anywhere", 1);
    cr_assert_eq(vkf_context_create(&desc, &bad), VKF_ERROR_NO_DEVICE);
    cr_assert(strstr(vkf_last_error(NULL), "matches no device"), "%s", vkf_last_error(NULL));
    unsetenv("VKF_DEVICE");
}

Test(device, clamp_changes_what_is_reported)
{
    vkf_context *ctx = tctx_create("subgroup=64,shared=16384,fp16=0,max_range=1048576");
    vkf_device_info got;
    vkf_context_device(ctx, &got);
    cr_assert_eq(got.subgroup_size, 64);
    cr_assert_eq(got.shared_memory, 16384);
    cr_assert_eq(got.fp16, 0);
    cr_assert_eq(got.max_storage_buffer_range, 1048576);
    cr_assert(strstr(got.caps_line, "clamped:"), "%s", got.caps_line);

    /* The library acts on the clamp: a 2 MiB storage binding is refused. */
    vk_device *dev = tctx_dev(ctx);
    vk_buf big = tbuf_alloc(dev, 512 * 1024, OP_F32);
    op_list l = {0};
    op_eltwise_params p = {.kind = OP_FILL, .n = 512 * 1024, .value = 1};
    cr_assert_eq(op_eltwise(dev, &p, (op_ref){0}, (op_ref){0}, op_ref_of(&big), &l), VKF_OK);
    cr_assert_eq(op_list_run(dev, &l), VKF_ERROR_UNSUPPORTED);
    cr_assert(strstr(vkf_last_error(ctx), "storage range"), "%s", vkf_last_error(ctx));
    op_list_free(&l);
    vk_buf_free(dev, &big);
    tctx_destroy(ctx);

    /* The environment variable works the same way. */
    setenv("VKF_CAPS", "shared=8192", 1);
    ctx = tctx_create_desc((vkf_context_desc){0});
    vkf_context_device(ctx, &got);
    cr_assert_eq(got.shared_memory, 8192);
    tctx_destroy(ctx);
    unsetenv("VKF_CAPS");
}

Test(device, clamp_rejects_unknown_keys_and_bad_values)
{
    vkf_context *bad = NULL;
    vkf_context_desc desc = {.caps_override = "subgrup=64", .pipeline_cache = VKF_OFF};
    cr_assert_eq(vkf_context_create(&desc, &bad), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(NULL), "unknown key 'subgrup'"), "%s", vkf_last_error(NULL));
    desc.caps_override = "subgroup=48";
    cr_assert_eq(vkf_context_create(&desc, &bad), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(NULL), "power of two"), "%s", vkf_last_error(NULL));
    desc.caps_override = "shared=lots";
    cr_assert_eq(vkf_context_create(&desc, &bad), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(NULL), "bad value"), "%s", vkf_last_error(NULL));
}

static void point_loader_at_nothing(void)
{
    setenv("VK_ICD_FILENAMES", "/nonexistent/icd.json", 1);
    setenv("VK_DRIVER_FILES", "/nonexistent/icd.json", 1);
}

Test(device, no_driver_gives_clear_error)
{
    point_loader_at_nothing();
    vkf_context *ctx = (vkf_context *)(uintptr_t)1;
    vkf_context_desc desc = {.pipeline_cache = VKF_OFF};
    vkf_status s = vkf_context_create(&desc, &ctx);
    cr_assert_eq(s, VKF_ERROR_NO_VULKAN, "got %s: %s", vkf_status_string(s), vkf_last_error(NULL));
    cr_assert_null(ctx);
    cr_assert(strstr(vkf_last_error(NULL), "no Vulkan"), "%s", vkf_last_error(NULL));
    uint32_t count = 7;
    cr_assert_eq(vkf_list_devices(NULL, NULL, 0, &count), VKF_ERROR_NO_VULKAN);
    cr_assert_eq(count, 0);
}

Test(device, info_tool_without_driver_fails_cleanly)
{
    point_loader_at_nothing();
    FILE *p = popen(VKF_INFO_BIN " 2>&1", "r");
    cr_assert_not_null(p);
    char out[4096] = {0};
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int status = pclose(p);
    cr_assert(WIFEXITED(status), "vkformer-info crashed: %s", out);
    cr_assert_eq(WEXITSTATUS(status), 1, "%s", out);
    cr_assert(strstr(out, "no Vulkan driver"), "%s", out);
}

Test(device, info_tool_lists_devices)
{
    FILE *p = popen(VKF_INFO_BIN, "r");
    cr_assert_not_null(p);
    char out[8192] = {0};
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    cr_assert_eq(pclose(p), 0);
    cr_assert(strstr(out, "[0] ") && strstr(out, "subgroup="), "%s", out);
}

Test(device, two_contexts_side_by_side)
{
    vkf_context *a = tctx_create(NULL), *b = tctx_create(NULL);
    vkf_context *ctxs[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        vk_device *dev = tctx_dev(ctxs[k]);
        vk_buf y = tbuf_alloc(dev, 100, OP_F32);
        op_list l = {0};
        op_eltwise_params p = {.kind = OP_FILL, .n = 100, .value = (float)(k + 1)};
        cr_assert_eq(op_eltwise(dev, &p, (op_ref){0}, (op_ref){0}, op_ref_of(&y), &l), VKF_OK);
        cr_assert_eq(op_list_run(dev, &l), VKF_OK, "%s", vkf_last_error(ctxs[k]));
        float out[100];
        tbuf_download(dev, &y, out, 100, OP_F32);
        for (int i = 0; i < 100; i++) cr_assert_eq(out[i], (float)(k + 1));
        op_list_free(&l);
        vk_buf_free(dev, &y);
    }
    tctx_destroy(a);
    tctx_destroy(b);
}
