#version 450
// ViT pidx extraction (im2col for a convolution whose stride equals its
// kernel): image [B, C, H, W] -> patches [B, gh*gw, C*ph*pw], each row in the
// (c, ky, kx) order of a flattened conv weight [hidden, C, ph, pw]. The pidx
// embedding is then one matmul with that weight.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
// 1: patch width and image width are multiples of 4, so 4 neighbouring
// outputs are 4 neighbouring pixels of one image row: move them as a vec4.
layout(constant_id = 3) const uint VEC4 = 0;

layout(push_constant) uniform Push {
    uint B, C, H, W, ph, pw, gh, gw;
    uint x_off, y_off;
} p;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) writeonly buffer Y { STYPE y[]; };
layout(binding = 0) readonly buffer X4 { STYPE4 x4[]; };
layout(binding = 1) writeonly buffer Y4 { STYPE4 y4[]; };

void main()
{
    uint row_len = p.C * p.ph * p.pw, patches = p.gh * p.gw;
    uint total = p.B * patches * row_len;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (VEC4 != 0) {
        for (uint e4 = gl_GlobalInvocationID.x; e4 < total / 4; e4 += stride) {
            uint e = e4 * 4;
            uint col = e % row_len, row = e / row_len;
            uint b = row / patches, pidx = row % patches;
            uint c = col / (p.ph * p.pw), kk = col % (p.ph * p.pw);
            uint yy = (pidx / p.gw) * p.ph + kk / p.pw, xx = (pidx % p.gw) * p.pw + kk % p.pw;
            y4[(p.y_off + e) / 4] = x4[(p.x_off + ((b * p.C + c) * p.H + yy) * p.W + xx) / 4];
        }
        return;
    }
    for (uint e = gl_GlobalInvocationID.x; e < total; e += stride) {
        uint col = e % row_len, row = e / row_len;
        uint b = row / patches, pidx = row % patches;
        uint c = col / (p.ph * p.pw), kk = col % (p.ph * p.pw);
        uint yy = (pidx / p.gw) * p.ph + kk / p.pw, xx = (pidx % p.gw) * p.pw + kk % p.pw;
        y[p.y_off + e] = x[p.x_off + ((b * p.C + c) * p.H + yy) * p.W + xx];
    }
}
