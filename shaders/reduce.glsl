// Workgroup-wide sum and max. With subgroup arithmetic: subgroupAdd/Max then
// one shared slot per subgroup (correct for whatever subgroup size the driver
// really runs). Built with NO_SUBGROUP: a shared-memory tree, for devices
// without subgroup arithmetic in compute.
#ifndef VKF_REDUCE_GLSL
#define VKF_REDUCE_GLSL

#ifndef NO_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

// Include this after the kernel's VKF_LOCAL_SIZE: before it, gl_WorkGroupSize
// is still the default (1, 1, 1) and the functions below would use that.
// The array has a fixed bound; row kernels use at most 256 invocations
// (op_row_workgroup).
#define REDUCE_MAX_WG 256
shared float reduce_tmp[REDUCE_MAX_WG];

#ifndef NO_SUBGROUP
float wg_sum(float v)
{
    v = subgroupAdd(v);
    if (gl_WorkGroupSize.x <= gl_SubgroupSize) return v; // one subgroup: done, no barrier
    if (subgroupElect()) reduce_tmp[gl_SubgroupID] = v;
    barrier();
    float t = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) t += reduce_tmp[i];
    barrier();
    return t;
}

float wg_max(float v)
{
    v = subgroupMax(v);
    if (gl_WorkGroupSize.x <= gl_SubgroupSize) return v;
    if (subgroupElect()) reduce_tmp[gl_SubgroupID] = v;
    barrier();
    float t = reduce_tmp[0];
    for (uint i = 1; i < gl_NumSubgroups; i++) t = max(t, reduce_tmp[i]);
    barrier();
    return t;
}
#else
float wg_sum(float v)
{
    uint t = gl_LocalInvocationID.x;
    reduce_tmp[t] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (t < s) reduce_tmp[t] += reduce_tmp[t + s];
        barrier();
    }
    float r = reduce_tmp[0];
    barrier();
    return r;
}

float wg_max(float v)
{
    uint t = gl_LocalInvocationID.x;
    reduce_tmp[t] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (t < s) reduce_tmp[t] = max(reduce_tmp[t], reduce_tmp[t + s]);
        barrier();
    }
    float r = reduce_tmp[0];
    barrier();
    return r;
}
#endif

#endif
