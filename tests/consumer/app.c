/* An app that embeds vkformer as an integrating user would, built out of
 * tree against an installed vkformer (tests/consumer/run.sh). It classifies
 * the installed cats photo with the installed model and checks tabby.
 *
 * Built with one of these, it also does what broke apps when the library
 * exported its internals:
 *   APP_VULKAN  links the Vulkan loader and calls Vulkan itself;
 *   APP_VOLK    compiles volk itself and loads Vulkan through it;
 *   APP_GETENV  defines a function named like an internal one (base_getenv),
 *               which must neither clash at link time nor replace the library's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vkformer.h>

#if defined(APP_VOLK)
#include <volk.h>
#elif defined(APP_VULKAN)
#include <vulkan/vulkan.h>
#endif

#ifdef APP_GETENV
static int app_getenv_calls;
const char *base_getenv(const char *name);
const char *base_getenv(const char *name)
{
    (void)name;
    app_getenv_calls++;
    return NULL;
}
#endif

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "app: " __VA_ARGS__);                                                                      \
            fputc('\n', stderr);                                                                                       \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

#if defined(APP_VULKAN) || defined(APP_VOLK)
/* The app's own Vulkan use: an instance and its physical devices. */
static void own_vulkan(const char *when)
{
#ifdef APP_VOLK
    CHECK(volkInitialize() == VK_SUCCESS, "%s: volkInitialize failed", when);
    uint32_t version = volkGetInstanceVersion();
    CHECK(version >= VK_API_VERSION_1_1, "%s: volk says the loader is version %u.%u", when, VK_VERSION_MAJOR(version),
          VK_VERSION_MINOR(version));
#else
    uint32_t version = 0;
    CHECK(vkEnumerateInstanceVersion(&version) == VK_SUCCESS && version >= VK_API_VERSION_1_1,
          "%s: the loader is version %u.%u", when, VK_VERSION_MAJOR(version), VK_VERSION_MINOR(version));
#endif
    VkApplicationInfo ai = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &ai};
    VkInstance inst;
    CHECK(vkCreateInstance(&ci, NULL, &inst) == VK_SUCCESS, "%s: vkCreateInstance failed", when);
#ifdef APP_VOLK
    volkLoadInstance(inst);
#endif
    uint32_t n = 0;
    CHECK(vkEnumeratePhysicalDevices(inst, &n, NULL) == VK_SUCCESS && n > 0, "%s: no physical device", when);
    vkDestroyInstance(inst, NULL);
    printf("app: own Vulkan use %s vkformer: loader %u.%u, %u device(s)\n", when, VK_VERSION_MAJOR(version),
           VK_VERSION_MINOR(version), n);
}
#endif

int main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: app SHARE_DIR (the installed share/vkformer)");
    CHECK(vkf_version() == VKF_VERSION_NUMBER, "library version %s, header %d.%d.%d", vkf_version_string(),
          VKF_VERSION_MAJOR, VKF_VERSION_MINOR, VKF_VERSION_PATCH);
#if defined(APP_VULKAN) || defined(APP_VOLK)
    own_vulkan("before");
#endif
    char model_dir[4096], image[4096];
    snprintf(model_dir, sizeof model_dir, "%s/models/vit-tiny-patch16-224", argv[1]);
    snprintf(image, sizeof image, "%s/models/images/000000039769.png", argv[1]);
    vkf_context *ctx;
    CHECK(vkf_context_create(&(vkf_context_desc){.pipeline_cache = VKF_OFF}, &ctx) == VKF_OK, "%s", vkf_last_error(NULL));
    vkf_model *model;
    CHECK(vkf_model_load(ctx, model_dir, NULL, &model) == VKF_OK, "%s", vkf_last_error(ctx));
    vkf_class_score top[1];
    CHECK(vkf_classify_file(model, image, top, 1) == VKF_OK, "%s", vkf_last_error(ctx));
    CHECK(top[0].index == 281, "top class %u (%s), want 281 tabby", top[0].index, top[0].label);
    printf("app: vkformer %s: %.3f %s\n", vkf_version_string(), top[0].prob, top[0].label);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
#if defined(APP_VULKAN) || defined(APP_VOLK)
    own_vulkan("after");
#endif
#ifdef APP_GETENV
    CHECK(app_getenv_calls == 0, "the app's base_getenv replaced the library's (%d calls)", app_getenv_calls);
    printf("app: the app's own base_getenv was left alone\n");
#endif
    return 0;
}
