/* The embedding API as an app uses it: a model loaded from bytes in memory
 * (as from Android assets) gives the same results as from its directory, and
 * already-decoded pixels (RGB, RGBA, BGRA, padded rows) classify exactly as
 * the same image from its file. */
#define _DEFAULT_SOURCE
#include "common.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

#define BUNDLED VKF_REPO_DIR "/models/vit-tiny-patch16-224"
#define MINILM TMINILM
#define CATS VKF_REPO_DIR "/models/images/000000039769.png"
#define PX (3 * 224 * 224)

/* Every regular file in dir and its subdirectories, read into memory. */
typedef struct mem_dir {
    vkf_memory_file f[32];
    uint32_t n;
} mem_dir;

static void mem_dir_add(mem_dir *m, const char *root, const char *sub)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, *sub ? "/" : "", sub);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s is missing (the tests' setup fetches it)", dir);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4096], name[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(name, sizeof name, "%s%s%s", sub, *sub ? "/" : "", e->d_name);
        if (!base_is_regular(path)) {
            mem_dir_add(m, root, name);
            continue;
        }
        cr_assert_lt(m->n, 32u);
        void *data;
        size_t size;
        base_diag diag = {0};
        cr_assert_eq(base_read_file(&diag, path, &data, &size), VKF_OK, "%s", diag.error);
        m->f[m->n++] = (vkf_memory_file){base_strdup(name), data, size};
    }
    closedir(d);
}

static void mem_dir_read(mem_dir *m, const char *dir)
{
    memset(m, 0, sizeof *m);
    mem_dir_add(m, dir, "");
}

static void mem_dir_free(mem_dir *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        free((void *)m->f[i].name);
        free((void *)m->f[i].data);
    }
    m->n = 0;
}

static vkf_model *load_memory(vkf_context *ctx, mem_dir *md)
{
    vkf_model *m = NULL;
    cr_assert_eq(vkf_model_load_memory(ctx, md->f, md->n, &(vkf_model_desc){.precision = VKF_FP32}, &m), VKF_OK, "%s",
                 vkf_last_error(ctx));
    return m;
}

Test(memory, vit_from_bytes_equals_from_directory, .timeout = 300)
{
    vkf_context *ctx = tctx_create(tcaps());
    mem_dir md;
    mem_dir_read(&md, BUNDLED);
    vkf_model *mem = load_memory(ctx, &md);
    mem_dir_free(&md); /* the bytes are not needed after the load (ASan would see a later read) */
    vkf_model *dir = tload_model(ctx, BUNDLED, VKF_FP32);
    vkf_model_info a, b;
    vkf_model_get_info(mem, &a);
    vkf_model_get_info(dir, &b);
    cr_assert_eq(a.num_labels, 1000);
    cr_assert_eq(a.parameters, b.parameters);
    vkf_class_score ta[5], tb[5];
    cr_assert_eq(vkf_classify_file(mem, CATS, ta, 5), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(vkf_classify_file(dir, CATS, tb, 5), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(ta[i].index, tb[i].index);
        cr_assert_eq(ta[i].logit, tb[i].logit, "logit %d: %g from memory, %g from the directory", i, ta[i].logit, tb[i].logit);
        cr_assert_str_eq(ta[i].label, tb[i].label);
    }
    cr_assert_eq(ta[0].index, 281, "%s", ta[0].label);
    vkf_model_destroy(mem);
    vkf_model_destroy(dir);
    tctx_destroy(ctx);
}

Test(memory, text_model_with_tokenizer_from_bytes, .timeout = 300)
{
    if (!tminilm()) cr_skip_test("all-MiniLM-L6-v2 left out");
    vkf_context *ctx = tctx_create(tcaps());
    mem_dir md;
    mem_dir_read(&md, MINILM);
    vkf_model *mem = load_memory(ctx, &md);
    mem_dir_free(&md);
    vkf_model *dir = tload_model(ctx, MINILM, VKF_FP32);
    /* without the pooling module modules.json names: its error, not a crash */
    mem_dir_read(&md, MINILM);
    for (uint32_t i = 0; i < md.n; i++)
        if (!strcmp(md.f[i].name, "1_Pooling/config.json")) {
            free((void *)md.f[i].name);
            free((void *)md.f[i].data);
            md.f[i] = md.f[--md.n];
        }
    vkf_model *broken = (vkf_model *)1;
    cr_assert_neq(vkf_model_load_memory(ctx, md.f, md.n, NULL, &broken), VKF_OK);
    cr_assert_null(broken);
    cr_assert(strstr(vkf_last_error(ctx), "(memory)/1_Pooling/config.json"), "%s", vkf_last_error(ctx));
    mem_dir_free(&md);
    const char *texts[2] = {"A man is eating food.", "Grüße aus Köln!"};
    float ea[2 * 384], eb[2 * 384];
    cr_assert_eq(vkf_embed(mem, texts, 2, NULL, ea), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(vkf_embed(dir, texts, 2, NULL, eb), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(max_abs_diff_f32(ea, eb, 2 * 384), 0.0, "embeddings differ (pooling or tokenizer not read from memory?)");
    vkf_model_destroy(mem);
    vkf_model_destroy(dir);
    tctx_destroy(ctx);
}

/* Replaces file name's bytes in md with text. */
static void mem_dir_set(mem_dir *md, const char *name, const char *text)
{
    for (uint32_t i = 0; i < md->n; i++)
        if (!strcmp(md->f[i].name, name)) {
            free((void *)md->f[i].data);
            md->f[i].data = strdup(text);
            md->f[i].size = strlen(text);
            return;
        }
    cr_assert_fail("no %s", name);
}

/* sentence-transformers files it would read otherwise than we did (issue 30):
 * modules.json with data after it or modules that are not objects, and a
 * Pooling config with two modes (sentence-transformers concatenates them; one
 * was used) */
Test(memory, sentence_transformers_files_refused, .timeout = 300)
{
    if (!tminilm()) cr_skip_test("all-MiniLM-L6-v2 left out");
    vkf_context *ctx = tctx_create(NULL);
    static const struct {
        const char *file, *text, *needle;
        vkf_status want;
    } cases[] = {
        {"modules.json", "[{\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"}] x",
         "not a JSON array of modules (data after it)", VKF_ERROR_FORMAT},
        {"modules.json", "[1, 2]", "a module is not an object with a \"type\"", VKF_ERROR_FORMAT},
        {"1_Pooling/config.json", "{\"word_embedding_dimension\": 384, \"pooling_mode_mean_tokens\": true, \"pooling_mode_lasttoken\": true}",
         "this one concatenates several", VKF_ERROR_UNSUPPORTED},
    };
    for (size_t c = 0; c < BASE_ARRAY_LEN(cases); c++) {
        mem_dir md;
        mem_dir_read(&md, MINILM);
        mem_dir_set(&md, cases[c].file, cases[c].text);
        vkf_model *m = (vkf_model *)1;
        cr_expect_eq(vkf_model_load_memory(ctx, md.f, md.n, NULL, &m), cases[c].want, "%s: %s", cases[c].file, vkf_last_error(ctx));
        cr_expect(strstr(vkf_last_error(ctx), cases[c].needle), "%s", vkf_last_error(ctx));
        mem_dir_free(&md);
    }
    tctx_destroy(ctx);
}

Test(memory, bad_file_sets_fail_by_name, .timeout = 60)
{
    vkf_context *ctx = tctx_create(tcaps());
    mem_dir md;
    mem_dir_read(&md, BUNDLED);
    vkf_model *m = (vkf_model *)1;
    /* without config.json */
    vkf_memory_file some[8];
    uint32_t n = 0;
    for (uint32_t i = 0; i < md.n; i++)
        if (strcmp(md.f[i].name, "config.json")) some[n++] = md.f[i];
    cr_assert_eq(vkf_model_load_memory(ctx, some, n, NULL, &m), VKF_ERROR_IO);
    cr_assert_null(m);
    cr_assert(strstr(vkf_last_error(ctx), "(memory)/config.json: cannot open"), "%s", vkf_last_error(ctx));
    /* a truncated weights file */
    for (uint32_t i = 0; i < md.n; i++) {
        some[i] = md.f[i];
        if (!strcmp(some[i].name, "model.safetensors")) some[i].size = 400000;
    }
    cr_assert_eq(vkf_model_load_memory(ctx, some, md.n, NULL, &m), VKF_ERROR_FORMAT);
    cr_assert(strstr(vkf_last_error(ctx), "(memory)/model.safetensors"), "%s", vkf_last_error(ctx));
    /* names that are not file names, a file given twice, NULL data */
    static const char *const bad[] = {"", "../config.json", "/config.json", "a//config.json", "./config.json", ".."};
    for (size_t b = 0; b < BASE_ARRAY_LEN(bad); b++) {
        some[0] = (vkf_memory_file){bad[b], "{}", 2};
        cr_assert_eq(vkf_model_load_memory(ctx, some, 1, NULL, &m), VKF_ERROR_INVALID_ARGUMENT, "name '%s'", bad[b]);
        cr_assert(strstr(vkf_last_error(ctx), "is not a file name in the model directory"), "%s", vkf_last_error(ctx));
    }
    some[0] = some[1] = md.f[0];
    cr_assert_eq(vkf_model_load_memory(ctx, some, 2, NULL, &m), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(ctx), "given twice"), "%s", vkf_last_error(ctx));
    /* 100,000 files: the duplicate check is not quadratic (it took 63 s; the timeout guards it) */
    enum { MANY = 100000 };
    vkf_memory_file *many = malloc(MANY * sizeof *many);
    char (*names)[16] = malloc(MANY * sizeof *names);
    for (uint32_t i = 0; i < MANY; i++) snprintf(names[i], sizeof names[i], "f%u", i), many[i] = (vkf_memory_file){names[i], "x", 1};
    cr_assert_eq(vkf_model_load_memory(ctx, many, MANY, NULL, &m), VKF_ERROR_IO);
    cr_assert(strstr(vkf_last_error(ctx), "config.json"), "%s", vkf_last_error(ctx));
    many[MANY - 1].name = names[77];
    cr_assert_eq(vkf_model_load_memory(ctx, many, MANY, NULL, &m), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(ctx), "f77 is given twice"), "%s", vkf_last_error(ctx));
    free(many), free(names);
    some[0] = (vkf_memory_file){"config.json", NULL, 10};
    cr_assert_eq(vkf_model_load_memory(ctx, some, 1, NULL, &m), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(vkf_model_load_memory(NULL, some, 1, NULL, &m), VKF_ERROR_INVALID_ARGUMENT);
    /* after all that, the file system is itself again: a directory load works */
    vkf_model *ok = tload_model(ctx, BUNDLED, VKF_FP32);
    vkf_model_destroy(ok);
    mem_dir_free(&md);
    tctx_destroy(ctx);
}

/* The cats photo decoded (as PIL decodes it) into the given layout. */
static uint8_t *layout(const io_image *img, vkf_pixel_format fmt, size_t stride)
{
    uint32_t c = fmt == VKF_PIXELS_RGB8 ? 3 : 4;
    uint8_t *buf = malloc(stride * img->h);
    memset(buf, 0xa5, stride * img->h); /* padding that must be ignored */
    for (uint32_t y = 0; y < img->h; y++)
        for (uint32_t x = 0; x < img->w; x++) {
            const uint8_t *s = img->rgb + ((size_t)y * img->w + x) * 3;
            uint8_t *d = buf + stride * y + (size_t)x * c;
            d[0] = fmt == VKF_PIXELS_BGRA8 ? s[2] : s[0];
            d[1] = s[1];
            d[2] = fmt == VKF_PIXELS_BGRA8 ? s[0] : s[2];
            if (c == 4) d[3] = (uint8_t)(x * 7 + y); /* alpha, dropped */
        }
    return buf;
}

Test(pixels, decoded_frames_equal_the_file, .timeout = 300)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, BUNDLED, VKF_FP32);
    base_diag diag = {0};
    io_image img;
    cr_assert_eq(io_image_load(&diag, CATS, IO_MAX_PIXELS_DEFAULT, &img), VKF_OK, "%s", diag.error);
    float *want = malloc(PX * 4), *got = malloc(PX * 4);
    cr_assert_eq(vkf_image_preprocess_file(m, CATS, want), VKF_OK, "%s", vkf_last_error(ctx));
    struct {
        vkf_pixel_format fmt;
        size_t stride; /* 0: packed */
    } cases[] = {{VKF_PIXELS_RGB8, 0}, {VKF_PIXELS_RGB8, 640 * 3 + 5}, {VKF_PIXELS_RGBA8, 0}, {VKF_PIXELS_BGRA8, 640 * 4 + 64}};
    vkf_image frames[4];
    uint8_t *bufs[4];
    for (int i = 0; i < 4; i++) {
        size_t packed = (size_t)img.w * (cases[i].fmt == VKF_PIXELS_RGB8 ? 3 : 4);
        bufs[i] = layout(&img, cases[i].fmt, cases[i].stride ? cases[i].stride : packed);
        frames[i] = (vkf_image){bufs[i], img.w, img.h, cases[i].stride, cases[i].fmt};
        cr_assert_eq(vkf_image_preprocess(m, &frames[i], got), VKF_OK, "%s", vkf_last_error(ctx));
        cr_assert_eq(memcmp(got, want, PX * 4), 0, "case %d: not the file's model input", i);
    }
    /* the encoded file's bytes in memory */
    void *png;
    size_t png_size;
    cr_assert_eq(base_read_file(&diag, CATS, &png, &png_size), VKF_OK);
    cr_assert_eq(vkf_image_preprocess_memory(m, png, png_size, got), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(memcmp(got, want, PX * 4), 0, "encoded bytes: not the file's model input");
    cr_assert_eq(vkf_image_preprocess_memory(m, png, 300, got), VKF_ERROR_FORMAT);
    cr_assert(strstr(vkf_last_error(ctx), "(memory)"), "%s", vkf_last_error(ctx));
    free(png);
    /* batched classification of the frames: the file's scores each time */
    vkf_class_score want_top[3], top[4 * 3];
    cr_assert_eq(vkf_classify_file(m, CATS, want_top, 3), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(vkf_classify_images(m, frames, 4, top, 3), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            cr_assert_eq(top[i * 3 + j].index, want_top[j].index, "frame %d top-%d", i, j + 1);
            cr_assert_float_eq(top[i * 3 + j].prob, want_top[j].prob, 1e-6, "frame %d top-%d", i, j + 1);
        }
    cr_assert_eq(top[0].index, 281);
    for (int i = 0; i < 4; i++) free(bufs[i]);
    io_image_free(&img);
    free(want);
    free(got);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(pixels, bad_frames_are_refused)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, BUNDLED, VKF_FP32);
    float *out = malloc(PX * 4);
    uint8_t px[16 * 16 * 4] = {0};
    struct {
        vkf_image im;
        const char *msg;
    } bad[] = {
        {{px, 16, 16, 16 * 3 - 1, VKF_PIXELS_RGB8}, "less than a row"},
        {{px, 0, 16, 0, VKF_PIXELS_RGB8}, "0x16 pixels"},
        {{px, 16, 0, 0, VKF_PIXELS_RGBA8}, "16x0 pixels"},
        {{px, 200000, 200000, 0, VKF_PIXELS_RGB8}, "200000x200000 pixels"},
        {{px, 16, 16, 0, (vkf_pixel_format)7}, "unknown pixel format 7"},
        {{NULL, 16, 16, 0, VKF_PIXELS_RGB8}, "NULL data"},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(bad); i++) {
        cr_assert_eq(vkf_image_preprocess(m, &bad[i].im, out), VKF_ERROR_INVALID_ARGUMENT, "case %zu", i);
        cr_assert(strstr(vkf_last_error(ctx), bad[i].msg), "case %zu: %s", i, vkf_last_error(ctx));
    }
    vkf_class_score top[1];
    cr_assert_eq(vkf_classify_images(m, &bad[0].im, 1, top, 1), VKF_ERROR_INVALID_ARGUMENT);
    /* a tiny frame is fine: resized like any image */
    vkf_image tiny = {px, 16, 16, 0, VKF_PIXELS_RGBA8};
    cr_assert_eq(vkf_classify_images(m, &tiny, 1, top, 1), VKF_OK, "%s", vkf_last_error(ctx));
    free(out);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}
