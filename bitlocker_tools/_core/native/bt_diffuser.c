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

#define D(i) ld(s, i)
#define SET(i, v) st(s, i, v)

static void a_decrypt_pass(uint8_t *s, size_t n)
{
    uint32_t p1, p2, p3, p4, p5;
    size_t i;
    SET(0, D(0) + (D(n - 2) ^ ROTL(D(n - 5), 9)));
    SET(1, D(1) + (D(n - 1) ^ D(n - 4)));
    SET(2, D(2) + (D(0) ^ ROTL(D(n - 3), 13)));
    SET(3, D(3) + (D(1) ^ D(n - 2)));
    SET(4, D(4) + (D(2) ^ ROTL(D(n - 1), 9)));
    SET(5, D(5) + (D(3) ^ D(0)));
    SET(6, D(6) + (D(4) ^ ROTL(D(1), 13)));
    SET(7, D(7) + (D(5) ^ D(2)));
    p1 = D(7);
    p2 = D(6);
    p3 = D(5);
    p4 = D(4);
    p5 = D(3);
    for (i = 8; i < n; i += 4) {
        uint32_t x0 = D(i) + (p2 ^ ROTL(p5, 9));
        uint32_t x1 = D(i + 1) + (p1 ^ p4);
        uint32_t x2 = D(i + 2) + (x0 ^ ROTL(p3, 13));
        uint32_t x3 = D(i + 3) + (x1 ^ p2);
        SET(i, x0);
        SET(i + 1, x1);
        SET(i + 2, x2);
        SET(i + 3, x3);
        p5 = p1;
        p4 = x0;
        p3 = x1;
        p2 = x2;
        p1 = x3;
    }
}

static void a_encrypt_pass(uint8_t *s, size_t n)
{
    size_t i;
    /* i = n-1 .. 8: reads only words below i, not yet updated in this pass */
    for (i = n - 1; i >= 11; i -= 4) {
        SET(i, D(i) - (D(i - 2) ^ D(i - 5)));
        SET(i - 1, D(i - 1) - (D(i - 3) ^ ROTL(D(i - 6), 13)));
        SET(i - 2, D(i - 2) - (D(i - 4) ^ D(i - 7)));
        SET(i - 3, D(i - 3) - (D(i - 5) ^ ROTL(D(i - 8), 9)));
    }
    SET(7, D(7) - (D(5) ^ D(2)));
    SET(6, D(6) - (D(4) ^ ROTL(D(1), 13)));
    SET(5, D(5) - (D(3) ^ D(0)));
    SET(4, D(4) - (D(2) ^ ROTL(D(n - 1), 9)));
    SET(3, D(3) - (D(1) ^ D(n - 2)));
    SET(2, D(2) - (D(0) ^ ROTL(D(n - 3), 13)));
    SET(1, D(1) - (D(n - 1) ^ D(n - 4)));
    SET(0, D(0) - (D(n - 2) ^ ROTL(D(n - 5), 9)));
}

static void b_decrypt_pass(uint8_t *s, size_t n)
{
    size_t i;
    /* i = 0 .. n-9: reads only words above i, not yet updated in this pass */
    for (i = 0; i + 12 <= n; i += 4) {
        SET(i, D(i) + (D(i + 2) ^ D(i + 5)));
        SET(i + 1, D(i + 1) + (D(i + 3) ^ ROTL(D(i + 6), 10)));
        SET(i + 2, D(i + 2) + (D(i + 4) ^ D(i + 7)));
        SET(i + 3, D(i + 3) + (D(i + 5) ^ ROTL(D(i + 8), 25)));
    }
    SET(n - 8, D(n - 8) + (D(n - 6) ^ D(n - 3)));
    SET(n - 7, D(n - 7) + (D(n - 5) ^ ROTL(D(n - 2), 10)));
    SET(n - 6, D(n - 6) + (D(n - 4) ^ D(n - 1)));
    SET(n - 5, D(n - 5) + (D(n - 3) ^ ROTL(D(0), 25)));
    SET(n - 4, D(n - 4) + (D(n - 2) ^ D(1)));
    SET(n - 3, D(n - 3) + (D(n - 1) ^ ROTL(D(2), 10)));
    SET(n - 2, D(n - 2) + (D(0) ^ D(3)));
    SET(n - 1, D(n - 1) + (D(1) ^ ROTL(D(4), 25)));
}

static void b_encrypt_pass(uint8_t *s, size_t n)
{
    uint32_t q1, q2, q3, q4, q5;
    size_t t;
    SET(n - 1, D(n - 1) - (D(1) ^ ROTL(D(4), 25)));
    SET(n - 2, D(n - 2) - (D(0) ^ D(3)));
    SET(n - 3, D(n - 3) - (D(n - 1) ^ ROTL(D(2), 10)));
    SET(n - 4, D(n - 4) - (D(n - 2) ^ D(1)));
    SET(n - 5, D(n - 5) - (D(n - 3) ^ ROTL(D(0), 25)));
    SET(n - 6, D(n - 6) - (D(n - 4) ^ D(n - 1)));
    SET(n - 7, D(n - 7) - (D(n - 5) ^ ROTL(D(n - 2), 10)));
    SET(n - 8, D(n - 8) - (D(n - 6) ^ D(n - 3)));
    q1 = D(n - 8);
    q2 = D(n - 7);
    q3 = D(n - 6);
    q4 = D(n - 5);
    q5 = D(n - 4);
    /* groups t-3 .. t with t = n-9, n-13, ..., 3; q_k = d[t+k] (already updated) */
    for (t = n - 9; t < n; t -= 4) {
        uint32_t x3 = D(t) - (q2 ^ ROTL(q5, 25));
        uint32_t x2 = D(t - 1) - (q1 ^ q4);
        uint32_t x1 = D(t - 2) - (x3 ^ ROTL(q3, 10));
        uint32_t x0 = D(t - 3) - (x2 ^ q2);
        SET(t, x3);
        SET(t - 1, x2);
        SET(t - 2, x1);
        SET(t - 3, x0);
        q5 = q1;
        q4 = x3;
        q3 = x2;
        q2 = x1;
        q1 = x0;
        if (t == 3)
            break;
    }
}

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
