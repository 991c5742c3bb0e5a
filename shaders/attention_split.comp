#version 450
// Decode attention split over keys (flash-decoding): one query per (batch,
// head), keys in chunks of CHUNK, one workgroup per chunk, so a single query
// keeps every lane busy. Pass 1 (this file) writes per chunk the running max
// m, the sum l of exp(s - m) and the unnormalised sum of exp(s - m) V;
// pass 2 (MERGE) rescales the chunks to a common max and divides:
//   o = sum_c e^(m_c - M) acc_c / sum_c e^(m_c - M) l_c,   M = max_c m_c.
// Keys counted per sequence: meta[len_index + b] (at most kv_len); chunks past
// it write l = 0 and are skipped by the merge. Partials are fp32 whatever the
// storage type: [B, H, splits, D + 2] as (m, l, acc[D]).
// TEXEL_KV (CPU drivers): K and V through RGBA texel buffers, four values a
// fetch (llvmpipe turns every per-lane storage load into a gather).
// REL: T5's relative position bias, as attention.comp's, for the query at
// position n - 1 (the last of the n keys counted).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
layout(constant_id = 3) const uint D = 64;
layout(constant_id = 4) const uint CHUNK = 64;
layout(constant_id = 5) const uint REL = 0;

layout(push_constant) uniform Push {
    uint B, H, kv_len, splits;
    uint q_bs, q_hs, k_bs, k_rs, k_hs, v_bs, v_rs, v_hs, o_bs, o_hs;
    uint q_off, k_off, v_off, o_off, part_off, len_index;
    float scale;
    uint rel_center, rt_off, rb_off;
} p;

#ifdef MERGE
layout(binding = 0) readonly buffer Part { float part[]; };
layout(binding = 1) writeonly buffer O { STYPE o[]; };
#else
layout(binding = 0) readonly buffer Q { STYPE q[]; };
#ifdef TEXEL_KV
layout(binding = 1) uniform samplerBuffer Kt;
layout(binding = 2) uniform samplerBuffer Vt;
#else
layout(binding = 1) readonly buffer K { STYPE k[]; };
layout(binding = 2) readonly buffer V { STYPE v[]; };
#endif
layout(binding = 3) readonly buffer Meta { int meta[]; };
layout(binding = 4) writeonly buffer Part { float part[]; };
layout(binding = 5) readonly buffer RelT { STYPE rel_t[]; };
layout(binding = 6) readonly buffer RelB { STYPE rel_b[]; };
shared float sq[D];
shared float sp[CHUNK];
#include "reduce.glsl"
#endif

void main()
{
    uint lid = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
#ifdef MERGE
    uint h = gl_WorkGroupID.x, b = gl_WorkGroupID.y;
    uint base = p.part_off + (b * p.H + h) * p.splits * (D + 2);
    float M = -3.0e38;
    for (uint c = 0; c < p.splits; c++)
        if (part[base + c * (D + 2) + 1] > 0.0) M = max(M, part[base + c * (D + 2)]);
    float L = 0.0;
    for (uint c = 0; c < p.splits; c++) {
        float l = part[base + c * (D + 2) + 1];
        if (l > 0.0) L += vkf_exp(part[base + c * (D + 2)] - M) * l;
    }
    float inv = L > 0.0 ? 1.0 / L : 0.0;
    for (uint d = lid; d < D; d += nt) {
        float acc = 0.0;
        for (uint c = 0; c < p.splits; c++) {
            uint pc = base + c * (D + 2);
            if (part[pc + 1] > 0.0) acc += vkf_exp(part[pc] - M) * part[pc + 2 + d];
        }
        o[p.o_off + b * p.o_bs + h * p.o_hs + d] = STYPE(acc * inv);
    }
#else
    uint c = gl_WorkGroupID.x, h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    uint pc = p.part_off + ((b * p.H + h) * p.splits + c) * (D + 2);
    uint n = uint(clamp(meta[p.len_index + b], 0, int(p.kv_len)));
    uint begin = c * CHUNK, end = min(begin + CHUNK, n);
    if (begin >= end) { // a chunk past this sequence's keys (uniform per workgroup)
        if (lid == 0) part[pc] = 0.0, part[pc + 1] = 0.0;
        return;
    }
    uint qb = p.q_off + b * p.q_bs + h * p.q_hs;
    for (uint d = lid; d < D; d += nt) sq[d] = float(q[qb + d]) * p.scale;
    barrier();
    uint kb = p.k_off + b * p.k_bs + h * p.k_hs, vb = p.v_off + b * p.v_bs + h * p.v_hs;
    float mx = -3.0e38;
    for (uint j = begin + lid; j < end; j += nt) {
        float s = 0.0;
#ifdef TEXEL_KV
        int kt = int(p.k_off + (b * p.k_bs + j * p.k_rs + h * p.k_hs) / 4);
        for (uint i = 0; i < D / 4; i++)
            s += dot(vec4(sq[4 * i], sq[4 * i + 1], sq[4 * i + 2], sq[4 * i + 3]), texelFetch(Kt, kt + int(i)));
#else
        uint kr = kb + j * p.k_rs;
        for (uint d = 0; d < D; d++) s += sq[d] * float(k[kr + d]);
#endif
        if (REL != 0) {
            int at = clamp(int(j) - int(n - 1) + int(p.rel_center), 0, 2 * int(p.rel_center));
            s += float(rel_t[p.rt_off + uint(float(rel_b[p.rb_off + uint(at)])) * p.H + h]);
        }
        sp[j - begin] = s;
        mx = max(mx, s);
    }
    mx = wg_max(mx);
    barrier();
    float l = 0.0;
    for (uint j = begin + lid; j < end; j += nt) {
        float e = vkf_exp(sp[j - begin] - mx);
        sp[j - begin] = e;
        l += e;
    }
    l = wg_sum(l);
    barrier();
#ifdef TEXEL_KV
    int vt = int(p.v_off + (b * p.v_bs + h * p.v_hs) / 4);
    for (uint d4 = lid; d4 < D / 4; d4 += nt) {
        vec4 acc = vec4(0.0);
        for (uint j = begin; j < end; j++) acc += sp[j - begin] * texelFetch(Vt, vt + int(j * p.v_rs / 4 + d4));
        part[pc + 2 + 4 * d4] = acc.x, part[pc + 3 + 4 * d4] = acc.y;
        part[pc + 4 + 4 * d4] = acc.z, part[pc + 5 + 4 * d4] = acc.w;
    }
#else
    for (uint d = lid; d < D; d += nt) {
        float acc = 0.0;
        for (uint j = begin; j < end; j++) acc += sp[j - begin] * float(v[vb + j * p.v_rs + d]);
        part[pc + 2 + d] = acc;
    }
#endif
    if (lid == 0) part[pc] = mx, part[pc + 1] = l;
#endif
}
