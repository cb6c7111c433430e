/* Run-time CPU feature detection (cpuid + xgetbv) and a wipe that is not optimised away. */
#include "bt_common.h"

/* Written once by bt_cpu_detect() at module init, read-only afterwards (docs/architecture.md,
 * "The C core's process-wide state"). */
bt_cpu_t bt_cpu;

/* Zero the BT_BURN_STACK bytes of stack below the caller's frame: where the kernels it just called
 * kept their locals and spilled registers (round keys, tweaks, IVs, message schedules), whatever
 * the compiler chose to put there. Called once at the end of each module function, not per block:
 * 16 KiB of memset, well under a microsecond. That it covers every kernel's frame is what
 * tests/test_secrets_native.py checks: it reads 64 KiB of stack back after every function. */
BT_NOINLINE void bt_burn_stack(void)
{
    uint8_t area[BT_BURN_STACK];
    bt_wipe(area, sizeof area);
}

/* Test hook only (module.c's _wipe_audit(..., wipes=False)): 1 turns every bt_wipe into a no-op
 * for one audited call, so that the audit's own test can show it finds what an unwiped buffer
 * leaves behind. Written only with the GIL held, by that hook, and 0 at all other times. */
int bt_wipe_skip;

void bt_wipe(void *p, size_t n)
{
    if (bt_wipe_skip)
        return;
#if defined(__GNUC__) || defined(__clang__)
    /* memset at memset speed; the empty asm that "reads" p keeps it from being optimised away */
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--)
        *v++ = 0;
#endif
}

#if BT_X86
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static void cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
    int regs[4];
    __cpuidex(regs, (int)leaf, (int)sub);
    r[0] = (unsigned)regs[0];
    r[1] = (unsigned)regs[1];
    r[2] = (unsigned)regs[2];
    r[3] = (unsigned)regs[3];
}
static uint64_t xgetbv0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

void bt_cpu_detect(void)
{
    /* Filled in a local and stored once: the module calls this from its init function (the GIL
     * held, before any function can run), and bt_cpu is read-only from then on. */
    bt_cpu_t c;
    unsigned r[4], max_leaf;
    int sse41, aes, osxsave, avx, ymm_os = 0, zmm_os = 0;
    memset(&c, 0, sizeof c);
    cpuid(0, 0, r);
    max_leaf = r[0];
    if (max_leaf >= 1) {
        cpuid(1, 0, r);
        sse41 = (r[2] >> 19) & 1;
        aes = (r[2] >> 25) & 1;
        osxsave = (r[2] >> 27) & 1;
        avx = (r[2] >> 28) & 1;
        if (osxsave) {
            uint64_t xcr0 = xgetbv0();
            ymm_os = (xcr0 & 0x6) == 0x6;
            zmm_os = (xcr0 & 0xe6) == 0xe6;
        }
        c.aesni = sse41 && aes;
        c.avx = avx && ymm_os;
        if (max_leaf >= 7) {
            unsigned b, cx;
            cpuid(7, 0, r);
            b = r[1];
            cx = r[2];
            c.sha_ni = sse41 && ((b >> 29) & 1);
            c.avx2 = avx && ymm_os && ((b >> 5) & 1);
            /* AVX-512 F (b16) and VL (b31) */
            c.avx512 = c.avx2 && zmm_os && ((b >> 16) & 1) && ((b >> 31) & 1);
            /* VAES (c9) with AVX-512 BW (b30) for the zmm AES path */
            c.vaes = c.avx512 && c.aesni && ((cx >> 9) & 1) && ((b >> 30) & 1);
        }
    }
    bt_cpu = c;
}

BT_TARGET("avx") static void zeroupper_avx(void) { _mm256_zeroupper(); }

void bt_clean_upper(void)
{
    if (bt_cpu.avx)
        zeroupper_avx();
}
#else
void bt_cpu_detect(void) { memset(&bt_cpu, 0, sizeof bt_cpu); }
void bt_clean_upper(void) {}
#endif
