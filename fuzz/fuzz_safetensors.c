/* safetensors headers and data sections (open, list, convert every tensor),
 * and the sharded form's model.safetensors.index.json (the same input as the
 * index of a directory holding two small valid shards). */
#include "fuzz_common.h"

/* A valid one-tensor file: "<name>" F32 [2]. */
static void shard(const char *dir, const char *file, const char *name)
{
    char hdr[128], path[300];
    int n = snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", name);
    while (n % 8) hdr[n++] = ' ';
    uint8_t buf[256] = {0};
    uint64_t hl = (uint64_t)n;
    memcpy(buf, &hl, 8);
    memcpy(buf + 8, hdr, (size_t)n);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, 8 + (size_t)n + 8, f) != 8 + (size_t)n + 8) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_checkpoint ck;
    if (st_open(fuzz_diag(), fuzz_file("model.safetensors", data, size), &ck) == VKF_OK) {
        fuzz_convert_all(&ck);
        st_close(&ck);
    }
    static char sharded[300];
    if (!sharded[0]) {
        snprintf(sharded, sizeof sharded, "%s/sharded", fuzz_dir());
        if (mkdir(sharded, 0700) != 0) abort();
        shard(sharded, "a.safetensors", "x");
        shard(sharded, "b.safetensors", "y");
    }
    char index[400];
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", sharded);
    FILE *f = fopen(index, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    if (st_open(fuzz_diag(), sharded, &ck) == VKF_OK) {
        fuzz_convert_all(&ck);
        st_close(&ck);
    }
    return 0;
}
