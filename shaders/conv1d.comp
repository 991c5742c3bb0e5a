#version 450
// Direct grouped 1-D convolution, channels-last:
//   y[b, o, co] = act(bias[co] + sum_{ci < cig, k < K} w[co, ci, k] * x[b, o*stride + k - pad, g*cig + ci])
// with g = co / cog, x [B, L, Cin], w [Cout, cig, K] (torch's Conv1d weight),
// y [B, Lout, Cout]; positions outside [0, L) read as zeros.
// A workgroup computes TO outputs x TC output channels of one group; each
// thread RO x RC of them (rows tr*RO + i, channels tc + j*(TC/RC): threads
// next to each other read next to each other in shared memory). The input
// window and the weights are staged in shared memory CI input channels x KC
// taps at a time: ws[ci][k][co] (transposed: channels fastest) and
// xs[ci][position]. Tiles: GPUs take 256 threads, CPU drivers one subgroup
// of threads each with a block of 8 x 4 accumulators (src/ops/conv.c).
// The inner loops unroll: lavapipe stops a thread after 65535 loop
// iterations in all, so only the staging loops may count.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

VKF_LOCAL_SIZE;
layout(constant_id = 3) const uint TO = 64;
layout(constant_id = 4) const uint TC = 64;
layout(constant_id = 5) const uint RO = 4;  // <= 8
layout(constant_id = 6) const uint RC = 4;  // <= 4
layout(constant_id = 7) const uint CI = 2;
layout(constant_id = 8) const uint KC = 16;
layout(constant_id = 9) const uint STRIDE = 1;
layout(constant_id = 10) const uint ACT = 0;
layout(constant_id = 11) const uint HAS_BIAS = 0;

layout(push_constant) uniform Push {
    uint B, L, Cin, Cout, K, pad, Lout, cig, cog, c_tiles;
    uint x_off, w_off, b_off, y_off;
} p;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) readonly buffer Wt { STYPE w[]; };
layout(binding = 2) readonly buffer Bs { STYPE bs[]; };
layout(binding = 3) writeonly buffer Y { STYPE y[]; };

const uint XW = (TO - 1) * STRIDE + KC; // input positions one chunk of taps spans
shared float ws[CI * KC * TC];
shared float xs[CI * XW];

void main()
{
    uint t = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
    uint g = gl_WorkGroupID.x / p.c_tiles, ct = gl_WorkGroupID.x % p.c_tiles;
    uint o0 = gl_WorkGroupID.y * TO, b = gl_WorkGroupID.z;
    uint co0 = ct * TC;             // within the group
    uint cols = TC / RC;            // threads across channels
    uint tc = t % cols, tr = t / cols;
    uint xb = p.x_off + b * p.L * p.Cin + g * p.cig;
    uint wb = p.w_off + g * p.cog * p.cig * p.K;
    int pos0 = int(o0 * STRIDE) - int(p.pad);

    float acc[8][4];
    for (uint i = 0; i < 8; i++)
        for (uint j = 0; j < 4; j++) acc[i][j] = 0.0;

    for (uint ci0 = 0; ci0 < p.cig; ci0 += CI) {
        for (uint k0 = 0; k0 < p.K; k0 += KC) {
            // weights: element e = (c, ci, k), k fastest in global memory
            for (uint e = t; e < CI * KC * TC; e += nt) {
                uint k = e % KC, ci = (e / KC) % CI, c = e / (KC * CI);
                bool in_range = co0 + c < p.cog && ci0 + ci < p.cig && k0 + k < p.K;
                // through float: a half constant would need Float16 arithmetic
                ws[(ci * KC + k) * TC + c] =
                    in_range ? float(w[wb + ((co0 + c) * p.cig + ci0 + ci) * p.K + k0 + k]) : 0.0;
            }
            // input window: element e = (position, ci), channels fastest in global memory
            for (uint e = t; e < CI * XW; e += nt) {
                uint ci = e % CI, j = e / CI;
                int pos = pos0 + int(k0 + j);
                bool in_range = pos >= 0 && pos < int(p.L) && ci0 + ci < p.cig;
                xs[ci * XW + j] = in_range ? float(x[xb + uint(max(pos, 0)) * p.Cin + ci0 + ci]) : 0.0;
            }
            barrier();
            [[unroll]] for (uint ci = 0; ci < CI; ci++) {
                [[unroll]] for (uint k = 0; k < KC; k++) {
                    float wv[4];
                    [[unroll]] for (uint j = 0; j < 4; j++)
                        wv[j] = j < RC ? ws[(ci * KC + k) * TC + tc + j * cols] : 0.0;
                    [[unroll]] for (uint i = 0; i < 8; i++) {
                        if (i >= RO) break;
                        float xv = xs[ci * XW + (tr * RO + i) * STRIDE + k];
                        [[unroll]] for (uint j = 0; j < 4; j++)
                            if (j < RC) acc[i][j] += xv * wv[j];
                    }
                }
            }
            barrier();
        }
    }

    for (uint i = 0; i < RO; i++) {
        uint o = o0 + tr * RO + i;
        if (o >= p.Lout) break;
        for (uint j = 0; j < RC; j++) {
            uint c = co0 + tc + j * cols;
            if (c >= p.cog) continue;
            uint co = g * p.cog + c;
            float v = acc[i][j] + (HAS_BIAS != 0 ? float(bs[p.b_off + co]) : 0.0);
            y[p.y_off + (b * p.Lout + o) * p.Cout + co] = STYPE(vkf_act(ACT, v));
        }
    }
}
