/* .npy headers and data. */
#include "fuzz_common.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    io_npy a;
    if (io_npy_load(fuzz_diag(), fuzz_file("x.npy", data, size), 64u << 20, &a) == VKF_OK) io_npy_free(&a);
    return 0;
}
