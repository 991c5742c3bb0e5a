#version 450
// Softmax over rows, fp32 math: y = softmax(scale * x) with masked keys
// excluded. Subtracts the row max, so any finite input (fp16 storage up to
// 65504) is safe. A fully masked row becomes zeros, not NaN.
//   causal: row r is query i = r % q_len at absolute position q_pos + i; keys
//           after it are masked.
//   key lengths: keys j >= meta[len_index + r / rows_per_batch] are masked.
// VEC4: rows need not start on a 4-element boundary; the kernel reads the
// aligned vec4s covering a row and masks what lies outside it (storage loads
// are per-lane loops on CPU drivers: 4 elements per load cuts that ~4x).
// Writes are vec4 inside the row and scalar at its two ragged ends, so no
// neighbouring row is touched.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
#include "reduce.glsl" // after the local size: it uses gl_WorkGroupSize
layout(constant_id = 3) const uint CAUSAL = 0;
layout(constant_id = 4) const uint USE_LEN = 0;
layout(constant_id = 5) const uint VEC4 = 0;

layout(push_constant) uniform Push {
    uint rows, cols, ld;
    uint x_off, y_off;
    float scale;
    uint q_len, q_pos, rows_per_batch, len_index;
} p;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) readonly buffer Meta { int meta[]; };
layout(binding = 2) writeonly buffer Y { STYPE y[]; };
#ifdef TEXEL_IN
// CPU drivers: texel fetches cost less than storage loads there. The view is
// RGBA (32- or 16-bit float), so a fetch returns the same vec4 as x4[a].
layout(binding = 3) uniform samplerBuffer xt;
#define LOAD4(a) texelFetch(xt, int(a))
#else
layout(binding = 0) readonly buffer X4 { STYPE4 x4[]; };
#define LOAD4(a) vec4(x4[a])
#endif
layout(binding = 2) writeonly buffer Y4 { STYPE4 y4[]; };

// Online (max, sum) update: the sum is kept relative to the running max.
void online(inout float m, inout float s, float v)
{
    float mn = max(m, v);
    s = s * vkf_exp(m - mn) + vkf_exp(v - mn);
    m = mn;
}

const float NEG = -3.402823e38;

void main()
{
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.rows) return; // uniform per workgroup
    uint t = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
    uint n = p.cols;
    if (CAUSAL != 0) n = min(n, p.q_pos + r % p.q_len + 1);
    if (USE_LEN != 0) n = min(n, uint(max(meta[p.len_index + r / p.rows_per_batch], 0)));
    uint xb = p.x_off + r * p.ld, yb = p.y_off + r * p.ld;

    // One read pass for max and sum together; lanes then rescale to the row max.
    float m = NEG, s = 0.0;
    if (VEC4 != 0) {
        // Per vec4: one rescale of the running sum, four exps.
        for (uint a = xb / 4 + t; a * 4 < xb + n; a += nt) {
            vec4 v = LOAD4(a) * p.scale;
            uvec4 e = uvec4(a * 4) + uvec4(0, 1, 2, 3) - uvec4(xb);
            bvec4 in_row = lessThan(e, uvec4(n)); // e wraps above n before the row start
            v = mix(vec4(NEG), v, in_row);
            float mn = max(m, max(max(v.x, v.y), max(v.z, v.w)));
            vec4 ev = mix(vec4(0.0), vkf_exp(v - mn), in_row);
            s = s * vkf_exp(m - mn) + (ev.x + ev.y) + (ev.z + ev.w);
            m = mn;
        }
    } else {
        for (uint j = t; j < n; j += nt) online(m, s, p.scale * float(x[xb + j]));
    }
    float row_max = wg_max(m);
    s = wg_sum(s * vkf_exp(m - row_max));
    m = row_max;
    float inv = s > 0.0 ? 1.0 / s : 0.0;

    if (VEC4 != 0) {
        // x and y share their alignment (the host checks), so a is aligned for both.
        uint dy = yb - xb;
        for (uint a = xb / 4 + t; a * 4 < xb + p.cols; a += nt) {
            vec4 v = LOAD4(a) * p.scale;
            uvec4 e = uvec4(a * 4) + uvec4(0, 1, 2, 3) - uvec4(xb);
            vec4 o = mix(vec4(0.0), vkf_exp(v - m) * inv, lessThan(e, uvec4(n)));
            if (a * 4 >= xb && a * 4 + 4 <= xb + p.cols) {
                y4[a + dy / 4] = STYPE4(o);
            } else {
                for (uint c = 0; c < 4; c++) {
                    uint e = a * 4 + c;
                    if (e >= xb && e < xb + p.cols) y[e + dy] = STYPE(o[c]);
                }
            }
        }
    } else {
        for (uint j = t; j < p.cols; j += nt)
            y[yb + j] = STYPE(j < n ? vkf_exp(p.scale * float(x[xb + j]) - m) * inv : 0.0);
    }
}
