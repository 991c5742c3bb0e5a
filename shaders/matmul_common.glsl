// matmul push constants, epilogue and output, shared by every matmul variant.
// Bindings 2..4 are bias, residual and Y; the variant binds X and W at 0 and 1.
#ifndef VKF_MATMUL_COMMON_GLSL
#define VKF_MATMUL_COMMON_GLSL

layout(constant_id = 10) const uint EPI_BIAS = 0;
layout(constant_id = 11) const uint EPI_ACT = 0;      // ACT_* from common.glsl
layout(constant_id = 12) const uint EPI_RESIDUAL = 0;
layout(constant_id = 13) const uint EPI_ACCUMULATE = 0; // Y += result (K split into windows)

layout(push_constant) uniform Push {
    uint M, N, K;
    uint ldx, ldw, ldy, ldr;  // row strides in elements
    uint sx, sw, sy, sr;      // batch strides in elements (sw = 0: W shared by the batch)
    // Element offsets inside the bound ranges: bindings start at aligned byte
    // offsets, windows of large tensors start wherever the split puts them.
    uint x_off, w_off, y_off, r_off, bias_off;
} p;

layout(binding = 2) readonly buffer Bias { STYPE bias[]; };
layout(binding = 3) readonly buffer Res { STYPE res[]; };
layout(binding = 4) buffer Y { STYPE y[]; };

// Partial sums of earlier K windows come first, so bias and activation apply
// to the complete sum (they are only enabled on the last window).
float epilogue(uint b, uint m, uint n, float v)
{
    if (EPI_ACCUMULATE != 0) v += float(y[p.y_off + b * p.sy + m * p.ldy + n]);
    if (EPI_BIAS != 0) v += float(bias[p.bias_off + n]);
    v = vkf_act(EPI_ACT, v);
    if (EPI_RESIDUAL != 0) v += float(res[p.r_off + b * p.sr + m * p.ldr + n]);
    return v;
}

void store1(uint b, uint m, uint n, float v)
{
    if (m < p.M && n < p.N) y[p.y_off + b * p.sy + m * p.ldy + n] = STYPE(epilogue(b, m, n, v));
}

// Four consecutive columns n..n+3 of row m.
#define store4(m, n, v) do { uint bb_ = gl_WorkGroupID.z; \
    store1(bb_, (m), (n), (v).x); store1(bb_, (m), (n) + 1, (v).y); \
    store1(bb_, (m), (n) + 2, (v).z); store1(bb_, (m), (n) + 3, (v).w); } while (false)

#endif
