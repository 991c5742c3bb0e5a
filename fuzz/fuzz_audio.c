/* Audio decoding (WAV, FLAC, Ogg through libsndfile), the mixdown and the
 * resampling to 16 kHz, from memory, on any bytes. */
#include "fuzz_common.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    io_audio a;
    /* a 2 s bound, far tighter than the library's 4 hours, so the fuzzer
     * explores headers, not memory; rate 16000 resamples whatever decodes */
    if (io_audio_decode(fuzz_diag(), data, size, "input", 16000, 2.0, &a) != VKF_OK) return 0;
    if (a.frames == 0 || a.rate != 16000) abort();
    for (uint64_t i = 0; i < a.frames; i++)
        if (a.samples[i] != a.samples[i]) abort(); /* NaN: non-finite input must have been refused */
    io_audio_free(&a);
    return 0;
}
