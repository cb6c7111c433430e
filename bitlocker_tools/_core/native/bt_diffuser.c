/* Elephant diffuser (BitLocker methods 0x8000/0x8001), per sector, without any `%`.
 *
 * n = sector/4 little-endian u32 words, indices mod n, rotl = 32-bit rotate left:
 *   A decrypt: 5 passes, i = 0..n-1:   d[i] += d[i-2] ^ rotl(d[i-5], Ra[i%4]), Ra = (9, 0, 13, 0)
 *   B decrypt: 3 passes, i = 0..n-1:   d[i] += d[i+2] ^ rotl(d[i+5], Rb[i%4]), Rb = (0, 10, 0, 25)
 *   encrypt: the same with -= and i = n-1..0.
 * Each pass is split into the part with wrapped indices (written out word by word) and a main
 * loop over groups of 4 words (fixed rotations). In the passes with a dependency chain (A
 * decrypt, B encrypt) the last five words are carried in registers. Needs n >= 8, n % 4 == 0.
 */
#include "bt_common.h"

#define ROTL(x, r) (((x) << (r)) | ((x) >> (32 - (r))))

static inline uint32_t ld(const uint8_t *s, size_t i)
{
    uint32_t v;
    memcpy(&v, s + 4 * i, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = bt_bswap32(v);
#endif
    return v;
}

static inline void st(uint8_t *s, size_t i, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = bt_bswap32(v);
#endif
    memcpy(s + 4 * i, &v, 4);
}

/* one sector, scalar words */
#define DW uint32_t
#define DBUF uint8_t *
#define D(i) ld(s, i)
#define SET(i, v) st(s, i, v)
#define DNAME(x) x
#define DTGT
#include "bt_diffuser_passes.h"

void bt_diffuser_a_decrypt(uint8_t *sector, size_t nw)
{
    int k;
    for (k = 0; k < 5; k++)
        a_decrypt_pass(sector, nw);
}

void bt_diffuser_a_encrypt(uint8_t *sector, size_t nw)
{
    int k;
    for (k = 0; k < 5; k++)
        a_encrypt_pass(sector, nw);
}

void bt_diffuser_b_decrypt(uint8_t *sector, size_t nw)
{
    int k;
    for (k = 0; k < 3; k++)
        b_decrypt_pass(sector, nw);
}

void bt_diffuser_b_encrypt(uint8_t *sector, size_t nw)
{
    int k;
    for (k = 0; k < 3; k++)
        b_encrypt_pass(sector, nw);
}

/* ---- eight sectors at once (AVX2) -----------------------------------------------------------
 * Within a sector every word waits for one just updated, so one sector runs at ~4 cycles per
 * word step. Eight sectors transposed into the lanes of a ymm vector (lane s = sector s, vector
 * i = word i of all eight) take the same steps for all eight: the passes above, instantiated on
 * a vector type, plus two 8x8 transposes per 32 bytes of each sector. */
#if BT_X86 && (defined(__GNUC__) || defined(__clang__))
typedef uint32_t bt_v8u __attribute__((vector_size(32), aligned(32)));

#define DW bt_v8u
#define DBUF bt_v8u *
#define D(i) (s[i])
#define SET(i, v) (s[i] = (v))
#define DNAME(x) x##_v8
#define DTGT BT_TARGET("avx2")
#include "bt_diffuser_passes.h"

/* r[k] <- column k of the 8x8 matrix of u32 whose rows are r[0..7] (its own inverse). */
BT_TARGET("avx2") static inline void transpose8(__m256i r[8])
{
    __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* sectors (8 of ss bytes at sec, each first XORed with its 32-byte key when keys) -> lanes */
BT_TARGET("avx2") static void to_lanes(const uint8_t *sec, size_t ss, const uint8_t (*keys)[32],
                                      bt_v8u *w)
{
    size_t b, s;
    for (b = 0; b < ss; b += 32) {
        __m256i r[8];
        for (s = 0; s < 8; s++) {
            r[s] = _mm256_loadu_si256((const __m256i *)(sec + s * ss + b));
            if (keys)
                r[s] = _mm256_xor_si256(r[s], _mm256_loadu_si256((const __m256i *)keys[s]));
        }
        transpose8(r);
        for (s = 0; s < 8; s++)
            _mm256_store_si256((__m256i *)&w[b / 4 + s], r[s]);
    }
}

/* lanes -> sectors (each XORed with its key when keys) */
BT_TARGET("avx2") static void from_lanes(const bt_v8u *w, size_t ss, const uint8_t (*keys)[32],
                                        uint8_t *sec)
{
    size_t b, s;
    for (b = 0; b < ss; b += 32) {
        __m256i r[8];
        for (s = 0; s < 8; s++)
            r[s] = _mm256_load_si256((const __m256i *)&w[b / 4 + s]);
        transpose8(r);
        for (s = 0; s < 8; s++) {
            if (keys)
                r[s] = _mm256_xor_si256(r[s], _mm256_loadu_si256((const __m256i *)keys[s]));
            _mm256_storeu_si256((__m256i *)(sec + s * ss + b), r[s]);
        }
    }
}

BT_TARGET("avx2") void bt_diffuser8_avx2(uint8_t *sec, size_t ss, const uint8_t keys[8][32], int decrypt)
{
    BT_ALIGN(32) bt_v8u w[BT_MAX_SECTOR / 4];
    size_t nw = ss / 4;
    int k;
    if (decrypt) {
        to_lanes(sec, ss, NULL, w);
        for (k = 0; k < 3; k++)
            b_decrypt_pass_v8(w, nw);
        for (k = 0; k < 5; k++)
            a_decrypt_pass_v8(w, nw);
        from_lanes(w, ss, keys, sec);
    } else {
        to_lanes(sec, ss, keys, w);
        for (k = 0; k < 5; k++)
            a_encrypt_pass_v8(w, nw);
        for (k = 0; k < 3; k++)
            b_encrypt_pass_v8(w, nw);
        from_lanes(w, ss, NULL, sec);
    }
    bt_wipe(w, nw * sizeof w[0]);
    _mm256_zeroupper();
}
#endif
