/* vkformer-info: every Vulkan device with its capabilities line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkformer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkformer-info [--json] [--caps SPEC] [--validation]\n"
            "Lists every Vulkan device with its capabilities as vkformer sees them.\n"
            "  --json         one JSON array with every capability\n"
            "  --caps SPEC    clamp capabilities as VKF_CAPS does, e.g. subgroup=64,shared=16384\n"
            "  --validation   enable the Khronos validation layer\n"
            "Exit status: 0 with at least one device, 1 when there is none or Vulkan is missing.\n");
}

int main(int argc, char **argv)
{
    vkf_context_desc desc = {0};
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--caps") == 0 && i + 1 < argc) {
            desc.caps_override = argv[++i];
        } else if (strcmp(argv[i], "--validation") == 0) {
            desc.validation = VKF_ON;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vkformer-info: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (json) {
        char *text = NULL;
        if (vkf_list_devices_json(&desc, &text) != VKF_OK) {
            fprintf(stderr, "vkformer-info: %s\n", vkf_last_error(NULL));
            return 1;
        }
        printf("%s\n", text);
        vkf_free(text);
        return 0;
    }
    uint32_t count = 0;
    if (vkf_list_devices(&desc, NULL, 0, &count) != VKF_OK) {
        fprintf(stderr, "vkformer-info: %s\n", vkf_last_error(NULL));
        return 1;
    }
    vkf_device_info *infos = calloc(count ? count : 1, sizeof(*infos));
    if (!infos || vkf_list_devices(&desc, infos, count, &count) != VKF_OK) {
        fprintf(stderr, "vkformer-info: %s\n", infos ? vkf_last_error(NULL) : "out of memory");
        free(infos);
        return 1;
    }
    for (uint32_t i = 0; i < count; i++) printf("[%u] %s\n", infos[i].index, infos[i].caps_line);
    free(infos);
    return 0;
}
