#version 450
// matmul for small M (M <= 8: GPT-2 decode, pooled heads): reads each weight
// once. NT layout (W[N, K]): GROUP invocations share one column and split K,
// then reduce through shared memory. NN layout (W[K, N]): one invocation per
// column walks K (neighbouring invocations read neighbouring addresses).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "matmul_common.glsl"

VKF_LOCAL_SIZE;
layout(constant_id = 3) const uint MR = 8;      // rows of Y (= M, at most 8)
layout(constant_id = 4) const uint GROUP = 32;  // NT: invocations per column
layout(constant_id = 8) const uint LAYOUT_NN = 0;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) readonly buffer W { STYPE w[]; };

shared float red[MR][gl_WorkGroupSize.x];

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint b = gl_WorkGroupID.z;
    uint xb = p.x_off + b * p.sx, wb = p.w_off + b * p.sw;
    float acc[MR];
    for (uint r = 0; r < MR; r++) acc[r] = 0.0;

    if (LAYOUT_NN == 0) {
        uint cols = gl_WorkGroupSize.x / GROUP;
        uint n = gl_WorkGroupID.x * cols + tid / GROUP, lane = tid % GROUP;
        if (n < p.N) {
            for (uint k = lane; k < p.K; k += GROUP) {
                float wv = float(w[wb + n * p.ldw + k]);
                for (uint r = 0; r < MR; r++) acc[r] += float(x[xb + r * p.ldx + k]) * wv;
            }
        }
        for (uint r = 0; r < MR; r++) red[r][tid] = acc[r];
        barrier();
        for (uint s = GROUP / 2; s > 0; s >>= 1) {
            if (lane < s)
                for (uint r = 0; r < MR; r++) red[r][tid] += red[r][tid + s];
            barrier();
        }
        if (lane == 0)
            for (uint r = 0; r < MR; r++) store1(b, r, n, red[r][tid]);
    } else {
        uint n = gl_WorkGroupID.x * gl_WorkGroupSize.x + tid;
        if (n < p.N) {
            for (uint k = 0; k < p.K; k++) {
                float wv = float(w[wb + k * p.ldw + n]);
                for (uint r = 0; r < MR; r++) acc[r] += float(x[xb + r * p.ldx + k]) * wv;
            }
        }
        for (uint r = 0; r < MR; r++) store1(b, r, n, acc[r]);
    }
}
