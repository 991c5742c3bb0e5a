/* Host-side helpers: half-precision conversion against the compiler's, hashing. */
#include "common.h"

#include <math.h>
#include <string.h>

Test(base, f16_round_trips_every_half)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = base_f16_to_f32((uint16_t)h);
        uint16_t back = base_f32_to_f16(f);
        if (isnan(f))
            cr_assert(((back >> 10) & 0x1f) == 0x1f && (back & 0x3ff), "NaN %04x lost", h);
        else
            cr_assert_eq(back, h, "half %04x -> %g -> %04x", h, (double)f, back);
    }
}

#ifdef __FLT16_MAX__
Test(base, f16_rounding_matches_the_compiler)
{
    uint64_t rng = 42;
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = (uint32_t)trand_u64(&rng);
        float f;
        memcpy(&f, &bits, 4);
        if (isnan(f)) continue;
        _Float16 want = (_Float16)f;
        uint16_t w;
        memcpy(&w, &want, 2);
        cr_assert_eq(base_f32_to_f16(f), w, "%a: got %04x want %04x", (double)f, base_f32_to_f16(f), w);
    }
    /* Ties, subnormal edges and overflow. */
    const float edge[] = {65504.0f, 65519.99f, 65520.0f, 5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f,
                          6.097555e-05f, 6.1035156e-05f, 1.0009766f, 1.00146484375f, -0.0f, INFINITY};
    for (size_t i = 0; i < BASE_ARRAY_LEN(edge); i++) {
        _Float16 want = (_Float16)edge[i];
        uint16_t w;
        memcpy(&w, &want, 2);
        cr_assert_eq(base_f32_to_f16(edge[i]), w, "%a", (double)edge[i]);
    }
}
#endif

Test(base, bf16_widens_exactly)
{
    cr_assert_eq(base_bf16_to_f32(0x3f80), 1.0f);
    cr_assert_eq(base_bf16_to_f32(0xc040), -3.0f);
}

Test(base, hash_and_bool_parsing)
{
    cr_assert_neq(base_hash64("a", 1, BASE_HASH_SEED), base_hash64("b", 1, BASE_HASH_SEED));
    cr_assert_eq(base_hash64("", 0, BASE_HASH_SEED), BASE_HASH_SEED);
    cr_assert_eq(base_parse_bool("ON", -1), 1);
    cr_assert_eq(base_parse_bool("off", -1), 0);
    cr_assert_eq(base_parse_bool("/some/path", -1), -1);
    cr_assert_eq(base_parse_bool(NULL, 7), 7);
}
