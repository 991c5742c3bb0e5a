/* vkformer-classify as a user runs it: defaults, JSON, raw tensors in and
 * logits out, and bad input ending in a message and a non-zero exit, never a
 * crash. Runs with the validation layer on; its messages fail the test. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GOLDEN VKF_TEST_DATA "/golden/vit"

typedef tcli_result run_result;

/* vkformer-classify with validation on; a validation message fails the test. */
static run_result *run(const char *args)
{
    run_result *r = tcli_run("VKF_VALIDATION=1 VKF_PIPELINE_CACHE=off " VKF_CLASSIFY_BIN, args, NULL, 0);
    cr_assert(!strstr(r->err, "vulkan ["), "validation messages:\n%s", r->err);
    return r;
}

static void expect_failure(const char *args, int status, const char *needle)
{
    run_result *r = run(args);
    cr_assert_eq(r->status, status, "`%s` exited %d (want %d)\nstderr: %s", args, r->status, status, r->err);
    cr_assert(strstr(r->err, needle), "`%s`: expected '%s' in stderr:\n%s", args, needle, r->err);
}

Test(cli, default_run_prints_the_cats, .timeout = 300)
{
    run_result *r = run("");
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(strstr(r->out, "0.725   281  tabby, tabby cat"), "%s", r->out);
    /* results alone on stdout; the model line and the timing line on stderr */
    cr_assert(!strstr(r->out, "load ") && !strstr(r->out, "parameters"), "%s", r->out);
    cr_assert(strstr(r->err, "vit (image-classification), 5717416 parameters") && strstr(r->err, "vkformer-classify: load ") &&
                  strstr(r->err, ", 1 image in "), "%s", r->err);
}

Test(cli, json_and_batches, .timeout = 300)
{
    run_result *r = run("--json --top 2 " VKF_REPO_DIR "/models/images/000000039769.png " VKF_REPO_DIR "/models/images/dog.jpg");
    cr_assert_eq(r->status, 0, "%s", r->err);
    cJSON *j = cJSON_Parse(r->out);
    cr_assert_not_null(j, "not JSON: %s", r->out);
    /* one element per image, each HF's list of {label, score} */
    cr_assert_eq(cJSON_GetArraySize(j), 2);
    cJSON *dog = cJSON_GetArrayItem(cJSON_GetArrayItem(j, 1), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(dog, "label")->valuestring, "Samoyed, Samoyede");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetArrayItem(j, 0)), 2);
    /* HF pipeline field names: label and score, no "prob" */
    cJSON *cat = cJSON_GetArrayItem(cJSON_GetArrayItem(j, 0), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(cat, "label")->valuestring, "tabby, tabby cat");
    cr_assert_float_eq(cJSON_GetObjectItem(cat, "score")->valuedouble, 0.725, 0.005);
    cr_assert_null(cJSON_GetObjectItem(cat, "prob"), "a \"prob\" field: %s", r->out);
    cJSON_Delete(j);
}

/* getopt_long conventions: --opt=value, "--" ends the options, "-" is standard input. */
Test(cli, option_conventions_and_stdin, .timeout = 300)
{
    size_t size;
    void *png;
    base_diag diag = {0};
    cr_assert_eq(base_read_file(&diag, VKF_REPO_DIR "/models/images/000000039769.png", &png, &size), VKF_OK);
    tcli_result *r = tcli_run("VKF_PIPELINE_CACHE=off " VKF_CLASSIFY_BIN, "--top=1 -q -- -", png, size);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(strstr(r->out, "-:\n  0.725   281  tabby, tabby cat"), "%s", r->out);
    free(png);
    r = tcli_run(VKF_CLASSIFY_BIN, "-q -", "not an image", 12);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "standard input: "), "%s", r->err);
    /* the bundled model is looked up under VKF_MODEL_DIR when it is set */
    r = tcli_run("VKF_MODEL_DIR=/no/such/dir " VKF_CLASSIFY_BIN, "-q", NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "/no/such/dir/vit-tiny-patch16-224") && strstr(r->err, "--model"), "%s", r->err);
}

Test(cli, every_tool_has_version_and_help)
{
    static const char *const tools[] = {VKF_INFO_BIN, VKF_CLASSIFY_BIN, VKF_TOKENIZE_BIN, VKF_EMBED_BIN, VKF_FILL_MASK_BIN,
                                        VKF_RUN_BIN, VKF_GENERATE_BIN, VKF_ZERO_SHOT_BIN, VKF_RERANK_BIN};
    char want[64];
    snprintf(want, sizeof want, "(vkformer) %d.%d.%d\n", VKF_VERSION_MAJOR, VKF_VERSION_MINOR, VKF_VERSION_PATCH);
    for (size_t i = 0; i < BASE_ARRAY_LEN(tools); i++) {
        tcli_result *r = tcli_run(tools[i], "--version", NULL, 0);
        cr_assert_eq(r->status, 0, "%s --version: %s", tools[i], r->err);
        cr_assert(strstr(r->out, want), "%s --version: %s", tools[i], r->out);
        r = tcli_run(tools[i], "--help", NULL, 0);
        cr_assert(r->status == 0 && strstr(r->out, "usage: "), "%s --help: %s", tools[i], r->out);
        r = tcli_run(tools[i], "--no-such-option", NULL, 0);
        cr_assert_eq(r->status, 2, "%s --no-such-option exited %d", tools[i], r->status);
        cr_assert(strstr(r->err, "--help"), "%s: %s", tools[i], r->err);
    }
}

Test(cli, input_tensor_and_dump_logits)
{
    char out[64];
    snprintf(out, sizeof out, "/tmp/vkf-logits-%d.bin", (int)getpid());
    char args[512];
    snprintf(args, sizeof args, "--model " GOLDEN " --input-tensor " GOLDEN "/pixel_values.bin --dump-logits %s -q", out);
    run_result *r = run(args);
    cr_assert_eq(r->status, 0, "%s", r->err);
    float got[10], want[10];
    FILE *f = fopen(out, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(got, 4, 10, f), 10);
    cr_assert_eq(fgetc(f), EOF, "more than N x labels floats written");
    fclose(f);
    unlink(out);
    f = fopen(GOLDEN "/logits.bin", "rb");
    cr_assert_eq(fread(want, 4, 10, f), 10);
    fclose(f);
    for (int i = 0; i < 10; i++) cr_assert_float_eq(got[i], want[i], 1e-4);
}

Test(cli, bad_input_fails_cleanly)
{
    char dir[] = "/tmp/vkf-cli-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[1024], args[1024];
    /* a model whose weights file was cut short */
    snprintf(cmd, sizeof cmd, "cp -r " GOLDEN " %s/model && truncate -s 400000 %s/model/model.safetensors", dir, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(args, sizeof args, "--model %s/model", dir);
    expect_failure(args, 1, "truncated");
    /* a corrupt image and an empty one */
    snprintf(cmd, sizeof cmd, "head -c 500 /dev/urandom > %s/noise.jpg && : > %s/empty.png", dir, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(args, sizeof args, "%s/noise.jpg", dir);
    expect_failure(args, 1, "noise.jpg: not a decodable image");
    snprintf(args, sizeof args, "%s/empty.png", dir);
    expect_failure(args, 1, "empty.png: empty file");
    expect_failure("/no/such/picture.png", 1, "/no/such/picture.png: cannot open");
    expect_failure("--model /no/such/model", 1, "/no/such/model/config.json: cannot open");
    /* a raw tensor of the wrong size */
    snprintf(cmd, sizeof cmd, "head -c 4000 /dev/zero > %s/short.bin", dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(args, sizeof args, "--model " GOLDEN " --input-tensor %s/short.bin", dir);
    expect_failure(args, 1, "1000 floats is not a whole number of 3x64x64 images");
    /* usage errors */
    expect_failure("--top 0", 2, "--top takes a positive number");
    expect_failure("--precision fp8", 2, "--precision takes fp32 or fp16");
    expect_failure("--frobnicate", 2, "unrecognized option '--frobnicate'");
    snprintf(args, sizeof args, "--input-tensor %s/short.bin x.png", dir);
    expect_failure(args, 2, "not both");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(cli, help)
{
    run_result *r = run("--help");
    cr_assert_eq(r->status, 0);
    cr_assert(strstr(r->out, "--input-tensor") && strstr(r->out, "--dump-logits") && strstr(r->out, "--precision"));
}
