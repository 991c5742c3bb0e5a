/* vkformer-info: every Vulkan device with its capabilities line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"
#include "vkformer.h"

const char *tool_name = "vkformer-info";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkformer-info [options]\n"
            "Lists every Vulkan device with its capabilities as vkformer sees them.\n"
            "  -j, --json          one JSON array with every capability\n"
            "      --caps SPEC     clamp capabilities as VKF_CAPS does, e.g. subgroup=64,shared=16384\n"
            "      --validation    enable the Khronos validation layer\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this help\n"
            "Exit status: 0 with at least one device, 1 when there is none or Vulkan is missing,\n"
            "2 bad usage.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, 0, 'j'},          {"caps", required_argument, 0, 1000},
                                             {"validation", no_argument, 0, 1001},   {"version", no_argument, 0, 'V'},
                                             {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    vkf_context_desc desc = {0};
    int json = 0, c;
    while ((c = tool_getopt(argc, argv, "jVh", longopts)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 1000: desc.caps_override = optarg; break;
        case 1001: desc.validation = VKF_ON; break;
        case 'V': tool_print_version(); return TOOL_OK;
        case 'h': usage(stdout); return TOOL_OK;
        default: return TOOL_USAGE; /* tool_getopt said why */
        }
    }
    if (optind < argc) return tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (json) {
        char *text = NULL;
        if (vkf_list_devices_json(&desc, &text) != VKF_OK) return tool_fail("%s", vkf_last_error(NULL));
        printf("%s\n", text);
        vkf_free(text);
        return TOOL_OK;
    }
    uint32_t count = 0;
    if (vkf_list_devices(&desc, NULL, 0, &count) != VKF_OK) return tool_fail("%s", vkf_last_error(NULL));
    vkf_device_info *infos = calloc(count ? count : 1, sizeof(*infos));
    if (!infos || vkf_list_devices(&desc, infos, count, &count) != VKF_OK) {
        tool_fail("%s", infos ? vkf_last_error(NULL) : "out of memory");
        free(infos);
        return TOOL_FAIL;
    }
    for (uint32_t i = 0; i < count; i++) printf("[%u] %s\n", infos[i].index, infos[i].caps_line);
    free(infos);
    return count ? TOOL_OK : TOOL_FAIL;
}
