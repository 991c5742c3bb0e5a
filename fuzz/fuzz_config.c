/* config.json of every model family, generation_config.json and preprocessor_config.json. */
#include "fuzz_common.h"
#include "io/io.h"
#include "models/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file("config.json", data, size);
    fuzz_file("preprocessor_config.json", data, size);
    fuzz_file("generation_config.json", data, size);
    model m;
    if (model_open(fuzz_diag(), fuzz_dir(), &m) == VKF_OK) {
        /* the graph of a small shape, from the parsed config (no device needed to build) */
        if (m.hidden <= 4096 && m.layers <= 64 && (m.vocab_size <= (1u << 20))) {
            model_decl t = {0};
            const char *prefix;
            if (m.family->declare(&m, NULL, &prefix, &t) == VKF_OK) {
                m.decl = t;
                /* each graph the config gives: vision, text (an encoder-decoder's with decoder tokens), generation */
                uint32_t seq = m.max_positions < 8 ? m.max_positions : 8, tgt = m.max_target < 8 ? m.max_target : 8;
                if (m.image_size) graph_destroy(model_build(&m, &(graph_key){.kind = MODEL_GRAPH_VISION, .batch = 1}));
                if (m.vocab_size)
                    graph_destroy(model_build(&m, &(graph_key){.kind = MODEL_GRAPH_TEXT, .batch = 1, .seq = seq,
                                                               .tgt = m.encoder_decoder ? tgt : 0}));
                if (model_declare_state(&m, 1, NULL, 0)) {
                    graph_destroy(model_build(&m, &(graph_key){.kind = MODEL_GRAPH_DECODE, .batch = 1, .seq = 1, .k = 1}));
                    graph_key first = {.kind = m.encoder_decoder ? MODEL_GRAPH_ENCODE : MODEL_GRAPH_PREFILL, .batch = 1, .seq = seq, .k = 1};
                    graph_destroy(model_build(&m, &first));
                }
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
