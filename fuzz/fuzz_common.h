/* Shared by the libFuzzer harnesses (fuzz/fuzz_*.c, built with -DVKF_FUZZ=ON
 * by scripts/fuzz.sh): each writes the input where a parser reads a file
 * (a per-process temporary directory) and calls the parser; the sanitizers
 * and libFuzzer report anything that goes wrong. */
#ifndef VKF_FUZZ_COMMON_H
#define VKF_FUZZ_COMMON_H

#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A directory of this process's own, created once. */
static const char *fuzz_dir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/vkf-fuzz-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* Writes data to fuzz_dir()/name and returns the path (static). */
static const char *fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

static base_diag *fuzz_diag(void)
{
    static base_diag d;
    return &d;
}

/* Reads every tensor of a checkpoint as float32 and as half (the checkpoint
 * harnesses). */
static inline void fuzz_convert_all(const st_checkpoint *ck)
{
    static float out[4096];
    for (size_t i = 0; i < ck->n_t; i++) {
        uint64_t n = st_numel(&ck->t[i]);
        st_convert(fuzz_diag(), &ck->t[i], 0, n < 4096 ? n : 4096, false, out);
        st_convert(fuzz_diag(), &ck->t[i], 0, n < 2048 ? n : 2048, true, out);
    }
}

#endif
