/* Portable SHA-256: the compression function, the shared schedule of the stretch's second
 * block, the scalar stretch (any number of candidates) and hashing of many equal-sized items. */
#include "bt_common.h"

const uint32_t bt_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

const uint32_t bt_sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define BSIG0(a) (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22))
#define BSIG1(e) (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))
#define CH(e, f, g) ((((f) ^ (g)) & (e)) ^ (g))
#define MAJ(a, b, c) (((a) & (b)) | ((c) & ((a) | (b))))

#define RND(a, b, c, d, e, f, g, h, wk)                                                            \
    do {                                                                                       \
        uint32_t t1_ = h + BSIG1(e) + CH(e, f, g) + (wk);                                      \
        d += t1_;                                                                              \
        h = t1_ + BSIG0(a) + MAJ(a, b, c);                                                     \
    } while (0)

#define RND8(wk, i)                                                                            \
    do {                                                                                       \
        RND(a, b, c, d, e, f, g, h, (wk)[(i) + 0]);                                            \
        RND(h, a, b, c, d, e, f, g, (wk)[(i) + 1]);                                            \
        RND(g, h, a, b, c, d, e, f, (wk)[(i) + 2]);                                            \
        RND(f, g, h, a, b, c, d, e, (wk)[(i) + 3]);                                            \
        RND(e, f, g, h, a, b, c, d, (wk)[(i) + 4]);                                            \
        RND(d, e, f, g, h, a, b, c, (wk)[(i) + 5]);                                            \
        RND(c, d, e, f, g, h, a, b, (wk)[(i) + 6]);                                            \
        RND(b, c, d, e, f, g, h, a, (wk)[(i) + 7]);                                            \
    } while (0)

/* 64 rounds on st with the message schedule + K already summed in wk; adds the feed-forward. */
static void rounds_wk(uint32_t st[8], const uint32_t wk[64])
{
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    RND8(wk, 0);
    RND8(wk, 8);
    RND8(wk, 16);
    RND8(wk, 24);
    RND8(wk, 32);
    RND8(wk, 40);
    RND8(wk, 48);
    RND8(wk, 56);
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
    st[4] += e;
    st[5] += f;
    st[6] += g;
    st[7] += h;
}

static void schedule_wk(uint32_t wk[64], const uint32_t w16[16])
{
    uint32_t w[64];
    int i;
    for (i = 0; i < 16; i++)
        w[i] = w16[i];
    for (i = 16; i < 64; i++)
        w[i] = SSIG1(w[i - 2]) + w[i - 7] + SSIG0(w[i - 15]) + w[i - 16];
    for (i = 0; i < 64; i++)
        wk[i] = w[i] + bt_sha256_k[i];
}

void bt_sha256_compress_scalar(uint32_t state[8], const uint8_t block[64])
{
    uint32_t w16[16], wk[64];
    int i;
    for (i = 0; i < 16; i++)
        w16[i] = bt_load_be32(block + 4 * i);
    schedule_wk(wk, w16);
    rounds_wk(state, wk);
}

/* Block 2 of the stretch message: salt[16] || LE64(count) || 0x80 || 0... || BE64(704). */
void bt_sha256_block2_schedule(uint32_t wk[64], const uint32_t salt_w[4], uint64_t count)
{
    uint32_t w16[16];
    uint32_t lo = (uint32_t)count, hi = (uint32_t)(count >> 32);
    w16[0] = salt_w[0];
    w16[1] = salt_w[1];
    w16[2] = salt_w[2];
    w16[3] = salt_w[3];
    /* the count is stored little-endian but read as big-endian words */
    w16[4] = (lo >> 24) | ((lo >> 8) & 0xff00) | ((lo << 8) & 0xff0000) | (lo << 24);
    w16[5] = (hi >> 24) | ((hi >> 8) & 0xff00) | ((hi << 8) & 0xff0000) | (hi << 24);
    w16[6] = 0x80000000u;
    memset(w16 + 7, 0, 8 * sizeof(uint32_t));
    w16[15] = 88 * 8;
    schedule_wk(wk, w16);
}

/* Scalar stretch of n candidates; the block-2 schedule is computed once per count for all. */
void bt_stretch_scalar(const uint32_t *init_w, size_t n, const uint32_t salt_w[4], uint64_t rounds,
                       uint32_t *out_w)
{
    uint32_t wk2[64], wk1[64], w16[16], st[8];
    uint64_t cnt;
    size_t j;
    memset(out_w, 0, n * 8 * sizeof(uint32_t));
    for (cnt = 0; cnt < rounds; cnt++) {
        bt_sha256_block2_schedule(wk2, salt_w, cnt);
        for (j = 0; j < n; j++) {
            uint32_t *h = out_w + 8 * j;
            memcpy(w16, h, 32);
            memcpy(w16 + 8, init_w + 8 * j, 32);
            schedule_wk(wk1, w16);
            memcpy(st, bt_sha256_iv, 32);
            rounds_wk(st, wk1);
            memcpy(h, st, 32);
            rounds_wk(h, wk2);
        }
    }
    bt_wipe(wk1, sizeof wk1);
    bt_wipe(w16, sizeof w16);
    bt_wipe(st, sizeof st);
}

/* SHA-256 of n items of item_len bytes each. */
void bt_sha256_many(const uint8_t *data, size_t item_len, size_t n, uint8_t *out, int use_shani)
{
    void (*compress)(uint32_t *, const uint8_t *) = bt_sha256_compress_scalar;
    uint8_t tail[128];
    uint32_t st[8];
    size_t i, k;
#if BT_X86
    if (use_shani) {
        compress = bt_sha256_compress_shani;
        bt_clean_upper();
    }
#else
    (void)use_shani;
#endif
    for (i = 0; i < n; i++) {
        const uint8_t *p = data + i * item_len;
        size_t full = item_len / 64, rem = item_len % 64, tlen;
        uint64_t bits = (uint64_t)item_len * 8;
        memcpy(st, bt_sha256_iv, sizeof st);
        for (k = 0; k < full; k++)
            compress(st, p + 64 * k);
        memset(tail, 0, sizeof tail);
        memcpy(tail, p + 64 * full, rem);
        tail[rem] = 0x80;
        tlen = rem + 9 <= 64 ? 64 : 128;
        for (k = 0; k < 8; k++)
            tail[tlen - 1 - k] = (uint8_t)(bits >> (8 * k));
        compress(st, tail);
        if (tlen == 128)
            compress(st, tail + 64);
        for (k = 0; k < 8; k++)
            bt_store_be32(out + 32 * i + 4 * k, st[k]);
    }
    bt_wipe(tail, sizeof tail);
    bt_wipe(st, sizeof st);
}
