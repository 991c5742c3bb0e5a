#version 450
// GroupNorm over channels-last x [B, L, C] (torch.nn.GroupNorm on [B, C, L]):
// for each (batch, group) the mean and biased variance over L x C/G elements,
// then y = act((x - mean) / sqrt(var + eps) * w[c] + b[c]).
// Statistics in fp32 by two passes (the mean of x - x0, x0 the group's first
// element, then the mean of squared deviations), each thread summing in
// blocks of 64 so a long sequence (L = 40000, one channel) keeps ~sqrt(n)
// rounding instead of n.
// Loops stay short per thread (the op picks the workgroup for it): lavapipe
// ends a thread's loops after 65535 iterations in all (gallivm's limiter).
// Two layouts (LANES, constant 3):
//   0: flat: one workgroup per (batch, group), threads over its L x C/G elements
//      (groups of many channels: consecutive threads read consecutive channels);
//   n: columns: one workgroup per (batch, LANES / cpg groups): thread t reads
//      channel t % LANES at times t / LANES, t / LANES + rows, ... (groups of
//      few channels, e.g. wav2vec2's 512 groups of 1: a row of LANES channels
//      is one contiguous load), partial sums reduced through shared memory.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
#include "reduce.glsl" // after the local size: it uses gl_WorkGroupSize
layout(constant_id = 3) const uint LANES = 0;
layout(constant_id = 4) const uint ACT = 0;

layout(push_constant) uniform Push {
    uint B, L, C, G, cpg, blocks;
    float eps;
    uint x_off, w_off, b_off, y_off;
} p;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) readonly buffer Wt { STYPE w[]; };
layout(binding = 2) readonly buffer Bs { STYPE bs[]; };
layout(binding = 3) writeonly buffer Y { STYPE y[]; };

shared float part_sum[REDUCE_MAX_WG];
shared float col_sum[REDUCE_MAX_WG];

// Sum over the threads of each group of the columns layout: every thread gets
// its own group's total (threads past the last channel get garbage, unused).
float group_sum(float v, uint t, uint lane)
{
    uint rows = gl_WorkGroupSize.x / LANES;
    part_sum[t] = v;
    barrier();
    if (t < LANES) {
        float s = 0.0;
        for (uint r = 0; r < rows; r++) s += part_sum[r * LANES + t];
        col_sum[t] = s;
    }
    barrier();
    uint first = lane - lane % p.cpg;
    float s = 0.0;
    for (uint i = 0; i < p.cpg; i++) s += col_sum[first + i];
    barrier();
    return s;
}

void main()
{
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.B * p.blocks) return;
    uint b = r / p.blocks, blk = r % p.blocks;
    uint t = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
    float inv_n = 1.0 / (float(p.L) * float(p.cpg));
    uint xb = p.x_off + b * p.L * p.C, yb = p.y_off + b * p.L * p.C;
    if (LANES == 0) {
        uint c0 = blk * p.cpg, n = p.L * p.cpg;
        float shift = float(x[xb + c0]);
        float tot = 0.0, part = 0.0;
        uint cnt = 0;
        for (uint i = t; i < n; i += nt) {
            part += float(x[xb + (i / p.cpg) * p.C + c0 + i % p.cpg]) - shift;
            if (++cnt == 64) { tot += part; part = 0.0; cnt = 0; }
        }
        float mean = wg_sum(tot + part) * inv_n; // of x - shift
        tot = 0.0, part = 0.0, cnt = 0;
        for (uint i = t; i < n; i += nt) {
            float d = (float(x[xb + (i / p.cpg) * p.C + c0 + i % p.cpg]) - shift) - mean;
            part += d * d;
            if (++cnt == 64) { tot += part; part = 0.0; cnt = 0; }
        }
        float rstd = inversesqrt(wg_sum(tot + part) * inv_n + p.eps);
        for (uint i = t; i < n; i += nt) {
            uint c = c0 + i % p.cpg, e = (i / p.cpg) * p.C + c;
            float v = ((float(x[xb + e]) - shift) - mean) * rstd * float(w[p.w_off + c]) + float(bs[p.b_off + c]);
            y[yb + e] = STYPE(vkf_act(ACT, v));
        }
    } else {
        uint rows = nt / LANES, lane = t % LANES, row0 = t / LANES;
        uint c = blk * LANES + lane;
        bool live = row0 < rows && c < p.C;
        uint cc = min(c, p.C - 1);
        float shift = float(x[xb + cc - cc % p.cpg]);
        float tot = 0.0, part = 0.0;
        uint cnt = 0;
        if (live)
            for (uint l = row0; l < p.L; l += rows) {
                part += float(x[xb + l * p.C + c]) - shift;
                if (++cnt == 64) { tot += part; part = 0.0; cnt = 0; }
            }
        float mean = group_sum(live ? tot + part : 0.0, t, lane) * inv_n;
        tot = 0.0, part = 0.0, cnt = 0;
        if (live)
            for (uint l = row0; l < p.L; l += rows) {
                float d = (float(x[xb + l * p.C + c]) - shift) - mean;
                part += d * d;
                if (++cnt == 64) { tot += part; part = 0.0; cnt = 0; }
            }
        float rstd = inversesqrt(group_sum(live ? tot + part : 0.0, t, lane) * inv_n + p.eps);
        if (!live) return;
        float wc = float(w[p.w_off + c]) * rstd, bc = float(bs[p.b_off + c]);
        for (uint l = row0; l < p.L; l += rows) {
            float v = ((float(x[xb + l * p.C + c]) - shift) - mean) * wc + bc;
            y[yb + l * p.C + c] = STYPE(vkf_act(ACT, v));
        }
    }
}
