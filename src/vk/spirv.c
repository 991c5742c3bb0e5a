/* Lookup into the SPIR-V table that the build generates from shaders/. */
#include "vk.h"

#include <string.h>

extern const vk_spirv vkf_spirv_table[];
extern const size_t vkf_spirv_table_count;

const vk_spirv *vk_spirv_find(const char *name)
{
    size_t lo = 0, hi = vkf_spirv_table_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(vkf_spirv_table[mid].name, name);
        if (c == 0) return &vkf_spirv_table[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

uint64_t vk_spirv_hash(void)
{
    uint64_t h = BASE_HASH_SEED;
    for (size_t i = 0; i < vkf_spirv_table_count; i++) {
        h = base_hash64(vkf_spirv_table[i].name, strlen(vkf_spirv_table[i].name), h);
        h = base_hash64(vkf_spirv_table[i].code, vkf_spirv_table[i].size, h);
    }
    return h;
}
