/* SHA-256 stretch with one candidate per SIMD lane: AVX2 (8 lanes), AVX-512 (16 lanes on zmm,
 * plus an 8-lane AVX-512VL ymm kernel for small remainders). For CPUs without SHA-NI, and on
 * CPUs whose sha256rnds2 has low throughput the 16-lane kernel can beat SHA-NI. */
#include "bt_common.h"

#if BT_X86

/* ---- AVX2, 8 lanes --------------------------------------------------------------------------- */
#define VADD(a, b) _mm256_add_epi32(a, b)
#define VXOR(a, b) _mm256_xor_si256(a, b)
#define VAND(a, b) _mm256_and_si256(a, b)
#define VOR(a, b) _mm256_or_si256(a, b)
#define VSRL(a, n) _mm256_srli_epi32(a, n)
#define VSLL(a, n) _mm256_slli_epi32(a, n)
#define VSET1(x) _mm256_set1_epi32((int)(x))
#define VLOAD(p) _mm256_load_si256((const __m256i *)(p))
#define VSTORE(p, v) _mm256_store_si256((__m256i *)(p), v)
#define VROTR(x, n) VOR(VSRL(x, n), VSLL(x, 32 - (n)))
#define VXOR3(a, b, c) VXOR(VXOR(a, b), c)
#define VCH(e, f, g) VXOR(VAND(VXOR(f, g), e), g)

#define LNAME lanes_avx2_8
#define LV __m256i
#define LL 8
#define LTGT BT_TARGET("avx2")
#include "bt_lanes_kernel.h"

#undef VADD
#undef VXOR
#undef VAND
#undef VOR
#undef VSRL
#undef VSLL
#undef VSET1
#undef VLOAD
#undef VSTORE
#undef VROTR
#undef VXOR3
#undef VCH

/* ---- AVX-512VL on ymm, 8 lanes ------------------------------------------------------------------ */
#define LTERNLOG 1
#define VADD(a, b) _mm256_add_epi32(a, b)
#define VXOR(a, b) _mm256_xor_si256(a, b)
#define VAND(a, b) _mm256_and_si256(a, b)
#define VOR(a, b) _mm256_or_si256(a, b)
#define VSRL(a, n) _mm256_srli_epi32(a, n)
#define VSLL(a, n) _mm256_slli_epi32(a, n)
#define VSET1(x) _mm256_set1_epi32((int)(x))
#define VLOAD(p) _mm256_load_si256((const __m256i *)(p))
#define VSTORE(p, v) _mm256_store_si256((__m256i *)(p), v)
#define VROTR(x, n) _mm256_ror_epi32(x, n)
#define VXOR3(a, b, c) _mm256_ternarylogic_epi32(a, b, c, 0x96)
#define VCH(e, f, g) _mm256_ternarylogic_epi32(e, f, g, 0xCA)
#define VMAJ(a, b, c) _mm256_ternarylogic_epi32(a, b, c, 0xE8)

#define LNAME lanes_avx512vl_8
#define LV __m256i
#define LL 8
#define LTGT BT_TARGET("avx2,avx512f,avx512vl")
#include "bt_lanes_kernel.h"

#undef VADD
#undef VXOR
#undef VAND
#undef VOR
#undef VSRL
#undef VSLL
#undef VSET1
#undef VLOAD
#undef VSTORE
#undef VROTR
#undef VXOR3
#undef VCH
#undef VMAJ

/* ---- AVX-512F on zmm, 16 lanes ----------------------------------------------------------------- */
#define VADD(a, b) _mm512_add_epi32(a, b)
#define VXOR(a, b) _mm512_xor_si512(a, b)
#define VAND(a, b) _mm512_and_si512(a, b)
#define VOR(a, b) _mm512_or_si512(a, b)
#define VSRL(a, n) _mm512_srli_epi32(a, n)
#define VSLL(a, n) _mm512_slli_epi32(a, n)
#define VSET1(x) _mm512_set1_epi32((int)(x))
#define VLOAD(p) _mm512_load_si512((const void *)(p))
#define VSTORE(p, v) _mm512_store_si512((void *)(p), v)
#define VROTR(x, n) _mm512_ror_epi32(x, n)
#define VXOR3(a, b, c) _mm512_ternarylogic_epi32(a, b, c, 0x96)
#define VCH(e, f, g) _mm512_ternarylogic_epi32(e, f, g, 0xCA)
#define VMAJ(a, b, c) _mm512_ternarylogic_epi32(a, b, c, 0xE8)

#define LNAME lanes_avx512_16
#define LV __m512i
#define LL 16
#define LTGT BT_TARGET("avx2,avx512f,avx512vl")
#include "bt_lanes_kernel.h"

/* Exactly 8 / 8 / 16 candidates per call. */
void bt_lanes_avx2_8(const uint32_t *init_w, const uint32_t salt_w[4], uint64_t rounds,
                     uint32_t *out_w)
{
    lanes_avx2_8(init_w, salt_w, rounds, out_w);
}

void bt_lanes_avx512vl_8(const uint32_t *init_w, const uint32_t salt_w[4], uint64_t rounds,
                         uint32_t *out_w)
{
    lanes_avx512vl_8(init_w, salt_w, rounds, out_w);
}

void bt_lanes_avx512_16(const uint32_t *init_w, const uint32_t salt_w[4], uint64_t rounds,
                        uint32_t *out_w)
{
    lanes_avx512_16(init_w, salt_w, rounds, out_w);
}

#endif /* BT_X86 */
