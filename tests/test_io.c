/* Files in: images against PIL, EXIF orientation, and every malformed input
 * (images, safetensors, config.json) with its own clear message. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "io/io.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRE VKF_TEST_DATA "/preprocess"
#define GOLDEN VKF_TEST_DATA "/golden/vit"

static base_diag diag;

static void init_diag(void) { base_diag_init(&diag, NULL, NULL, VKF_LOG_ERROR + 1); }

static io_image load_ok(const char *path)
{
    io_image img;
    vkf_status s = io_image_load(&diag, path, IO_MAX_PIXELS_DEFAULT, &img);
    cr_assert_eq(s, VKF_OK, "%s", diag.error);
    return img;
}

static void assert_same(const io_image *a, const io_image *b, const char *what)
{
    cr_assert_eq(a->w, b->w, "%s: width %u vs %u", what, a->w, b->w);
    cr_assert_eq(a->h, b->h, "%s: height %u vs %u", what, a->h, b->h);
    size_t n = (size_t)a->w * a->h * 3;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(a->rgb[i], b->rgb[i], "%s: byte %zu (pixel %zu,%zu) is %u, PIL has %u", what, i, (i / 3) % a->w,
                     (i / 3) / a->w, a->rgb[i], b->rgb[i]);
}

Test(image, resize_matches_pil_bit_for_bit, .init = init_diag)
{
    static const char *srcs[] = {"rgb", "gray", "rgba"};
    static const uint32_t sizes[][2] = {{40, 33}, {13, 9}, {130, 70}, {97, 20}, {224, 224}};
    static const struct {
        const char *name;
        io_resample f;
    } filters[] = {{"bilinear", IO_BILINEAR}, {"bicubic", IO_BICUBIC}};
    int compared = 0;
    for (size_t s = 0; s < 3; s++) {
        char path[512];
        snprintf(path, sizeof path, PRE "/src_%s.png", srcs[s]);
        io_image src = load_ok(path);
        for (size_t z = 0; z < BASE_ARRAY_LEN(sizes); z++)
            for (size_t f = 0; f < 2; f++) {
                snprintf(path, sizeof path, PRE "/%s_%ux%u_%s.png", srcs[s], sizes[z][0], sizes[z][1], filters[f].name);
                if (access(path, R_OK) != 0) continue;
                io_image want = load_ok(path), got;
                cr_assert_eq(io_image_resize(&diag, &src, sizes[z][0], sizes[z][1], filters[f].f, &got), VKF_OK, "%s", diag.error);
                assert_same(&got, &want, path);
                io_image_free(&got);
                io_image_free(&want);
                compared++;
            }
        io_image_free(&src);
    }
    cr_assert_eq(compared, 14);
}

/* Windows thousands of pixels wide (a 5 x 4000 and a 4000 x 3 image), every filter */
Test(image, resize_extreme_aspect_ratios_match_pil, .init = init_diag)
{
    static const struct {
        const char *src;
        uint32_t w, h;
    } cases[] = {{"tall", 24, 32}, {"tall", 7, 3}, {"tall", 5, 9}, {"wide", 17, 30}, {"wide", 33, 3}};
    static const struct {
        const char *name;
        io_resample f;
    } filters[] = {{"box", IO_BOX}, {"bilinear", IO_BILINEAR}, {"hamming", IO_HAMMING}, {"bicubic", IO_BICUBIC}, {"lanczos", IO_LANCZOS}};
    for (size_t c = 0; c < BASE_ARRAY_LEN(cases); c++) {
        char path[512];
        snprintf(path, sizeof path, PRE "/src_%s.png", cases[c].src);
        io_image src = load_ok(path);
        for (size_t f = 0; f < BASE_ARRAY_LEN(filters); f++) {
            snprintf(path, sizeof path, PRE "/%s_%ux%u_%s.png", cases[c].src, cases[c].w, cases[c].h, filters[f].name);
            io_image want = load_ok(path), got;
            cr_assert_eq(io_image_resize(&diag, &src, cases[c].w, cases[c].h, filters[f].f, &got), VKF_OK, "%s", diag.error);
            assert_same(&got, &want, path);
            io_image_free(&got);
            io_image_free(&want);
        }
        io_image_free(&src);
    }
}

/* Memory proportional to input and output: a 4 x 400,000 image to 224 x 224
 * (a whole intermediate image took 224 x 400,000 x 3 = 269 MB; for the 100
 * megapixel 10 x 10,000,000 PNG of the probe, 7 GB) */
Test(image, resize_memory_is_bounded, .init = init_diag, .timeout = 120)
{
    io_image tall = {.w = 4, .h = 400000};
    tall.rgb = malloc((size_t)tall.w * tall.h * 3);
    for (size_t i = 0; i < (size_t)tall.w * tall.h * 3; i++) tall.rgb[i] = (uint8_t)(i * 2654435761u >> 24);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long before = ru.ru_maxrss;
    io_image got;
    cr_assert_eq(io_image_resize(&diag, &tall, 224, 224, IO_BILINEAR, &got), VKF_OK, "%s", diag.error);
    getrusage(RUSAGE_SELF, &ru);
    cr_expect_lt((ru.ru_maxrss - before) / 1024, 128, "resizing grew RSS by %ld MB", (ru.ru_maxrss - before) / 1024);
    /* not all one colour: the rows were summed */
    int differ = 0;
    for (size_t i = 3; i < (size_t)224 * 224 * 3; i += 3) differ += got.rgb[i] != got.rgb[0];
    cr_expect_gt(differ, 1000);
    io_image_free(&got);
    io_image_free(&tall);
}

Test(image, vit_preprocessing_matches_hf, .init = init_diag)
{
    io_image cats = load_ok(VKF_REPO_DIR "/models/images/000000039769.png");
    cr_assert_eq(cats.w, 640);
    cr_assert_eq(cats.h, 480);
    io_image want = load_ok(PRE "/cats_224x224_bilinear.png"), got;
    cr_assert_eq(io_image_resize(&diag, &cats, 224, 224, IO_BILINEAR, &got), VKF_OK);
    assert_same(&got, &want, "cats 224x224");
    io_preproc pp;
    io_preproc dflt = {0};
    cr_assert_eq(io_preproc_load(&diag, VKF_REPO_DIR "/models/vit-tiny-patch16-224", &dflt, &pp), VKF_OK, "%s", diag.error);
    cr_assert(pp.do_resize && pp.height == 224 && pp.width == 224 && pp.resample == IO_BILINEAR);
    float *chw = malloc(3 * 224 * 224 * sizeof(float)), ref[4096];
    cr_assert_eq(io_preprocess(&diag, &cats, &pp, 224, 224, chw), VKF_OK, "%s", diag.error);
    FILE *f = fopen(PRE "/cats_pixel_values_head.bin", "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(ref, 4, 4096, f), 4096);
    fclose(f);
    for (int i = 0; i < 4096; i++) cr_assert_eq(chw[i], ref[i], "pixel value %d: %.9g vs HF %.9g", i, (double)chw[i], (double)ref[i]);
    /* A model that wants another size is told so. */
    cr_assert_eq(io_preprocess(&diag, &cats, &pp, 384, 384, chw), VKF_ERROR_SHAPE);
    cr_assert(strstr(diag.error, "gives 224x224 pixels but the model takes 384x384"), "%s", diag.error);
    free(chw);
    io_image_free(&got);
    io_image_free(&want);
    io_image_free(&cats);
}

Test(image, center_crop_and_shortest_edge, .init = init_diag)
{
    io_image src = load_ok(PRE "/src_rgb.png"); /* 97 x 61 */
    /* DeiT-style: shortest edge 40 (-> 63 x 40), center crop 32 x 32 */
    io_preproc pp = {.do_resize = true, .shortest_edge = 40, .resample = IO_BICUBIC, .do_center_crop = true,
                     .crop_h = 32, .crop_w = 32, .do_rescale = true, .rescale_factor = 1.0 / 255, .do_normalize = true,
                     .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f}};
    float out[3 * 32 * 32];
    cr_assert_eq(io_preprocess(&diag, &src, &pp, 32, 32, out), VKF_OK, "%s", diag.error);
    io_image r;
    cr_assert_eq(io_image_resize(&diag, &src, 63, 40, IO_BICUBIC, &r), VKF_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                uint8_t u = r.rgb[((size_t)(y + 4) * 63 + (x + 15)) * 3 + c]; /* top (40-32)/2, left (63-32)//2 */
                float v = ((float)((double)u * (1.0 / 255)) - pp.mean[c]) / pp.std[c];
                cr_assert_eq(out[c * 1024 + y * 32 + x], v);
            }
    /* A crop larger than the image pads with zeros, as HF does. */
    io_preproc pad = {.do_center_crop = true, .crop_h = 65, .crop_w = 97};
    float *big = malloc(3 * 65 * 97 * sizeof(float));
    cr_assert_eq(io_preprocess(&diag, &src, &pad, 65, 97, big), VKF_OK, "%s", diag.error);
    cr_assert_eq(big[0], 0.0f);                            /* padding row on top (2 rows) */
    cr_assert_eq(big[2 * 97], (float)src.rgb[0]);          /* first image row */
    cr_assert_eq(big[64 * 97], 0.0f);                      /* padding row at the bottom */
    free(big);
    io_image_free(&r);
    io_image_free(&src);
}

Test(image, exif_orientation_as_pil, .init = init_diag)
{
    io_image upright = load_ok(PRE "/exif_1.jpg");
    cr_assert_eq(upright.w, 40);
    for (int o = 1; o <= 8; o++) {
        char path[256], pil[256];
        snprintf(path, sizeof path, PRE "/exif_%d.jpg", o);
        snprintf(pil, sizeof pil, PRE "/exif_%d_pil.png", o);
        io_image got = load_ok(path), want = load_ok(pil);
        cr_assert_eq(got.w, want.w, "orientation %d: width %u, PIL %u", o, got.w, want.w);
        cr_assert_eq(got.h, want.h, "orientation %d: height %u, PIL %u", o, got.h, want.h);
        /* stb_image and libjpeg differ by a few levels; the layout must not. */
        double diff = 0;
        for (size_t i = 0; i < (size_t)got.w * got.h * 3; i++) diff += fabs((double)got.rgb[i] - want.rgb[i]);
        diff /= (double)got.w * got.h * 3;
        cr_assert_lt(diff, 3.0, "orientation %d: mean difference %.2f from PIL's exif_transpose", o, diff);
        io_image_free(&got);
        io_image_free(&want);
    }
    io_image_free(&upright);
}

/* ---- malformed images -------------------------------------------------------------- */

static char tmpdir[256];

static void make_tmp(void)
{
    init_diag();
    ttmpdir_create(tmpdir, sizeof tmpdir, "io-test");
}

static void rm_tmp(void) { ttmpdir_remove(tmpdir); }

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* A PNG header claiming w x h (stb_image reads dimensions from IHDR). */
static size_t png_header(uint8_t *p, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(p, sig, 8);
    uint8_t ihdr[25] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', (uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8),
                        (uint8_t)w, (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h, 8, 2, 0, 0, 0};
    memcpy(p + 8, ihdr, 25);
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    memcpy(p + 33, iend, 12);
    return 45;
}

static void expect_image_error(const char *path, const char *needle)
{
    io_image img;
    vkf_status s = io_image_load(&diag, path, IO_MAX_PIXELS_DEFAULT, &img);
    cr_assert_neq(s, VKF_OK, "%s decoded", path);
    cr_assert_null(img.rgb);
    cr_assert(strstr(diag.error, needle) && strstr(diag.error, path), "%s: expected '%s' in: %s", path, needle, diag.error);
}

Test(image, bad_images_each_get_their_own_message, .init = make_tmp, .fini = rm_tmp)
{
    expect_image_error(tmp("missing.png"), "cannot open");
    expect_image_error(tmpdir, "is a directory");
    write_file(tmp("empty.png"), "", 0);
    expect_image_error(tmp("empty.png"), "empty file");
    uint8_t junk[300];
    for (int i = 0; i < 300; i++) junk[i] = (uint8_t)(i * 37 + 11);
    write_file(tmp("junk.jpg"), junk, sizeof junk);
    expect_image_error(tmp("junk.jpg"), "not a decodable image");
    /* a real PNG cut in half */
    void *png;
    size_t n;
    cr_assert_eq(base_read_file(&diag, PRE "/src_rgb.png", &png, &n), VKF_OK);
    write_file(tmp("truncated.png"), png, n / 2);
    free(png);
    expect_image_error(tmp("truncated.png"), "corrupt or truncated");
    uint8_t hdr[64];
    write_file(tmp("zero.png"), hdr, png_header(hdr, 0, 0));
    expect_image_error(tmp("zero.png"), "empty (zero width or height)");
    write_file(tmp("huge.png"), hdr, png_header(hdr, 20000, 20000));
    expect_image_error(tmp("huge.png"), "400.0 megapixels, over the 100.0 megapixel bound");
    /* BMP headers: a height of INT32_MIN (negating it overflowed), a negative
     * width, and a valid 8x8 OS/2 1.x file (16-bit dimensions; read with the
     * 32-bit fields it looked like 824,647 megapixels) */
    uint8_t bmp[218] = {'B', 'M', 218, 0, 0, 0, 0, 0, 0, 0, 26, 0, 0, 0, 12, 0, 0, 0, 8, 0, 8, 0, 1, 0, 24, 0};
    for (int i = 26; i < 218; i++) bmp[i] = (uint8_t)(i * 7);
    write_file(tmp("os2.bmp"), bmp, sizeof bmp);
    io_image ok;
    cr_assert_eq(io_image_load(&diag, tmp("os2.bmp"), IO_MAX_PIXELS_DEFAULT, &ok), VKF_OK, "%s", diag.error);
    cr_assert(ok.w == 8 && ok.h == 8, "%ux%u", ok.w, ok.h);
    cr_assert_eq(ok.rgb[0], bmp[26 + 7 * 24 + 2], "bottom-up rows, BGR: the first pixel is the last row's first");
    io_image_free(&ok);
    uint8_t v3[64] = {'B', 'M', 64, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 24, 0};
    write_file(tmp("minheight.bmp"), v3, sizeof v3);
    expect_image_error(tmp("minheight.bmp"), "megapixel bound");
    v3[22] = 8, v3[25] = 0, v3[21] = 0xff, v3[20] = 0xff, v3[19] = 0xff, v3[18] = 0xf8; /* width -8 */
    write_file(tmp("negwidth.bmp"), v3, sizeof v3);
    expect_image_error(tmp("negwidth.bmp"), "megapixel bound");
    /* the bound is the caller's */
    io_image img;
    cr_assert_eq(io_image_load(&diag, PRE "/src_rgb.png", 1000, &img), VKF_ERROR_FORMAT);
    cr_assert(strstr(diag.error, "megapixel bound"), "%s", diag.error);
}

/* ---- safetensors ------------------------------------------------------------------- */

typedef struct st_entry {
    const char *name, *dtype;
    uint64_t shape[4];
    uint32_t rank;
    uint64_t begin, end;
} st_entry;

/* Writes a safetensors file from entries and a data blob; header_len may be
 * forced (0: the real length). */
static void write_st(const char *path, const st_entry *e, size_t n, const void *data, size_t data_len, uint64_t header_len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    for (size_t i = 0; i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, e[i].name);
        cJSON_AddStringToObject(t, "dtype", e[i].dtype);
        cJSON *sh = cJSON_AddArrayToObject(t, "shape");
        for (uint32_t k = 0; k < e[i].rank; k++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e[i].shape[k]));
        cJSON *off = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)e[i].begin));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)e[i].end));
    }
    char *text = cJSON_PrintUnformatted(root);
    uint64_t len = strlen(text), hl = header_len ? header_len : len;
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), f);
    fwrite(text, 1, len, f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
    free(text);
    cJSON_Delete(root);
}

static void expect_st_error(const char *path, vkf_status want, const char *needle) { texpect_st_error(&diag, path, want, needle); }

Test(safetensors, malformed_files, .init = make_tmp, .fini = rm_tmp)
{
    static float data[64];
    st_entry ok = {"a", "F32", {4, 4}, 2, 0, 64};
    write_st(tmp("ok.safetensors"), &ok, 1, data, 64, 0);
    st_checkpoint ck;
    cr_assert_eq(st_open(&diag, tmp("ok.safetensors"), &ck), VKF_OK, "%s", diag.error);
    cr_assert_eq(ck.n_t, 1);
    cr_assert_eq(st_find(&ck, "a")->bytes, 64);
    st_close(&ck);

    expect_st_error(tmp("nothing.safetensors"), VKF_ERROR_IO, "no such file");
    write_file(tmp("short.safetensors"), "\x10\0\0", 3);
    expect_st_error(tmp("short.safetensors"), VKF_ERROR_FORMAT, "too short");
    write_st(tmp("long_header.safetensors"), &ok, 1, data, 64, 100000);
    expect_st_error(tmp("long_header.safetensors"), VKF_ERROR_FORMAT, "header length 100000 is larger than the file");
    write_st(tmp("huge_header.safetensors"), &ok, 1, data, 64, 1ull << 63);
    expect_st_error(tmp("huge_header.safetensors"), VKF_ERROR_FORMAT, "header length 9223372036854775808 is larger than the file");
    write_file(tmp("notjson.safetensors"), "\x08\0\0\0\0\0\0\0{garbage", 16);
    expect_st_error(tmp("notjson.safetensors"), VKF_ERROR_FORMAT, "not a JSON object");
    /* the whole data section is missing: a truncated download */
    write_st(tmp("truncated.safetensors"), &ok, 1, data, 10, 0);
    expect_st_error(tmp("truncated.safetensors"), VKF_ERROR_FORMAT, "runs past the end of the data section");
    st_entry past = {"a", "F32", {4, 4}, 2, 1000, 1064};
    write_st(tmp("past.safetensors"), &past, 1, data, 64, 0);
    expect_st_error(tmp("past.safetensors"), VKF_ERROR_FORMAT, "tensor a (data_offsets 1000..1064) runs past the end");
    st_entry overlap[2] = {{"a", "F32", {4, 4}, 2, 0, 64}, {"b", "F32", {2, 4}, 2, 32, 64}};
    write_st(tmp("overlap.safetensors"), overlap, 2, data, 64, 0);
    expect_st_error(tmp("overlap.safetensors"), VKF_ERROR_FORMAT, "tensors a and b overlap");
    st_entry lying = {"a", "F32", {4, 5}, 2, 0, 64};
    write_st(tmp("lying.safetensors"), &lying, 1, data, 64, 0);
    expect_st_error(tmp("lying.safetensors"), VKF_ERROR_FORMAT, "tensor a spans 64 bytes but its shape and dtype F32 need 80");
    st_entry weird = {"a", "Q4_K", {4, 4}, 2, 0, 64};
    write_st(tmp("weird.safetensors"), &weird, 1, data, 64, 0);
    expect_st_error(tmp("weird.safetensors"), VKF_ERROR_FORMAT, "tensor a has unknown dtype \"Q4_K\"");

    /* HF's coverage rule: a gap, bytes after the last tensor, and a header
     * length one byte short of its padding (the JSON still parses; every
     * tensor would shift by a byte) */
    st_entry gap = {"a", "F32", {2, 4}, 2, 32, 64};
    write_st(tmp("gap.safetensors"), &gap, 1, data, 64, 0);
    expect_st_error(tmp("gap.safetensors"), VKF_ERROR_FORMAT, "bytes 0..32 of the data section belong to no tensor");
    st_entry tail = {"a", "F32", {2, 4}, 2, 0, 32};
    write_st(tmp("tail.safetensors"), &tail, 1, data, 64, 0);
    expect_st_error(tmp("tail.safetensors"), VKF_ERROR_FORMAT, "the data section has 64 bytes, its tensors cover 32");
    {
        const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]}}        ";
        uint64_t len = strlen(json);
        for (int cut = 0; cut < 2; cut++) {
            FILE *f = fopen(tmp("padded.safetensors"), "wb");
            uint64_t hl = len - (uint64_t)cut;
            for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), f);
            fwrite(json, 1, len, f);
            fwrite(data, 1, 64, f);
            fclose(f);
            if (!cut) {
                cr_assert_eq(st_open(&diag, tmp("padded.safetensors"), &ck), VKF_OK, "%s", diag.error);
                st_close(&ck);
            } else {
                expect_st_error(tmp("padded.safetensors"), VKF_ERROR_FORMAT, "the data section has 65 bytes, its tensors cover 64");
            }
        }
        write_file(tmp("trailing.safetensors"), "\x0c\0\0\0\0\0\0\0{}  {\"x\": 1", 20);
        expect_st_error(tmp("trailing.safetensors"), VKF_ERROR_FORMAT, "data after the JSON value");
        const char *nul = "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]}}";
        FILE *f = fopen(tmp("nul.safetensors"), "wb");
        uint64_t hl = strlen(nul);
        for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), f);
        fwrite(nul, 1, hl, f);
        fwrite(data, 1, 64, f);
        fclose(f);
        expect_st_error(tmp("nul.safetensors"), VKF_ERROR_FORMAT, "a NUL character");
    }

    /* A valid file with an int tensor: fine to open, refused only when loaded as a weight. */
    st_entry ints = {"position_ids", "I64", {1, 8}, 2, 0, 64};
    write_st(tmp("ints.safetensors"), &ints, 1, data, 64, 0);
    cr_assert_eq(st_open(&diag, tmp("ints.safetensors"), &ck), VKF_OK, "%s", diag.error);
    float out[8];
    cr_assert_eq(st_convert(&diag, st_find(&ck, "position_ids"), 0, 8, false, out), VKF_ERROR_FORMAT);
    cr_assert(strstr(diag.error, "position_ids: unsupported dtype I64"), "%s", diag.error);
    st_close(&ck);
}

Test(safetensors, bf16_and_f16_convert)
{
    init_diag();
    uint16_t raw[3] = {0x3f80, 0xc000, 0x3e00}; /* bf16 1, -2, 0.125 */
    st_tensor t = {.name = "t", .dtype = ST_BF16, .rank = 1, .shape = {3}, .data = (const uint8_t *)raw, .bytes = 6};
    float f[3];
    cr_assert_eq(st_convert(&diag, &t, 0, 3, false, f), VKF_OK);
    cr_assert(f[0] == 1.0f && f[1] == -2.0f && f[2] == 0.125f);
    uint16_t h[3];
    cr_assert_eq(st_convert(&diag, &t, 0, 3, true, h), VKF_OK);
    cr_assert(h[0] == 0x3c00 && h[1] == 0xc000 && h[2] == 0x3000, "%04x %04x %04x", h[0], h[1], h[2]);
}

/* ---- model directories ------------------------------------------------------------ */

/* Copies the golden model into tmpdir/name with one tensor changed by `edit`
 * (NULL: copied as is); config.json copied unless `config` is given. */
typedef void (*edit_fn)(st_entry *e, size_t *n, size_t i);

/* Appends tensor t of the checkpoint to entries e (offset *off into blob). */
static void copy_entry(const st_tensor *t, st_entry *e, size_t *n, uint8_t *blob, uint64_t *off)
{
    e[*n] = (st_entry){t->name, t->dtype_name, {0}, t->rank, *off, *off + t->bytes};
    memcpy(e[*n].shape, t->shape, t->rank * sizeof(uint64_t));
    memcpy(blob + *off, t->data, t->bytes);
    *off += t->bytes;
    (*n)++;
}

static bool with_position_ids; /* make_model adds an int64 "position_ids" buffer */

static const char *make_model(const char *name, edit_fn edit, const char *config)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    st_checkpoint ck;
    cr_assert_eq(st_open(&diag, GOLDEN, &ck), VKF_OK, "%s", diag.error);
    st_entry *e = calloc(ck.n_t + 1, sizeof(*e));
    size_t n = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < ck.n_t; i++) total += ck.t[i].bytes;
    uint8_t *blob = calloc(total + 17 * 8, 1);
    uint64_t off = 0;
    for (size_t i = 0; i < ck.n_t; i++) {
        size_t before = n;
        uint64_t at = off;
        copy_entry(&ck.t[i], e, &n, blob, &off);
        if (edit) edit(e, &n, n - 1);
        if (n == before) off = at; /* dropped: its bytes go too (tensors must cover the data) */
    }
    total = off;
    if (with_position_ids) {
        e[n++] = (st_entry){"vit.embeddings.position_ids", "I64", {1, 17}, 2, total, total + 17 * 8};
        total += 17 * 8;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_st(path, e, n, blob, total, 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (config) {
        write_file(path, config, strlen(config));
    } else {
        void *c;
        size_t cn;
        cr_assert_eq(base_read_file(&diag, GOLDEN "/config.json", &c, &cn), VKF_OK);
        write_file(path, c, cn);
        free(c);
    }
    free(blob);
    free(e);
    st_close(&ck);
    return dir;
}

static void drop_layer1_value(st_entry *e, size_t *n, size_t i)
{
    if (strcmp(e[i].name, "vit.encoder.layer.1.attention.attention.value.weight") == 0) (*n)--;
}

static void reshape_fc1(st_entry *e, size_t *n, size_t i)
{
    (void)n;
    if (strcmp(e[i].name, "vit.encoder.layer.2.intermediate.dense.weight") == 0) {
        e[i].shape[0] = 64; /* [256, 64] claimed as [64, 256] */
        e[i].shape[1] = 256;
    }
}

static void int_bias(st_entry *e, size_t *n, size_t i)
{
    (void)n;
    if (strcmp(e[i].name, "vit.layernorm.bias") == 0) e[i].dtype = "I32";
}

static void expect_load_error(vkf_context *ctx, const char *dir, vkf_status want, const char *needle)
{
    vkf_model *m = (vkf_model *)(uintptr_t)1;
    vkf_model_desc d = {.precision = VKF_FP32};
    vkf_status s = vkf_model_load(ctx, dir, &d, &m);
    cr_assert_eq(s, want, "%s: got %s: %s", dir, vkf_status_string(s), vkf_last_error(ctx));
    cr_assert_null(m);
    cr_assert(strstr(vkf_last_error(ctx), needle), "expected '%s' in: %s", needle, vkf_last_error(ctx));
}

Test(model_files, bad_checkpoints_and_configs, .init = make_tmp, .fini = rm_tmp)
{
    vkf_context *ctx = tctx_create(NULL);
    expect_load_error(ctx, tmp("no-such-model"), VKF_ERROR_IO, "no-such-model/config.json: cannot open");
    expect_load_error(ctx, make_model("missing", drop_layer1_value, NULL), VKF_ERROR_NOT_FOUND,
                      "missing tensor vit.encoder.layer.1.attention.attention.value.weight");
    expect_load_error(ctx, make_model("shape", reshape_fc1, NULL), VKF_ERROR_SHAPE,
                      "tensor vit.encoder.layer.2.intermediate.dense.weight has shape [64, 256], the config implies [256, 64]");
    expect_load_error(ctx, make_model("dtype", int_bias, NULL), VKF_ERROR_FORMAT,
                      "vit.layernorm.bias: unsupported dtype I32");
    expect_load_error(ctx, make_model("malformed", NULL, "{\"hidden_size\": 64,\n \"num_hidden_layers\": }"),
                      VKF_ERROR_FORMAT, "config.json: malformed JSON at line 2");
    expect_load_error(ctx, make_model("wrongtype", NULL, "{\"model_type\": \"vit\", \"hidden_size\": \"big\"}"), VKF_ERROR_FORMAT,
                      "config.json: \"hidden_size\" must be an integer");
    /* An incomplete config takes ViTConfig's defaults, which do not fit these weights. */
    expect_load_error(ctx, make_model("incomplete", NULL, "{\"model_type\": \"vit\"}"), VKF_ERROR_SHAPE,
                      "has shape [64, 3, 16, 16], the config implies [768, 3, 16, 16]");
    expect_load_error(ctx, make_model("heads", NULL, "{\"model_type\": \"vit\", \"hidden_size\": 64, \"num_attention_heads\": 5}"),
                      VKF_ERROR_FORMAT, "hidden_size 64 is not a multiple of num_attention_heads 5");
    expect_load_error(ctx, make_model("llama", NULL, "{\"model_type\": \"llama\"}"), VKF_ERROR_UNSUPPORTED,
                      "model_type \"llama\" is not supported (supported: vit, deit, bert, distilbert, roberta, xlm-roberta, mpnet, electra, gpt2, clip, clip_vision_model, clip_text_model, bart, mbart, marian, t5, deberta, deberta-v2, wav2vec2, hubert)");
    /* a T5 config over a folder without T5's tensors */
    expect_load_error(ctx, make_model("t5", NULL, "{\"model_type\": \"t5\"}"), VKF_ERROR_NOT_FOUND, "missing tensor shared.weight");
    expect_load_error(ctx, make_model("notype", NULL, "{\"hidden_size\": 64}"), VKF_ERROR_FORMAT, "config.json: no \"model_type\"");
    expect_load_error(ctx, make_model("labels", NULL, "{\"model_type\": \"vit\", \"hidden_size\": 64, \"num_labels\": 3, \"id2label\": {\"0\": \"a\"}}"),
                      VKF_ERROR_FORMAT, "num_labels 3 disagrees with 1 id2label entries");
    /* an empty or signed id2label key is not an index (it became index 0) */
    expect_load_error(ctx, make_model("emptykey", NULL, "{\"model_type\": \"vit\", \"hidden_size\": 64, \"id2label\": {\"\": \"a\", \"1\": \"b\"}}"),
                      VKF_ERROR_FORMAT, "id2label entry \"\" is not a unique index");
    expect_load_error(ctx, make_model("signkey", NULL, "{\"model_type\": \"vit\", \"hidden_size\": 64, \"id2label\": {\"+0\": \"a\", \"1\": \"b\"}}"),
                      VKF_ERROR_FORMAT, "id2label entry \"+0\" is not a unique index");
    expect_load_error(ctx, make_model("eps", NULL, "{\"model_type\": \"vit\", \"hidden_size\": 64, \"layer_norm_eps\": 0}"),
                      VKF_ERROR_FORMAT, "layer_norm_eps 0 is not in (0, 1]");
    /* padding_idx outside the embedding: torch refuses it (it loaded) */
    expect_load_error(ctx, make_model("pad", NULL, "{\"model_type\": \"bert\", \"vocab_size\": 10, \"pad_token_id\": 10}"),
                      VKF_ERROR_FORMAT, "pad_token_id 10 is not below vocab_size 10");
    /* image_std must be positive, rescale_factor positive */
    const char *good = make_model("badstd", NULL, NULL);
    char pp[700];
    snprintf(pp, sizeof pp, "%s/preprocessor_config.json", good);
    write_file(pp, "{\"image_std\": [0.5, -0.5, 0.5]}", strlen("{\"image_std\": [0.5, -0.5, 0.5]}"));
    expect_load_error(ctx, good, VKF_ERROR_FORMAT, "\"image_std\" must be positive");
    write_file(pp, "{\"rescale_factor\": 0}", strlen("{\"rescale_factor\": 0}"));
    expect_load_error(ctx, good, VKF_ERROR_FORMAT, "\"rescale_factor\" 0 is not a positive number");
    /* preprocessing that cannot give the model's input is refused at load,
     * and no resize target is allocated past the pixel bound */
    write_file(pp, "{\"size\": {\"height\": 65535, \"width\": 65535}}", strlen("{\"size\": {\"height\": 65535, \"width\": 65535}}"));
    expect_load_error(ctx, good, VKF_ERROR_FORMAT, "size 65535x65535 is not the model's input 64x64");
    write_file(pp, "{\"size\": {\"shortest_edge\": 64}}", strlen("{\"size\": {\"shortest_edge\": 64}}"));
    expect_load_error(ctx, good, VKF_ERROR_FORMAT, "shortest_edge resizing without a center crop");
    const char *se = "{\"size\": {\"shortest_edge\": 64}, \"do_center_crop\": true, \"crop_size\": {\"height\": 64, \"width\": 64}}";
    write_file(pp, se, strlen(se));
    vkf_model *wide;
    cr_assert_eq(vkf_model_load(ctx, good, NULL, &wide), VKF_OK, "%s", vkf_last_error(ctx));
    static float px[3 * 64 * 64];
    cr_assert_eq(vkf_image_preprocess_file(wide, VKF_TEST_DATA "/images/wide_1000000x1.png", px), VKF_ERROR_FORMAT);
    cr_assert(strstr(vkf_last_error(ctx), "resizing 1000000x1 to 64000000x64 is over the 100.0 megapixel bound"), "%s",
              vkf_last_error(ctx));
    vkf_model_destroy(wide);
    /* The unmodified copy loads: the failures above are the edits' doing. */
    vkf_model *m;
    cr_assert_eq(vkf_model_load(ctx, make_model("good", NULL, NULL), NULL, &m), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

static void strip_prefix(st_entry *e, size_t *n, size_t i)
{
    (void)n;
    if (strncmp(e[i].name, "vit.", 4) == 0) e[i].name += 4;
}

Test(model_files, real_world_variants_load, .init = make_tmp, .fini = rm_tmp)
{
    vkf_context *ctx = tctx_create(NULL);
    float *px = malloc(3 * 64 * 64 * 4), ref[10], got[10];
    FILE *f = fopen(GOLDEN "/pixel_values.bin", "rb");
    cr_assert_eq(fread(px, 4, 3 * 64 * 64, f), 3 * 64 * 64);
    fclose(f);
    f = fopen(GOLDEN "/logits.bin", "rb");
    cr_assert_eq(fread(ref, 4, 10, f), 10);
    fclose(f);
    vkf_tensor in = {.name = "pixel_values", .rank = 4, .shape = {1, 3, 64, 64}, .data = px, .capacity = 0};

    /* Without the "vit." prefix (as ViTModel-derived saves are) */
    vkf_model *m;
    cr_assert_eq(vkf_model_load(ctx, make_model("noprefix", strip_prefix, NULL), NULL, &m), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_tensor out = {.name = "logits", .rank = 0, .shape = {0}, .data = got, .capacity = sizeof got};
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < 10; i++) cr_assert_float_eq(got[i], ref[i], 1e-4);
    vkf_model_destroy(m);

    /* An extra int64 buffer, as older checkpoints carry: ignored */
    with_position_ids = true;
    cr_assert_eq(vkf_model_load(ctx, make_model("posids", NULL, NULL), NULL, &m), VKF_OK, "%s", vkf_last_error(ctx));
    with_position_ids = false;
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < 10; i++) cr_assert_float_eq(got[i], ref[i], 1e-4);
    vkf_model_destroy(m);

    /* Sharded: two files and an index */
    const char *dir = make_model("sharded", NULL, NULL);
    char a[600], b[600], idx[600], whole[600];
    snprintf(whole, sizeof whole, "%s/model.safetensors", dir);
    st_checkpoint ck;
    cr_assert_eq(st_open(&diag, whole, &ck), VKF_OK);
    st_entry *e = calloc(ck.n_t, sizeof(*e));
    cJSON *root = cJSON_CreateObject(), *map = cJSON_AddObjectToObject(root, "weight_map");
    for (int part = 0; part < 2; part++) {
        size_t n = 0;
        uint64_t off = 0, total = 0;
        for (size_t i = 0; i < ck.n_t; i++)
            if ((int)(i % 2) == part) total += ck.t[i].bytes;
        uint8_t *blob = malloc(total);
        for (size_t i = 0; i < ck.n_t; i++) {
            if ((int)(i % 2) != part) continue;
            copy_entry(&ck.t[i], e, &n, blob, &off);
            cJSON_AddStringToObject(map, ck.t[i].name, part ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors");
        }
        snprintf(part ? b : a, 600, "%s/model-0000%d-of-00002.safetensors", dir, part + 1);
        write_st(part ? b : a, e, n, blob, total, 0);
        free(blob);
    }
    st_close(&ck);
    free(e);
    unlink(whole);
    char *text = cJSON_Print(root);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    write_file(idx, text, strlen(text));
    free(text);
    cr_assert_eq(vkf_model_load(ctx, dir, NULL, &m), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < 10; i++) cr_assert_float_eq(got[i], ref[i], 1e-4);
    vkf_model_destroy(m);
    /* an index that names the wrong shard for a tensor (both shards still listed) */
    cJSON *first = map->child;
    cJSON_ReplaceItemInObject(map, first->string, cJSON_CreateString("model-00002-of-00002.safetensors"));
    text = cJSON_Print(root);
    write_file(idx, text, strlen(text));
    free(text);
    expect_load_error(ctx, dir, VKF_ERROR_FORMAT, "is not in its shard model-00002-of-00002.safetensors");
    cJSON_ReplaceItemInObject(map, map->child->string, cJSON_CreateString("model-00001-of-00002.safetensors"));
    text = cJSON_Print(root);
    write_file(idx, text, strlen(text));
    free(text);
    cJSON_Delete(root);
    /* ... and one shard gone */
    unlink(b);
    expect_load_error(ctx, dir, VKF_ERROR_IO, "model-00002-of-00002.safetensors: cannot open");
    free(px);
    tctx_destroy(ctx);
}

/* ---- .npy ------------------------------------------------------------------------------ */

#define NPY VKF_TEST_DATA "/npy"

Test(npy, reads_what_numpy_writes, .init = init_diag)
{
    io_npy a;
    cr_assert_eq(io_npy_load(&diag, NPY "/input_ids.npy", 0, &a), VKF_OK, "%s", diag.error);
    cr_expect_eq(a.dtype, IO_NPY_I64);
    cr_expect_eq(a.rank, 2);
    cr_expect(a.shape[0] == 1 && a.shape[1] == 13 && a.count == 13);
    const int64_t want_ids[13] = {120, 118, 223, 147, 171, 268, 229, 126, 449, 227, 233, 142, 171};
    cr_expect_arr_eq(a.data, want_ids, sizeof want_ids);
    io_npy_free(&a);
    cr_assert_eq(io_npy_load(&diag, NPY "/logits.npy", 0, &a), VKF_OK, "%s", diag.error);
    float want[3];
    FILE *f = fopen(NPY "/logits.bin", "rb");
    cr_assert_eq(fread(want, 4, 3, f), 3);
    fclose(f);
    cr_expect(a.dtype == IO_NPY_F32 && a.count == 3);
    cr_expect_arr_eq(a.data, want, sizeof want);
    io_npy_free(&a);
    cr_assert_eq(io_npy_load(&diag, NPY "/f16_2x3.npy", 0, &a), VKF_OK, "%s", diag.error);
    cr_expect(a.dtype == IO_NPY_F16 && a.rank == 2 && a.shape[1] == 3);
    for (int i = 0; i < 6; i++) cr_expect_eq(base_f16_to_f32(((uint16_t *)a.data)[i]), i / 4.0f);
    io_npy_free(&a);
    cr_assert_eq(io_npy_load(&diag, NPY "/i32_4.npy", 0, &a), VKF_OK, "%s", diag.error);
    cr_expect(a.dtype == IO_NPY_I32 && a.rank == 1 && a.count == 4);
    cr_expect_eq(((int32_t *)a.data)[1], -2);
    cr_expect_eq(((int32_t *)a.data)[3], INT32_MAX);
    io_npy_free(&a);
    /* what is refused, by name */
    cr_expect_eq(io_npy_load(&diag, NPY "/f32_fortran.npy", 0, &a), VKF_ERROR_FORMAT);
    cr_expect(strstr(diag.error, "Fortran-order"), "%s", diag.error);
    cr_expect_eq(io_npy_load(&diag, NPY "/f64.npy", 0, &a), VKF_ERROR_FORMAT);
    cr_expect(strstr(diag.error, "'<f8' is not supported"), "%s", diag.error);
    cr_expect_eq(io_npy_load(&diag, NPY "/f32_be.npy", 0, &a), VKF_ERROR_FORMAT);
    cr_expect(strstr(diag.error, "'>f4'"), "%s", diag.error);
    cr_expect_eq(io_npy_load(&diag, NPY "/logits.npy", 8, &a), VKF_ERROR_FORMAT);
    cr_expect(strstr(diag.error, "over the limit"), "%s", diag.error);
    cr_expect_null(a.data);
}

Test(npy, writes_what_it_reads, .init = make_tmp, .fini = rm_tmp)
{
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)i * 0.5f - 3.0f;
    const uint64_t shapes[4][3] = {{0}, {24}, {4, 6}, {2, 3, 4}};
    for (uint32_t rank = 0; rank < 4; rank++) {
        char path[512];
        snprintf(path, sizeof path, "%s/a%u.npy", tmpdir, rank);
        cr_assert_eq(io_npy_save_f32(&diag, path, x, rank, shapes[rank]), VKF_OK, "%s", diag.error);
        io_npy a;
        cr_assert_eq(io_npy_load(&diag, path, 0, &a), VKF_OK, "%s", diag.error);
        cr_expect_eq(a.rank, rank);
        cr_expect_eq(a.count, rank ? 24 : 1);
        for (uint32_t k = 0; k < rank; k++) cr_expect_eq(a.shape[k], shapes[rank][k]);
        cr_expect_arr_eq(a.data, x, a.count * 4);
        io_npy_free(&a);
    }
}

/* A .npy file from a header string and n data bytes. */
static void write_npy(const char *path, int version, const char *header, uint32_t claimed_len, size_t data_bytes)
{
    uint8_t buf[4096] = {0x93, 'N', 'U', 'M', 'P', 'Y', (uint8_t)version, 0};
    size_t at = 8, hl = strlen(header);
    uint32_t len = claimed_len ? claimed_len : (uint32_t)hl;
    buf[at++] = (uint8_t)len, buf[at++] = (uint8_t)(len >> 8);
    if (version >= 2) buf[at++] = (uint8_t)(len >> 16), buf[at++] = (uint8_t)(len >> 24);
    memcpy(buf + at, header, hl);
    at += hl;
    memset(buf + at, 0x3f, data_bytes);
    write_file(path, buf, at + data_bytes);
}

Test(npy, lying_and_malformed_headers, .init = make_tmp, .fini = rm_tmp)
{
    static const struct {
        int version;
        const char *header;
        uint32_t claimed;
        size_t data;
        const char *needle;
    } cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 20, "needs 24 bytes of data, the file has 20"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 28, "needs 24 bytes of data, the file has 28"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 60000, 24, "does not fit"},
        {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0x7fffffff, 24, "does not fit"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", 0, 8, "overflows"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 0, 8, "absurd"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", 0, 8, "not a tuple of sizes"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 0, 8, "not a tuple of sizes"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 0, 4, "more than 8 dimensions"},
        {1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 0, 16, "'<c8' is not supported"},
        {1, "{'descr': 7, 'fortran_order': False, 'shape': (2,), }", 0, 8, "no 'descr'"},
        {1, "{'descr': '<f4', 'shape': (2,), }", 0, 8, "no 'fortran_order'"},
        {1, "{'descr': '<f4', 'fortran_order': False, }", 0, 8, "no 'shape'"},
        {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 0, 8, "version 4.0"},
        /* NumPy refuses other keys; Python's dict would take a repeated one's last value (the first was read) */
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }", 0, 8, "a key other than"},
        {1, "{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 0, 8, "repeats a key"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (1,), }", 0, 8, "repeats a key"},
    };
    char path[512];
    snprintf(path, sizeof path, "%s/bad.npy", tmpdir);
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) {
        write_npy(path, cases[i].version, cases[i].header, cases[i].claimed, cases[i].data);
        io_npy a;
        cr_expect_neq(io_npy_load(&diag, path, 0, &a), VKF_OK, "case %zu loaded", i);
        cr_expect(strstr(diag.error, cases[i].needle), "case %zu: '%s' lacks '%s'", i, diag.error, cases[i].needle);
        cr_expect(strstr(diag.error, "bad.npy"), "case %zu: the message names no file", i);
        cr_expect_null(a.data);
    }
    write_file(path, "NUMPY?", 6);
    io_npy a;
    cr_expect_eq(io_npy_load(&diag, path, 0, &a), VKF_ERROR_FORMAT);
    cr_expect(strstr(diag.error, "not a .npy file"), "%s", diag.error);
    cr_expect_eq(io_npy_load(&diag, tmpdir, 0, &a), VKF_ERROR_IO);
    cr_expect(strstr(diag.error, "is a directory"), "%s", diag.error);
}

/* A FIFO (or any special file) where a file is expected is refused at once,
 * never opened for a read that waits for a writer forever. */
Test(files, fifos_are_refused_without_blocking, .init = make_tmp, .fini = rm_tmp, .timeout = 30)
{
    cr_assert_eq(mkfifo(tmp("fifo"), 0600), 0);
    io_image img;
    cr_assert_eq(io_image_load(&diag, tmp("fifo"), IO_MAX_PIXELS_DEFAULT, &img), VKF_ERROR_IO);
    cr_assert(strstr(diag.error, "not a regular file"), "%s", diag.error);
    cJSON *j;
    cr_assert_eq(io_json_load(&diag, tmp("fifo"), &j), VKF_ERROR_IO);
    st_checkpoint ck;
    cr_assert_eq(st_open(&diag, tmp("fifo"), &ck), VKF_ERROR_IO);
    cr_assert(strstr(diag.error, "not a regular file"), "%s", diag.error);
    vkf_tensor t;
    cr_assert_eq(vkf_npy_load(tmp("fifo"), &t), VKF_ERROR_IO);
    /* inside a model directory: config.json, the tokenizer and sentence-transformers' modules.json */
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s", tmp("model"));
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    vkf_context *ctx = tctx_create(NULL);
    vkf_model *m;
    cr_assert_eq(vkf_model_load(ctx, dir, NULL, &m), VKF_ERROR_IO);
    cr_assert(strstr(vkf_last_error(ctx), "not a regular file"), "%s", vkf_last_error(ctx));
    tctx_destroy(ctx);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    vkf_tokenizer *tok;
    cr_assert_neq(vkf_tokenizer_load(dir, &tok), VKF_OK);
    model_sentence ms;
    snprintf(path, sizeof path, "%s/modules.json", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_assert_eq(model_sentence_load(&diag, dir, &ms), VKF_ERROR_IO);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir), unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir), unlink(path);
    rmdir(dir);
    unlink(tmp("fifo"));
}

/* JPEG (libjpeg-turbo) and PNG (libpng) decodes equal PIL's convert("RGB")
 * byte for byte: a 64-bit FNV-1a of the pixels, from tools/make_decode_refs.py. */
static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

Test(image, jpeg_and_png_decode_as_pil, .init = init_diag)
{
    cJSON *root;
    cr_assert_eq(io_json_load(&diag, VKF_TEST_DATA "/images/pil_decode.json", &root), VKF_OK, "%s", diag.error);
    int checked = 0;
    for (const cJSON *it = cJSON_GetObjectItem(root, "images")->child; it; it = it->next, checked++) {
        char path[600];
        snprintf(path, sizeof path, "%s/images/%s", VKF_TEST_DATA, it->string);
        /* the raw decode (orientation is the loader's next step; these have none) */
        void *data;
        size_t n;
        cr_assert_eq(base_read_file(&diag, path, &data, &n), VKF_OK);
        io_image img;
        cr_assert_eq(io_image_decode(&diag, data, n, path, IO_MAX_PIXELS_DEFAULT, &img), VKF_OK, "%s", diag.error);
        free(data);
        cr_assert_eq(img.w, (uint32_t)cJSON_GetObjectItem(it, "width")->valueint, "%s", it->string);
        cr_assert_eq(img.h, (uint32_t)cJSON_GetObjectItem(it, "height")->valueint, "%s", it->string);
        char got[17];
        snprintf(got, sizeof got, "%016llx", (unsigned long long)fnv1a(img.rgb, (size_t)img.w * img.h * 3));
        cr_expect_str_eq(got, cJSON_GetObjectItem(it, "fnv1a")->valuestring, "%s (%s): pixels differ from PIL's", it->string,
                         cJSON_GetObjectItem(it, "mode")->valuestring);
        io_image_free(&img);
    }
    cr_assert_geq(checked, 13);
    io_json_free(root);
}

/* Truncated images are refused, as PIL refuses them; formats without a strict
 * decoder are not read at all. */
Test(image, truncated_and_unsupported, .init = make_tmp, .fini = rm_tmp)
{
    const char *srcs[] = {"grace_hopper.jpg", "decode/rgb.bmp", "decode/palette.gif", "decode/rgb_interlaced.png"};
    const char *needles[] = {"corrupt or truncated JPEG", "the pixel data ends before the image does", "no GIF trailer",
                             "corrupt or truncated PNG"};
    for (int i = 0; i < 4; i++) {
        char path[600], cut[600];
        snprintf(path, sizeof path, "%s/images/%s", VKF_TEST_DATA, srcs[i]);
        void *data;
        size_t n;
        cr_assert_eq(base_read_file(&diag, path, &data, &n), VKF_OK);
        snprintf(cut, sizeof cut, "%s", tmp("cut"));
        write_file(cut, data, n * 3 / 4);
        expect_image_error(cut, needles[i]);
        free(data);
    }
    /* a PPM header with no pixel data (it decoded as 100 megapixels of zeros), HDR, TGA */
    write_file(tmp("empty.ppm"), "P6\n10000 10000\n255\n", 19);
    expect_image_error(tmp("empty.ppm"), "not a decodable image (JPEG, PNG, BMP and GIF are read)");
    write_file(tmp("x.hdr"), "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 8 +X 8\n", 45);
    expect_image_error(tmp("x.hdr"), "not a decodable image");
}
