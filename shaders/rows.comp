#version 450
// Row operations (a row = `dim` consecutive elements), one workgroup per
// output row:
//   PREPEND y[b, 0, :] = c + pos[0]; y[b, s, :] = x[b, s - 1, :] + pos[s]
//                                           (ViT: CLS token before the patches, positions added)
//   GATHER  y[b, :] = x[b, idx_b, :]        (CLS / last-token pooling; idx_b fixed
//                                            or meta[len_index + b] - 1)
//   MEAN    y[b, :] = mean_{s < len_b} x[b, s, :]  (len_b = seq or from meta)
//   L2      y[r, :] = x[r, :] / max(|x[r, :]|, eps)
//   COPY    y[b, pos_b + s, :] = x[b, s, :] (KV-cache append; pos_b static or
//                                            meta[meta_index + b]; rows at or past
//                                            y_len are never written)
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
#include "reduce.glsl" // after the local size: it uses gl_WorkGroupSize
layout(constant_id = 3) const uint MODE = 0;
layout(constant_id = 4) const uint USE_META = 0; // GATHER/MEAN: lengths; COPY: position
layout(constant_id = 5) const uint USE_POS = 0;
#define MODE_PREPEND 0
#define MODE_GATHER 1
#define MODE_MEAN 2
#define MODE_L2 3
#define MODE_COPY 4

layout(push_constant) uniform Push {
    uint rows, dim, seq;
    uint x_bs, x_rs, y_bs, y_rs;   // batch and row strides (elements)
    uint x_off, y_off, c_off, pos_off;
    uint index, meta_index;
    float eps;
    uint y_len;
} p;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) readonly buffer Cb { STYPE cb[]; };
layout(binding = 2) readonly buffer Meta { int meta[]; };
layout(binding = 3) writeonly buffer Y { STYPE y[]; };
layout(binding = 4) readonly buffer Pos { STYPE pos[]; };

void main()
{
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.rows) return;
    uint t = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
    if (MODE == MODE_PREPEND) { // r = b * seq + s
        uint b = r / p.seq, s = r % p.seq;
        uint yb = p.y_off + b * p.y_bs + s * p.y_rs;
        for (uint d = t; d < p.dim; d += nt) {
            float v = s == 0 ? float(cb[p.c_off + d]) : float(x[p.x_off + b * p.x_bs + (s - 1) * p.x_rs + d]);
            if (USE_POS != 0) v += float(pos[p.pos_off + s * p.dim + d]);
            y[yb + d] = STYPE(v);
        }
    } else if (MODE == MODE_GATHER) {
        uint idx = p.index;
        if (USE_META != 0) idx = uint(clamp(meta[p.meta_index + r] - 1, 0, int(p.seq) - 1));
        uint xb = p.x_off + r * p.x_bs + idx * p.x_rs, yb = p.y_off + r * p.y_bs;
        for (uint d = t; d < p.dim; d += nt) y[yb + d] = x[xb + d];
    } else if (MODE == MODE_MEAN) {
        uint n = p.seq;
        if (USE_META != 0) n = uint(clamp(meta[p.meta_index + r], 0, int(p.seq)));
        float inv = n > 0 ? 1.0 / float(n) : 0.0;
        for (uint d = t; d < p.dim; d += nt) {
            float s = 0.0;
            for (uint i = 0; i < n; i++) s += float(x[p.x_off + r * p.x_bs + i * p.x_rs + d]);
            y[p.y_off + r * p.y_bs + d] = STYPE(s * inv);
        }
    } else if (MODE == MODE_L2) {
        uint xb = p.x_off + r * p.x_bs, yb = p.y_off + r * p.y_bs;
        float s = 0.0;
        for (uint d = t; d < p.dim; d += nt) { float v = float(x[xb + d]); s += v * v; }
        float inv = 1.0 / max(sqrt(wg_sum(s)), p.eps);
        for (uint d = t; d < p.dim; d += nt) y[yb + d] = STYPE(float(x[xb + d]) * inv);
    } else { // COPY: r = b * seq + s
        uint b = r / p.seq, s = r % p.seq;
        uint pos = USE_META != 0 ? uint(max(meta[p.meta_index + b], 0)) : p.index;
        if (pos + s >= p.y_len) return;
        uint xb = p.x_off + b * p.x_bs + s * p.x_rs, yb = p.y_off + b * p.y_bs + (pos + s) * p.y_rs;
        for (uint d = t; d < p.dim; d += nt) y[yb + d] = x[xb + d];
    }
}
