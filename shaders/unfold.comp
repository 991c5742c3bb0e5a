#version 450
// 1-D unfold (im2col for a convolution along the sequence): x [B, L, C]
// -> y [B, Lout, C*K], each row in the (c, k) order of a flattened Conv1d
// weight [Cout, C, K], so the convolution is then one matmul with it.
// Output row l reads input positions l*stride + k - pad; positions outside
// [0, L), and those whose key-mask entry (int32 [B, L]) is 0, read as zeros
// (HF multiplies padding by its mask before DeBERTa's convolution).
// USE_MASK 2 (packed texts, stride 1): Mask is the meta buffer, and output row
// l reads only positions in [mask[m_off + 2(b L + l)], +1), its own text's.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
layout(constant_id = 3) const uint USE_MASK = 0;

layout(push_constant) uniform Push {
    uint B, L, C, K, stride, pad, Lout;
    uint x_off, y_off, m_off;
} p;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) writeonly buffer Y { STYPE y[]; };
layout(binding = 2) readonly buffer Mask { int mask[]; };

void main()
{
    uint row_len = p.C * p.K, total = p.B * p.Lout * row_len;
    uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint e = gl_GlobalInvocationID.x; e < total; e += step) {
        uint col = e % row_len, row = e / row_len;
        uint b = row / p.Lout, l = row % p.Lout, c = col / p.K, k = col % p.K;
        int li = int(l * p.stride + k) - int(p.pad);
        bool in_range = li >= 0 && li < int(p.L);
        if (USE_MASK == 1 && in_range) in_range = mask[p.m_off + b * p.L + uint(li)] != 0;
        if (USE_MASK == 2) {
            uint at = p.m_off + 2 * (b * p.L + l);
            in_range = in_range && li >= mask[at] && li < mask[at + 1];
        }
        // through float: a half constant would need Float16 arithmetic
        float v = in_range ? float(x[p.x_off + (b * p.L + uint(max(li, 0))) * p.C + c]) : 0.0;
        y[p.y_off + e] = STYPE(v);
    }
}
