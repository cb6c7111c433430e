/* SHA-NI stretch kernel template, included by bt_sha256_shani.c with
 *   KNAME  function name
 *   KNA    number of chains in group A (>= 1)
 *   KNB    number of chains in group B (0 = plain interleaving of KNA chains)
 *   KTGT   target attribute
 * With KNB > 0 the groups are software-pipelined: while group A runs block 1 (own message
 * schedule, msg1/msg2) group B runs block 2 (shared precomputed schedule), and vice versa.
 * Candidates: KNA + KNB, 8 initial words each in init_w; out_w gets 8 digest words each.
 */

KTGT BT_NOINLINE static void KNAME(const uint32_t *init_w, const uint32_t salt_w[4],
                                   uint64_t rounds, uint32_t *out_w)
{
    __m128i lo[16], hi[16];
    __m128i iv0, iv1, salt0;
    __m128i aM0[KNA], aM1[KNA], aC2[KNA], aC3[KNA], aS0[KNA], aS1[KNA], aT0[KNA], aT1[KNA];
    __m128i aX[4][KNA];
#if KNB > 0
    __m128i bM0[KNB], bM1[KNB], bC2[KNB], bC3[KNB], bS0[KNB], bS1[KNB], bT0[KNB], bT1[KNB];
    __m128i bX[4][KNB];
#endif
    uint64_t cnt;
    int j;

    SHANI_LOAD_IV(iv0, iv1);
    salt0 = _mm_loadu_si128((const __m128i *)salt_w);
    BT_UNROLL(8)
    for (j = 0; j < KNA; j++) {
        aM0[j] = _mm_setzero_si128();
        aM1[j] = _mm_setzero_si128();
        aC2[j] = _mm_loadu_si128((const __m128i *)(init_w + 8 * j));
        aC3[j] = _mm_loadu_si128((const __m128i *)(init_w + 8 * j + 4));
    }
#if KNB > 0
    BT_UNROLL(8)
    for (j = 0; j < KNB; j++) {
        bM0[j] = _mm_setzero_si128();
        bM1[j] = _mm_setzero_si128();
        bC2[j] = _mm_loadu_si128((const __m128i *)(init_w + 8 * (KNA + j)));
        bC3[j] = _mm_loadu_si128((const __m128i *)(init_w + 8 * (KNA + j) + 4));
    }
    /* prologue: block 1 of count 0 for group B */
    B1_INIT(KNB, bS0, bS1, bX, bM0, bM1, bC2, bC3);
    {
        int i;
        BT_UNROLL(16)
        for (i = 0; i < 16; i++) {
            B1_STEP(i, KNB, bS0, bS1, bX);
        }
    }
    B1_FINISH(KNB, bS0, bS1, bT0, bT1);
#endif

    for (cnt = 0; cnt < rounds; cnt++) {
        int i;
        SHANI_B2_SCHEDULE(lo, hi, salt0, cnt);
        B1_INIT(KNA, aS0, aS1, aX, aM0, aM1, aC2, aC3);
        BT_UNROLL(16)
        for (i = 0; i < 16; i++) {
            B1_STEP(i, KNA, aS0, aS1, aX);
#if KNB > 0
            B2_STEP(i, KNB, bS0, bS1, lo, hi);
#endif
        }
        B1_FINISH(KNA, aS0, aS1, aT0, aT1);
#if KNB > 0
        B2_FINISH(KNB, bS0, bS1, bT0, bT1, bM0, bM1);
        B1_INIT(KNB, bS0, bS1, bX, bM0, bM1, bC2, bC3);
#endif
        BT_UNROLL(16)
        for (i = 0; i < 16; i++) {
            B2_STEP(i, KNA, aS0, aS1, lo, hi);
#if KNB > 0
            B1_STEP(i, KNB, bS0, bS1, bX);
#endif
        }
        B2_FINISH(KNA, aS0, aS1, aT0, aT1, aM0, aM1);
#if KNB > 0
        B1_FINISH(KNB, bS0, bS1, bT0, bT1);
#endif
    }

    BT_UNROLL(8)
    for (j = 0; j < KNA; j++) {
        _mm_storeu_si128((__m128i *)(out_w + 8 * j), aM0[j]);
        _mm_storeu_si128((__m128i *)(out_w + 8 * j + 4), aM1[j]);
    }
#if KNB > 0
    BT_UNROLL(8)
    for (j = 0; j < KNB; j++) {
        _mm_storeu_si128((__m128i *)(out_w + 8 * (KNA + j)), bM0[j]);
        _mm_storeu_si128((__m128i *)(out_w + 8 * (KNA + j) + 4), bM1[j]);
    }
#endif
}

#undef KNAME
#undef KNA
#undef KNB
#undef KTGT
