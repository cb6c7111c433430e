/* AES-CCM (RFC 3610) as BitLocker wraps every key: 12-byte nonce (L = 3), 16-byte tag, no
 * associated data. Small blobs only (a key entry is under 100 bytes), so one block at a time
 * through bt_aes_encrypt_block is plenty; this exists so that checking a key needs no Python
 * crypto package at all (importing one costs more than the unwrap). */
#include "bt_common.h"

#define CCM_FLAGS_B0 0x3A /* tag length 16: ((16 - 2) / 2) << 3; L - 1 = 2 */
#define CCM_FLAGS_A 0x02  /* counter blocks: L - 1 */

static void counter_block(uint8_t a[16], const uint8_t nonce[12], uint32_t i)
{
    a[0] = CCM_FLAGS_A;
    memcpy(a + 1, nonce, 12);
    a[13] = (uint8_t)(i >> 16);
    a[14] = (uint8_t)(i >> 8);
    a[15] = (uint8_t)i;
}

/* CBC-MAC of B0 || plaintext (zero padded). */
static void cbc_mac(const bt_aes_key *k, const uint8_t nonce[12], const uint8_t *p, size_t len,
                    uint8_t t[16])
{
    size_t off, j;
    t[0] = CCM_FLAGS_B0;
    memcpy(t + 1, nonce, 12);
    t[13] = (uint8_t)(len >> 16);
    t[14] = (uint8_t)(len >> 8);
    t[15] = (uint8_t)len;
    bt_aes_encrypt_block(k, t, t);
    for (off = 0; off < len; off += 16) {
        size_t take = len - off < 16 ? len - off : 16;
        for (j = 0; j < take; j++)
            t[j] ^= p[off + j];
        bt_aes_encrypt_block(k, t, t);
    }
}

/* XOR the CTR keystream (counters from 1) into in -> out. */
static void ctr(const bt_aes_key *k, const uint8_t nonce[12], const uint8_t *in, uint8_t *out,
                size_t len)
{
    uint8_t a[16], s[16];
    size_t off, j;
    for (off = 0; off < len; off += 16) {
        size_t take = len - off < 16 ? len - off : 16;
        counter_block(a, nonce, (uint32_t)(off / 16 + 1));
        bt_aes_encrypt_block(k, a, s);
        for (j = 0; j < take; j++)
            out[off + j] = in[off + j] ^ s[j];
    }
    bt_wipe(s, sizeof s);
}

/* The tag as stored: CBC-MAC xor E(A0). */
static void tag_of(const bt_aes_key *k, const uint8_t nonce[12], const uint8_t *plain, size_t len,
                   uint8_t tag[16])
{
    uint8_t a[16], s0[16];
    int j;
    cbc_mac(k, nonce, plain, len, tag);
    counter_block(a, nonce, 0);
    bt_aes_encrypt_block(k, a, s0);
    for (j = 0; j < 16; j++)
        tag[j] ^= s0[j];
    bt_wipe(s0, sizeof s0);
}

int bt_ccm_decrypt(const uint8_t *key, size_t klen, const uint8_t nonce[12], const uint8_t *in,
                   size_t len, const uint8_t mac[16], uint8_t *out, int use_ni)
{
    bt_aes_key k;
    uint8_t tag[16], diff = 0;
    int j;
    if (len >= (1u << 24) || bt_aes_setkey(&k, key, klen, use_ni) < 0)
        return -1;
    ctr(&k, nonce, in, out, len);
    tag_of(&k, nonce, out, len, tag);
    for (j = 0; j < 16; j++) /* constant time */
        diff |= (uint8_t)(tag[j] ^ mac[j]);
    bt_wipe(&k, sizeof k);
    bt_wipe(tag, sizeof tag);
    if (diff) {
        bt_wipe(out, len);
        return 1;
    }
    return 0;
}

int bt_ccm_encrypt(const uint8_t *key, size_t klen, const uint8_t nonce[12], const uint8_t *in,
                   size_t len, uint8_t *out, uint8_t mac[16], int use_ni)
{
    bt_aes_key k;
    if (len >= (1u << 24) || bt_aes_setkey(&k, key, klen, use_ni) < 0)
        return -1;
    tag_of(&k, nonce, in, len, mac);
    ctr(&k, nonce, in, out, len);
    bt_wipe(&k, sizeof k);
    return 0;
}
