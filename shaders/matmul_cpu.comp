#version 450
// matmul, CPU-device variant (lavapipe and other SIMD-on-CPU drivers).
//   Y[m, n] = epilogue(sum_k X[m, k] * W(k, n))
//   W(k, n) = W[n, k] (layout NT, HF Linear) or W[k, n] (layout NN, GPT-2 Conv1D)
// One workgroup = one subgroup of LANES invocations computes ROWS rows x
// 4*LANES columns of Y. X and W are read through texel buffers (cheaper than
// storage loads on lavapipe); lane r fetches row r of the X tile and shares it
// with subgroupBroadcast, each lane owns 4 columns, accumulators are named
// vec4s (one per row) so the compiler keeps them in registers.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#include "common.glsl"
#include "matmul_common.glsl"

VKF_LOCAL_SIZE;
layout(constant_id = 3) const uint ROWS = 8;      // 1..8, <= subgroup size
layout(constant_id = 4) const uint LAYOUT_NN = 0; // 0: W[N, K]; 1: W[K, N]
layout(constant_id = 5) const uint VEC = 4;       // texel width of X and W views: 4 or 1

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer W;

// 4 consecutive values of a row starting at element e (e % 4 == 0 when VEC == 4).
vec4 fetch4(samplerBuffer t, uint e, int last)
{
    if (VEC == 4) return texelFetch(t, min(int(e >> 2), last));
    return vec4(texelFetch(t, min(int(e), last)).x, texelFetch(t, min(int(e + 1), last)).x,
                texelFetch(t, min(int(e + 2), last)).x, texelFetch(t, min(int(e + 3), last)).x);
}

#define ACC_DECL(r) vec4 acc##r = vec4(0.0)
#define ACC_ROW_NT(r) if (ROWS > r) { vec4 a = subgroupBroadcast(xa, r); \
    acc##r += vec4(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3)); }
#define ACC_ROW_NN(r) if (ROWS > r) { vec4 a = subgroupBroadcast(xa, r); \
    acc##r += a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3; }
#define STORE_ROW(r) if (ROWS > r) store4(m0 + r, n, acc##r)

void main()
{
    uint lane = gl_SubgroupInvocationID;
    uint b = gl_WorkGroupID.z;
    uint m0 = gl_WorkGroupID.y * ROWS;
    uint n = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * 4;
    int xlast = textureSize(X) - 1, wlast = textureSize(W) - 1;

    // This lane's X row (clamped: rows past M compute garbage that is never stored).
    uint xrow = p.x_off + b * p.sx + min(m0 + lane, p.M - 1) * p.ldx;
    uint wbase = p.w_off + b * p.sw;
    // NT: rows of W for this lane's 4 columns (clamped to the last column).
    uint nc = min(n, p.N - 1);
    uint w0r = wbase + nc * p.ldw, w1r = wbase + min(n + 1, p.N - 1) * p.ldw;
    uint w2r = wbase + min(n + 2, p.N - 1) * p.ldw, w3r = wbase + min(n + 3, p.N - 1) * p.ldw;

    ACC_DECL(0); ACC_DECL(1); ACC_DECL(2); ACC_DECL(3);
    ACC_DECL(4); ACC_DECL(5); ACC_DECL(6); ACC_DECL(7);

    uint kend = p.K & ~3u;
    for (uint k = 0; k < kend; k += 4) {
        vec4 xa = fetch4(X, xrow + k, xlast);
        vec4 w0, w1, w2, w3;
        if (LAYOUT_NN == 0) {
            w0 = fetch4(W, w0r + k, wlast); w1 = fetch4(W, w1r + k, wlast);
            w2 = fetch4(W, w2r + k, wlast); w3 = fetch4(W, w3r + k, wlast);
            ACC_ROW_NT(0); ACC_ROW_NT(1); ACC_ROW_NT(2); ACC_ROW_NT(3);
            ACC_ROW_NT(4); ACC_ROW_NT(5); ACC_ROW_NT(6); ACC_ROW_NT(7);
        } else {
            uint r = wbase + k * p.ldw + n;
            w0 = fetch4(W, r, wlast); w1 = fetch4(W, r + p.ldw, wlast);
            w2 = fetch4(W, r + 2 * p.ldw, wlast); w3 = fetch4(W, r + 3 * p.ldw, wlast);
            ACC_ROW_NN(0); ACC_ROW_NN(1); ACC_ROW_NN(2); ACC_ROW_NN(3);
            ACC_ROW_NN(4); ACC_ROW_NN(5); ACC_ROW_NN(6); ACC_ROW_NN(7);
        }
    }
    // K tail (K % 4 != 0, only with VEC == 1): zero-padded fetches.
    if (kend < p.K) {
        uint rem = p.K - kend;
        vec4 mask = vec4(1.0, rem > 1 ? 1.0 : 0.0, rem > 2 ? 1.0 : 0.0, 0.0);
        vec4 xa = fetch4(X, xrow + kend, xlast) * mask;
        vec4 w0, w1, w2, w3;
        if (LAYOUT_NN == 0) {
            w0 = fetch4(W, w0r + kend, wlast) * mask; w1 = fetch4(W, w1r + kend, wlast) * mask;
            w2 = fetch4(W, w2r + kend, wlast) * mask; w3 = fetch4(W, w3r + kend, wlast) * mask;
            ACC_ROW_NT(0); ACC_ROW_NT(1); ACC_ROW_NT(2); ACC_ROW_NT(3);
            ACC_ROW_NT(4); ACC_ROW_NT(5); ACC_ROW_NT(6); ACC_ROW_NT(7);
        } else {
            uint r = wbase + kend * p.ldw + n;
            w0 = fetch4(W, r, wlast);
            w1 = rem > 1 ? fetch4(W, r + p.ldw, wlast) : vec4(0.0);
            w2 = rem > 2 ? fetch4(W, r + 2 * p.ldw, wlast) : vec4(0.0);
            w3 = vec4(0.0);
            ACC_ROW_NN(0); ACC_ROW_NN(1); ACC_ROW_NN(2); ACC_ROW_NN(3);
            ACC_ROW_NN(4); ACC_ROW_NN(5); ACC_ROW_NN(6); ACC_ROW_NN(7);
        }
    }
    STORE_ROW(0); STORE_ROW(1); STORE_ROW(2); STORE_ROW(3);
    STORE_ROW(4); STORE_ROW(5); STORE_ROW(6); STORE_ROW(7);
}
