/* Shared definitions of the bitlocker_tools native core.
 *
 * One build runs on any x86-64: the SIMD kernels are compiled per function with
 * __attribute__((target(...))) and chosen at run time from cpuid (bt_cpu.c). On other
 * architectures (or compilers without the target attribute) only the portable paths exist.
 */
#ifndef BT_COMMON_H
#define BT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(_M_X64)) && !defined(BT_NO_SIMD)
#define BT_X86 1
#else
#define BT_X86 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BT_TARGET(x) __attribute__((target(x)))
#define BT_INLINE static inline __attribute__((always_inline))
#define BT_NOINLINE __attribute__((noinline))
#define BT_ALIGN(n) __attribute__((aligned(n)))
#define BT_UNUSED __attribute__((unused))
#else
#define BT_TARGET(x)
#define BT_INLINE static __forceinline
#define BT_NOINLINE __declspec(noinline)
#define BT_ALIGN(n) __declspec(align(n))
#define BT_UNUSED
#endif

#if BT_X86
#include <immintrin.h>
#endif

#define BT_STR_(x) #x
#if defined(__clang__)
#define BT_UNROLL(n) _Pragma(BT_STR_(unroll n))
#elif defined(__GNUC__) && __GNUC__ >= 8
#define BT_UNROLL(n) _Pragma(BT_STR_(GCC unroll n))
#else
#define BT_UNROLL(n)
#endif

static inline uint32_t bt_bswap32(uint32_t x)
{
    return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
}

/* ---- CPU features (bt_cpu.c) ------------------------------------------------------------- */
typedef struct {
    int sha_ni;   /* SHA + SSE4.1 */
    int aesni;    /* AES + SSE4.1 */
    int avx;      /* AVX with OS ymm state */
    int avx2;     /* AVX2 with OS ymm state */
    int avx512;   /* AVX-512 F + VL with OS zmm state */
    int vaes;     /* VAES + AVX-512 F/VL/BW (zmm AES) */
} bt_cpu_t;

/* Written once by bt_cpu_detect(), which the module's init function calls with the GIL held before
 * any function can run; read-only afterwards. */
extern bt_cpu_t bt_cpu;
void bt_cpu_detect(void);
/* vzeroupper when the CPU has AVX: called before legacy-SSE-encoded kernels (SHA-NI, AES-NI),
 * which otherwise pay a large transition penalty on Intel if the caller left the upper halves
 * of the vector registers dirty. */
void bt_clean_upper(void);

/* ---- helpers ----------------------------------------------------------------------------- */
void bt_wipe(void *p, size_t n); /* memset that the optimiser may not drop */
#define BT_BURN_STACK 16384
void bt_burn_stack(void); /* wipe the stack the kernels just used (bt_cpu.c) */
extern int bt_wipe_skip;          /* test hook: see bt_cpu.c; 0 outside _wipe_audit() */

static inline uint32_t bt_load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void bt_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t bt_load_le32(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | (uint32_t)p[0];
}

static inline void bt_store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void bt_store_le64(uint8_t *p, uint64_t v)
{
    bt_store_le32(p, (uint32_t)v);
    bt_store_le32(p + 4, (uint32_t)(v >> 32));
}

/* ---- SHA-256 (bt_sha256*.c) ---------------------------------------------------------------- */
extern const uint32_t bt_sha256_k[64];
extern const uint32_t bt_sha256_iv[8];

/* Stretch kernels. Candidates are given as 8 big-endian words each (initial hash as message
 * words); outputs are 8 state words each (the digest as big-endian words). */
enum { BT_PATH_AUTO = 0, BT_PATH_SCALAR, BT_PATH_SHANI, BT_PATH_AVX2, BT_PATH_AVX512 };

void bt_sha256_compress_scalar(uint32_t state[8], const uint8_t block[64]);
void bt_sha256_block2_schedule(uint32_t wk[64], const uint32_t salt_w[4], uint64_t count);
void bt_stretch_scalar(const uint32_t *init_w, size_t n, const uint32_t salt_w[4], uint64_t rounds,
                       uint32_t *out_w);
#if BT_X86
void bt_sha256_compress_shani(uint32_t state[8], const uint8_t block[64]);
int bt_shani_kernel_lanes(int kernel);
void bt_stretch_shani_kernel(int kernel, const uint32_t *init_w, const uint32_t salt_w[4],
                             uint64_t rounds, uint32_t *out_w);
void bt_lanes_avx2_8(const uint32_t *init_w, const uint32_t salt_w[4], uint64_t rounds,
                     uint32_t *out_w);
void bt_lanes_avx512vl_8(const uint32_t *init_w, const uint32_t salt_w[4], uint64_t rounds,
                         uint32_t *out_w);
void bt_lanes_avx512_16(const uint32_t *init_w, const uint32_t salt_w[4], uint64_t rounds,
                        uint32_t *out_w);
#endif

/* Planner (bt_stretch.c): the kernels, their measured cost, and a batch schedule. */
typedef struct {
    const char *name;
    int path;    /* BT_PATH_* family */
    int lanes;   /* candidates per call */
    double cost; /* seconds per round per call: a default until bt_stretch_calibrate() */
} bt_kinfo;

int bt_stretch_nkernels(void);
const bt_kinfo *bt_stretch_kernel(int i);
int bt_stretch_kernel_available(int i); /* from bt_cpu: 1 when this CPU runs kernel i */
int bt_stretch_find_kernel(const char *name);
/* Measure every available kernel once per process (about 50 ms); later calls return at once.
 * Call it with the GIL held: it writes the kernel costs that bt_stretch_plan_run() reads. */
void bt_stretch_calibrate(void);
int bt_stretch_calibrated(void);
/* Run kernel i on `take` (<= lanes) candidates, padding the call. */
void bt_stretch_run_kernel(int i, const uint32_t *init_w, size_t take, const uint32_t salt_w[4],
                           uint64_t rounds, uint32_t *out_w);
/* Stretch n candidates with the kernels of `path` (BT_PATH_AUTO: all available), choosing the
 * cheapest sequence of kernel calls from the kernel costs (call bt_stretch_calibrate() first,
 * with the GIL held; this function only reads them and may run without the GIL). Returns -1
 * when `path` has no kernel on this CPU, -2 on allocation failure. */
int bt_stretch_plan_run(int path, const uint32_t *init_w, size_t n, const uint32_t salt_w[4],
                        uint64_t rounds, uint32_t *out_w);

/* Hash n items of item_len bytes each; out gets 32 bytes per item. */
void bt_sha256_many(const uint8_t *data, size_t item_len, size_t n, uint8_t *out, int use_shani);

/* ---- AES (bt_aes.c) ------------------------------------------------------------------------ */
typedef struct {
    BT_ALIGN(16) uint8_t rk[15 * 16]; /* encryption round keys, FIPS-197 byte order */
    BT_ALIGN(16) uint8_t dk[15 * 16]; /* AES-NI equivalent-inverse-cipher keys (aesimc) */
    int nr;                           /* 10, 12 or 14 */
    int ni;                           /* expanded for / run with AES-NI */
} bt_aes_key;

int bt_aes_setkey(bt_aes_key *k, const uint8_t *key, size_t len, int use_ni); /* 0 ok, -1 bad len */
void bt_aes_encrypt_block(const bt_aes_key *k, const uint8_t in[16], uint8_t out[16]);
void bt_aes_decrypt_block(const bt_aes_key *k, const uint8_t in[16], uint8_t out[16]);

/* Sector modes. in and out may be the same pointer (never partially overlapping).
 * n sectors of ss bytes (ss a multiple of 16). */
void bt_cbc_sectors(const bt_aes_key *k, const uint8_t *in, uint8_t *out, size_t n, size_t ss,
                    uint64_t offset, int decrypt);
void bt_xts_sectors(const bt_aes_key *k1, const bt_aes_key *k2, const uint8_t *in, uint8_t *out,
                    size_t n, size_t ss, uint64_t first_sector, int decrypt);
void bt_elephant_sectors(const bt_aes_key *fvek, const bt_aes_key *tweak, const uint8_t *in,
                         uint8_t *out, size_t n, size_t ss, uint64_t offset, int decrypt);

/* AES-CCM of a key blob (bt_ccm.c): 12-byte nonce, 16-byte tag, no associated data.
 * decrypt: 0 ok, 1 tag mismatch (out wiped), -1 bad key length or len >= 2**24. */
int bt_ccm_decrypt(const uint8_t *key, size_t klen, const uint8_t nonce[12], const uint8_t *in,
                   size_t len, const uint8_t mac[16], uint8_t *out, int use_ni);
int bt_ccm_encrypt(const uint8_t *key, size_t klen, const uint8_t nonce[12], const uint8_t *in,
                   size_t len, uint8_t *out, uint8_t mac[16], int use_ni);

/* ---- Elephant diffuser (bt_diffuser.c) ------------------------------------------------------ */
/* In place on one sector of nw little-endian u32 words (nw >= 8, a multiple of 4). */
#define BT_MAX_SECTOR 4096 /* the largest sector the 8-lane diffuser takes */
#if BT_X86 && (defined(__GNUC__) || defined(__clang__))
#define BT_HAVE_DIFFUSER8 1
/* Eight consecutive sectors of ss bytes (32 <= ss <= BT_MAX_SECTOR, ss % 32 == 0) in place:
 * decrypt = diffuser B, A, then XOR with each sector's key; encrypt = the reverse. Needs AVX2. */
void bt_diffuser8_avx2(uint8_t *sec, size_t ss, const uint8_t keys[8][32], int decrypt);
#else
#define BT_HAVE_DIFFUSER8 0
#endif
void bt_diffuser_a_decrypt(uint8_t *sector, size_t nw);
void bt_diffuser_a_encrypt(uint8_t *sector, size_t nw);
void bt_diffuser_b_decrypt(uint8_t *sector, size_t nw);
void bt_diffuser_b_encrypt(uint8_t *sector, size_t nw);

#endif
