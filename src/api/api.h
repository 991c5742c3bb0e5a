/* The public handles' insides, shared by the files that implement vkformer.h. */
#ifndef VKF_API_H
#define VKF_API_H

#include "../base/base.h"
#include "../vk/vk.h"

struct vkf_context {
    base_diag diag;
    vk_device *dev;
};

#endif
