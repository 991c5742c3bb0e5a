/* The Triton backend's readers (triton/parse.h): a role byte, then either a
 * BYTES tensor (a 2-byte little-endian element count and the joined buffer)
 * or a model config as the server's JSON. */
#include "fuzz_common.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] == 0 && size >= 3) {
        uint64_t count = (uint64_t)data[1] | (uint64_t)data[2] << 8, bad = 0;
        char **items;
        size_t *lens;
        /* a copy of exactly the buffer's size, so that AddressSanitizer sees any read past it */
        size_t n = size - 3;
        unsigned char *buf = malloc(n ? n : 1);
        if (!buf) return 0;
        memcpy(buf, data + 3, n);
        int rc = vkft_split_bytes(buf, n, count, &items, &lens, &bad);
        if (rc == 0) {
            for (uint64_t i = 0; i < count; i++)
                if (strlen(items[i]) > lens[i]) abort();
            vkft_free_items(items, count);
            free(lens);
        } else if (rc > 0 && bad > count) {
            abort();
        }
        free(buf);
    } else if (data[0] == 1) {
        cJSON *cfg = cJSON_ParseWithLength((const char *)data + 1, size - 1);
        vkft_settings s;
        char msg[1024];
        if (!vkft_read_settings(cfg, &s, msg, sizeof msg)) {
            if (!s.task || !strstr(s.template_, "{}") || s.top_k < 1) abort();
            char *h = vkft_fill_template(s.template_, "a label");
            if (h && strlen(h) != strlen(s.template_) + 5) abort();
            free(h);
        }
        cJSON_Delete(cfg);
    }
    return 0;
}
