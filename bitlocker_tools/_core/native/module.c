/* bitlocker_tools._core._native: the C twin of bitlocker_tools/_core/_pure.py (plus the search
 * helpers). Same functions, same results; the GIL is released while
 * computing. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "bt_common.h"

static int g_stretch_path = BT_PATH_AUTO; /* forced stretch path, BT_PATH_AUTO = choose */
static int g_aes_path = 0;                /* 0 auto, 1 aesni, 2 scalar */

static const char *const stretch_names[] = {"auto", "scalar", "shani", "avx2", "avx512"};
static const char *const aes_names[] = {"auto", "aesni", "scalar"};

/* ---- helpers ------------------------------------------------------------------------------------ */

static int get_u64(PyObject *o, uint64_t *v, const char *what)
{
    PyObject *idx = PyNumber_Index(o);
    unsigned long long x;
    if (!idx)
        return -1;
    x = PyLong_AsUnsignedLongLong(idx);
    Py_DECREF(idx);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        /* OverflowError, like the pure code's numpy uint64 conversion */
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_OverflowError, "%s must be in 0 .. 2**64-1", what);
        }
        return -1;
    }
    *v = (uint64_t)x;
    return 0;
}

/* rounds: like range(rounds) in the pure code, a negative count means no round */
static int get_rounds(PyObject *o, uint64_t *v)
{
    PyObject *idx = PyNumber_Index(o);
    long long x;
    int overflow = 0;
    if (!idx)
        return -1;
    x = PyLong_AsLongLongAndOverflow(idx, &overflow);
    Py_DECREF(idx);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow < 0 || (!overflow && x < 0)) {
        *v = 0;
        return 0;
    }
    if (!overflow) {
        *v = (uint64_t)x;
        return 0;
    }
    return get_u64(o, v, "rounds");
}

static void words_from_be(uint32_t *w, const uint8_t *p, size_t nwords)
{
    size_t i;
    for (i = 0; i < nwords; i++)
        w[i] = bt_load_be32(p + 4 * i);
}

static int aes_use_ni(void)
{
    if (g_aes_path == 2)
        return 0;
    return bt_cpu.aesni;
}

/* Choose the stretch for n candidates under the current forced path. With the GIL held. */
static int effective_stretch_path(size_t n)
{
    if (g_stretch_path != BT_PATH_AUTO)
        return g_stretch_path;
    if (n == 1 && bt_cpu.sha_ni)
        return BT_PATH_SHANI;
    return BT_PATH_AUTO;
}

/* Core of stretch / stretch_many: n candidates of 32 bytes at `init` (contiguous). */
static PyObject *do_stretch(const uint8_t *init, size_t n, const uint8_t *salt, uint64_t rounds,
                            int as_list)
{
    uint32_t *in_w = NULL, *out_w = NULL, salt_w[4];
    PyObject *res = NULL;
    size_t i;
    int path, rc;
    in_w = (uint32_t *)PyMem_Malloc((n ? n : 1) * 32);
    out_w = (uint32_t *)PyMem_Malloc((n ? n : 1) * 32);
    if (!in_w || !out_w) {
        PyErr_NoMemory();
        goto done;
    }
    words_from_be(in_w, init, 8 * n);
    words_from_be(salt_w, salt, 4);
    path = effective_stretch_path(n);
    if (n == 1 && path == BT_PATH_SHANI) {
        int k = bt_stretch_find_kernel("shani1");
        Py_BEGIN_ALLOW_THREADS
        bt_stretch_run_kernel(k, in_w, 1, salt_w, rounds, out_w);
        Py_END_ALLOW_THREADS
        rc = 0;
    } else {
        /* the planner compares kernels by their measured speed: measure once per process
         * (about 20 ms), with the GIL held so that it happens once */
        if (path == BT_PATH_AUTO || path == BT_PATH_SHANI || path == BT_PATH_AVX512)
            bt_stretch_calibrate();
        Py_BEGIN_ALLOW_THREADS
        rc = bt_stretch_plan_run(path, in_w, n, salt_w, rounds, out_w);
        Py_END_ALLOW_THREADS
    }
    if (rc == -1) {
        PyErr_Format(PyExc_RuntimeError, "stretch path %s is not available on this CPU",
                     stretch_names[path]);
        goto done;
    }
    if (rc == -2) {
        PyErr_NoMemory();
        goto done;
    }
    if (as_list) {
        res = PyList_New((Py_ssize_t)n);
        if (!res)
            goto done;
    }
    for (i = 0; i < n; i++) {
        uint8_t digest[32];
        PyObject *b;
        int k;
        for (k = 0; k < 8; k++)
            bt_store_be32(digest + 4 * k, out_w[8 * i + (size_t)k]);
        b = PyBytes_FromStringAndSize((const char *)digest, 32);
        bt_wipe(digest, sizeof digest);
        if (!b) {
            Py_CLEAR(res);
            goto done;
        }
        if (as_list)
            PyList_SET_ITEM(res, (Py_ssize_t)i, b);
        else
            res = b;
    }
done:
    if (in_w) {
        bt_wipe(in_w, (n ? n : 1) * 32);
        PyMem_Free(in_w);
    }
    if (out_w) {
        bt_wipe(out_w, (n ? n : 1) * 32);
        PyMem_Free(out_w);
    }
    bt_wipe(salt_w, sizeof salt_w);
    return res;
}

/* ---- stretch ------------------------------------------------------------------------------------- */

PyDoc_STRVAR(stretch_doc,
             "stretch(initial, salt, rounds) -> bytes\n\n"
             "BitLocker key stretch: `rounds` SHA-256 calls over last_hash(32) || initial(32) ||\n"
             "salt(16) || LE64(count); returns the last hash. initial: 32 bytes, salt: 16 bytes.");

static PyObject *py_stretch(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"initial", "salt", "rounds", NULL};
    Py_buffer ini, salt;
    PyObject *rounds_o, *res = NULL;
    uint64_t rounds;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*O:stretch", kwlist, &ini, &salt, &rounds_o))
        return NULL;
    if (ini.len != 32 || salt.len != 16) {
        PyErr_SetString(PyExc_ValueError, "initial must be 32 bytes and salt 16 bytes");
        goto done;
    }
    if (get_rounds(rounds_o, &rounds) < 0)
        goto done;
    res = do_stretch((const uint8_t *)ini.buf, 1, (const uint8_t *)salt.buf, rounds, 0);
done:
    PyBuffer_Release(&ini);
    PyBuffer_Release(&salt);
    return res;
}

PyDoc_STRVAR(stretch_many_doc,
             "stretch_many(initials, salt, rounds) -> list[bytes]\n\n"
             "stretch() for many candidates at once (several chains in flight: pipelined SHA-NI\n"
             "or one candidate per SIMD lane). Same results as [stretch(i, salt, rounds) for i in\n"
             "initials]. Releases the GIL: use threads to spread batches over cores.");

static PyObject *py_stretch_many(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"initials", "salt", "rounds", NULL};
    PyObject *seq_o, *rounds_o, *seq = NULL, *res = NULL;
    Py_buffer salt;
    uint8_t *flat = NULL;
    Py_ssize_t n, i;
    uint64_t rounds;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oy*O:stretch_many", kwlist, &seq_o, &salt,
                                     &rounds_o))
        return NULL;
    if (salt.len != 16) {
        PyErr_SetString(PyExc_ValueError, "salt must be 16 bytes");
        goto done;
    }
    if (get_rounds(rounds_o, &rounds) < 0)
        goto done;
    seq = PySequence_Fast(seq_o, "initials must be an iterable of bytes");
    if (!seq)
        goto done;
    n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0) {
        res = PyList_New(0);
        goto done;
    }
    flat = (uint8_t *)PyMem_Malloc((size_t)n * 32);
    if (!flat) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < n; i++) {
        Py_buffer b;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &b, PyBUF_SIMPLE) < 0)
            goto done;
        if (b.len != 32) {
            PyBuffer_Release(&b);
            PyErr_Format(PyExc_ValueError, "initials[%zd] must be 32 bytes", i);
            goto done;
        }
        memcpy(flat + 32 * i, b.buf, 32);
        PyBuffer_Release(&b);
    }
    res = do_stretch(flat, (size_t)n, (const uint8_t *)salt.buf, rounds, 1);
done:
    if (flat) {
        bt_wipe(flat, n ? (size_t)n * 32 : 1);
        PyMem_Free(flat);
    }
    Py_XDECREF(seq);
    PyBuffer_Release(&salt);
    return res;
}

PyDoc_STRVAR(stretch_kernel_doc,
             "_stretch_kernel(name, initials, salt, rounds) -> list[bytes]\n\n"
             "Benchmark hook: run one named kernel (see features()['kernels']) over the\n"
             "candidates, padding its last call.");

static PyObject *py_stretch_kernel(PyObject *self, PyObject *args)
{
    const char *name;
    PyObject *seq_o, *rounds_o, *seq = NULL, *res = NULL;
    Py_buffer salt;
    uint32_t *in_w = NULL, *out_w = NULL, salt_w[4];
    Py_ssize_t n = 0, i;
    uint64_t rounds;
    int k;
    size_t lanes, done_;
    (void)self;
    if (!PyArg_ParseTuple(args, "sOy*O:_stretch_kernel", &name, &seq_o, &salt, &rounds_o))
        return NULL;
    k = bt_stretch_find_kernel(name);
    if (k < 0 || !bt_stretch_kernel(k)->available) {
        PyErr_Format(PyExc_ValueError, "kernel %s unknown or not available", name);
        goto done;
    }
    if (salt.len != 16) {
        PyErr_SetString(PyExc_ValueError, "salt must be 16 bytes");
        goto done;
    }
    if (get_rounds(rounds_o, &rounds) < 0)
        goto done;
    seq = PySequence_Fast(seq_o, "initials must be an iterable of bytes");
    if (!seq)
        goto done;
    n = PySequence_Fast_GET_SIZE(seq);
    in_w = (uint32_t *)PyMem_Malloc(n ? (size_t)n * 32 : 1);
    out_w = (uint32_t *)PyMem_Malloc(n ? (size_t)n * 32 : 1);
    if (!in_w || !out_w) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < n; i++) {
        Py_buffer b;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &b, PyBUF_SIMPLE) < 0)
            goto done;
        if (b.len != 32) {
            PyBuffer_Release(&b);
            PyErr_Format(PyExc_ValueError, "initials[%zd] must be 32 bytes", i);
            goto done;
        }
        words_from_be(in_w + 8 * i, (const uint8_t *)b.buf, 8);
        PyBuffer_Release(&b);
    }
    words_from_be(salt_w, (const uint8_t *)salt.buf, 4);
    lanes = (size_t)bt_stretch_kernel(k)->lanes;
    Py_BEGIN_ALLOW_THREADS
    for (done_ = 0; done_ < (size_t)n; done_ += lanes) {
        size_t take = (size_t)n - done_ < lanes ? (size_t)n - done_ : lanes;
        bt_stretch_run_kernel(k, in_w + 8 * done_, take, salt_w, rounds, out_w + 8 * done_);
    }
    Py_END_ALLOW_THREADS
    res = PyList_New(n);
    if (!res)
        goto done;
    for (i = 0; i < n; i++) {
        uint8_t digest[32];
        PyObject *b;
        int w;
        for (w = 0; w < 8; w++)
            bt_store_be32(digest + 4 * w, out_w[8 * i + w]);
        b = PyBytes_FromStringAndSize((const char *)digest, 32);
        if (!b) {
            Py_CLEAR(res);
            goto done;
        }
        PyList_SET_ITEM(res, i, b);
    }
done:
    if (in_w) {
        bt_wipe(in_w, n ? (size_t)n * 32 : 1);
        PyMem_Free(in_w);
    }
    if (out_w) {
        bt_wipe(out_w, n ? (size_t)n * 32 : 1);
        PyMem_Free(out_w);
    }
    Py_XDECREF(seq);
    PyBuffer_Release(&salt);
    return res;
}

/* ---- sector crypto ----------------------------------------------------------------------------- */

/* Validate and run one crypt into `out` (len bytes, may equal `in`). 0 ok, -1 error set. */
static int do_crypt(int method, const uint8_t *key, Py_ssize_t klen, const uint8_t *in,
                    uint8_t *out, Py_ssize_t len, uint64_t offset, Py_ssize_t ss, int decrypt)
{
    bt_aes_key *k = NULL;
    size_t n = (size_t)(len / ss);
    int ni = aes_use_ni(), rc = 0;
    Py_ssize_t half = klen / 2;
    if (len == 0)
        return 0;
    if (method < 0x8000 || method > 0x8005) {
        PyErr_Format(PyExc_ValueError, "unsupported method %#x", method);
        return -1;
    }
    /* two schedules, aligned (PyMem_Malloc gives 16-byte alignment on common platforms; the
     * AES-NI code uses aligned loads, so align by hand) */
    {
        void *raw = PyMem_Malloc(2 * sizeof(bt_aes_key) + 16);
        if (!raw) {
            PyErr_NoMemory();
            return -1;
        }
        k = (bt_aes_key *)(((uintptr_t)raw + 15) & ~(uintptr_t)15);
        if (method == 0x8002 || method == 0x8003) {
            if (bt_aes_setkey(&k[0], key, (size_t)klen, ni) < 0)
                rc = -1;
        } else {
            if (klen % 2 || bt_aes_setkey(&k[0], key, (size_t)half, ni) < 0 ||
                bt_aes_setkey(&k[1], key + half, (size_t)half, ni) < 0)
                rc = -1;
        }
        if (rc == 0 && (method == 0x8000 || method == 0x8001) && ss % 32) {
            PyErr_SetString(PyExc_ValueError,
                            "sector_size must be a multiple of 32 for the Elephant diffuser");
            rc = -2;
        }
        if (rc == 0) {
            Py_BEGIN_ALLOW_THREADS
            if (method == 0x8002 || method == 0x8003)
                bt_cbc_sectors(&k[0], in, out, n, (size_t)ss, offset, decrypt);
            else if (method == 0x8004 || method == 0x8005)
                bt_xts_sectors(&k[0], &k[1], in, out, n, (size_t)ss, offset / (uint64_t)ss,
                               decrypt);
            else
                bt_elephant_sectors(&k[0], &k[1], in, out, n, (size_t)ss, offset, decrypt);
            Py_END_ALLOW_THREADS
        } else if (rc == -1) {
            PyErr_Format(PyExc_ValueError, "invalid AES key length (%zd bytes) for method %#x",
                         klen, method);
        }
        bt_wipe(k, 2 * sizeof(bt_aes_key));
        PyMem_Free(raw);
    }
    return rc ? -1 : 0;
}

static int check_sizes(Py_ssize_t len, Py_ssize_t ss)
{
    if (ss <= 0 || ss % 16) {
        PyErr_SetString(PyExc_ValueError, "sector_size must be a positive multiple of 16");
        return -1;
    }
    if (len % ss) {
        PyErr_SetString(PyExc_ValueError, "data must be a whole number of sectors");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(crypt_sectors_doc,
             "crypt_sectors(method, key, data, offset, sector_size, decrypt=True) -> bytearray\n\n"
             "Decrypt (or encrypt) whole sectors stored at volume byte `offset`. key: CBC the\n"
             "FVEK; XTS key1||key2; diffuser FVEK||TWEAK (two equal halves). data: any\n"
             "contiguous buffer.");

static PyObject *py_crypt_sectors(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"method", "key", "data", "offset", "sector_size", "decrypt", NULL};
    int method, decrypt = 1;
    Py_buffer key, data;
    PyObject *offset_o, *res = NULL;
    Py_ssize_t ss;
    uint64_t offset;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iy*y*On|p:crypt_sectors", kwlist, &method, &key,
                                     &data, &offset_o, &ss, &decrypt))
        return NULL;
    if (check_sizes(data.len, ss) < 0 || get_u64(offset_o, &offset, "offset") < 0)
        goto done;
    res = PyByteArray_FromStringAndSize(NULL, data.len);
    if (!res)
        goto done;
    if (do_crypt(method, (const uint8_t *)key.buf, key.len, (const uint8_t *)data.buf,
                 (uint8_t *)PyByteArray_AS_STRING(res), data.len, offset, ss, decrypt) < 0)
        Py_CLEAR(res);
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return res;
}

PyDoc_STRVAR(crypt_sectors_into_doc,
             "crypt_sectors_into(method, key, data, offset, sector_size, decrypt, out) -> None\n\n"
             "crypt_sectors() writing into `out`, a writable buffer of the same length (it may\n"
             "be `data` itself, for in-place work). Avoids an allocation per call.");

static PyObject *py_crypt_sectors_into(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"method", "key",     "data", "offset",
                             "sector_size", "decrypt", "out",  NULL};
    int method, decrypt = 1;
    Py_buffer key, data, out;
    PyObject *offset_o, *res = NULL;
    Py_ssize_t ss;
    uint64_t offset;
    uint8_t *tmp = NULL;
    const uint8_t *src;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iy*y*Onpw*:crypt_sectors_into", kwlist, &method,
                                     &key, &data, &offset_o, &ss, &decrypt, &out))
        return NULL;
    if (check_sizes(data.len, ss) < 0 || get_u64(offset_o, &offset, "offset") < 0)
        goto done;
    if (out.len != data.len) {
        PyErr_SetString(PyExc_ValueError, "out must have the same length as data");
        goto done;
    }
    src = (const uint8_t *)data.buf;
    {
        uintptr_t a = (uintptr_t)data.buf, b = (uintptr_t)out.buf, l = (uintptr_t)data.len;
        if (a != b && a < b + l && b < a + l) { /* partial overlap: work from a copy */
            tmp = (uint8_t *)PyMem_Malloc((size_t)data.len);
            if (!tmp) {
                PyErr_NoMemory();
                goto done;
            }
            memcpy(tmp, data.buf, (size_t)data.len);
            src = tmp;
        }
    }
    if (do_crypt(method, (const uint8_t *)key.buf, key.len, src, (uint8_t *)out.buf, data.len,
                 offset, ss, decrypt) == 0) {
        res = Py_None;
        Py_INCREF(res);
    }
done:
    if (tmp) {
        bt_wipe(tmp, (size_t)data.len);
        PyMem_Free(tmp);
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return res;
}

/* ---- key blobs ------------------------------------------------------------------------------------ */

static int ccm_args(Py_buffer *key, Py_buffer *nonce, Py_buffer *data)
{
    if (key->len != 16 && key->len != 24 && key->len != 32) {
        PyErr_Format(PyExc_ValueError, "invalid AES key length (%zd bytes)", key->len);
        return -1;
    }
    if (nonce->len != 12) {
        PyErr_SetString(PyExc_ValueError, "the nonce must be 12 bytes");
        return -1;
    }
    if (data->len >= (1 << 24)) {
        PyErr_SetString(PyExc_ValueError, "data too long for a 3-byte CCM length");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(ccm_decrypt_doc,
             "ccm_decrypt(key, nonce, data, mac) -> bytes | None\n\n"
             "AES-CCM decryption of a BitLocker key blob (12-byte nonce, 16-byte tag, no\n"
             "associated data); None when the tag does not verify.");

static PyObject *py_ccm_decrypt(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"key", "nonce", "data", "mac", NULL};
    Py_buffer key, nonce, data, mac;
    PyObject *res = NULL;
    uint8_t *out = NULL;
    int rc;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*y*y*:ccm_decrypt", kwlist, &key, &nonce, &data,
                                     &mac))
        return NULL;
    if (ccm_args(&key, &nonce, &data) < 0)
        goto done;
    if (mac.len != 16) {
        PyErr_SetString(PyExc_ValueError, "the tag must be 16 bytes");
        goto done;
    }
    out = (uint8_t *)PyMem_Malloc(data.len ? (size_t)data.len : 1);
    if (!out) {
        PyErr_NoMemory();
        goto done;
    }
    rc = bt_ccm_decrypt((const uint8_t *)key.buf, (size_t)key.len, (const uint8_t *)nonce.buf,
                        (const uint8_t *)data.buf, (size_t)data.len, (const uint8_t *)mac.buf, out,
                        aes_use_ni());
    if (rc == 0)
        res = PyBytes_FromStringAndSize((const char *)out, data.len);
    else {
        res = Py_None;
        Py_INCREF(res);
    }
done:
    if (out) {
        bt_wipe(out, data.len ? (size_t)data.len : 1);
        PyMem_Free(out);
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&nonce);
    PyBuffer_Release(&data);
    PyBuffer_Release(&mac);
    return res;
}

PyDoc_STRVAR(ccm_encrypt_doc,
             "ccm_encrypt(key, nonce, data) -> (ciphertext, mac)\n\n"
             "AES-CCM encryption as BitLocker wraps a key (used by the fixture forge).");

static PyObject *py_ccm_encrypt(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"key", "nonce", "data", NULL};
    Py_buffer key, nonce, data;
    PyObject *res = NULL, *ct;
    uint8_t mac[16];
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*y*:ccm_encrypt", kwlist, &key, &nonce, &data))
        return NULL;
    if (ccm_args(&key, &nonce, &data) < 0)
        goto done;
    ct = PyBytes_FromStringAndSize(NULL, data.len);
    if (!ct)
        goto done;
    bt_ccm_encrypt((const uint8_t *)key.buf, (size_t)key.len, (const uint8_t *)nonce.buf,
                   (const uint8_t *)data.buf, (size_t)data.len, (uint8_t *)PyBytes_AS_STRING(ct),
                   mac, aes_use_ni());
    res = Py_BuildValue("(Ny#)", ct, (const char *)mac, (Py_ssize_t)16);
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&nonce);
    PyBuffer_Release(&data);
    return res;
}

PyDoc_STRVAR(diffuser_test_doc,
             "_diffuser_test(which, decrypt, data) -> bytearray\n\n"
             "Run Elephant diffuser 'a' or 'b' alone over `data` as one sector (test hook).");

static PyObject *py_diffuser_test(PyObject *self, PyObject *args)
{
    const char *which;
    int decrypt;
    Py_buffer data;
    PyObject *res = NULL;
    uint8_t *p;
    size_t nw;
    (void)self;
    if (!PyArg_ParseTuple(args, "spy*:_diffuser_test", &which, &decrypt, &data))
        return NULL;
    if (data.len < 32 || data.len % 16) {
        PyErr_SetString(PyExc_ValueError, "data must be a multiple of 16 bytes, at least 32");
        goto done;
    }
    if (strcmp(which, "a") != 0 && strcmp(which, "b") != 0) {
        PyErr_SetString(PyExc_ValueError, "which must be 'a' or 'b'");
        goto done;
    }
    res = PyByteArray_FromStringAndSize((const char *)data.buf, data.len);
    if (!res)
        goto done;
    p = (uint8_t *)PyByteArray_AS_STRING(res);
    nw = (size_t)data.len / 4;
    if (which[0] == 'a') {
        if (decrypt)
            bt_diffuser_a_decrypt(p, nw);
        else
            bt_diffuser_a_encrypt(p, nw);
    } else {
        if (decrypt)
            bt_diffuser_b_decrypt(p, nw);
        else
            bt_diffuser_b_encrypt(p, nw);
    }
done:
    PyBuffer_Release(&data);
    return res;
}

/* ---- candidate helpers ---------------------------------------------------------------------------- */

PyDoc_STRVAR(sha256_many_doc,
             "sha256_many(data, item_len) -> bytes\n\n"
             "SHA-256 of each consecutive item_len-byte item of data, digests concatenated.");

static PyObject *py_sha256_many(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "item_len", NULL};
    Py_buffer data;
    Py_ssize_t item_len, n;
    PyObject *res = NULL;
    int shani;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*n:sha256_many", kwlist, &data, &item_len))
        return NULL;
    if (item_len <= 0 || data.len % item_len) {
        PyErr_SetString(PyExc_ValueError,
                        "item_len must be positive and divide the length of data");
        goto done;
    }
    n = data.len / item_len;
    if (n > PY_SSIZE_T_MAX / 32) {
        PyErr_NoMemory();
        goto done;
    }
    res = PyBytes_FromStringAndSize(NULL, n * 32);
    if (!res)
        goto done;
    shani = bt_cpu.sha_ni && (g_stretch_path == BT_PATH_AUTO || g_stretch_path == BT_PATH_SHANI);
    Py_BEGIN_ALLOW_THREADS
    bt_sha256_many((const uint8_t *)data.buf, (size_t)item_len, (size_t)n,
                   (uint8_t *)PyBytes_AS_STRING(res), shani);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&data);
    return res;
}

PyDoc_STRVAR(expand_groups_doc,
             "expand_groups(groups) -> bytes\n\n"
             "groups: 8 lists of candidate 16-bit words (recovery-password group / 11). Returns\n"
             "the key16 (8 little-endian u16) of every combination, concatenated, in\n"
             "lexicographic order with group 0 slowest.");

static PyObject *py_expand_groups(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"groups", NULL};
    PyObject *arg, *seq = NULL, *res = NULL;
    uint16_t *vals[8] = {NULL};
    size_t cnt[8], total = 1;
    int g;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:expand_groups", kwlist, &arg))
        return NULL;
    seq = PySequence_Fast(arg, "groups must be a sequence of 8 sequences of ints");
    if (!seq)
        return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != 8) {
        PyErr_SetString(PyExc_ValueError, "groups must hold exactly 8 groups");
        goto done;
    }
    for (g = 0; g < 8; g++) {
        PyObject *grp = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, g),
                                        "each group must be a sequence of ints");
        Py_ssize_t m, i;
        if (!grp)
            goto done;
        m = PySequence_Fast_GET_SIZE(grp);
        vals[g] = (uint16_t *)PyMem_Malloc(m ? (size_t)m * 2 : 1);
        if (!vals[g]) {
            Py_DECREF(grp);
            PyErr_NoMemory();
            goto done;
        }
        for (i = 0; i < m; i++) {
            long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(grp, i));
            if (v == -1 && PyErr_Occurred()) {
                Py_DECREF(grp);
                goto done;
            }
            if (v < 0 || v > 0xffff) {
                Py_DECREF(grp);
                PyErr_Format(PyExc_ValueError, "group %d: word %ld is not in 0..65535", g, v);
                goto done;
            }
            vals[g][i] = (uint16_t)v;
        }
        Py_DECREF(grp);
        cnt[g] = (size_t)m;
    }
    for (g = 0; g < 8; g++) {
        if (cnt[g] == 0) {
            total = 0;
            break;
        }
        if (total > (size_t)PY_SSIZE_T_MAX / 16 / cnt[g]) {
            PyErr_SetString(PyExc_OverflowError, "too many combinations");
            goto done;
        }
        total *= cnt[g];
    }
    res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(total * 16));
    if (!res || total == 0)
        goto done;
    {
        uint8_t *o = (uint8_t *)PyBytes_AS_STRING(res);
        Py_BEGIN_ALLOW_THREADS
        size_t idx[8] = {0}, r, j;
        for (r = 0; r < total; r += cnt[7]) {
            uint8_t prefix[14];
            for (g = 0; g < 7; g++) {
                prefix[2 * g] = (uint8_t)vals[g][idx[g]];
                prefix[2 * g + 1] = (uint8_t)(vals[g][idx[g]] >> 8);
            }
            for (j = 0; j < cnt[7]; j++) {
                memcpy(o, prefix, 14);
                o[14] = (uint8_t)vals[7][j];
                o[15] = (uint8_t)(vals[7][j] >> 8);
                o += 16;
            }
            for (g = 6; g >= 0; g--) { /* odometer over groups 6..0 */
                if (++idx[g] < cnt[g])
                    break;
                idx[g] = 0;
            }
        }
        Py_END_ALLOW_THREADS
    }
done:
    for (g = 0; g < 8; g++)
        if (vals[g])
            PyMem_Free(vals[g]);
    Py_XDECREF(seq);
    if (PyErr_Occurred())
        Py_CLEAR(res);
    return res;
}

/* ---- features / paths ------------------------------------------------------------------------------ */

static const char *stretch_path_for(size_t n)
{
    int p = effective_stretch_path(n);
    return stretch_names[p];
}

PyDoc_STRVAR(features_doc,
             "features() -> dict\n\n"
             "CPU paths available (sha_ni, aesni, avx2, avx512, vaes), the forced paths\n"
             "('stretch', 'aes': 'auto' unless set_paths() forced one), the kernels with their\n"
             "availability and calibrated ms per key ('kernels').");

static PyObject *py_features(PyObject *self, PyObject *noargs)
{
    PyObject *d, *kd;
    int i;
    (void)self;
    (void)noargs;
    d = Py_BuildValue("{s:O,s:O,s:O,s:O,s:O,s:s,s:s,s:s,s:s,s:s}", "sha_ni",
                      bt_cpu.sha_ni ? Py_True : Py_False, "aesni", bt_cpu.aesni ? Py_True : Py_False,
                      "avx2", bt_cpu.avx2 ? Py_True : Py_False, "avx512",
                      bt_cpu.avx512 ? Py_True : Py_False, "vaes", bt_cpu.vaes ? Py_True : Py_False,
                      "stretch", stretch_names[g_stretch_path], "aes", aes_names[g_aes_path],
                      "stretch_single_path", stretch_path_for(1), "aes_path",
                      aes_use_ni() ? "aesni" : "scalar", "arch", BT_X86 ? "x86_64" : "portable");
    if (!d)
        return NULL;
    kd = PyDict_New();
    if (!kd) {
        Py_DECREF(d);
        return NULL;
    }
    for (i = 0; i < bt_stretch_nkernels(); i++) {
        bt_kinfo *k = bt_stretch_kernel(i);
        PyObject *v;
        if (!k->available)
            continue;
        v = Py_BuildValue("{s:i,s:s,s:d}", "lanes", k->lanes, "path", stretch_names[k->path],
                          "ms_per_key_estimate", k->cost * 1048576.0 * 1e3 / k->lanes);
        if (!v || PyDict_SetItemString(kd, k->name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(kd);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    if (PyDict_SetItemString(d, "kernels", kd) < 0) {
        Py_DECREF(kd);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(kd);
    return d;
}

PyDoc_STRVAR(calibrate_doc, "_calibrate() -> None\n\nMeasure the stretch kernels now (normally lazy).");

static PyObject *py_calibrate(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    bt_stretch_calibrate();
    Py_RETURN_NONE;
}

static int lookup(const char *const *names, int count, PyObject *o, int *out, const char *what)
{
    const char *s;
    int i;
    if (o == NULL || o == Py_None)
        return 0;
    s = PyUnicode_AsUTF8(o);
    if (!s)
        return -1;
    for (i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 1;
        }
    PyErr_Format(PyExc_ValueError, "unknown %s path %R", what, o);
    return -1;
}

PyDoc_STRVAR(set_paths_doc,
             "set_paths(stretch=None, aes=None) -> dict\n\n"
             "Force a code path for benchmarks and tests: stretch in 'auto', 'shani', 'avx512',\n"
             "'avx2', 'scalar'; aes in 'auto', 'aesni', 'scalar'. None leaves a setting as it is.\n"
             "Raises ValueError for a path this CPU lacks. Returns the previous settings, which\n"
             "can be passed back: set_paths(**previous).");

static PyObject *py_set_paths(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"stretch", "aes", NULL};
    PyObject *st = Py_None, *ae = Py_None, *prev;
    int sp = g_stretch_path, ap = g_aes_path, r;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:set_paths", kwlist, &st, &ae))
        return NULL;
    if ((r = lookup(stretch_names, 5, st, &sp, "stretch")) < 0)
        return NULL;
    if ((r = lookup(aes_names, 3, ae, &ap, "aes")) < 0)
        return NULL;
    if ((sp == BT_PATH_SHANI && !bt_cpu.sha_ni) || (sp == BT_PATH_AVX2 && !bt_cpu.avx2) ||
        (sp == BT_PATH_AVX512 && !bt_cpu.avx512)) {
        PyErr_Format(PyExc_ValueError, "stretch path %s is not available on this CPU",
                     stretch_names[sp]);
        return NULL;
    }
    if (ap == 1 && !bt_cpu.aesni) {
        PyErr_SetString(PyExc_ValueError, "aes path aesni is not available on this CPU");
        return NULL;
    }
    prev = Py_BuildValue("{s:s,s:s}", "stretch", stretch_names[g_stretch_path], "aes",
                         aes_names[g_aes_path]);
    if (!prev)
        return NULL;
    g_stretch_path = sp;
    g_aes_path = ap;
    return prev;
}

static PyMethodDef methods[] = {
    {"stretch", (PyCFunction)(void (*)(void))py_stretch, METH_VARARGS | METH_KEYWORDS, stretch_doc},
    {"stretch_many", (PyCFunction)(void (*)(void))py_stretch_many, METH_VARARGS | METH_KEYWORDS,
     stretch_many_doc},
    {"crypt_sectors", (PyCFunction)(void (*)(void))py_crypt_sectors, METH_VARARGS | METH_KEYWORDS,
     crypt_sectors_doc},
    {"crypt_sectors_into", (PyCFunction)(void (*)(void))py_crypt_sectors_into,
     METH_VARARGS | METH_KEYWORDS, crypt_sectors_into_doc},
    {"ccm_decrypt", (PyCFunction)(void (*)(void))py_ccm_decrypt, METH_VARARGS | METH_KEYWORDS,
     ccm_decrypt_doc},
    {"ccm_encrypt", (PyCFunction)(void (*)(void))py_ccm_encrypt, METH_VARARGS | METH_KEYWORDS,
     ccm_encrypt_doc},
    {"sha256_many", (PyCFunction)(void (*)(void))py_sha256_many, METH_VARARGS | METH_KEYWORDS,
     sha256_many_doc},
    {"expand_groups", (PyCFunction)(void (*)(void))py_expand_groups, METH_VARARGS | METH_KEYWORDS,
     expand_groups_doc},
    {"features", py_features, METH_NOARGS, features_doc},
    {"set_paths", (PyCFunction)(void (*)(void))py_set_paths, METH_VARARGS | METH_KEYWORDS,
     set_paths_doc},
    {"_diffuser_test", py_diffuser_test, METH_VARARGS, diffuser_test_doc},
    {"_stretch_kernel", py_stretch_kernel, METH_VARARGS, stretch_kernel_doc},
    {"_calibrate", py_calibrate, METH_NOARGS, calibrate_doc},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_native",
    "C core of bitlocker_tools: key stretching, sector crypto, candidate helpers.", -1, methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void)
{
    bt_aes_key probe;
    static const uint8_t zero_key[16] = {0};
    bt_cpu_detect();
    bt_aes_setkey(&probe, zero_key, 16, 0); /* builds the portable S-boxes once */
    bt_wipe(&probe, sizeof probe);
    return PyModule_Create(&moduledef);
}
