#version 450
// Embedding gather: y[t, :] = scale * wte[ids[t]] (+ wpe[pos0 + t % seq]) (+ wtt[tt[t]]),
// pos0 static, plus, per sequence, meta[pos_index + t / seq] (generation: each
// sequence of a batch at its own position; BART's tables start at offset 2).
// One workgroup per token. Ids are clamped into the table (hostile ids must not
// read out of bounds; the host validates them too). With TEXEL_TABLE the token
// table is read through a texel buffer, whose size limit is far above
// maxStorageBufferRange (GPT-2's wte is 154 MB in fp32).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
layout(constant_id = 3) const uint USE_POS = 1;
layout(constant_id = 4) const uint USE_TT = 0;
layout(constant_id = 5) const uint DYN_POS = 0;

layout(push_constant) uniform Push {
    uint tokens, seq, dim, vocab, max_pos, type_vocab;
    uint pos0, pos_index;
    float scale;
    uint wte_off, wpe_off, wtt_off, ids_off, tt_off, y_off;
} p;

#ifdef TEXEL_TABLE
layout(binding = 0) uniform samplerBuffer wte;
#define WTE(i) texelFetch(wte, int(i)).x
#else
layout(binding = 0) readonly buffer Wte { STYPE wte[]; };
#define WTE(i) float(wte[i])
#endif
layout(binding = 1) readonly buffer Wpe { STYPE wpe[]; };
layout(binding = 2) readonly buffer Wtt { STYPE wtt[]; };
layout(binding = 3) readonly buffer Ids { int ids[]; };
layout(binding = 4) readonly buffer Tt { int tt[]; };
layout(binding = 5) readonly buffer Meta { int meta[]; };
layout(binding = 6) writeonly buffer Y { STYPE y[]; };

void main()
{
    uint t = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (t >= p.tokens) return;
    uint id = uint(clamp(ids[p.ids_off + t], 0, int(p.vocab) - 1));
    uint pos0 = p.pos0 + (DYN_POS != 0 ? uint(max(meta[p.pos_index + t / p.seq], 0)) : 0u);
    uint pos = min(pos0 + t % p.seq, p.max_pos - 1);
    uint type_id = USE_TT != 0 ? uint(clamp(tt[p.tt_off + t], 0, int(p.type_vocab) - 1)) : 0;
    for (uint d = gl_LocalInvocationID.x; d < p.dim; d += gl_WorkGroupSize.x) {
        float v = WTE(p.wte_off + id * p.dim + d) * p.scale;
        if (USE_POS != 0) v += float(wpe[p.wpe_off + pos * p.dim + d]);
        if (USE_TT != 0) v += float(wtt[p.wtt_off + type_id * p.dim + d]);
        y[p.y_off + t * p.dim + d] = STYPE(v);
    }
}
