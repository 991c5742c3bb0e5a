/* config.json of every model family, and preprocessor_config.json. */
#include "fuzz_common.h"
#include "io/io.h"
#include "models/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file("config.json", data, size);
    fuzz_file("preprocessor_config.json", data, size);
    model m;
    if (model_open(fuzz_diag(), fuzz_dir(), &m) == VKF_OK) {
        /* the graph of a small shape, from the parsed config (no device needed to build) */
        if (m.hidden <= 4096 && m.layers <= 64 && (m.vocab_size <= (1u << 20))) {
            model_decl t = {0};
            const char *prefix;
            if (m.family->declare(&m, NULL, &prefix, &t) == VKF_OK) {
                m.decl = t;
                graph_destroy(model_build(&m, 1, m.image_size ? 0 : (m.max_positions < 8 ? m.max_positions : 8)));
                memset(&t, 0, sizeof t);
            }
        }
        model_close(&m);
    }
    io_preproc pp;
    static const io_preproc dflt = {.do_resize = true, .height = 224, .width = 224, .do_rescale = true, .rescale_factor = 1 / 255.0};
    if (io_preproc_load(fuzz_diag(), fuzz_dir(), &dflt, &pp) == VKF_OK) io_preproc_check(fuzz_diag(), "p", &pp, 224, 224);
    return 0;
}
