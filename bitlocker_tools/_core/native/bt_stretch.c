/* Stretch planner: the table of kernels, a one-off calibration of their speed on this CPU, and
 * the choice of kernel calls for a batch of n candidates (dynamic programming over n).
 *
 * Which kernel wins depends on the micro-architecture: on AMD Zen 4 sha256rnds2 issues once per
 * cycle and pipelined SHA-NI chains are fastest; on recent Intel cores it issues about once per
 * three cycles and the 16-lane AVX-512 kernel is twice as fast. Measuring avoids guessing.
 */
#include "bt_common.h"
#include <stdlib.h>

#ifdef _WIN32
#include <windows.h>
static double now(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
}
#else
#include <time.h>
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
#endif

enum {
    K_SCALAR,
    K_SHANI1,
    K_SHANI2,
    K_SHANI3,
    K_SHANI4,
    K_SHANI6,
    K_SHANI3_VL,
    K_SHANI4_VL,
    K_SHANI6_VL,
    K_AVX2_8,
    K_AVX512VL_8,
    K_AVX512_16,
    K_COUNT
};

/* The kernel table. `cost` starts at a rough default (seconds per round per call) and is
 * overwritten once by bt_stretch_calibrate(); it is the planner's only mutable state. Every caller
 * runs bt_stretch_calibrate() with the GIL held before it releases the GIL to plan, so the writes
 * happen once, under the GIL, before any reader without it (docs/architecture.md, "The C core's
 * process-wide state"). Which kernels this CPU can run is not stored: it is read from bt_cpu. */
#define MS(x) ((x)*1e-3 / 1048576)
static bt_kinfo kernels[K_COUNT] = {
    {"scalar", BT_PATH_SCALAR, 1, MS(400)},        {"shani1", BT_PATH_SHANI, 1, MS(75)},
    {"shani2", BT_PATH_SHANI, 2, 2 * MS(45)},      {"shani3", BT_PATH_SHANI, 3, 3 * MS(40)},
    {"shani4", BT_PATH_SHANI, 4, 4 * MS(33)},      {"shani6", BT_PATH_SHANI, 6, 6 * MS(30)},
    {"shani3_vl", BT_PATH_SHANI, 3, 3 * MS(40)},   {"shani4_vl", BT_PATH_SHANI, 4, 4 * MS(33)},
    {"shani6_vl", BT_PATH_SHANI, 6, 6 * MS(30)},
    {"avx2_8", BT_PATH_AVX2, 8, 8 * MS(75)},       {"avx512vl_8", BT_PATH_AVX512, 8, 8 * MS(42)},
    {"avx512_16", BT_PATH_AVX512, 16, 16 * MS(30)},
};
#undef MS
static int calibrated; /* set once, with the GIL held, when the costs above are measured */

int bt_stretch_kernel_available(int i)
{
#if BT_X86
    if (i >= K_SHANI1 && i <= K_SHANI6)
        return bt_cpu.sha_ni;
    /* the same kernels built with AVX-512VL (spills to xmm16-31); measured, not assumed */
    if (i >= K_SHANI3_VL && i <= K_SHANI6_VL)
        return bt_cpu.sha_ni && bt_cpu.avx512;
    if (i == K_AVX2_8)
        return bt_cpu.avx2;
    if (i == K_AVX512VL_8 || i == K_AVX512_16)
        return bt_cpu.avx512;
#endif
    return i == K_SCALAR;
}

int bt_stretch_calibrated(void) { return calibrated; }

int bt_stretch_nkernels(void) { return K_COUNT; }

const bt_kinfo *bt_stretch_kernel(int i) { return (i >= 0 && i < K_COUNT) ? &kernels[i] : NULL; }

int bt_stretch_find_kernel(const char *name)
{
    int i;
    for (i = 0; i < K_COUNT; i++)
        if (strcmp(kernels[i].name, name) == 0)
            return i;
    return -1;
}

static void call_kernel(int i, const uint32_t *in, const uint32_t salt_w[4], uint64_t rounds,
                        uint32_t *out)
{
    if (i >= K_SHANI1 && i <= K_SHANI6_VL)
        bt_clean_upper();
    switch (i) {
#if BT_X86
    case K_SHANI1:
        bt_stretch_shani_kernel(1, in, salt_w, rounds, out);
        return;
    case K_SHANI2:
        bt_stretch_shani_kernel(2, in, salt_w, rounds, out);
        return;
    case K_SHANI3:
        bt_stretch_shani_kernel(3, in, salt_w, rounds, out);
        return;
    case K_SHANI4:
        bt_stretch_shani_kernel(22, in, salt_w, rounds, out);
        return;
    case K_SHANI6:
        bt_stretch_shani_kernel(33, in, salt_w, rounds, out);
        return;
    case K_SHANI3_VL:
        bt_stretch_shani_kernel(103, in, salt_w, rounds, out);
        return;
    case K_SHANI4_VL:
        bt_stretch_shani_kernel(122, in, salt_w, rounds, out);
        return;
    case K_SHANI6_VL:
        bt_stretch_shani_kernel(133, in, salt_w, rounds, out);
        return;
    case K_AVX2_8:
        bt_lanes_avx2_8(in, salt_w, rounds, out);
        return;
    case K_AVX512VL_8:
        bt_lanes_avx512vl_8(in, salt_w, rounds, out);
        return;
    case K_AVX512_16:
        bt_lanes_avx512_16(in, salt_w, rounds, out);
        return;
#endif
    default:
        bt_stretch_scalar(in, 1, salt_w, rounds, out);
        return;
    }
}

void bt_stretch_run_kernel(int i, const uint32_t *init_w, size_t take, const uint32_t salt_w[4],
                           uint64_t rounds, uint32_t *out_w)
{
    size_t lanes = (size_t)kernels[i].lanes;
    if (take == lanes) {
        call_kernel(i, init_w, salt_w, rounds, out_w);
    } else {
        uint32_t in_pad[16 * 8], out_pad[16 * 8];
        memset(in_pad, 0, sizeof in_pad);
        memcpy(in_pad, init_w, take * 32);
        call_kernel(i, in_pad, salt_w, rounds, out_pad);
        memcpy(out_w, out_pad, take * 32);
        bt_wipe(in_pad, sizeof in_pad);
        bt_wipe(out_pad, sizeof out_pad);
    }
}

void bt_stretch_calibrate(void)
{
    uint32_t in[16 * 8], out[16 * 8], salt[4] = {1, 2, 3, 4};
    double best[K_COUNT];
    int i, rep;
    if (calibrated)
        return;
    memset(in, 0x5a, sizeof in);
    for (i = 0; i < K_COUNT; i++)
        best[i] = 1e30;
    /* Round-robin over the kernels, best of three: a burst from a neighbour on a shared machine
     * then spoils one sample of several kernels, not every sample of one (which would make the
     * planner prefer a slower kernel for the life of the process). ~50 ms in all. */
    for (rep = 0; rep < 3; rep++) {
        for (i = 0; i < K_COUNT; i++) {
            const uint64_t rounds = i == K_SCALAR ? 2048 : 16384;
            double t0, t;
            if (!bt_stretch_kernel_available(i))
                continue;
            t0 = now();
            call_kernel(i, in, salt, rounds, out);
            t = (now() - t0) / (double)rounds;
            if (t < best[i])
                best[i] = t;
        }
    }
    for (i = 0; i < K_COUNT; i++)
        if (bt_stretch_kernel_available(i) && best[i] > 0 && best[i] < 1e30)
            kernels[i].cost = best[i];
    bt_wipe(out, sizeof out);
    calibrated = 1;
}

int bt_stretch_plan_run(int path, const uint32_t *init_w, size_t n, const uint32_t salt_w[4],
                        uint64_t rounds, uint32_t *out_w)
{
    int usable[K_COUNT], nusable = 0, i;
    double *cost;
    signed char *choice;
    size_t m;
    for (i = 0; i < K_COUNT; i++)
        if (bt_stretch_kernel_available(i) && (path == BT_PATH_AUTO || kernels[i].path == path))
            usable[nusable++] = i;
    if (!nusable)
        return -1;
    if (n == 0)
        return 0;
    if (nusable == 1) {
        size_t lanes = (size_t)kernels[usable[0]].lanes, done;
        for (done = 0; done < n; done += lanes) {
            size_t take = n - done < lanes ? n - done : lanes;
            bt_stretch_run_kernel(usable[0], init_w + 8 * done, take, salt_w, rounds,
                                  out_w + 8 * done);
        }
        return 0;
    }
    /* costs as calibrated by the caller (under the GIL), or the defaults: any plan is correct,
     * the costs only make it fast */
    cost = (double *)malloc((n + 1) * sizeof(double));
    choice = (signed char *)malloc(n + 1);
    if (!cost || !choice) {
        free(cost);
        free(choice);
        return -2;
    }
    cost[0] = 0.0;
    for (m = 1; m <= n; m++) {
        int j;
        cost[m] = 1e300;
        choice[m] = -1;
        for (j = 0; j < nusable; j++) {
            size_t lanes = (size_t)kernels[usable[j]].lanes;
            double c = cost[m > lanes ? m - lanes : 0] + kernels[usable[j]].cost;
            if (c < cost[m]) {
                cost[m] = c;
                choice[m] = (signed char)usable[j];
            }
        }
    }
    m = n;
    while (m > 0) {
        int k = choice[m];
        size_t lanes = (size_t)kernels[k].lanes, take = m < lanes ? m : lanes;
        bt_stretch_run_kernel(k, init_w + 8 * (m - take), take, salt_w, rounds,
                              out_w + 8 * (m - take));
        m -= take;
    }
    free(cost);
    free(choice);
    return 0;
}
