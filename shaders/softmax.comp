#version 450
// Softmax over rows, fp32 math: y = softmax(scale * x) with masked keys
// excluded. Subtracts the row max, so any finite input (fp16 storage up to
// 65504) is safe. A fully masked row becomes zeros, not NaN.
//   causal: row r is query i = r % q_len at absolute position q_pos + i; keys
//           after it are masked.
//   key lengths: keys j >= meta[len_index + r / rows_per_batch] are masked.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
#include "reduce.glsl" // after the local size: it uses gl_WorkGroupSize
layout(constant_id = 3) const uint CAUSAL = 0;
layout(constant_id = 4) const uint USE_LEN = 0;

layout(push_constant) uniform Push {
    uint rows, cols, ld;
    uint x_off, y_off;
    float scale;
    uint q_len, q_pos, rows_per_batch, len_index;
} p;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) readonly buffer Meta { int meta[]; };
layout(binding = 2) writeonly buffer Y { STYPE y[]; };

void main()
{
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.rows) return; // uniform per workgroup
    uint t = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
    uint n = p.cols;
    if (CAUSAL != 0) n = min(n, p.q_pos + r % p.q_len + 1);
    if (USE_LEN != 0) n = min(n, uint(max(meta[p.len_index + r / p.rows_per_batch], 0)));
    uint xb = p.x_off + r * p.ld, yb = p.y_off + r * p.ld;

    float m = -3.402823e38;
    for (uint j = t; j < n; j += nt) m = max(m, p.scale * float(x[xb + j]));
    m = wg_max(m);
    float s = 0.0;
    for (uint j = t; j < n; j += nt) s += exp(p.scale * float(x[xb + j]) - m);
    s = wg_sum(s);
    float inv = s > 0.0 ? 1.0 / s : 0.0;
    for (uint j = t; j < p.cols; j += nt)
        y[yb + j] = STYPE(j < n ? exp(p.scale * float(x[xb + j]) - m) * inv : 0.0);
}
