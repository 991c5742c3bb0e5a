/* The op_list plumbing shared by every op family. */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vk_dispatch *op_list_add(const vk_device *dev, op_list *l)
{
    if (!base_grow((void **)&l->d, &l->cap, l->n + 1, sizeof(*l->d))) return NULL;
    vk_dispatch *d = &l->d[l->n++];
    memset(d, 0, sizeof(*d));
    d->groups[0] = d->groups[1] = d->groups[2] = 1;
    d->spec[0] = d->spec[1] = d->spec[2] = 1;
    d->spec[OP_SPEC_POLY_EXP] = dev->caps.cpu_kernels;
    d->n_spec = VK_MAX_SPEC; /* constants a module does not declare are ignored */
    return d;
}

void op_list_free(op_list *l)
{
    free(l->d);
    memset(l, 0, sizeof(*l));
}

vkf_status op_list_record(vk_stream *s, const op_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        vkf_status st = vk_stream_dispatch(s, &l->d[i]);
        if (st != VKF_OK) return st;
    }
    return VKF_OK;
}

vkf_status op_list_run(vk_device *dev, const op_list *l)
{
    return vk_run_dispatches(dev, l->d, l->n);
}

vk_arg op_arg(op_ref r, bool write)
{
    return (vk_arg){.buffer = r.buffer, .offset = r.offset, .size = r.size, .kind = VK_ARG_STORAGE, .write = write};
}

void op_set_push(vk_dispatch *d, const void *push, uint32_t size)
{
    memcpy(d->push, push, size);
    d->push_size = size;
}

const char *op_shader(const char *base, const char *suffix, op_dtype t)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s%s", base, suffix ? suffix : "", t == OP_F16 ? "_f16" : "");
    const vk_spirv *spv = vk_spirv_find(name);
    return spv ? spv->name : NULL;
}

vkf_status op_no_shader(vk_device *dev, const char *base, const char *suffix, op_dtype t)
{
    return base_fail(dev->diag, VKF_ERROR_NOT_FOUND, "no shader variant %s%s%s in this build", base,
                     suffix ? suffix : "", t == OP_F16 ? "_f16" : "");
}

static uint32_t format_bytes(VkFormat f)
{
    switch (f) {
    case VK_FORMAT_R32G32B32A32_SFLOAT: return 16;
    case VK_FORMAT_R16G16B16A16_SFLOAT: return 8;
    case VK_FORMAT_R16_SFLOAT: return 2;
    default: return 4;
    }
}

uint64_t op_bind_limit(const vk_device *dev, vk_arg_kind kind, uint32_t texel_bytes)
{
    uint64_t align = BASE_MAX(dev->real.min_storage_align, dev->real.min_texel_align);
    uint64_t limit = kind == VK_ARG_TEXEL ? (uint64_t)dev->caps.max_texel_buffer_elements * texel_bytes
                                          : dev->caps.max_storage_buffer_range;
    return limit > 2 * align + 16 ? limit - 2 * align - 16 : 0;
}

bool op_bind(const vk_device *dev, op_ref t, uint64_t begin, uint64_t end, uint32_t es, vk_arg_kind kind,
             VkFormat format, bool write, vk_arg *arg, uint32_t *elem_off)
{
    uint64_t align = kind == VK_ARG_TEXEL ? dev->real.min_texel_align : dev->real.min_storage_align;
    align = BASE_MAX(align, (uint64_t)es);
    uint64_t first = t.offset + begin * es, last = t.offset + end * es;
    uint64_t start = first / align * align;
    uint64_t size = last - start;
    uint32_t tb = kind == VK_ARG_TEXEL ? format_bytes(format) : es;
    size = BASE_ALIGN_UP(size, (uint64_t)tb);
    uint64_t limit = kind == VK_ARG_TEXEL ? (uint64_t)dev->caps.max_texel_buffer_elements * tb
                                          : dev->caps.max_storage_buffer_range;
    if (size > limit || (first - start) % es) return false;
    *arg = (vk_arg){.buffer = t.buffer, .offset = start, .size = size, .kind = (uint8_t)kind, .write = write,
                    .format = format};
    *elem_off = (uint32_t)((first - start) / es);
    return true;
}

bool op_bind_all(const vk_device *dev, op_ref t, uint32_t es, bool write, vk_arg *arg, uint32_t *elem_off)
{
    return op_bind(dev, t, 0, t.size / es, es, VK_ARG_STORAGE, 0, write, arg, elem_off);
}

void op_grid_rows(vk_dispatch *d, uint32_t rows)
{
    d->groups[0] = BASE_MIN(rows, 65535u);
    d->groups[1] = BASE_DIV_UP(rows, d->groups[0]);
    d->groups[2] = 1;
}

uint32_t op_row_workgroup(const vk_device *dev, uint32_t row_len)
{
    /* CPU drivers: one subgroup per row, so reductions need no barrier. */
    if (dev->caps.cpu_kernels) return dev->real.subgroup_size;
    uint32_t wg = 256;
    while (wg > 32 && wg / 2 >= row_len) wg /= 2;
    wg = BASE_MAX(wg, dev->caps.subgroup_size);
    /* 256 at most: shaders/reduce.glsl sizes its shared array for that. */
    return BASE_MIN(BASE_MIN(wg, dev->caps.max_workgroup_invocations), 256u);
}

const char *op_reduce_suffix(const vk_device *dev) { return dev->caps.subgroup_arith ? "" : "_nosg"; }

vkf_status op_add_dispatch(vk_device *dev, op_list *out, const char *base, const char *suffix, op_dtype t,
                           const char *label, vk_dispatch **d)
{
    const char *shader = op_shader(base, suffix, t);
    if (!shader) return op_no_shader(dev, base, suffix, t);
    *d = op_list_add(dev, out);
    if (!*d) return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    (*d)->shader = shader;
    (*d)->label = label;
    return VKF_OK;
}
