/* Multi-lane (one candidate per 32-bit lane) SHA-256 stretch kernel template, included by
 * bt_sha256_lanes.c with
 *   LNAME  function name         LV   vector type         LL  lanes (8 or 16)
 *   LTGT   target attribute      and the op macros VADD, VXOR, VAND, VOR, VSRL, VSLL, VSET1,
 *          VLOAD, VSTORE, VROTR, VXOR3, VCH, and (with LTERNLOG) VMAJ.
 * Processes exactly LL candidates (8 initial words each, lane l = candidate l); out_w gets 8
 * digest words each. The block-2 schedule (candidate independent) is computed LL counts at a
 * time, vectorised across counts, into a table from which each round broadcasts its word.
 */

#define LBSIG0(a) VXOR3(VROTR(a, 2), VROTR(a, 13), VROTR(a, 22))
#define LBSIG1(e) VXOR3(VROTR(e, 6), VROTR(e, 11), VROTR(e, 25))
#define LSSIG0(x) VXOR3(VROTR(x, 7), VROTR(x, 18), VSRL(x, 3))
#define LSSIG1(x) VXOR3(VROTR(x, 17), VROTR(x, 19), VSRL(x, 10))

#ifdef LTERNLOG
#define LRND(a, b, c, d, e, f, g, h, wk, bcin, about)                                              \
    do {                                                                                       \
        LV t1_ = VADD(VADD(h, LBSIG1(e)), VADD(VCH(e, f, g), (wk)));                           \
        LV t2_ = VADD(LBSIG0(a), VMAJ(a, b, c));                                               \
        d = VADD(d, t1_);                                                                      \
        h = VADD(t1_, t2_);                                                                    \
    } while (0)
#else
/* Maj(a,b,c) = b ^ ((a^b) & (b^c)); this round's a^b is the next round's b^c */
#define LRND(a, b, c, d, e, f, g, h, wk, bcin, about)                                              \
    do {                                                                                       \
        LV t1_ = VADD(VADD(h, LBSIG1(e)), VADD(VCH(e, f, g), (wk)));                           \
        LV t2_;                                                                                \
        about = VXOR(a, b);                                                                    \
        t2_ = VADD(LBSIG0(a), VXOR(b, VAND(about, bcin)));                                     \
        d = VADD(d, t1_);                                                                      \
        h = VADD(t1_, t2_);                                                                    \
    } while (0)
#endif

#define LRND8(WK, i0)                                                                              \
    do {                                                                                       \
        LV wk_;                                                                                \
        WK(wk_, (i0) + 0);                                                                     \
        LRND(a, b, c, d, e, f, g, h, wk_, x0, x1);                                             \
        WK(wk_, (i0) + 1);                                                                     \
        LRND(h, a, b, c, d, e, f, g, wk_, x1, x0);                                             \
        WK(wk_, (i0) + 2);                                                                     \
        LRND(g, h, a, b, c, d, e, f, wk_, x0, x1);                                             \
        WK(wk_, (i0) + 3);                                                                     \
        LRND(f, g, h, a, b, c, d, e, wk_, x1, x0);                                             \
        WK(wk_, (i0) + 4);                                                                     \
        LRND(e, f, g, h, a, b, c, d, wk_, x0, x1);                                             \
        WK(wk_, (i0) + 5);                                                                     \
        LRND(d, e, f, g, h, a, b, c, wk_, x1, x0);                                             \
        WK(wk_, (i0) + 6);                                                                     \
        LRND(c, d, e, f, g, h, a, b, wk_, x0, x1);                                             \
        WK(wk_, (i0) + 7);                                                                     \
        LRND(b, c, d, e, f, g, h, a, wk_, x1, x0);                                             \
    } while (0)

#define LWNEXT(w, t)                                                                               \
    (w)[(t)&15] = VADD(VADD(LSSIG1((w)[((t)-2) & 15]), (w)[((t)-7) & 15]),                     \
                       VADD(LSSIG0((w)[((t)-15) & 15]), (w)[(t)&15]))

/* block-1 message word + K for round i */
#define B1WK(dst, i)                                                                               \
    do {                                                                                       \
        if ((i) < 8) {                                                                         \
            dst = VADD(w[i], VSET1(bt_sha256_k[i]));                                           \
        } else if ((i) < 16) {                                                                 \
            dst = ck[((i)-8) & 7];                                                             \
        } else {                                                                               \
            LWNEXT(w, i);                                                                      \
            dst = VADD(w[(i)&15], VSET1(bt_sha256_k[i]));                                      \
        }                                                                                      \
    } while (0)

/* block-2 message word + K for round i: a broadcast from the table */
#define B2WK(dst, i) dst = VSET1(tb[(i)*LL + col])

LTGT BT_NOINLINE static void LNAME(const uint32_t *init_w, const uint32_t salt_w[4],
                                   uint64_t rounds, uint32_t *out_w)
{
    BT_ALIGN(64) uint32_t tb[64 * LL];
    BT_ALIGN(64) uint32_t tmp[8 * LL];
    LV hv[8], cv[8], ck[8];
    uint64_t cnt0;
    int i, l;

    /* transpose the candidates into lanes */
    for (i = 0; i < 8; i++)
        for (l = 0; l < LL; l++)
            tmp[i * LL + l] = init_w[8 * l + i];
    for (i = 0; i < 8; i++) {
        cv[i] = VLOAD(tmp + i * LL);
        ck[i] = VADD(cv[i], VSET1(bt_sha256_k[8 + i]));
        hv[i] = VSET1(0);
    }

    for (cnt0 = 0; cnt0 < rounds; cnt0 += LL) {
        int nc = rounds - cnt0 < (uint64_t)LL ? (int)(rounds - cnt0) : LL, col;
        /* schedule of block 2 for counts cnt0 .. cnt0+LL-1, one count per lane */
        {
            LV w[16];
            BT_ALIGN(64) uint32_t c_lo[LL], c_hi[LL];
            for (l = 0; l < LL; l++) {
                uint64_t cc = cnt0 + (uint64_t)l;
                c_lo[l] = bt_bswap32((uint32_t)cc);
                c_hi[l] = bt_bswap32((uint32_t)(cc >> 32));
            }
            w[0] = VSET1(salt_w[0]);
            w[1] = VSET1(salt_w[1]);
            w[2] = VSET1(salt_w[2]);
            w[3] = VSET1(salt_w[3]);
            w[4] = VLOAD(c_lo);
            w[5] = VLOAD(c_hi);
            w[6] = VSET1(0x80000000u);
            for (i = 7; i < 15; i++)
                w[i] = VSET1(0);
            w[15] = VSET1(88 * 8);
            BT_UNROLL(64)
            for (i = 0; i < 64; i++) {
                if (i >= 16)
                    LWNEXT(w, i);
                VSTORE(tb + i * LL, VADD(w[i & 15], VSET1(bt_sha256_k[i])));
            }
        }
        for (col = 0; col < nc; col++) {
            LV a, b, c, d, e, f, g, h, x0, x1, w[16];
            LV m0, m1, m2, m3, m4, m5, m6, m7;
            /* block 1: last hash || initial, from the IV */
            for (i = 0; i < 8; i++) {
                w[i] = hv[i];
                w[8 + i] = cv[i];
            }
            a = VSET1(bt_sha256_iv[0]);
            b = VSET1(bt_sha256_iv[1]);
            c = VSET1(bt_sha256_iv[2]);
            d = VSET1(bt_sha256_iv[3]);
            e = VSET1(bt_sha256_iv[4]);
            f = VSET1(bt_sha256_iv[5]);
            g = VSET1(bt_sha256_iv[6]);
            h = VSET1(bt_sha256_iv[7]);
            x0 = VXOR(b, c);
            x1 = x0;
            BT_UNROLL(8)
            for (i = 0; i < 64; i += 8)
                LRND8(B1WK, i);
            m0 = a = VADD(a, VSET1(bt_sha256_iv[0]));
            m1 = b = VADD(b, VSET1(bt_sha256_iv[1]));
            m2 = c = VADD(c, VSET1(bt_sha256_iv[2]));
            m3 = d = VADD(d, VSET1(bt_sha256_iv[3]));
            m4 = e = VADD(e, VSET1(bt_sha256_iv[4]));
            m5 = f = VADD(f, VSET1(bt_sha256_iv[5]));
            m6 = g = VADD(g, VSET1(bt_sha256_iv[6]));
            m7 = h = VADD(h, VSET1(bt_sha256_iv[7]));
            /* block 2: salt || count || padding, shared schedule */
            x0 = VXOR(b, c);
            x1 = x0;
            BT_UNROLL(8)
            for (i = 0; i < 64; i += 8)
                LRND8(B2WK, i);
            hv[0] = VADD(a, m0);
            hv[1] = VADD(b, m1);
            hv[2] = VADD(c, m2);
            hv[3] = VADD(d, m3);
            hv[4] = VADD(e, m4);
            hv[5] = VADD(f, m5);
            hv[6] = VADD(g, m6);
            hv[7] = VADD(h, m7);
            (void)x0;
            (void)x1;
        }
    }

    for (i = 0; i < 8; i++)
        VSTORE(tmp + i * LL, hv[i]);
    for (i = 0; i < 8; i++)
        for (l = 0; l < LL; l++)
            out_w[8 * l + i] = tmp[i * LL + l];
    bt_wipe(tmp, sizeof tmp);
}

#undef LBSIG0
#undef LBSIG1
#undef LSSIG0
#undef LSSIG1
#undef LRND
#undef LRND8
#undef LWNEXT
#undef B1WK
#undef B2WK
#undef LNAME
#undef LV
#undef LL
#undef LTGT
