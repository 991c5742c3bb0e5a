/* safetensors headers and data sections: open, list, convert every tensor. */
#include "fuzz_common.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_checkpoint ck;
    if (st_open(fuzz_diag(), fuzz_file("model.safetensors", data, size), &ck) != VKF_OK) return 0;
    static float out[4096];
    for (size_t i = 0; i < ck.n_t; i++) {
        uint64_t n = st_numel(&ck.t[i]);
        st_convert(fuzz_diag(), &ck.t[i], 0, n < 4096 ? n : 4096, false, out);
        st_convert(fuzz_diag(), &ck.t[i], 0, n < 2048 ? n : 2048, true, out);
    }
    st_close(&ck);
    return 0;
}
