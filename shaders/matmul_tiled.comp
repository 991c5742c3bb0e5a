#version 450
// matmul, GPU variant: BM x BN tiles of Y per workgroup through shared memory,
// TM x TN register blocks per invocation. Tile sizes are specialization
// constants chosen from the device's shared memory and workgroup limits.
// Storage buffers throughout; edges are bounds-checked (no out-of-range reads).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "matmul_common.glsl"

VKF_LOCAL_SIZE;
layout(constant_id = 3) const uint BM = 64;
layout(constant_id = 4) const uint BN = 64;
layout(constant_id = 5) const uint BK = 16;
layout(constant_id = 6) const uint TM = 4;
layout(constant_id = 7) const uint TN = 4;
layout(constant_id = 8) const uint LAYOUT_NN = 0;

layout(binding = 0) readonly buffer X { STYPE x[]; };
layout(binding = 1) readonly buffer W { STYPE w[]; };

// +1 column of padding: transposed stores then hit different banks.
shared float As[BK][BM + 1];
shared float Ws[BK][BN + 1];

void main()
{
    const uint threads = (BM / TM) * (BN / TN);
    uint tid = gl_LocalInvocationID.x;
    uint tx = tid % (BN / TN), ty = tid / (BN / TN);
    uint b = gl_WorkGroupID.z;
    uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    uint xb = p.x_off + b * p.sx, wb = p.w_off + b * p.sw;

    float acc[TM][TN];
    for (uint i = 0; i < TM; i++)
        for (uint j = 0; j < TN; j++) acc[i][j] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        for (uint e = tid; e < BM * BK; e += threads) {
            // consecutive threads walk k: consecutive addresses of a row of X
            uint kk = e % BK, mm = e / BK;
            uint m = m0 + mm, k = k0 + kk;
            As[kk][mm] = (m < p.M && k < p.K) ? float(x[xb + m * p.ldx + k]) : 0.0;
        }
        for (uint e = tid; e < BN * BK; e += threads) {
            uint kk, nn;
            if (LAYOUT_NN == 0) { kk = e % BK; nn = e / BK; }  // W[n, k]: walk k
            else { nn = e % BN; kk = e / BN; }                  // W[k, n]: walk n
            uint n = n0 + nn, k = k0 + kk;
            // Convert before choosing: selecting between 16-bit values would
            // need shaderFloat16, which 16-bit storage alone does not give.
            float v = 0.0;
            if (n < p.N && k < p.K) {
                if (LAYOUT_NN == 0) v = float(w[wb + n * p.ldw + k]);
                else v = float(w[wb + k * p.ldw + n]);
            }
            Ws[kk][nn] = v;
        }
        barrier();
        for (uint kk = 0; kk < BK; kk++) {
            float a[TM], bw[TN];
            for (uint i = 0; i < TM; i++) a[i] = As[kk][ty * TM + i];
            for (uint j = 0; j < TN; j++) bw[j] = Ws[kk][tx * TN + j];
            for (uint i = 0; i < TM; i++)
                for (uint j = 0; j < TN; j++) acc[i][j] += a[i] * bw[j];
        }
        barrier();
    }
    for (uint i = 0; i < TM; i++)
        for (uint j = 0; j < TN; j++) store1(b, m0 + ty * TM + i, n0 + tx * TN + j, acc[i][j]);
}
