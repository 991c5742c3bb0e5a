#version 450
// The k largest values of each row and their indices, largest first, ties to
// the lower index (torch.topk / argmax order); NaN never selected. One
// workgroup per row, k rounds of a workgroup arg-max over the elements that
// rank after the previous pick, so nothing is sorted or stored: greedy
// decoding (k = 1) reads one index back instead of the vocabulary's logits.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;

layout(push_constant) uniform Push {
    uint rows, cols, k;
    uint x_off, x_rs;
} p;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) writeonly buffer Vals { float vals[]; };
layout(binding = 2) writeonly buffer Idx { int idx[]; };

shared float sv[256];
shared uint si[256];

// (v, i) ranks before (bv, bi)
bool before(float v, uint i, float bv, uint bi) { return v > bv || (v == bv && i < bi); }

void main()
{
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.rows) return;
    uint lid = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
    uint xb = p.x_off + r * p.x_rs;
    float pv = 0.0;
    uint pi = 0xffffffffu;
    bool first = true;
    for (uint pick = 0; pick < p.k; pick++) {
        float bv = uintBitsToFloat(0xff800000u);
        uint bi = 0xffffffffu;
        for (uint i = lid; i < p.cols; i += nt) {
            float v = float(x[xb + i]);
            if (isnan(v)) continue;
            bool after = first || before(pv, pi, v, i); // ranks after the previous pick
            if (after && before(v, i, bv, bi)) bv = v, bi = i;
        }
        sv[lid] = bv;
        si[lid] = bi;
        barrier();
        for (uint s = 128; s > 0; s >>= 1) {
            if (lid < s && lid + s < nt && before(sv[lid + s], si[lid + s], sv[lid], si[lid])) {
                sv[lid] = sv[lid + s];
                si[lid] = si[lid + s];
            }
            barrier();
        }
        pv = sv[0];
        pi = si[0];
        first = false;
        if (lid == 0) {
            vals[r * p.k + pick] = pi == 0xffffffffu ? uintBitsToFloat(0xff800000u) : pv;
            idx[r * p.k + pick] = pi == 0xffffffffu ? -1 : int(pi);
        }
        barrier();
    }
}
