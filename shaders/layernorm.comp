#version 450
// LayerNorm over rows of C, statistics in fp32 by two passes (mean, then the
// mean of squared deviations: no E[x^2] - E[x]^2 cancellation):
//   h = x (+ r); optionally write h (the residual stream); y = (h - mean) / sqrt(var + eps) * w + b
// RMS (T5's T5LayerNorm): y = h / sqrt(mean(h^2) + eps) * w, no mean, no bias.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
#include "reduce.glsl" // after the local size: it uses gl_WorkGroupSize
layout(constant_id = 3) const uint RESIDUAL = 0;
layout(constant_id = 4) const uint WRITE_SUM = 0;
layout(constant_id = 5) const uint VEC4 = 0;
layout(constant_id = 6) const uint RMS = 0;

layout(push_constant) uniform Push {
    uint rows, cols;
    float eps;
    uint x_off, r_off, s_off, y_off, w_off, b_off;
} p;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) readonly buffer R { STYPE res[]; };
layout(binding = 2) readonly buffer Wt { STYPE w[]; };
layout(binding = 3) readonly buffer Bs { STYPE bs[]; };
layout(binding = 4) buffer S { STYPE sum_out[]; };
layout(binding = 5) writeonly buffer Y { STYPE y[]; };
layout(binding = 0) readonly buffer X4 { STYPE4 x4[]; };
layout(binding = 1) readonly buffer R4 { STYPE4 res4[]; };
layout(binding = 2) readonly buffer Wt4 { STYPE4 w4[]; };
layout(binding = 3) readonly buffer Bs4 { STYPE4 bs4[]; };
layout(binding = 4) buffer S4 { STYPE4 sum_out4[]; };
layout(binding = 5) writeonly buffer Y4 { STYPE4 y4[]; };

vec4 load_h4(uint row, uint j)
{
    vec4 v = vec4(x4[(p.x_off + row) / 4 + j]);
    if (RESIDUAL != 0) v += vec4(res4[(p.r_off + row) / 4 + j]);
    return v;
}

float load_h(uint row, uint j)
{
    float v = float(x[p.x_off + row + j]);
    if (RESIDUAL != 0) v += float(res[p.r_off + row + j]);
    return v;
}

void main()
{
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.rows) return;
    uint t = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
    uint row = r * p.cols;
    float inv_n = 1.0 / float(p.cols);
    if (RMS != 0) {
        float q = 0.0;
        for (uint j = t; j < p.cols; j += nt) { float h = load_h(row, j); q += h * h; }
        float rstd = inversesqrt(wg_sum(q) * inv_n + p.eps);
        for (uint j = t; j < p.cols; j += nt) {
            float h = load_h(row, j);
            if (WRITE_SUM != 0) sum_out[p.s_off + row + j] = STYPE(h);
            y[p.y_off + row + j] = STYPE(h * rstd * float(w[p.w_off + j]));
        }
    } else if (VEC4 != 0) {
        uint n4 = p.cols / 4;
        // Statistics of h - h[0]: when |mean| >> std (a row near 1e4), neither
        // an fp32 sum of h nor the mean itself rounded to fp32 keeps the
        // deviations accurate; h - h[0] is exact and its mean is small.
        float shift = load_h4(row, 0).x;
        vec4 s4 = vec4(0.0);
        for (uint j = t; j < n4; j += nt) s4 += load_h4(row, j) - shift;
        float mean = wg_sum(s4.x + s4.y + s4.z + s4.w) * inv_n; // of h - shift
        vec4 q4 = vec4(0.0);
        for (uint j = t; j < n4; j += nt) { vec4 d = (load_h4(row, j) - shift) - mean; q4 += d * d; }
        float rstd = inversesqrt(wg_sum(q4.x + q4.y + q4.z + q4.w) * inv_n + p.eps);
        for (uint j = t; j < n4; j += nt) {
            vec4 h = load_h4(row, j);
            if (WRITE_SUM != 0) sum_out4[(p.s_off + row) / 4 + j] = STYPE4(h);
            y4[(p.y_off + row) / 4 + j] = STYPE4(((h - shift) - mean) * rstd * vec4(w4[p.w_off / 4 + j]) + vec4(bs4[p.b_off / 4 + j]));
        }
    } else {
        float shift = load_h(row, 0);
        float s = 0.0;
        for (uint j = t; j < p.cols; j += nt) s += load_h(row, j) - shift;
        float mean = wg_sum(s) * inv_n; // of h - shift
        float q = 0.0;
        for (uint j = t; j < p.cols; j += nt) { float d = (load_h(row, j) - shift) - mean; q += d * d; }
        float rstd = inversesqrt(wg_sum(q) * inv_n + p.eps);
        for (uint j = t; j < p.cols; j += nt) {
            float h = load_h(row, j);
            if (WRITE_SUM != 0) sum_out[p.s_off + row + j] = STYPE(h);
            y[p.y_off + row + j] = STYPE(((h - shift) - mean) * rstd * float(w[p.w_off + j]) + float(bs[p.b_off + j]));
        }
    }
}
