/* Elementwise ops: shaders/eltwise.comp. */
#include "ops.h"

typedef struct eltwise_push {
    uint32_t n;
    float value;
} eltwise_push;

#define ELTWISE_WG 256u

vkf_status op_eltwise(vk_device *dev, const op_eltwise_params *p, op_ref a, op_ref b, op_ref y, op_list *out)
{
    uint32_t es = op_dtype_size(p->dtype);
    if (p->n == 0) return VKF_OK;
    if (y.size < p->n * es)
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "eltwise: output holds %llu bytes, %llu elements need %llu",
                         (unsigned long long)y.size, (unsigned long long)p->n, (unsigned long long)(p->n * es));
    bool reads_a = p->kind != OP_FILL, reads_b = p->kind == OP_ADD || p->kind == OP_MUL;
    if ((reads_a && a.size < p->n * es) || (reads_b && b.size < p->n * es))
        return base_fail(dev->diag, VKF_ERROR_SHAPE, "eltwise: an input holds fewer than %llu elements",
                         (unsigned long long)p->n);
    if (p->n > UINT32_MAX)
        return base_fail(dev->diag, VKF_ERROR_UNSUPPORTED, "eltwise: %llu elements exceed 2^32",
                         (unsigned long long)p->n);
    /* vec4 when every range starts on a 4-element boundary (offsets are
     * already 16-byte aligned by the allocator for whole tensors). */
    bool vec4 = (p->n % 4) == 0 && (y.offset % (4 * es)) == 0 && (!reads_a || a.offset % (4 * es) == 0) &&
                (!reads_b || b.offset % (4 * es) == 0);
    const char *shader = op_shader("eltwise", vec4 ? "_vec4" : "", p->dtype);
    if (!shader) return op_no_shader(dev, "eltwise", vec4 ? "_vec4" : "", p->dtype);
    uint32_t n = (uint32_t)(vec4 ? p->n / 4 : p->n);
    vk_dispatch *d = op_list_add(dev, out);
    if (!d) return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    d->shader = shader;
    d->label = "eltwise";
    d->spec[0] = ELTWISE_WG;
    d->spec[3] = (uint32_t)p->kind;
    d->spec[4] = (uint32_t)p->act;
    eltwise_push push = {n, p->value};
    op_set_push(d, &push, sizeof push);
    op_ref sa = reads_a ? a : y, sb = reads_b ? b : (reads_a ? a : y);
    d->args[0] = op_arg(sa, false);
    d->args[1] = op_arg(sb, false);
    d->args[2] = op_arg(y, true);
    d->n_args = 3;
    d->groups[0] = BASE_MIN(BASE_DIV_UP(n, ELTWISE_WG), 65535u);
    return VKF_OK;
}
