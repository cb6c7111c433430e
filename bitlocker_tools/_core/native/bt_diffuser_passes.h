/* The four Elephant diffuser passes, written once for any word type: included by bt_diffuser.c
 * with
 *   DW        the word type: uint32_t (one sector), or a GCC vector of 8 x u32 (8 sectors, one
 *             per lane, the same word index in every lane)
 *   DBUF      the buffer type the passes take;  D(i) / SET(i, v)  read / write word i
 *   DNAME(x)  the function name for pass x;      DTGT  a target attribute (or nothing)
 * The operators + - ^ << >> | act lane-wise on GCC vectors, so the code is the same. */

DTGT static void DNAME(a_decrypt_pass)(DBUF s, size_t n)
{
    DW p1, p2, p3, p4, p5;
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
        DW x0 = D(i) + (p2 ^ ROTL(p5, 9));
        DW x1 = D(i + 1) + (p1 ^ p4);
        DW x2 = D(i + 2) + (x0 ^ ROTL(p3, 13));
        DW x3 = D(i + 3) + (x1 ^ p2);
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

DTGT static void DNAME(a_encrypt_pass)(DBUF s, size_t n)
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

DTGT static void DNAME(b_decrypt_pass)(DBUF s, size_t n)
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

DTGT static void DNAME(b_encrypt_pass)(DBUF s, size_t n)
{
    DW q1, q2, q3, q4, q5;
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
        DW x3 = D(t) - (q2 ^ ROTL(q5, 25));
        DW x2 = D(t - 1) - (q1 ^ q4);
        DW x1 = D(t - 2) - (x3 ^ ROTL(q3, 10));
        DW x0 = D(t - 3) - (x2 ^ q2);
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

#undef DW
#undef DBUF
#undef D
#undef SET
#undef DNAME
#undef DTGT
