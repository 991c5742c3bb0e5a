/* vkformer.h's .npy calls: src/io/npy.c behind the public tensor type. */
#include <stdlib.h>
#include <string.h>

#include "../io/io.h"

vkf_status vkf_npy_load(const char *path, vkf_tensor *out)
{
    base_diag *d = base_thread_diag();
    if (!path || !out) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_npy_load: NULL argument");
    memset(out, 0, sizeof *out);
    io_npy a;
    vkf_status s = io_npy_load(d, path, 0, &a);
    if (s != VKF_OK) return s;
    if (a.rank > 4) {
        io_npy_free(&a);
        return base_fail(d, VKF_ERROR_SHAPE, "%s: %u dimensions (tensors have at most 4)", path, a.rank);
    }
    for (uint32_t i = 0; i < a.rank; i++)
        if (a.shape[i] > UINT32_MAX) {
            io_npy_free(&a);
            return base_fail(d, VKF_ERROR_SHAPE, "%s: a dimension of %llu", path, (unsigned long long)a.shape[i]);
        }
    if (a.dtype == IO_NPY_F16) {
        float *f = malloc(a.count * 4 + 4);
        if (!f) {
            io_npy_free(&a);
            return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory", path);
        }
        for (uint64_t i = 0; i < a.count; i++) f[i] = base_f16_to_f32(((const uint16_t *)a.data)[i]);
        free(a.data);
        a.data = f;
        a.dtype = IO_NPY_F32;
    }
    static const vkf_dtype types[] = {[IO_NPY_F32] = VKF_F32, [IO_NPY_F16] = VKF_F16, [IO_NPY_I32] = VKF_I32, [IO_NPY_I64] = VKF_I64};
    out->dtype = types[a.dtype];
    out->rank = a.rank;
    for (uint32_t i = 0; i < a.rank; i++) out->shape[i] = (uint32_t)a.shape[i];
    out->data = a.data;
    out->capacity = a.count * io_npy_dtype_size(a.dtype);
    return VKF_OK;
}

vkf_status vkf_npy_save(const char *path, const vkf_tensor *t)
{
    base_diag *d = base_thread_diag();
    if (!path || !t || !t->data || t->rank > 4) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_npy_save: bad argument");
    if (t->dtype != VKF_F32) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_npy_save: only float32 tensors are written");
    uint64_t shape[4];
    for (uint32_t i = 0; i < t->rank; i++) shape[i] = t->shape[i];
    return io_npy_save_f32(d, path, t->data, t->rank, shape);
}
