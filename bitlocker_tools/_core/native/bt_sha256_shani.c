/* SHA-256 with the x86 SHA extensions: a generic compression function and the stretch kernels
 * (one chain: latency bound; several chains interleaved or software-pipelined: throughput bound).
 */
#include "bt_common.h"

#if BT_X86

#define TGT_SHA BT_TARGET("sha,sse4.1")
#define TGT_SHA_VL BT_TARGET("sha,sse4.1,avx512f,avx512vl")

#define KVEC(i) _mm_loadu_si128((const __m128i *)(bt_sha256_k + 4 * (i)))

/* IV as the (ABEF, CDGH) register pair used by sha256rnds2 */
#define SHANI_LOAD_IV(iv0, iv1)                                                                    \
    do {                                                                                       \
        __m128i abcd_ = _mm_loadu_si128((const __m128i *)bt_sha256_iv);                        \
        __m128i efgh_ = _mm_loadu_si128((const __m128i *)(bt_sha256_iv + 4));                  \
        abcd_ = _mm_shuffle_epi32(abcd_, 0xB1);                                                \
        efgh_ = _mm_shuffle_epi32(efgh_, 0x1B);                                                \
        iv0 = _mm_alignr_epi8(abcd_, efgh_, 8);                                                \
        iv1 = _mm_blend_epi16(efgh_, abcd_, 0xF0);                                             \
    } while (0)

/* next 4 schedule words into x[i&3] (i >= 4) */
#define SCHED4(x, i)                                                                               \
    (x)[(i)&3] = _mm_sha256msg2_epu32(                                                         \
        _mm_add_epi32(_mm_sha256msg1_epu32((x)[(i)&3], (x)[((i) + 1) & 3]),                    \
                      _mm_alignr_epi8((x)[((i) + 3) & 3], (x)[((i) + 2) & 3], 4)),             \
        (x)[((i) + 3) & 3])

/* the shared schedule (+K) of block 2 for one count: lo[i] rounds 4i,4i+1, hi[i] 4i+2,4i+3 */
#define SHANI_B2_SCHEDULE(lo, hi, salt0, cnt)                                                      \
    do {                                                                                       \
        __m128i x_[4];                                                                         \
        int i_;                                                                                \
        x_[0] = (salt0);                                                                       \
        x_[1] = _mm_set_epi32(0, (int)0x80000000u, (int)bt_bswap32((uint32_t)((cnt) >> 32)),   \
                              (int)bt_bswap32((uint32_t)(cnt)));                               \
        x_[2] = _mm_setzero_si128();                                                           \
        x_[3] = _mm_set_epi32(88 * 8, 0, 0, 0);                                                \
        BT_UNROLL(16)                                                                          \
        for (i_ = 0; i_ < 16; i_++) {                                                          \
            if (i_ >= 4)                                                                       \
                SCHED4(x_, i_);                                                                \
            (lo)[i_] = _mm_add_epi32(x_[i_ & 3], KVEC(i_));                                    \
            (hi)[i_] = _mm_shuffle_epi32((lo)[i_], 0x0E);                                      \
        }                                                                                      \
    } while (0)

#define B1_INIT(N, S0, S1, X, M0, M1, C2, C3)                                                      \
    do {                                                                                       \
        int j_;                                                                                \
        BT_UNROLL(8)                                                                           \
        for (j_ = 0; j_ < (N); j_++) {                                                         \
            S0[j_] = iv0;                                                                      \
            S1[j_] = iv1;                                                                      \
            X[0][j_] = M0[j_];                                                                 \
            X[1][j_] = M1[j_];                                                                 \
            X[2][j_] = C2[j_];                                                                 \
            X[3][j_] = C3[j_];                                                                 \
        }                                                                                      \
    } while (0)

#define B1_STEP(i, N, S0, S1, X)                                                                   \
    do {                                                                                       \
        int j_;                                                                                \
        BT_UNROLL(8)                                                                           \
        for (j_ = 0; j_ < (N); j_++) {                                                         \
            __m128i m_;                                                                        \
            if ((i) >= 4)                                                                      \
                X[(i)&3][j_] = _mm_sha256msg2_epu32(                                           \
                    _mm_add_epi32(_mm_sha256msg1_epu32(X[(i)&3][j_], X[((i) + 1) & 3][j_]),    \
                                  _mm_alignr_epi8(X[((i) + 3) & 3][j_], X[((i) + 2) & 3][j_], 4)), \
                    X[((i) + 3) & 3][j_]);                                                     \
            m_ = _mm_add_epi32(X[(i)&3][j_], KVEC(i));                                         \
            S1[j_] = _mm_sha256rnds2_epu32(S1[j_], S0[j_], m_);                                \
            m_ = _mm_shuffle_epi32(m_, 0x0E);                                                  \
            S0[j_] = _mm_sha256rnds2_epu32(S0[j_], S1[j_], m_);                                \
        }                                                                                      \
    } while (0)

#define B1_FINISH(N, S0, S1, T0, T1)                                                               \
    do {                                                                                       \
        int j_;                                                                                \
        BT_UNROLL(8)                                                                           \
        for (j_ = 0; j_ < (N); j_++) {                                                         \
            S0[j_] = _mm_add_epi32(S0[j_], iv0);                                               \
            S1[j_] = _mm_add_epi32(S1[j_], iv1);                                               \
            T0[j_] = S0[j_];                                                                   \
            T1[j_] = S1[j_];                                                                   \
        }                                                                                      \
    } while (0)

#define B2_STEP(i, N, S0, S1, lo, hi)                                                              \
    do {                                                                                       \
        int j_;                                                                                \
        BT_UNROLL(8)                                                                           \
        for (j_ = 0; j_ < (N); j_++) {                                                         \
            S1[j_] = _mm_sha256rnds2_epu32(S1[j_], S0[j_], (lo)[i]);                           \
            S0[j_] = _mm_sha256rnds2_epu32(S0[j_], S1[j_], (hi)[i]);                           \
        }                                                                                      \
    } while (0)

/* feed-forward, then the digest (ABCD, EFGH) becomes the next message words 0..7 */
#define B2_FINISH(N, S0, S1, T0, T1, M0, M1)                                                       \
    do {                                                                                       \
        int j_;                                                                                \
        BT_UNROLL(8)                                                                           \
        for (j_ = 0; j_ < (N); j_++) {                                                         \
            __m128i s0_ = _mm_add_epi32(S0[j_], T0[j_]);                                       \
            __m128i s1_ = _mm_add_epi32(S1[j_], T1[j_]);                                       \
            M0[j_] = _mm_shuffle_epi32(_mm_unpackhi_epi64(s1_, s0_), 0x1B);                    \
            M1[j_] = _mm_shuffle_epi32(_mm_unpacklo_epi64(s1_, s0_), 0x1B);                    \
        }                                                                                      \
    } while (0)

/* ---- kernels ------------------------------------------------------------------------------- */
#define KNAME shani_k1
#define KNA 1
#define KNB 0
#define KTGT TGT_SHA
#include "bt_shani_kernel.h"
#define KNAME shani_k2
#define KNA 2
#define KNB 0
#define KTGT TGT_SHA
#include "bt_shani_kernel.h"
#define KNAME shani_k3
#define KNA 3
#define KNB 0
#define KTGT TGT_SHA
#include "bt_shani_kernel.h"
#define KNAME shani_p22
#define KNA 2
#define KNB 2
#define KTGT TGT_SHA
#include "bt_shani_kernel.h"
#define KNAME shani_p33
#define KNA 3
#define KNB 3
#define KTGT TGT_SHA
#include "bt_shani_kernel.h"
#define KNAME shani_k3_vl
#define KNA 3
#define KNB 0
#define KTGT TGT_SHA_VL
#include "bt_shani_kernel.h"
#define KNAME shani_p22_vl
#define KNA 2
#define KNB 2
#define KTGT TGT_SHA_VL
#include "bt_shani_kernel.h"
#define KNAME shani_p33_vl
#define KNA 3
#define KNB 3
#define KTGT TGT_SHA_VL
#include "bt_shani_kernel.h"

typedef void (*shani_kernel_fn)(const uint32_t *, const uint32_t *, uint64_t, uint32_t *);

/* Kernel table for benchmarking: id -> (function, number of candidates, needs AVX-512VL). */
static const struct {
    int id;
    shani_kernel_fn fn;
    int lanes;
    int vl;
} shani_kernels[] = {
    {1, shani_k1, 1, 0},       {2, shani_k2, 2, 0},         {3, shani_k3, 3, 0},
    {22, shani_p22, 4, 0},     {33, shani_p33, 6, 0},       {103, shani_k3_vl, 3, 1},
    {122, shani_p22_vl, 4, 1}, {133, shani_p33_vl, 6, 1},
};

/* Returns the number of candidates the kernel takes (0: unknown / unavailable). When init_w is
 * NULL only the size is returned. */
int bt_shani_kernel_lanes(int kernel)
{
    size_t i;
    for (i = 0; i < sizeof shani_kernels / sizeof shani_kernels[0]; i++)
        if (shani_kernels[i].id == kernel) {
            if (!bt_cpu.sha_ni || (shani_kernels[i].vl && !bt_cpu.avx512))
                return 0;
            return shani_kernels[i].lanes;
        }
    return 0;
}

void bt_stretch_shani_kernel(int kernel, const uint32_t *init_w, const uint32_t salt_w[4],
                             uint64_t rounds, uint32_t *out_w)
{
    size_t i;
    for (i = 0; i < sizeof shani_kernels / sizeof shani_kernels[0]; i++)
        if (shani_kernels[i].id == kernel) {
            shani_kernels[i].fn(init_w, salt_w, rounds, out_w);
            return;
        }
}

/* Generic compression (used for hashing arbitrary messages). */
TGT_SHA void bt_sha256_compress_shani(uint32_t state[8], const uint8_t block[64])
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i s0, s1, t0, t1, x[4], abcd, efgh;
    int i;
    abcd = _mm_loadu_si128((const __m128i *)state);
    efgh = _mm_loadu_si128((const __m128i *)(state + 4));
    abcd = _mm_shuffle_epi32(abcd, 0xB1);
    efgh = _mm_shuffle_epi32(efgh, 0x1B);
    s0 = _mm_alignr_epi8(abcd, efgh, 8);
    s1 = _mm_blend_epi16(efgh, abcd, 0xF0);
    t0 = s0;
    t1 = s1;
    for (i = 0; i < 4; i++)
        x[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * i)), bswap);
    BT_UNROLL(16)
    for (i = 0; i < 16; i++) {
        __m128i m;
        if (i >= 4)
            SCHED4(x, i);
        m = _mm_add_epi32(x[i & 3], KVEC(i));
        s1 = _mm_sha256rnds2_epu32(s1, s0, m);
        m = _mm_shuffle_epi32(m, 0x0E);
        s0 = _mm_sha256rnds2_epu32(s0, s1, m);
    }
    s0 = _mm_add_epi32(s0, t0);
    s1 = _mm_add_epi32(s1, t1);
    _mm_storeu_si128((__m128i *)state, _mm_shuffle_epi32(_mm_unpackhi_epi64(s1, s0), 0x1B));
    _mm_storeu_si128((__m128i *)(state + 4), _mm_shuffle_epi32(_mm_unpacklo_epi64(s1, s0), 0x1B));
}

#endif /* BT_X86 */
