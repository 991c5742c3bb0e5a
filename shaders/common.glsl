// Shared by every kernel: storage type selection and activation functions.
// Build variants: STORAGE_F16 stores tensors as IEEE half (fp32 math throughout).
#ifndef VKF_COMMON_GLSL
#define VKF_COMMON_GLSL

#ifdef STORAGE_F16
#extension GL_EXT_shader_16bit_storage : require
#define STYPE float16_t
#define STYPE2 f16vec2
#define STYPE4 f16vec4
#else
#define STYPE float
#define STYPE2 vec2
#define STYPE4 vec4
#endif

// Workgroup size comes from specialization constants 0..2 in every kernel.
#define VKF_LOCAL_SIZE layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in

// Every dispatch sets constant 15 from the device: 1 on CPU drivers, where
// GLSL exp() becomes a per-lane libm call (~23 instructions per element on
// lavapipe), so vkf_exp uses a vectorisable polynomial instead. GPUs keep
// their native exp.
layout(constant_id = 15) const uint VKF_POLY_EXP = 0;

// exp(x) = 2^i * 2^f, f in [0, 1): degree-5 fit of 2^f, relative error < 1.6e-7.
// Underflows to exactly 0 below e^-87. One body for float and vec4.
#define VKF_EXP_POLY(T, IT, x)                                                                   \
    T y = clamp(x * 1.4426950408889634, -127.0, 127.0);                                          \
    T i = floor(y), f = y - i;                                                                   \
    T p = ((((0.0018762329 * f + 0.0089925844) * f + 0.0558236055) * f + 0.2401545346) * f +    \
           0.6931529641) * f + 0.9999999404;                                                     \
    T r = intBitsToFloat((IT(i) + 127) << 23) * p;                                               \
    return mix(r, T(0.0), lessThanEqualT(y, T(-126.0)))

bool lessThanEqualT(float a, float b) { return a <= b; }
bvec4 lessThanEqualT(vec4 a, vec4 b) { return lessThanEqual(a, b); }

float vkf_exp(float x)
{
    if (VKF_POLY_EXP == 0) return exp(x);
    VKF_EXP_POLY(float, int, x);
}

vec4 vkf_exp(vec4 x)
{
    if (VKF_POLY_EXP == 0) return exp(x);
    VKF_EXP_POLY(vec4, ivec4, x);
}

// erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev fit): GLSL has none.
float vkf_erf(float x)
{
    float z = abs(x);
    float t = 1.0 / (1.0 + 0.5 * z);
    float r = t * vkf_exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
              t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
              t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0.0 ? 1.0 - r : r - 1.0;
}

// tanh that saturates instead of returning inf/inf = NaN on drivers that
// expand it as (e^2x - 1) / (e^2x + 1).
float vkf_tanh(float x)
{
    float c = clamp(x, -15.0, 15.0);
    float e = vkf_exp(2.0 * c);
    return (e - 1.0) / (e + 1.0);
}

float vkf_gelu_erf(float x) { return 0.5 * x * (1.0 + vkf_erf(x * 0.70710678118654752)); }

// HF "gelu_new" / "gelu_pytorch_tanh"
float vkf_gelu_tanh(float x)
{
    return 0.5 * x * (1.0 + vkf_tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)));
}

// CLIP's quick_gelu: x * sigmoid(1.702 x)
float vkf_quick_gelu(float x) { return x / (1.0 + vkf_exp(-1.702 * x)); }

#define ACT_NONE 0
#define ACT_GELU 1
#define ACT_GELU_TANH 2
#define ACT_QUICK_GELU 3
#define ACT_TANH 4
#define ACT_RELU 5
#define ACT_SILU 6

// HF "silu" / "swish" (Marian): x * sigmoid(x)
float vkf_silu(float x) { return x / (1.0 + vkf_exp(-x)); }

float vkf_act(uint act, float x)
{
    switch (act) {
    case ACT_GELU: return vkf_gelu_erf(x);
    case ACT_GELU_TANH: return vkf_gelu_tanh(x);
    case ACT_QUICK_GELU: return vkf_quick_gelu(x);
    case ACT_TANH: return vkf_tanh(x);
    case ACT_RELU: return max(x, 0.0);
    case ACT_SILU: return vkf_silu(x);
    default: return x;
    }
}

vec4 vkf_act4(uint act, vec4 v)
{
    return vec4(vkf_act(act, v.x), vkf_act(act, v.y), vkf_act(act, v.z), vkf_act(act, v.w));
}

#endif
