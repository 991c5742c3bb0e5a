#version 450
// Fused scaled-dot-product attention with an online softmax (flash-attention
// style): memory does not grow with sequence^2. One invocation per query; a
// workgroup holds WG queries of one (batch, head).
//   Q, K, V, O are strided views, so Q/K/V are read straight from the packed
//   QKV projection ([B, S, 3, H, D] rows) and O is written with heads merged.
//   Masks: causal (query i sits at absolute position q_pos + i), key padding
//   (keys j >= meta[len_index + b] ignored), and a key mask (int32 [B, m_bs]:
//   keys whose entry is 0 ignored: left padding, holes, any HF attention_mask). KV-cache form: DYN_KV counts
//   q_pos + Sq keys, and q_pos may come from meta[pos_index] at run time.
//   REL: a relative position bias added to each score (T5): the table
//   [buckets, H] at the bucket rel_b[j - i + rel_center] of key j for query
//   position i (bucket ids stored as floats: exact in fp16 and fp32).
//   DIS: DeBERTa's disentangled attention, c2p (1) and p2c (2) terms over
//   the projected relative embeddings pqk [rows, 2, H, D] (the query
//   projection, then the key projection, of each relative position's
//   embedding): + scale * q_i . pk[c] and + scale * k_j . pq[c] with
//   c = clamp(rel_b[i - j + rel_center] + dis_off, 0, rows - 1), rel_b the
//   (log-)bucketed relative position (odd in i - j, so one index serves both
//   terms) and dis_off the span minus the first row the graph projected.
//   SEG: packed sequences (texts of different lengths in one token dimension):
//   query i of batch b attends only to keys [meta[seg_index + 2(b Sq + i)], +1),
//   its own sequence; relative terms depend on i - j and hold unchanged.
//   TILE > 0: keys and values go through shared memory TILE at a time (GPUs);
//   TILE == 0 reads them directly (CPU drivers, where shared memory costs).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
layout(constant_id = 3) const uint D = 64;       // head dim, a multiple of 4
layout(constant_id = 4) const uint CAUSAL = 0;
layout(constant_id = 5) const uint USE_LEN = 0;
layout(constant_id = 6) const uint DYN_POS = 0;
layout(constant_id = 7) const uint DYN_KV = 0;
layout(constant_id = 8) const uint TILE = 0;
layout(constant_id = 9) const uint USE_MASK = 0;
layout(constant_id = 10) const uint REL = 0;
layout(constant_id = 11) const uint DIS = 0;
layout(constant_id = 12) const uint SEG = 0;

layout(push_constant) uniform Push {
    uint B, Sq, Skv, H;
    uint q_rs, k_rs, v_rs, o_rs;   // token strides (elements)
    uint q_bs, k_bs, v_bs, o_bs;   // batch strides
    uint q_hs, k_hs, v_hs, o_hs;   // head strides
    uint q_off, k_off, v_off, o_off;
    float scale;
    uint q_pos, pos_index, len_index;
    uint m_off, m_bs;              // key mask: elements offset, batch stride
    uint rel_center, rt_off, rb_off; // relative bias: bucket table centre, offsets
    int dis_off;                   // disentangled: span - first projected row
    uint dis_rows;                 //   rows of pqk
    uint seg_index;                // SEG: query i's keys [meta[seg_index + 2i], meta[.. + 1])
} p;

layout(binding = 0) readonly buffer Q { STYPE4 q4[]; };
layout(binding = 1) readonly buffer K { STYPE4 k4[]; };
layout(binding = 2) readonly buffer V { STYPE4 v4[]; };
layout(binding = 3) readonly buffer Meta { int meta[]; };
layout(binding = 4) writeonly buffer O { STYPE4 o4[]; };
layout(binding = 5) readonly buffer Mask { int mask[]; };
layout(binding = 6) readonly buffer RelT { STYPE rel_t[]; };
layout(binding = 7) readonly buffer RelB { STYPE rel_b[]; };

// The relative bias of key j for the query at position ipos, head h.
float rel_bias(uint j, uint ipos, uint h)
{
    int at = clamp(int(j) - int(ipos) + int(p.rel_center), 0, 2 * int(p.rel_center));
    uint bucket = uint(float(rel_b[p.rb_off + uint(at)]));
    return float(rel_t[p.rt_off + bucket * p.H + h]);
}

const uint D4 = D / 4;

// The row of pqk (element offset of its query half) of key j for the query at ipos.
uint dis_row(uint j, uint ipos, uint h)
{
    int at = clamp(int(ipos) - int(j) + int(p.rel_center), 0, 2 * int(p.rel_center));
    int c = clamp(int(float(rel_b[p.rb_off + uint(at)])) + p.dis_off, 0, int(p.dis_rows) - 1);
    return p.rt_off + uint(c) * 2u * p.H * D + h * D;
}

vec4 pqk4(uint at) { return vec4(float(rel_t[at]), float(rel_t[at + 1]), float(rel_t[at + 2]), float(rel_t[at + 3])); }
shared vec4 ks[TILE > 0 ? TILE * D4 : 1];
shared vec4 vs[TILE > 0 ? TILE * D4 : 1];
shared uint seg_lo, seg_hi;

void main()
{
    uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    uint i = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    uint qpos0 = DYN_POS != 0 ? uint(meta[p.pos_index]) : p.q_pos;
    uint nkv = DYN_KV != 0 ? min(qpos0 + p.Sq, p.Skv) : p.Skv;
    if (USE_LEN != 0) nkv = min(nkv, uint(max(meta[p.len_index + b], 0)));
    bool live = i < p.Sq;
    uint qi = min(i, p.Sq - 1);
    uint limit = CAUSAL != 0 ? min(nkv, qpos0 + qi + 1) : nkv;
    // SEG: packed sequences, each query's keys only those of its own sequence
    uint jstart = 0;
    if (SEG != 0) {
        uint at = p.seg_index + 2 * (b * p.Sq + qi);
        jstart = uint(max(meta[at], 0));
        limit = min(limit, uint(max(meta[at + 1], 0)));
    }
    if (!live) limit = 0;

    vec4 q[D4], acc[D4];
    uint qb = (p.q_off + b * p.q_bs + qi * p.q_rs + h * p.q_hs) / 4;
    for (uint d = 0; d < D4; d++) {
        q[d] = vec4(q4[qb + d]) * p.scale;
        acc[d] = vec4(0.0);
    }
    float m = -3.402823e38, l = 0.0;
    uint kb = (p.k_off + b * p.k_bs + h * p.k_hs) / 4, vb = (p.v_off + b * p.v_bs + h * p.v_hs) / 4;
    uint krs = p.k_rs / 4, vrs = p.v_rs / 4;

    uint mb = p.m_off + b * p.m_bs;
    if (TILE == 0) {
        for (uint j = jstart; j < limit; j++) {
            if (USE_MASK != 0 && mask[mb + j] == 0) continue;
            float s = 0.0;
            for (uint d = 0; d < D4; d++) s += dot(q[d], vec4(k4[kb + j * krs + d]));
            if (REL != 0) s += rel_bias(j, qpos0 + qi, h);
            if (DIS != 0) {
                uint r = dis_row(j, qpos0 + qi, h);
                float pc = 0.0;
                for (uint d = 0; d < D4; d++) {
                    if ((DIS & 1u) != 0) s += dot(q[d], pqk4(r + p.H * D + 4 * d));
                    if ((DIS & 2u) != 0) pc += dot(vec4(k4[kb + j * krs + d]), pqk4(r + 4 * d));
                }
                s += pc * p.scale;
            }
            float mn = max(m, s);
            float corr = vkf_exp(m - mn), e = vkf_exp(s - mn);
            l = l * corr + e;
            for (uint d = 0; d < D4; d++) acc[d] = acc[d] * corr + e * vec4(v4[vb + j * vrs + d]);
            m = mn;
        }
    } else {
        // Every invocation walks the same tiles (barriers); the workgroup's
        // last query has the largest causal limit.
        uint last = min(gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_WorkGroupSize.x, p.Sq) - 1;
        uint wg_limit = CAUSAL != 0 ? min(nkv, qpos0 + last + 1) : nkv, wg_start = 0;
        if (SEG != 0) { // the union of the workgroup's key ranges
            if (gl_LocalInvocationID.x == 0) seg_lo = 0xffffffffu, seg_hi = 0u;
            barrier();
            if (limit > jstart) atomicMin(seg_lo, jstart), atomicMax(seg_hi, limit);
            barrier();
            wg_start = seg_lo, wg_limit = seg_hi;
        }
        for (uint j0 = wg_start; j0 < wg_limit; j0 += TILE) {
            uint n = min(TILE, wg_limit - j0);
            for (uint e = gl_LocalInvocationID.x; e < n * D4; e += gl_WorkGroupSize.x) {
                uint jj = e / D4, d = e % D4;
                ks[e] = vec4(k4[kb + (j0 + jj) * krs + d]);
                vs[e] = vec4(v4[vb + (j0 + jj) * vrs + d]);
            }
            barrier();
            uint jn = min(n, limit > j0 ? limit - j0 : 0);
            for (uint jj = 0; jj < jn; jj++) {
                if (USE_MASK != 0 && mask[mb + j0 + jj] == 0) continue;
                if (SEG != 0 && j0 + jj < jstart) continue;
                float s = 0.0;
                for (uint d = 0; d < D4; d++) s += dot(q[d], ks[jj * D4 + d]);
                if (REL != 0) s += rel_bias(j0 + jj, qpos0 + qi, h);
                if (DIS != 0) {
                    uint r = dis_row(j0 + jj, qpos0 + qi, h);
                    float pc = 0.0;
                    for (uint d = 0; d < D4; d++) {
                        if ((DIS & 1u) != 0) s += dot(q[d], pqk4(r + p.H * D + 4 * d));
                        if ((DIS & 2u) != 0) pc += dot(ks[jj * D4 + d], pqk4(r + 4 * d));
                    }
                    s += pc * p.scale;
                }
                float mn = max(m, s);
                float corr = vkf_exp(m - mn), e = vkf_exp(s - mn);
                l = l * corr + e;
                for (uint d = 0; d < D4; d++) acc[d] = acc[d] * corr + e * vs[jj * D4 + d];
                m = mn;
            }
            barrier();
        }
    }
    if (live) {
        float inv = l > 0.0 ? 1.0 / l : 0.0;
        uint ob = (p.o_off + b * p.o_bs + i * p.o_rs + h * p.o_hs) / 4;
        for (uint d = 0; d < D4; d++) o4[ob + d] = STYPE4(acc[d] * inv);
    }
}
