/* Proves the validation layer is live in tests: deliberate misuse, in a child
 * process, must be reported through the library's messenger. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct child_report {
    uint32_t errors;
    int saw_sync_hazard;
    int saw_vuid;
} child_report;

static child_report seen;

static void child_log(void *user, vkf_log_level level, const char *message)
{
    (void)user;
    (void)level;
    if (strstr(message, "SYNC-HAZARD")) seen.saw_sync_hazard = 1;
    if (strstr(message, "VUID-")) seen.saw_vuid = 1;
}

/* Runs fn in a child with a validated context; returns what the messenger saw. */
static child_report in_child(void (*fn)(vk_device *dev))
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        vkf_context_desc desc = {.validation = VKF_ON, .pipeline_cache = VKF_OFF, .log_fn = child_log,
                                 .log_level = VKF_LOG_WARN + 1};
        vkf_context *ctx;
        if (vkf_context_create(&desc, &ctx) == VKF_OK) {
            fn(ctx->dev);
            vkf_context_validation_counts(ctx, &seen.errors, NULL);
            vkf_context_destroy(ctx);
        }
        child_report r = seen;
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(3);
        _exit(0);
    }
    close(fds[1]);
    child_report r = {0};
    ssize_t n = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
    cr_assert_eq(n, (ssize_t)sizeof r);
    return r;
}

static void read_after_write_without_barrier(vk_device *dev)
{
    vk_buf a, y;
    vk_buf_alloc(dev, 1024, VK_MEM_DEVICE, "a", &a);
    vk_buf_alloc(dev, 1024, VK_MEM_DEVICE, "y", &y);
    vk_stream s;
    vk_stream_begin(dev, &s, 0);
    /* A transfer write the stream does not know about, then a dispatch reading it. */
    dev->fn.vkCmdFillBuffer(s.cmd, a.buffer, a.offset, 1024, 0);
    op_list l = {0};
    op_eltwise_params p = {.kind = OP_SCALE, .value = 2, .n = 256};
    op_eltwise(dev, &p, op_ref_of(&a), (op_ref){0}, op_ref_of(&y), &l);
    op_list_record(&s, &l);
    vk_stream_end(&s);
    vk_stream_submit(&s);
    vk_stream_wait(&s);
    vk_stream_destroy(&s);
    op_list_free(&l);
    vk_buf_free(dev, &a);
    vk_buf_free(dev, &y);
}

static void zero_sized_buffer(vk_device *dev)
{
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = 0, /* VUID-VkBufferCreateInfo-size-00912 */
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
    };
    VkBuffer b = VK_NULL_HANDLE;
    if (dev->fn.vkCreateBuffer(dev->device, &bci, NULL, &b) == VK_SUCCESS && b)
        dev->fn.vkDestroyBuffer(dev->device, b, NULL);
}

static void correct_usage(vk_device *dev)
{
    vk_buf a, y;
    vk_buf_alloc(dev, 1024, VK_MEM_DEVICE, "a", &a);
    vk_buf_alloc(dev, 1024, VK_MEM_DEVICE, "y", &y);
    op_list l = {0};
    op_eltwise_params fill = {.kind = OP_FILL, .value = 1, .n = 256};
    op_eltwise_params scale = {.kind = OP_SCALE, .value = 2, .n = 256};
    op_eltwise(dev, &fill, (op_ref){0}, (op_ref){0}, op_ref_of(&a), &l);
    op_eltwise(dev, &scale, op_ref_of(&a), (op_ref){0}, op_ref_of(&y), &l);
    op_list_run(dev, &l);
    op_list_free(&l);
    vk_buf_free(dev, &a);
    vk_buf_free(dev, &y);
}

Test(validation, sync_hazard_is_caught)
{
    child_report r = in_child(read_after_write_without_barrier);
    cr_assert_geq(r.errors, 1, "synchronization validation did not report the missing barrier");
    cr_assert(r.saw_sync_hazard, "no SYNC-HAZARD message reached the logger");
}

Test(validation, invalid_usage_is_caught)
{
    child_report r = in_child(zero_sized_buffer);
    cr_assert_geq(r.errors, 1, "core validation did not report a zero-sized buffer");
    cr_assert(r.saw_vuid, "no VUID message reached the logger");
}

Test(validation, correct_usage_is_silent)
{
    child_report r = in_child(correct_usage);
    cr_assert_eq(r.errors, 0);
    cr_assert(!r.saw_vuid && !r.saw_sync_hazard);
}
