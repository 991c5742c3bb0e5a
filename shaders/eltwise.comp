#version 450
// Elementwise ops over n values, 4 per invocation when VEC4 (lavapipe turns a
// storage load into a per-lane loop; vec4 loads cut that ~4x).
//   y = fill(value) | a + b | a * b | act(a) | a * value
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

VKF_LOCAL_SIZE;
layout(constant_id = 3) const uint OP = 0;
layout(constant_id = 4) const uint ACT = 0;

#define OP_FILL 0
#define OP_ADD 1
#define OP_MUL 2
#define OP_ACT 3
#define OP_SCALE 4

layout(push_constant) uniform Push {
    uint n;      // elements (VEC4: groups of 4)
    float value;
} p;

#ifdef VEC4
#define T STYPE4
#define F vec4
#else
#define T STYPE
#define F float
#endif

layout(binding = 0) readonly buffer A { T a[]; };
layout(binding = 1) readonly buffer B { T b[]; };
layout(binding = 2) writeonly buffer Y { T y[]; };

F apply(F x) {
#ifdef VEC4
    return vkf_act4(ACT, x);
#else
    return vkf_act(ACT, x);
#endif
}

void main()
{
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        F r;
        if (OP == OP_FILL) r = F(p.value);
        else if (OP == OP_ADD) r = F(a[i]) + F(b[i]);
        else if (OP == OP_MUL) r = F(a[i]) * F(b[i]);
        else if (OP == OP_ACT) r = apply(F(a[i]));
        else r = F(a[i]) * p.value;
        y[i] = T(r);
    }
}
