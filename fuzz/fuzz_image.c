/* Image decoding and the HF preprocessing steps on any bytes. */
#include "fuzz_common.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    io_image img;
    /* a tighter pixel bound than the library's, so the fuzzer explores headers, not memory */
    if (io_image_decode(fuzz_diag(), data, size, "input", 4u << 20, &img) != VKF_OK) return 0;
    static const io_preproc pp[2] = {
        {.do_resize = true, .height = 32, .width = 32, .resample = IO_BILINEAR, .do_rescale = true, .rescale_factor = 1 / 255.0,
         .do_normalize = true, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.5f, 0.5f, 0.5f}},
        {.do_resize = true, .shortest_edge = 24, .resample = IO_BICUBIC, .do_center_crop = true, .crop_h = 24, .crop_w = 24,
         .do_rescale = true, .rescale_factor = 1 / 255.0, .do_normalize = true, .mean = {0.4f, 0.4f, 0.4f}, .std = {0.3f, 0.3f, 0.3f}},
    };
    static float chw[3 * 32 * 32];
    io_preprocess(fuzz_diag(), &img, &pp[0], 32, 32, chw);
    io_preprocess(fuzz_diag(), &img, &pp[1], 24, 24, chw);
    io_image_free(&img);
    return 0;
}
