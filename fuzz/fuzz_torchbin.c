/* PyTorch checkpoints (torch.save's zip format). The first byte picks the
 * input's role: even, the rest is the whole .bin file (the zip reader, then
 * the pickle); odd, the rest is data.pkl inside a valid zip that also holds
 * archive/data/0..15 (4 KiB each), so mutations reach the unpickler and the
 * tensor checks rather than the zip's offsets. */
#include "fuzz_common.h"

static size_t put(uint8_t *p, size_t at, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[at + i] = (uint8_t)(v >> (8 * i));
    return at + (size_t)bytes;
}

#define STORAGES 16
#define STORAGE_BYTES 4096

/* A stored-entry zip of data.pkl and STORAGES storages. */
static uint8_t *wrap(const uint8_t *pkl, size_t n, size_t *size)
{
    static uint8_t storage[STORAGE_BYTES];
    for (size_t i = 0; i < sizeof storage; i++) storage[i] = (uint8_t)(i * 37 + 11);
    uint8_t *z = malloc(n + (STORAGES + 1) * (STORAGE_BYTES + 200));
    if (!z) abort();
    size_t at = 0, off[STORAGES + 1];
    char names[STORAGES + 1][32];
    for (int e = 0; e <= STORAGES; e++) {
        if (e) snprintf(names[e], sizeof names[e], "archive/data/%d", e - 1);
        else snprintf(names[e], sizeof names[e], "archive/data.pkl");
        size_t nl = strlen(names[e]), len = e ? sizeof storage : n;
        off[e] = at;
        at = put(z, at, 0x04034b50, 4), at = put(z, at, 20, 2), at = put(z, at, 0, 4), at = put(z, at, 0, 8);
        at = put(z, at, len, 4), at = put(z, at, len, 4), at = put(z, at, nl, 2), at = put(z, at, 0, 2);
        memcpy(z + at, names[e], nl), at += nl;
        if (len) memcpy(z + at, e ? storage : pkl, len);
        at += len;
    }
    size_t cd = at;
    for (int e = 0; e <= STORAGES; e++) {
        size_t nl = strlen(names[e]), len = e ? sizeof storage : n;
        at = put(z, at, 0x02014b50, 4), at = put(z, at, 20, 2), at = put(z, at, 20, 2), at = put(z, at, 0, 4);
        at = put(z, at, 0, 8), at = put(z, at, len, 4), at = put(z, at, len, 4), at = put(z, at, nl, 2);
        at = put(z, at, 0, 8), at = put(z, at, 0, 4), at = put(z, at, off[e], 4);
        memcpy(z + at, names[e], nl), at += nl;
    }
    size_t cd_size = at - cd;
    at = put(z, at, 0x06054b50, 4), at = put(z, at, 0, 4), at = put(z, at, STORAGES + 1, 2), at = put(z, at, STORAGES + 1, 2);
    at = put(z, at, cd_size, 4), at = put(z, at, cd, 4), at = put(z, at, 0, 2);
    *size = at;
    return z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size || size > (1u << 20)) return 0;
    size_t n = size - 1;
    uint8_t *zip = NULL;
    const uint8_t *file = data + 1;
    if (data[0] & 1) file = zip = wrap(data + 1, n, &n);
    st_checkpoint ck;
    if (st_open(fuzz_diag(), fuzz_file("pytorch_model.bin", file, n), &ck) == VKF_OK) {
        fuzz_convert_all(&ck);
        st_close(&ck);
    }
    free(zip);
    return 0;
}
