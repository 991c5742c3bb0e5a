/* Linked into sanitizer builds of the tests only: keeps dlopen'ed Vulkan
 * drivers and layers loaded, so LeakSanitizer can name the module a leak
 * comes from and the suppressions in lsan.supp can match it. */
#include <dlfcn.h>

int dlclose(void *handle);
int dlclose(void *handle)
{
    (void)handle;
    return 0;
}
