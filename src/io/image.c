/* Images: decoding with bounds checked first (JPEG through libjpeg-turbo and
 * PNG through libpng, as PIL decodes them; BMP and GIF through stb_image,
 * checked complete first), EXIF orientation, PIL-exact resampling, and the
 * HF image-processor steps (resize, center crop, rescale, normalise). */
#include "io.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stb_image.h>

void io_image_free(io_image *img)
{
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof(*img));
}

/* ---- EXIF orientation (JPEG APP1) ---------------------------------------- */

static uint32_t rd(const uint8_t *p, int n, bool le)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[le ? n - 1 - i : i];
    return v;
}

/* The orientation tag (1..8) of a JPEG, 1 when absent or unreadable. */
static int jpeg_orientation(const uint8_t *p, size_t n)
{
    if (n < 4 || p[0] != 0xFF || p[1] != 0xD8) return 1;
    size_t i = 2;
    while (i + 4 <= n && p[i] == 0xFF) {
        uint8_t marker = p[i + 1];
        size_t len = ((size_t)p[i + 2] << 8) | p[i + 3];
        if (marker == 0xDA || len < 2 || i + 2 + len > n) break; /* start of scan: no more metadata */
        const uint8_t *seg = p + i + 4;
        size_t sl = len - 2;
        if (marker == 0xE1 && sl >= 14 && memcmp(seg, "Exif\0\0", 6) == 0) {
            const uint8_t *tiff = seg + 6;
            size_t tl = sl - 6;
            bool le = tiff[0] == 'I' && tiff[1] == 'I';
            if (!le && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
            uint32_t ifd = rd(tiff + 4, 4, le);
            if (ifd > tl || tl - ifd < 2) return 1;
            uint32_t count = rd(tiff + ifd, 2, le);
            for (uint32_t k = 0; k < count; k++) {
                size_t e = ifd + 2 + (size_t)k * 12;
                if (e + 12 > tl) return 1;
                if (rd(tiff + e, 2, le) == 0x0112 && rd(tiff + e + 2, 2, le) == 3) {
                    uint32_t v = rd(tiff + e + 8, 2, le);
                    return v >= 1 && v <= 8 ? (int)v : 1;
                }
            }
            return 1;
        }
        i += 2 + len;
    }
    return 1;
}

/* PIL's ImageOps.exif_transpose: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
 * 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise. */
static vkf_status apply_orientation(base_diag *d, io_image *img, int o)
{
    if (o <= 1) return VKF_OK;
    uint32_t w = img->w, h = img->h;
    bool swap = o >= 5;
    uint32_t ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *out = malloc((size_t)ow * oh * 3);
    if (!out) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t y = 0; y < oh; y++)
        for (uint32_t x = 0; x < ow; x++) {
            uint32_t sx, sy;
            switch (o) {
            case 2: sx = w - 1 - x, sy = y; break;
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;
            case 4: sx = x, sy = h - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = h - 1 - x; break;
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;
            default: sx = w - 1 - y, sy = x; break; /* 8 */
            }
            memcpy(out + ((size_t)y * ow + x) * 3, img->rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    free(img->rgb);
    img->rgb = out;
    img->w = ow;
    img->h = oh;
    return VKF_OK;
}

/* ---- decoding ------------------------------------------------------------------ */

/* Dimensions from the header of a PNG, GIF, BMP or JPEG, so an empty image
 * gets its own message (stb_image only says "unknown image type"). */
static bool sniff_dims(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    if (n >= 24 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(p + 12, "IHDR", 4) == 0) {
        *w = rd(p + 16, 4, false), *h = rd(p + 20, 4, false);
        return true;
    }
    if (n >= 10 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) {
        *w = rd(p + 6, 2, true), *h = rd(p + 8, 2, true);
        return true;
    }
    if (n >= 26 && p[0] == 'B' && p[1] == 'M') {
        if (rd(p + 14, 4, true) == 12) { /* OS/2 1.x BITMAPCOREHEADER: 16-bit width and height */
            *w = rd(p + 18, 2, true), *h = rd(p + 20, 2, true);
            return true;
        }
        /* signed 32-bit; a negative height is a top-down image (INT32_MIN
         * negated in 64 bits); a negative width is invalid: refused as huge */
        int64_t ww = (int32_t)rd(p + 18, 4, true), hh = (int32_t)rd(p + 22, 4, true);
        *w = ww < 0 ? UINT32_MAX : (uint32_t)ww;
        *h = (uint32_t)(hh < 0 ? -hh : hh);
        return true;
    }
    if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8) {
        for (size_t i = 2; i + 9 < n && p[i] == 0xFF;) {
            uint8_t m = p[i + 1];
            size_t len = ((size_t)p[i + 2] << 8) | p[i + 3];
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                *h = rd(p + i + 5, 2, false), *w = rd(p + i + 7, 2, false);
                return true;
            }
            i += 2 + len;
        }
    }
    return false;
}

/* ---- JPEG: libjpeg-turbo with PIL's settings (the library's defaults:
 * ISLOW DCT, fancy upsampling), so pixels equal PIL's ---------------------- */

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_fail(j_common_ptr c)
{
    jpeg_err *e = (jpeg_err *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

/* Warnings pass, except the end of the data before the image's end: PIL
 * refuses truncated files (LOAD_TRUNCATED_IMAGES is off by default). */
static void jpeg_message(j_common_ptr c, int level)
{
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(c);
}

static vkf_status decode_jpeg(base_diag *d, const uint8_t *data, size_t size, const char *name, io_image *out)
{
    struct jpeg_decompress_struct ci;
    jpeg_err e;
    uint8_t *volatile rgb = NULL;
    ci.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_fail;
    e.mgr.emit_message = jpeg_message;
    e.msg[0] = 0;
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&ci);
        free(rgb);
        return base_fail(d, VKF_ERROR_FORMAT, "%s: corrupt or truncated JPEG (%s)", name, e.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)size);
    jpeg_read_header(&ci, TRUE);
    if (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&ci);
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: CMYK JPEGs are not supported (convert it to RGB)", name);
    }
    ci.out_color_space = JCS_RGB; /* grayscale replicated, as convert("RGB") */
    jpeg_start_decompress(&ci);
    size_t row = (size_t)ci.output_width * 3;
    rgb = malloc(row * ci.output_height);
    if (!rgb) {
        jpeg_destroy_decompress(&ci);
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory", name);
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW r = rgb + row * ci.output_scanline;
        jpeg_read_scanlines(&ci, &r, 1);
    }
    jpeg_finish_decompress(&ci);
    out->w = ci.output_width, out->h = ci.output_height, out->rgb = rgb;
    jpeg_destroy_decompress(&ci);
    return VKF_OK;
}

/* ---- PNG: libpng, as PIL's convert("RGB"): palette expanded, gray
 * replicated, alpha dropped (not composited), 16 bits to their high byte ---- */

typedef struct png_src {
    const uint8_t *p;
    size_t n, at;
} png_src;

static void png_read_mem(png_structp png, png_bytep out, png_size_t len)
{
    png_src *s = png_get_io_ptr(png);
    if (len > s->n - s->at) png_error(png, "the file ends inside the image (truncated)");
    memcpy(out, s->p + s->at, len);
    s->at += len;
}

static void png_fail(png_structp png, png_const_charp msg)
{
    char *buf = png_get_error_ptr(png);
    snprintf(buf, 256, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static vkf_status decode_png(base_diag *d, const uint8_t *data, size_t size, const char *name, io_image *out)
{
    char msg[256] = "";
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, msg, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory", name);
    }
    uint8_t *volatile rgb = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb);
        free(rows);
        return base_fail(d, VKF_ERROR_FORMAT, "%s: corrupt or truncated PNG (%s)", name, msg);
    }
    png_src src = {data, size, 0};
    png_set_read_fn(png, &src, png_read_mem);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    /* 16-bit gray is PIL's mode I;16, whose conversion clips values to 255
     * (not their high byte): read it as is and convert below */
    bool gray16 = type == PNG_COLOR_TYPE_GRAY && depth == 16;
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !gray16) png_set_strip_16(png);
    /* alpha, and the alpha the expansion makes of a tRNS chunk */
    if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    if ((type == PNG_COLOR_TYPE_GRAY && !gray16) || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * (gray16 ? 2 : 3)) png_error(png, "unexpected row layout after the RGB transforms");
    rgb = malloc((size_t)w * h * 3);
    rows = malloc((size_t)h * sizeof *rows);
    if (!rgb || !rows) png_error(png, "out of host memory");
    /* gray16: two bytes a pixel, read into the last two thirds of each row */
    for (uint32_t y = 0; y < h; y++) rows[y] = rgb + (size_t)y * w * 3 + (gray16 ? w : 0);
    png_read_image(png, rows);
    png_read_end(png, NULL);
    for (uint32_t y = 0; gray16 && y < h; y++) {
        uint8_t *r = rgb + (size_t)y * w * 3;
        for (uint32_t x = 0; x < w; x++) { /* ascending x: the source is always ahead of the write */
            unsigned v = ((unsigned)r[w + 2 * x] << 8) | r[w + 2 * x + 1];
            uint8_t g = v > 255 ? 255 : (uint8_t)v;
            r[3 * x] = r[3 * x + 1] = r[3 * x + 2] = g;
        }
    }
    out->w = w, out->h = h, out->rgb = rgb;
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return VKF_OK;
}

/* ---- BMP and GIF (stb_image), complete files only ------------------------------ */

/* An uncompressed BMP must hold all its rows; a GIF must end with its trailer.
 * (stb_image reads zeros past the end of the data: a truncated file would
 * decode as an image with black rows.) */
static const char *incomplete(const uint8_t *p, size_t n, uint32_t w, uint32_t h)
{
    if (p[0] == 'B') {
        uint32_t off = rd(p + 10, 4, true), hs = rd(p + 14, 4, true);
        uint32_t bpp = hs == 12 ? rd(p + 24, 2, true) : n >= 30 ? rd(p + 28, 2, true) : 0;
        uint32_t comp = hs >= 40 && n >= 34 ? rd(p + 30, 4, true) : 0;
        if (comp == 0 && bpp) {
            uint64_t row = ((uint64_t)w * bpp + 31) / 32 * 4;
            if (off > n || row * h > n - off) return "the pixel data ends before the image does (truncated)";
        }
        return NULL;
    }
    return n < 14 || p[n - 1] != 0x3B ? "no GIF trailer: the file ends inside the image (truncated)" : NULL;
}

vkf_status io_image_decode(base_diag *d, const void *data, size_t size, const char *name, uint64_t max_pixels,
                           io_image *out)
{
    memset(out, 0, sizeof(*out));
    if (size == 0) return base_fail(d, VKF_ERROR_FORMAT, "%s: empty file, not an image", name);
    if (size > INT32_MAX) return base_fail(d, VKF_ERROR_FORMAT, "%s: larger than 2 GB, not decodable", name);
    /* Dimensions are checked before anything is decoded: a small file may
     * claim a huge image (a decompression bomb). */
    uint32_t sw = 0, sh = 0;
    if (!sniff_dims(data, size, &sw, &sh))
        return base_fail(d, VKF_ERROR_FORMAT, "%s: not a decodable image (JPEG, PNG, BMP and GIF are read)", name);
    if (sw == 0 || sh == 0) return base_fail(d, VKF_ERROR_FORMAT, "%s: the image is empty (zero width or height)", name);
    if ((uint64_t)sw * sh > max_pixels)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: %ux%u is %.1f megapixels, over the %.1f megapixel bound", name, sw, sh,
                         (double)sw * sh / 1e6, (double)max_pixels / 1e6);
    const uint8_t *p = data;
    vkf_status s;
    if (p[0] == 0xFF) {
        s = decode_jpeg(d, p, size, name, out);
    } else if (p[0] == 0x89) {
        s = decode_png(d, p, size, name, out);
    } else {
        const char *why = incomplete(p, size, sw, sh);
        if (why) return base_fail(d, VKF_ERROR_FORMAT, "%s: corrupt or truncated image data (%s)", name, why);
        int w = 0, h = 0, comp = 0;
        /* req_comp 3: gray is replicated and alpha dropped, as PIL's convert("RGB"). */
        uint8_t *px = stbi_load_from_memory(data, (int)size, &w, &h, &comp, 3);
        if (!px) {
            const char *r = stbi_failure_reason();
            return base_fail(d, VKF_ERROR_FORMAT, "%s: corrupt or truncated image data (%s)", name, r ? r : "decode failed");
        }
        out->w = (uint32_t)w, out->h = (uint32_t)h;
        out->rgb = malloc((size_t)w * h * 3);
        if (out->rgb) memcpy(out->rgb, px, (size_t)w * h * 3);
        stbi_image_free(px);
        s = out->rgb ? VKF_OK : base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory", name);
    }
    if (s == VKF_OK && (out->w != sw || out->h != sh)) {
        io_image_free(out);
        return base_fail(d, VKF_ERROR_FORMAT, "%s: decoded %ux%u, the header says %ux%u", name, out->w, out->h, sw, sh);
    }
    if (s == VKF_OK) s = apply_orientation(d, out, jpeg_orientation(data, size));
    if (s != VKF_OK) io_image_free(out);
    return s;
}

vkf_status io_image_load(base_diag *d, const char *path, uint64_t max_pixels, io_image *out)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return base_fail(d, VKF_ERROR_IO, "%s: is a directory, not an image", path);
    void *data;
    size_t size;
    vkf_status s = base_read_file(d, path, &data, &size);
    if (s != VKF_OK) return s;
    s = io_image_decode(d, data, size, path, max_pixels, out);
    free(data);
    return s;
}

/* ---- PIL-exact resampling ------------------------------------------------------- */

typedef double (*filter_fn)(double);

static double f_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
static double f_bilinear(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}
static double f_hamming(double x)
{
    x = fabs(x);
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x *= 3.14159265358979323846;
    return sin(x) / x * (0.54f + 0.46f * cos(x)); /* PIL mixes float constants in */
}
static double f_bicubic(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}
static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x *= 3.14159265358979323846;
    return sin(x) / x;
}
static double f_lanczos(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

#define PRECISION_BITS (32 - 8 - 2)

/* One output's weights as PIL's precompute_coeffs + normalize_coeffs_8bpc
 * compute them for a full-image box: the first input index in *first, the
 * count in *n, the fixed-point weights in k (ksize of room; kk scratch). */
typedef struct axis {
    uint32_t in_size, out_size;
    double scale, filterscale, support;
    int ksize;
    filter_fn f;
} axis;

static axis make_axis(uint32_t in_size, uint32_t out_size, filter_fn f, double support_base)
{
    axis a = {in_size, out_size, (double)in_size / out_size, 0, 0, 0, f};
    a.filterscale = a.scale < 1.0 ? 1.0 : a.scale;
    a.support = support_base * a.filterscale;
    a.ksize = (int)ceil(a.support) * 2 + 1;
    return a;
}

static void coeff_one(const axis *a, uint32_t xx, double *kk, int32_t *k, int *first, int *n)
{
    double center = (xx + 0.5) * a->scale, ww = 0.0, ss = 1.0 / a->filterscale;
    int xmin = (int)(center - a->support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + a->support + 0.5);
    if (xmax > (int)a->in_size) xmax = (int)a->in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
        double w = a->f((x + xmin - center + 0.5) * ss);
        kk[x] = w;
        ww += w;
    }
    for (int x = 0; x < xmax; x++) {
        double v = ww != 0.0 ? kk[x] / ww : kk[x];
        k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
    }
    *first = xmin, *n = xmax;
}

static inline uint8_t clip8(int64_t v)
{
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Weights kept for every output of an axis when that is small (they are
 * reused for every row), else computed for each use: an image of 100 million
 * pixels in one row would need gigabytes of them. */
#define COEFF_KEEP_MAX ((size_t)1 << 22)

/* The horizontal pass of one input row (PIL's ImagingResampleHorizontal). */
static void resample_row(const axis *a, const int32_t *kept, const int *bounds, double *kk, int32_t *k, const uint8_t *row,
                         uint8_t *out)
{
    for (uint32_t x = 0; x < a->out_size; x++) {
        int xmin, n;
        const int32_t *w;
        if (kept) {
            xmin = bounds[x * 2], n = bounds[x * 2 + 1], w = kept + (size_t)x * a->ksize;
        } else {
            coeff_one(a, x, kk, k, &xmin, &n);
            w = k;
        }
        int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (int i = 0; i < n; i++) {
            const uint8_t *p = row + (size_t)(xmin + i) * 3;
            s0 += p[0] * w[i], s1 += p[1] * w[i], s2 += p[2] * w[i];
        }
        out[x * 3] = clip8(s0), out[x * 3 + 1] = clip8(s1), out[x * 3 + 2] = clip8(s2);
    }
}

/* PIL's two passes through 8-bit rows, in Pillow's order (horizontal first,
 * unless the height shrinks more than twice as much as the width), with
 * memory bounded by the input and the output: the vertical pass streams the
 * input's rows (horizontally resampled already, or not yet) into sums per
 * output row (integer sums, so the order does not change them) and keeps
 * only the output rows still open, so a 10 x 10,000,000 image resized to
 * 224 x 224 needs megabytes where a whole intermediate image took 6.7 GB. */
vkf_status io_image_resize(base_diag *d, const io_image *in, uint32_t w, uint32_t h, io_resample filter, io_image *out)
{
    memset(out, 0, sizeof(*out));
    if (!w || !h || !in->w || !in->h) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "resize to or from an empty image");
    filter_fn f;
    double support;
    switch (filter) {
    case IO_BOX: f = f_box, support = 0.5; break;
    case IO_BILINEAR: f = f_bilinear, support = 1.0; break;
    case IO_HAMMING: f = f_hamming, support = 1.0; break;
    case IO_BICUBIC: f = f_bicubic, support = 2.0; break;
    case IO_LANCZOS: f = f_lanczos, support = 3.0; break;
    default:
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "resample %d is not supported (bilinear 2, bicubic 3, box 4, hamming 5, lanczos 1)",
                         (int)filter);
    }
    bool need_h = w != in->w, need_v = h != in->h;
    int64_t dh = (int64_t)in->h - h, dw = (int64_t)in->w - w;
    bool h_first = !(dh > 0 && dh > dw * 2); /* Pillow's ImagingResampleInner */
    uint32_t vw = need_h && h_first ? w : in->w; /* the width the vertical pass works on */
    axis ah = make_axis(in->w, w, f, support), av = make_axis(in->h, h, f, support);
    int kmax = BASE_MAX(ah.ksize, av.ksize);
    /* horizontal weights, kept when small */
    bool keep = need_h && (size_t)w * (size_t)ah.ksize <= COEFF_KEEP_MAX;
    int32_t *hk = keep ? calloc((size_t)w * ah.ksize, sizeof *hk) : NULL;
    int *hb = keep ? malloc((size_t)w * 2 * sizeof *hb) : NULL;
    double *kk = malloc((size_t)kmax * sizeof *kk);
    int32_t *k1 = malloc((size_t)kmax * sizeof *k1);
    uint8_t *row = malloc((size_t)BASE_MAX(w, in->w) * 3), *dst = malloc((size_t)w * h * 3);
    /* open output rows: their first input row, count, weights and sums, in a ring */
    uint32_t ring = 0;
    if (need_v) ring = av.scale < 1.0 ? h : (uint32_t)BASE_MIN((double)h, 2.0 * av.support / av.scale + 3.0);
    int32_t *vk = ring ? malloc((size_t)ring * av.ksize * sizeof *vk) : NULL;
    int *vb = ring ? malloc((size_t)ring * 2 * sizeof *vb) : NULL;
    int64_t *acc = ring ? malloc((size_t)ring * vw * 3 * sizeof *acc) : NULL;
    vkf_status s = VKF_OK;
    if ((keep && (!hk || !hb)) || !kk || !k1 || !row || !dst || (ring && (!vk || !vb || !acc))) {
        s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory resizing %ux%u to %ux%u", in->w, in->h, w, h);
        goto done;
    }
    for (uint32_t x = 0; keep && x < w; x++) coeff_one(&ah, x, kk, hk + (size_t)x * ah.ksize, &hb[x * 2], &hb[x * 2 + 1]);
    if (!need_v) {
        for (uint32_t y = 0; y < h; y++) {
            const uint8_t *src = in->rgb + (size_t)y * in->w * 3;
            if (need_h) resample_row(&ah, hk, hb, kk, k1, src, dst + (size_t)y * w * 3);
            else memcpy(dst + (size_t)y * w * 3, src, (size_t)w * 3);
        }
        goto finish;
    }
    /* output rows [lo, hi) are open; row y lives in ring slot y % ring */
    uint32_t lo = 0, hi = 0, ready = UINT32_MAX; /* ready: the row whose weights wait in its slot */
    int first0, n0, fl, nl;
    coeff_one(&av, 0, kk, k1, &first0, &n0);
    coeff_one(&av, h - 1, kk, k1, &fl, &nl);
    const size_t n_acc = (size_t)vw * 3;
    for (int r = first0; r < fl + nl; r++) {
        /* open the output rows whose window starts at or before r */
        while (hi < h && hi - lo < ring) {
            uint32_t slot = hi % ring;
            if (ready != hi) coeff_one(&av, hi, kk, vk + (size_t)slot * av.ksize, &vb[slot * 2], &vb[slot * 2 + 1]), ready = hi;
            if (vb[slot * 2] > r) break;
            int64_t *a = acc + (size_t)slot * n_acc;
            for (size_t i = 0; i < n_acc; i++) a[i] = 1 << (PRECISION_BITS - 1);
            hi++;
        }
        const uint8_t *src = in->rgb + (size_t)r * in->w * 3;
        if (need_h && h_first) resample_row(&ah, hk, hb, kk, k1, src, row), src = row;
        for (uint32_t y = lo; y < hi; y++) {
            uint32_t slot = y % ring;
            int fy = vb[slot * 2], ny = vb[slot * 2 + 1];
            if (r < fy || r >= fy + ny) continue;
            int64_t wgt = vk[(size_t)slot * av.ksize + (r - fy)], *a = acc + (size_t)slot * n_acc;
            for (size_t i = 0; i < n_acc; i++) a[i] += wgt * src[i];
        }
        /* close the rows whose window ends here (windows end in order) */
        while (lo < hi && vb[(lo % ring) * 2] + vb[(lo % ring) * 2 + 1] <= r + 1) {
            const int64_t *a = acc + (size_t)(lo % ring) * n_acc;
            uint8_t *o = dst + (size_t)lo * w * 3, *v = need_h && !h_first ? row : o;
            /* PIL sums in int32: the same sum, taken as it wraps */
            for (size_t i = 0; i < n_acc; i++) v[i] = clip8((int32_t)(uint32_t)(uint64_t)a[i]);
            if (v != o) resample_row(&ah, hk, hb, kk, k1, v, o); /* vertical first: then this row's horizontal pass */
            lo++;
        }
    }
    if (lo != h) {
        s = base_fail(d, VKF_ERROR_FORMAT, "resize %ux%u to %ux%u: %u rows left unwritten (internal error)", in->w, in->h, w, h, h - lo);
        goto done;
    }
finish:
    out->w = w;
    out->h = h;
    out->rgb = dst;
    dst = NULL;
done:
    free(hk), free(hb), free(kk), free(k1), free(row), free(dst), free(vk), free(vb), free(acc);
    return s;
}

/* ---- HF preprocessing --------------------------------------------------------------- */

static vkf_status read_size(base_diag *d, const char *file, const cJSON *root, const char *key, uint32_t *h, uint32_t *w,
                            uint32_t *shortest)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return VKF_OK;
    if (cJSON_IsNumber(v)) { /* legacy: one number means a square */
        uint32_t s;
        vkf_status st = io_json_u32(d, file, root, key, 0, 1, 65535, &s);
        if (st == VKF_OK) *h = *w = s, *shortest = 0;
        return st;
    }
    if (!cJSON_IsObject(v)) return base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" must be a number or an object", file, key);
    uint32_t se = 0, hh = 0, ww = 0;
    vkf_status st = io_json_u32(d, file, v, "shortest_edge", 0, 0, 65535, &se);
    if (st == VKF_OK) st = io_json_u32(d, file, v, "height", 0, 0, 65535, &hh);
    if (st == VKF_OK) st = io_json_u32(d, file, v, "width", 0, 0, 65535, &ww);
    if (st != VKF_OK) return st;
    if (se) {
        *shortest = se, *h = *w = 0;
    } else if (hh && ww) {
        *h = hh, *w = ww, *shortest = 0;
    } else {
        return base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" needs height and width, or shortest_edge", file, key);
    }
    return VKF_OK;
}

vkf_status io_preproc_load(base_diag *d, const char *dir, const io_preproc *defaults, io_preproc *out)
{
    *out = *defaults;
    char path[4096];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    if (!base_exists(path)) return VKF_OK; /* optional: the defaults stand */
    cJSON *root;
    vkf_status s = io_json_load(d, path, &root);
    if (s != VKF_OK) return s;
    uint32_t resample = out->resample, unused = 0;
    if (s == VKF_OK) s = io_json_bool(d, path, root, "do_resize", out->do_resize, &out->do_resize);
    if (s == VKF_OK) s = read_size(d, path, root, "size", &out->height, &out->width, &out->shortest_edge);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "resample", resample, 0, 5, &resample);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "do_center_crop", out->do_center_crop, &out->do_center_crop);
    if (s == VKF_OK) s = read_size(d, path, root, "crop_size", &out->crop_h, &out->crop_w, &unused);
    if (s == VKF_OK && unused) s = base_fail(d, VKF_ERROR_FORMAT, "%s: \"crop_size\" must give height and width", path);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "do_rescale", out->do_rescale, &out->do_rescale);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "rescale_factor", out->rescale_factor, &out->rescale_factor);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "do_normalize", out->do_normalize, &out->do_normalize);
    float mean[3], stdv[3];
    memcpy(mean, out->mean, sizeof mean);
    memcpy(stdv, out->std, sizeof stdv);
    if (s == VKF_OK) s = io_json_f32n(d, path, root, "image_mean", mean, 3, out->mean);
    if (s == VKF_OK) s = io_json_f32n(d, path, root, "image_std", stdv, 3, out->std);
    for (int c = 0; c < 3 && s == VKF_OK; c++)
        if (!(out->std[c] > 0.0f) || !isfinite(out->std[c]) || !isfinite(out->mean[c]))
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: \"image_std\" must be positive and \"image_mean\" finite (%g, %g)", path,
                          (double)out->std[c], (double)out->mean[c]);
    if (s == VKF_OK && (!(out->rescale_factor > 0) || !isfinite(out->rescale_factor)))
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: \"rescale_factor\" %g is not a positive number", path, out->rescale_factor);
    out->resample = (io_resample)resample;
    io_json_free(root);
    return s;
}

vkf_status io_preproc_check(base_diag *d, const char *file, const io_preproc *pp, uint32_t out_h, uint32_t out_w)
{
    if (pp->do_center_crop) {
        if (pp->crop_h != out_h || pp->crop_w != out_w)
            return base_fail(d, VKF_ERROR_FORMAT, "%s: crop_size %ux%u is not the model's input %ux%u", file, pp->crop_w, pp->crop_h,
                             out_w, out_h);
    } else if (pp->do_resize && pp->shortest_edge) {
        return base_fail(d, VKF_ERROR_FORMAT, "%s: shortest_edge resizing without a center crop gives the model's %ux%u input only "
                         "for square images", file, out_w, out_h);
    } else if (pp->do_resize && (pp->height != out_h || pp->width != out_w)) {
        return base_fail(d, VKF_ERROR_FORMAT, "%s: size %ux%u is not the model's input %ux%u", file, pp->width, pp->height, out_w,
                         out_h);
    }
    if (pp->do_resize && (uint64_t)pp->height * pp->width > IO_MAX_PIXELS_DEFAULT)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: size %ux%u is over the %.1f megapixel bound", file, pp->width, pp->height,
                         IO_MAX_PIXELS_DEFAULT / 1e6);
    if (pp->do_resize && pp->shortest_edge > 16384)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: shortest_edge %u is over 16384", file, pp->shortest_edge);
    return VKF_OK;
}

vkf_status io_preprocess(base_diag *d, const io_image *img, const io_preproc *pp, uint32_t out_h, uint32_t out_w,
                         float *chw)
{
    io_image resized = {0};
    const io_image *cur = img;
    vkf_status s = VKF_OK;
    if (pp->do_resize) {
        uint32_t rh = pp->height, rw = pp->width;
        if (pp->shortest_edge) { /* HF get_resize_output_image_size(default_to_square=False) */
            uint32_t se = pp->shortest_edge;
            if (img->w <= img->h)
                rw = se, rh = (uint32_t)((double)se * img->h / img->w);
            else
                rh = se, rw = (uint32_t)((double)se * img->w / img->h);
        }
        if (!rh || !rw) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "preprocessing: resize target is empty");
        /* checked before anything is allocated: a 1000000x1 image resized to a
         * shortest edge of 64 would be 64000000x64 */
        if ((uint64_t)rw * rh > IO_MAX_PIXELS_DEFAULT)
            return base_fail(d, VKF_ERROR_FORMAT, "preprocessing: resizing %ux%u to %ux%u is over the %.1f megapixel bound",
                             img->w, img->h, rw, rh, IO_MAX_PIXELS_DEFAULT / 1e6);
        s = io_image_resize(d, img, rw, rh, pp->resample, &resized);
        if (s != VKF_OK) return s;
        cur = &resized;
    }
    uint32_t h = cur->h, w = cur->w;
    int32_t top = 0, left = 0;
    if (pp->do_center_crop) { /* HF center_crop: pads with zeros when the crop is larger */
        top = ((int32_t)cur->h - (int32_t)pp->crop_h) / 2;
        left = ((int32_t)cur->w - (int32_t)pp->crop_w) / 2;
        if ((int32_t)cur->h < (int32_t)pp->crop_h) top = -(((int32_t)pp->crop_h - (int32_t)cur->h + 1) / 2);
        if ((int32_t)cur->w < (int32_t)pp->crop_w) left = -(((int32_t)pp->crop_w - (int32_t)cur->w + 1) / 2);
        h = pp->crop_h, w = pp->crop_w;
    }
    if (h != out_h || w != out_w) {
        io_image_free(&resized);
        return base_fail(d, VKF_ERROR_SHAPE, "preprocessing gives %ux%u pixels but the model takes %ux%u", w, h, out_w,
                         out_h);
    }
    size_t plane = (size_t)h * w;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            int32_t sy = (int32_t)y + top, sx = (int32_t)x + left;
            bool inside = sy >= 0 && sx >= 0 && sy < (int32_t)cur->h && sx < (int32_t)cur->w;
            for (int c = 0; c < 3; c++) {
                uint8_t u = inside ? cur->rgb[((size_t)sy * cur->w + sx) * 3 + c] : 0;
                /* As transformers: rescale in float64, cast to float32, then
                 * (x - mean) / std in float32. */
                float v = pp->do_rescale ? (float)((double)u * pp->rescale_factor) : (float)u;
                if (pp->do_normalize) v = (v - pp->mean[c]) / pp->std[c];
                chw[(size_t)c * plane + (size_t)y * w + x] = v;
            }
        }
    io_image_free(&resized);
    return VKF_OK;
}
