/* AES and BitLocker's sector modes: AES-CBC with the offset IV, XTS-AES, AES-CBC + Elephant.
 *
 * Two implementations: AES-NI (key expansion with aeskeygenassist, decryption keys with aesimc,
 * 8 blocks in flight) and a portable byte-wise AES (no T-tables; used on other architectures,
 * on x86-64 CPUs without AES-NI, and when forced for tests). The portable code is not constant
 * time (S-box lookups) and is slow; it exists for correctness everywhere.
 */
#include "bt_common.h"
#include <stdlib.h>

/* ---- portable AES ----------------------------------------------------------------------------- */
/* FIPS-197 S-box and its inverse (FIPS-197 figures 7 and 14), as constants: no table is built at
 * run time, so the portable AES keeps no process-wide state. The test vectors (FIPS-197 appendix C,
 * SP 800-38A) run the portable path and would catch a wrong entry. */
static const uint8_t sbox[256] = {
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
    0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
    0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
    0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
    0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
    0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
    0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
    0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
    0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
    0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
    0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
    0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
    0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
    0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
    0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
    0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
};
static const uint8_t inv_sbox[256] = {
    0x52, 0x09, 0x6a, 0xd5, 0x30, 0x36, 0xa5, 0x38, 0xbf, 0x40, 0xa3, 0x9e, 0x81, 0xf3, 0xd7, 0xfb,
    0x7c, 0xe3, 0x39, 0x82, 0x9b, 0x2f, 0xff, 0x87, 0x34, 0x8e, 0x43, 0x44, 0xc4, 0xde, 0xe9, 0xcb,
    0x54, 0x7b, 0x94, 0x32, 0xa6, 0xc2, 0x23, 0x3d, 0xee, 0x4c, 0x95, 0x0b, 0x42, 0xfa, 0xc3, 0x4e,
    0x08, 0x2e, 0xa1, 0x66, 0x28, 0xd9, 0x24, 0xb2, 0x76, 0x5b, 0xa2, 0x49, 0x6d, 0x8b, 0xd1, 0x25,
    0x72, 0xf8, 0xf6, 0x64, 0x86, 0x68, 0x98, 0x16, 0xd4, 0xa4, 0x5c, 0xcc, 0x5d, 0x65, 0xb6, 0x92,
    0x6c, 0x70, 0x48, 0x50, 0xfd, 0xed, 0xb9, 0xda, 0x5e, 0x15, 0x46, 0x57, 0xa7, 0x8d, 0x9d, 0x84,
    0x90, 0xd8, 0xab, 0x00, 0x8c, 0xbc, 0xd3, 0x0a, 0xf7, 0xe4, 0x58, 0x05, 0xb8, 0xb3, 0x45, 0x06,
    0xd0, 0x2c, 0x1e, 0x8f, 0xca, 0x3f, 0x0f, 0x02, 0xc1, 0xaf, 0xbd, 0x03, 0x01, 0x13, 0x8a, 0x6b,
    0x3a, 0x91, 0x11, 0x41, 0x4f, 0x67, 0xdc, 0xea, 0x97, 0xf2, 0xcf, 0xce, 0xf0, 0xb4, 0xe6, 0x73,
    0x96, 0xac, 0x74, 0x22, 0xe7, 0xad, 0x35, 0x85, 0xe2, 0xf9, 0x37, 0xe8, 0x1c, 0x75, 0xdf, 0x6e,
    0x47, 0xf1, 0x1a, 0x71, 0x1d, 0x29, 0xc5, 0x89, 0x6f, 0xb7, 0x62, 0x0e, 0xaa, 0x18, 0xbe, 0x1b,
    0xfc, 0x56, 0x3e, 0x4b, 0xc6, 0xd2, 0x79, 0x20, 0x9a, 0xdb, 0xc0, 0xfe, 0x78, 0xcd, 0x5a, 0xf4,
    0x1f, 0xdd, 0xa8, 0x33, 0x88, 0x07, 0xc7, 0x31, 0xb1, 0x12, 0x10, 0x59, 0x27, 0x80, 0xec, 0x5f,
    0x60, 0x51, 0x7f, 0xa9, 0x19, 0xb5, 0x4a, 0x0d, 0x2d, 0xe5, 0x7a, 0x9f, 0x93, 0xc9, 0x9c, 0xef,
    0xa0, 0xe0, 0x3b, 0x4d, 0xae, 0x2a, 0xf5, 0xb0, 0xc8, 0xeb, 0xbb, 0x3c, 0x83, 0x53, 0x99, 0x61,
    0x17, 0x2b, 0x04, 0x7e, 0xba, 0x77, 0xd6, 0x26, 0xe1, 0x69, 0x14, 0x63, 0x55, 0x21, 0x0c, 0x7d,
};

static uint8_t gmul(uint8_t a, uint8_t b)
{
    uint8_t p = 0;
    while (b) {
        if (b & 1)
            p ^= a;
        a = (uint8_t)((a << 1) ^ ((a & 0x80) ? 0x1b : 0));
        b >>= 1;
    }
    return p;
}

static void expand_portable(uint8_t *rk, const uint8_t *key, int nk, int nr)
{
    int i, total = 4 * (nr + 1);
    uint8_t rcon = 1;
    memcpy(rk, key, 4 * (size_t)nk);
    for (i = nk; i < total; i++) {
        uint8_t t[4];
        memcpy(t, rk + 4 * (i - 1), 4);
        if (i % nk == 0) {
            uint8_t u = t[0];
            t[0] = (uint8_t)(sbox[t[1]] ^ rcon);
            t[1] = sbox[t[2]];
            t[2] = sbox[t[3]];
            t[3] = sbox[u];
            rcon = (uint8_t)((rcon << 1) ^ ((rcon & 0x80) ? 0x1b : 0));
        } else if (nk > 6 && i % nk == 4) {
            t[0] = sbox[t[0]];
            t[1] = sbox[t[1]];
            t[2] = sbox[t[2]];
            t[3] = sbox[t[3]];
        }
        rk[4 * i + 0] = rk[4 * (i - nk) + 0] ^ t[0];
        rk[4 * i + 1] = rk[4 * (i - nk) + 1] ^ t[1];
        rk[4 * i + 2] = rk[4 * (i - nk) + 2] ^ t[2];
        rk[4 * i + 3] = rk[4 * (i - nk) + 3] ^ t[3];
    }
}

#define XT(x) ((uint8_t)(((x) << 1) ^ (((x)&0x80) ? 0x1b : 0)))

static void enc_portable(const bt_aes_key *k, const uint8_t in[16], uint8_t out[16])
{
    uint8_t s[16], t[16];
    int r, i, c;
    for (i = 0; i < 16; i++)
        s[i] = in[i] ^ k->rk[i];
    for (r = 1; r <= k->nr; r++) {
        /* SubBytes + ShiftRows: byte (row i, col c) comes from (row i, col c+i) */
        for (c = 0; c < 4; c++)
            for (i = 0; i < 4; i++)
                t[4 * c + i] = sbox[s[4 * ((c + i) & 3) + i]];
        if (r != k->nr) {
            for (c = 0; c < 4; c++) {
                uint8_t a0 = t[4 * c], a1 = t[4 * c + 1], a2 = t[4 * c + 2], a3 = t[4 * c + 3];
                uint8_t all = a0 ^ a1 ^ a2 ^ a3;
                s[4 * c + 0] = a0 ^ all ^ XT((uint8_t)(a0 ^ a1));
                s[4 * c + 1] = a1 ^ all ^ XT((uint8_t)(a1 ^ a2));
                s[4 * c + 2] = a2 ^ all ^ XT((uint8_t)(a2 ^ a3));
                s[4 * c + 3] = a3 ^ all ^ XT((uint8_t)(a3 ^ a0));
            }
        } else {
            memcpy(s, t, 16);
        }
        for (i = 0; i < 16; i++)
            s[i] ^= k->rk[16 * r + i];
    }
    memcpy(out, s, 16);
    bt_wipe(s, 16);
    bt_wipe(t, 16);
}

static void dec_portable(const bt_aes_key *k, const uint8_t in[16], uint8_t out[16])
{
    uint8_t s[16], t[16];
    int r, i, c;
    for (i = 0; i < 16; i++)
        s[i] = in[i] ^ k->rk[16 * k->nr + i];
    for (r = k->nr - 1; r >= 0; r--) {
        /* InvShiftRows + InvSubBytes: byte (row i, col c+i) goes back to (row i, col c) */
        for (c = 0; c < 4; c++)
            for (i = 0; i < 4; i++)
                t[4 * ((c + i) & 3) + i] = inv_sbox[s[4 * c + i]];
        for (i = 0; i < 16; i++)
            t[i] ^= k->rk[16 * r + i];
        if (r != 0) {
            for (c = 0; c < 4; c++) {
                uint8_t a0 = t[4 * c], a1 = t[4 * c + 1], a2 = t[4 * c + 2], a3 = t[4 * c + 3];
                s[4 * c + 0] = gmul(a0, 14) ^ gmul(a1, 11) ^ gmul(a2, 13) ^ gmul(a3, 9);
                s[4 * c + 1] = gmul(a0, 9) ^ gmul(a1, 14) ^ gmul(a2, 11) ^ gmul(a3, 13);
                s[4 * c + 2] = gmul(a0, 13) ^ gmul(a1, 9) ^ gmul(a2, 14) ^ gmul(a3, 11);
                s[4 * c + 3] = gmul(a0, 11) ^ gmul(a1, 13) ^ gmul(a2, 9) ^ gmul(a3, 14);
            }
        } else {
            memcpy(s, t, 16);
        }
    }
    memcpy(out, s, 16);
    bt_wipe(s, 16);
    bt_wipe(t, 16);
}

/* ---- AES-NI key schedule ------------------------------------------------------------------------- */
#if BT_X86
#define TGT_AES BT_TARGET("aes,sse4.1")

TGT_AES static inline __m128i exp128(__m128i key, __m128i kga)
{
    kga = _mm_shuffle_epi32(kga, 0xff);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, kga);
}

TGT_AES static inline __m128i exp256b(__m128i key, __m128i kga)
{
    kga = _mm_shuffle_epi32(kga, 0xaa);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, kga);
}

#define RK(k, i) (((__m128i *)(k)->rk)[i])
#define DK(k, i) (((__m128i *)(k)->dk)[i])
#define CRK(k, i) _mm_load_si128((const __m128i *)(k)->rk + (i))
#define CDK(k, i) _mm_load_si128((const __m128i *)(k)->dk + (i))

TGT_AES static void setkey_ni(bt_aes_key *k, const uint8_t *key, size_t len)
{
    int i;
    if (len == 16) {
        __m128i t = _mm_loadu_si128((const __m128i *)key);
        RK(k, 0) = t;
#define E128(i, rc) RK(k, i) = t = exp128(t, _mm_aeskeygenassist_si128(t, rc))
        E128(1, 0x01);
        E128(2, 0x02);
        E128(3, 0x04);
        E128(4, 0x08);
        E128(5, 0x10);
        E128(6, 0x20);
        E128(7, 0x40);
        E128(8, 0x80);
        E128(9, 0x1b);
        E128(10, 0x36);
#undef E128
    } else if (len == 32) {
        __m128i a = _mm_loadu_si128((const __m128i *)key);
        __m128i b = _mm_loadu_si128((const __m128i *)(key + 16));
        RK(k, 0) = a;
        RK(k, 1) = b;
#define E256(i, rc)                                                                                \
    do {                                                                                       \
        RK(k, i) = a = exp128(a, _mm_aeskeygenassist_si128(b, rc));                            \
        if ((i) + 1 < 15)                                                                      \
            RK(k, (i) + 1) = b = exp256b(b, _mm_aeskeygenassist_si128(a, 0));                  \
    } while (0)
        E256(2, 0x01);
        E256(4, 0x02);
        E256(6, 0x04);
        E256(8, 0x08);
        E256(10, 0x10);
        E256(12, 0x20);
        E256(14, 0x40);
#undef E256
    } else {
        /* AES-192: portable expansion, then the same aesimc step */
        expand_portable(k->rk, key, 6, 12);
    }
    DK(k, 0) = RK(k, k->nr);
    for (i = 1; i < k->nr; i++)
        DK(k, i) = _mm_aesimc_si128(RK(k, k->nr - i));
    DK(k, k->nr) = RK(k, 0);
}
#endif

int bt_aes_setkey(bt_aes_key *k, const uint8_t *key, size_t len, int use_ni)
{
    memset(k, 0, sizeof *k);
    if (len != 16 && len != 24 && len != 32)
        return -1;
    k->nr = len == 16 ? 10 : len == 24 ? 12 : 14;
#if BT_X86
    if (use_ni) {
        bt_clean_upper();
        k->ni = 1;
        setkey_ni(k, key, len);
        return 0;
    }
#else
    (void)use_ni;
#endif
    expand_portable(k->rk, key, (int)len / 4, k->nr);
    return 0;
}

/* ---- AES-NI block cores ----------------------------------------------------------------------- */
#if BT_X86

/* Encrypt / decrypt N blocks in b[] (N a compile-time constant after inlining). */
#define NI_ENC(b, N, k)                                                                            \
    do {                                                                                       \
        int r_, i_;                                                                            \
        __m128i k_ = CRK(k, 0);                                                                \
        BT_UNROLL(8)                                                                           \
        for (i_ = 0; i_ < (N); i_++)                                                           \
            b[i_] = _mm_xor_si128(b[i_], k_);                                                  \
        for (r_ = 1; r_ < (k)->nr; r_++) {                                                     \
            k_ = CRK(k, r_);                                                                   \
            BT_UNROLL(8)                                                                       \
            for (i_ = 0; i_ < (N); i_++)                                                       \
                b[i_] = _mm_aesenc_si128(b[i_], k_);                                           \
        }                                                                                      \
        k_ = CRK(k, r_);                                                                       \
        BT_UNROLL(8)                                                                           \
        for (i_ = 0; i_ < (N); i_++)                                                           \
            b[i_] = _mm_aesenclast_si128(b[i_], k_);                                           \
    } while (0)

#define NI_DEC(b, N, k)                                                                            \
    do {                                                                                       \
        int r_, i_;                                                                            \
        __m128i k_ = CDK(k, 0);                                                                \
        BT_UNROLL(8)                                                                           \
        for (i_ = 0; i_ < (N); i_++)                                                           \
            b[i_] = _mm_xor_si128(b[i_], k_);                                                  \
        for (r_ = 1; r_ < (k)->nr; r_++) {                                                     \
            k_ = CDK(k, r_);                                                                   \
            BT_UNROLL(8)                                                                       \
            for (i_ = 0; i_ < (N); i_++)                                                       \
                b[i_] = _mm_aesdec_si128(b[i_], k_);                                           \
        }                                                                                      \
        k_ = CDK(k, r_);                                                                       \
        BT_UNROLL(8)                                                                           \
        for (i_ = 0; i_ < (N); i_++)                                                           \
            b[i_] = _mm_aesdeclast_si128(b[i_], k_);                                           \
    } while (0)

/* The 16-byte block LE64(v) || 0^8, optionally with byte 15 = 0x80. */
#define OFFBLK(v) _mm_set_epi64x(0, (long long)(v))

/* x * alpha in GF(2^128), XTS little-endian convention */
#define XTS_MUL_ALPHA(t)                                                                           \
    _mm_xor_si128(_mm_slli_epi32(t, 1),                                                        \
                  _mm_and_si128(_mm_shuffle_epi32(_mm_srai_epi32(t, 31), 0x93),                \
                                _mm_set_epi32(1, 1, 1, 0x87)))

#define LD(p) _mm_loadu_si128((const __m128i *)(p))
#define ST(p, v) _mm_storeu_si128((__m128i *)(p), v)

TGT_AES static void ni_cbc(const bt_aes_key *k, const uint8_t *in, uint8_t *out, size_t n,
                           size_t ss, uint64_t offset, int decrypt)
{
    static const uint8_t zero_sector_dummy[16] = {0};
    size_t nb = ss / 16, s0;
    for (s0 = 0; s0 < n; s0 += 8) {
        size_t cnt = n - s0 < 8 ? n - s0 : 8, s, j;
        __m128i iv[8];
        int i;
        BT_UNROLL(8)
        for (i = 0; i < 8; i++)
            iv[i] = OFFBLK(offset + (uint64_t)(s0 + (size_t)i) * (uint64_t)ss);
        NI_ENC(iv, 8, k);
        if (decrypt) {
            for (s = 0; s < cnt; s++) {
                const uint8_t *p = in + (s0 + s) * ss;
                uint8_t *q = out + (s0 + s) * ss;
                __m128i prev = iv[s];
                for (j = 0; j + 8 <= nb; j += 8) {
                    __m128i c[8], b[8];
                    BT_UNROLL(8)
                    for (i = 0; i < 8; i++)
                        b[i] = c[i] = LD(p + 16 * (j + (size_t)i));
                    NI_DEC(b, 8, k);
                    ST(q + 16 * j, _mm_xor_si128(b[0], prev));
                    BT_UNROLL(8)
                    for (i = 1; i < 8; i++)
                        ST(q + 16 * (j + (size_t)i), _mm_xor_si128(b[i], c[i - 1]));
                    prev = c[7];
                }
                for (; j < nb; j++) {
                    __m128i c[1], b[1];
                    b[0] = c[0] = LD(p + 16 * j);
                    NI_DEC(b, 1, k);
                    ST(q + 16 * j, _mm_xor_si128(b[0], prev));
                    prev = c[0];
                }
            }
        } else {
            /* serial per sector: run the 8 sectors of the group side by side */
            const uint8_t *src[8];
            uint8_t *dst[8];
            uint8_t sink[16];
            __m128i b[8];
            for (i = 0; i < 8; i++) {
                src[i] = (size_t)i < cnt ? in + (s0 + (size_t)i) * ss : zero_sector_dummy;
                dst[i] = (size_t)i < cnt ? out + (s0 + (size_t)i) * ss : sink;
                b[i] = iv[i];
            }
            for (j = 0; j < nb; j++) {
                size_t step = 16 * j;
                BT_UNROLL(8)
                for (i = 0; i < 8; i++)
                    b[i] = _mm_xor_si128(b[i], LD(src[i] + ((size_t)i < cnt ? step : 0)));
                NI_ENC(b, 8, k);
                BT_UNROLL(8)
                for (i = 0; i < 8; i++)
                    ST(dst[i] + ((size_t)i < cnt ? step : 0), b[i]);
            }
        }
    }
}

TGT_AES static void ni_xts(const bt_aes_key *k1, const bt_aes_key *k2, const uint8_t *in,
                           uint8_t *out, size_t n, size_t ss, uint64_t first_sector, int decrypt)
{
    size_t nb = ss / 16, s0;
    for (s0 = 0; s0 < n; s0 += 8) {
        size_t cnt = n - s0 < 8 ? n - s0 : 8, s, j;
        __m128i tw[8];
        int i;
        BT_UNROLL(8)
        for (i = 0; i < 8; i++)
            tw[i] = OFFBLK(first_sector + (uint64_t)(s0 + (size_t)i));
        NI_ENC(tw, 8, k2);
        for (s = 0; s < cnt; s++) {
            const uint8_t *p = in + (s0 + s) * ss;
            uint8_t *q = out + (s0 + s) * ss;
            __m128i t = tw[s];
            for (j = 0; j + 8 <= nb; j += 8) {
                __m128i b[8], tt[8];
                BT_UNROLL(8)
                for (i = 0; i < 8; i++) {
                    tt[i] = t;
                    t = XTS_MUL_ALPHA(t);
                    b[i] = _mm_xor_si128(LD(p + 16 * (j + (size_t)i)), tt[i]);
                }
                if (decrypt)
                    NI_DEC(b, 8, k1);
                else
                    NI_ENC(b, 8, k1);
                BT_UNROLL(8)
                for (i = 0; i < 8; i++)
                    ST(q + 16 * (j + (size_t)i), _mm_xor_si128(b[i], tt[i]));
            }
            for (; j < nb; j++) {
                __m128i b[1];
                b[0] = _mm_xor_si128(LD(p + 16 * j), t);
                if (decrypt)
                    NI_DEC(b, 1, k1);
                else
                    NI_ENC(b, 1, k1);
                ST(q + 16 * j, _mm_xor_si128(b[0], t));
                t = XTS_MUL_ALPHA(t);
            }
        }
    }
}

/* Elephant sector keys for 8 sectors: sk[2s], sk[2s+1] = E(TWEAK, LE64(O)||0), with byte 15 = 0x80 */
TGT_AES static void ni_sector_keys(const bt_aes_key *tk, uint64_t offset, size_t ss, size_t s0,
                                   uint8_t sk[8][32])
{
    __m128i b[16];
    int i;
    BT_UNROLL(8)
    for (i = 0; i < 8; i++) {
        uint64_t o = offset + (uint64_t)(s0 + (size_t)i) * (uint64_t)ss;
        b[2 * i] = OFFBLK(o);
        b[2 * i + 1] = _mm_set_epi64x((long long)0x8000000000000000ULL, (long long)o);
    }
    NI_ENC(b, 16, tk);
    for (i = 0; i < 8; i++) {
        ST(sk[i], b[2 * i]);
        ST(sk[i] + 16, b[2 * i + 1]);
    }
}
#endif /* BT_X86 */

/* ---- portable modes --------------------------------------------------------------------------- */
static void offblk(uint8_t b[16], uint64_t v)
{
    memset(b, 0, 16);
    bt_store_le64(b, v);
}

static void xor16(uint8_t *d, const uint8_t *a, const uint8_t *b)
{
    int i;
    for (i = 0; i < 16; i++)
        d[i] = a[i] ^ b[i];
}

static void pt_cbc(const bt_aes_key *k, const uint8_t *in, uint8_t *out, size_t n, size_t ss,
                   uint64_t offset, int decrypt)
{
    size_t s, j, nb = ss / 16;
    uint8_t prev[16], c[16], x[16];
    for (s = 0; s < n; s++) {
        offblk(x, offset + (uint64_t)s * ss);
        enc_portable(k, x, prev);
        for (j = 0; j < nb; j++) {
            const uint8_t *p = in + s * ss + 16 * j;
            uint8_t *q = out + s * ss + 16 * j;
            if (decrypt) {
                memcpy(c, p, 16);
                dec_portable(k, c, x);
                xor16(q, x, prev);
                memcpy(prev, c, 16);
            } else {
                xor16(x, p, prev);
                enc_portable(k, x, q);
                memcpy(prev, q, 16);
            }
        }
    }
    bt_wipe(x, 16);
    bt_wipe(c, 16);
    bt_wipe(prev, 16);
}

static void mul_alpha(uint8_t t[16])
{
    int i, carry = t[15] >> 7;
    for (i = 15; i > 0; i--)
        t[i] = (uint8_t)((t[i] << 1) | (t[i - 1] >> 7));
    t[0] = (uint8_t)((t[0] << 1) ^ (carry ? 0x87 : 0));
}

static void pt_xts(const bt_aes_key *k1, const bt_aes_key *k2, const uint8_t *in, uint8_t *out,
                   size_t n, size_t ss, uint64_t first_sector, int decrypt)
{
    size_t s, j, nb = ss / 16;
    uint8_t t[16], x[16];
    for (s = 0; s < n; s++) {
        offblk(x, first_sector + (uint64_t)s);
        enc_portable(k2, x, t);
        for (j = 0; j < nb; j++) {
            const uint8_t *p = in + s * ss + 16 * j;
            uint8_t *q = out + s * ss + 16 * j;
            xor16(x, p, t);
            if (decrypt)
                dec_portable(k1, x, x);
            else
                enc_portable(k1, x, x);
            xor16(q, x, t);
            mul_alpha(t);
        }
    }
    bt_wipe(x, 16);
    bt_wipe(t, 16);
}

static void pt_sector_key(const bt_aes_key *tk, uint64_t o, uint8_t sk[32])
{
    uint8_t b[16];
    offblk(b, o);
    enc_portable(tk, b, sk);
    b[15] = 0x80;
    enc_portable(tk, b, sk + 16);
}

/* ---- dispatch ---------------------------------------------------------------------------------- */
/* Single blocks (portable code; the round keys have the FIPS-197 layout in both cases). */
void bt_aes_encrypt_block(const bt_aes_key *k, const uint8_t in[16], uint8_t out[16])
{
    enc_portable(k, in, out);
}

void bt_aes_decrypt_block(const bt_aes_key *k, const uint8_t in[16], uint8_t out[16])
{
    dec_portable(k, in, out);
}

void bt_cbc_sectors(const bt_aes_key *k, const uint8_t *in, uint8_t *out, size_t n, size_t ss,
                    uint64_t offset, int decrypt)
{
#if BT_X86
    if (k->ni) {
        bt_clean_upper();
        ni_cbc(k, in, out, n, ss, offset, decrypt);
        return;
    }
#endif
    pt_cbc(k, in, out, n, ss, offset, decrypt);
}

void bt_xts_sectors(const bt_aes_key *k1, const bt_aes_key *k2, const uint8_t *in, uint8_t *out,
                    size_t n, size_t ss, uint64_t first_sector, int decrypt)
{
#if BT_X86
    if (k1->ni && k2->ni) {
        bt_clean_upper();
        ni_xts(k1, k2, in, out, n, ss, first_sector, decrypt);
        return;
    }
#endif
    pt_xts(k1, k2, in, out, n, ss, first_sector, decrypt);
}

static void xor_sector_key(uint8_t *sec, size_t ss, const uint8_t sk[32])
{
    size_t i, j;
    for (i = 0; i < ss; i += 32)
        for (j = 0; j < 32; j++)
            sec[i + j] ^= sk[j];
}

/* Elephant: decrypt = CBC -> diffuser B -> diffuser A -> XOR sector key; encrypt the reverse.
 * Works in groups of 8 sectors so that the data stays in cache between the steps. */
void bt_elephant_sectors(const bt_aes_key *fvek, const bt_aes_key *tweak, const uint8_t *in,
                         uint8_t *out, size_t n, size_t ss, uint64_t offset, int decrypt)
{
    uint8_t sk[8][32];
    size_t s0, nw = ss / 4;
    if (tweak->ni)
        bt_clean_upper();
    for (s0 = 0; s0 < n; s0 += 8) {
        size_t cnt = n - s0 < 8 ? n - s0 : 8, s;
        uint64_t off0 = offset + (uint64_t)s0 * (uint64_t)ss;
        /* eight sectors in the lanes of AVX2 vectors; the portable AES path (forced or no
         * AES-NI) keeps the per-sector code, which the tests compare it with */
        int lanes8 = BT_HAVE_DIFFUSER8 && cnt == 8 && tweak->ni && bt_cpu.avx2 && ss <= BT_MAX_SECTOR;
        const uint8_t *p = in + s0 * ss;
        uint8_t *q = out + s0 * ss;
#if BT_X86
        if (tweak->ni)
            ni_sector_keys(tweak, offset, ss, s0, sk);
        else
#endif
            for (s = 0; s < cnt; s++)
                pt_sector_key(tweak, off0 + (uint64_t)s * ss, sk[s]);
        if (decrypt) {
            bt_cbc_sectors(fvek, p, q, cnt, ss, off0, 1);
#if BT_HAVE_DIFFUSER8
            if (lanes8) {
                bt_diffuser8_avx2(q, ss, (const uint8_t(*)[32])sk, 1);
                continue;
            }
#endif
            for (s = 0; s < cnt; s++) {
                uint8_t *sec = q + s * ss;
                bt_diffuser_b_decrypt(sec, nw);
                bt_diffuser_a_decrypt(sec, nw);
                xor_sector_key(sec, ss, sk[s]);
            }
        } else {
            if (p != q)
                memcpy(q, p, cnt * ss);
#if BT_HAVE_DIFFUSER8
            if (lanes8) {
                bt_diffuser8_avx2(q, ss, (const uint8_t(*)[32])sk, 0);
                bt_cbc_sectors(fvek, q, q, cnt, ss, off0, 0);
                continue;
            }
#endif
            for (s = 0; s < cnt; s++) {
                uint8_t *sec = q + s * ss;
                xor_sector_key(sec, ss, sk[s]);
                bt_diffuser_a_encrypt(sec, nw);
                bt_diffuser_b_encrypt(sec, nw);
            }
            bt_cbc_sectors(fvek, q, q, cnt, ss, off0, 0);
        }
    }
    bt_wipe(sk, sizeof sk);
}
