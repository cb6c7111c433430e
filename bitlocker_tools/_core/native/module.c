/* bitlocker_tools._core._native: the C twin of bitlocker_tools/_core/_pure.py (plus the search
 * helpers). Same functions, same results; the GIL is released while
 * computing.
 *
 * The module keeps no mutable state of its own. Which kernels a call uses is chosen per call: by
 * default from the CPU, or forced by the keyword-only test/benchmark arguments `_sha=` and
 * `_aes=` (kept out of the typed contract, bitlocker_tools/_core/_contract.py, because the pure
 * twin has no paths). The only process-wide data are the CPU features and the stretch planner's
 * one-time calibration, both written once with the GIL held (docs/architecture.md, "The C
 * core's process-wide state"), and, while the test hook _wipe_audit() runs and only then, its
 * list of freed buffers and the wipe switch (bt_cpu.c), both NULL/0 at all other times.
 *
 * Secrets: every heap scratch buffer is wiped as it is freed (scratch_release), every stack
 * buffer that held key material is wiped by the function that owns it, and each function wipes
 * the stack its kernels used once it is done (bt_burn_stack). Wipes run at the end of a call,
 * never per block. tests/test_secrets_native.py reads all of it back. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "bt_common.h"

/* `_sha=` names, indexed by BT_PATH_*; `_aes=` names */
static const char *const sha_names[] = {"auto", "scalar", "shani", "avx2", "avx512"};
static const char *const aes_names[] = {"auto", "aesni", "scalar"};
#define N_SHA_PATHS 5
#define N_AES_PATHS 3

/* ---- scratch buffers ------------------------------------------------------------------------------ */

/* Every heap buffer that holds key material (stretch inputs and outputs, AES schedules, a CCM
 * plaintext, candidate words) is given back through scratch_release(), which wipes it first: one
 * place that cannot forget the wipe. While the test hook _wipe_audit() runs, scratch_release()
 * also copies each buffer, as it is after the wipe, into audit_blocks, so that a test reads back
 * exactly what the freed memory held (tests/test_secrets_native.py). audit_blocks is NULL at all
 * other times; it is read and written only with the GIL held (every release happens after
 * Py_END_ALLOW_THREADS). */
static PyObject *audit_blocks;

static void scratch_release(void *p, size_t n)
{
    if (!p)
        return;
    bt_wipe(p, n);
    if (audit_blocks) {
        PyObject *copy = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
        if (!copy || PyList_Append(audit_blocks, copy) < 0)
            PyErr_Clear(); /* the audit then sees a block too few and fails; never the caller */
        Py_XDECREF(copy);
    }
    PyMem_Free(p);
}

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

static int sha_path_available(int path)
{
    switch (path) {
    case BT_PATH_SHANI:
        return bt_cpu.sha_ni;
    case BT_PATH_AVX2:
        return bt_cpu.avx2;
    case BT_PATH_AVX512:
        return bt_cpu.avx512;
    default:
        return 1;
    }
}

/* The `_sha=` argument of `func`: a BT_PATH_*, or -1 with ValueError set (unknown name, a lane
 * path where `lanes_ok` is 0, or a path this CPU lacks). */
static int sha_path_arg(const char *name, const char *func, int lanes_ok)
{
    int i;
    for (i = 0; i < N_SHA_PATHS; i++)
        if (strcmp(name, sha_names[i]) == 0)
            break;
    if (i == N_SHA_PATHS) {
        PyErr_Format(PyExc_ValueError,
                     "%s: unknown _sha path '%s' (auto, scalar, shani, avx2 or avx512)", func,
                     name);
        return -1;
    }
    if (!lanes_ok && (i == BT_PATH_AVX2 || i == BT_PATH_AVX512)) {
        PyErr_Format(PyExc_ValueError, "%s has no %s path (auto, scalar or shani)", func, name);
        return -1;
    }
    if (!sha_path_available(i)) {
        PyErr_Format(PyExc_ValueError, "_sha path %s is not available on this CPU", name);
        return -1;
    }
    return i;
}

/* The `_aes=` argument: 1 for AES-NI, 0 for the portable AES, -1 with ValueError set. */
static int aes_ni_arg(const char *name)
{
    if (strcmp(name, "auto") == 0)
        return bt_cpu.aesni;
    if (strcmp(name, "scalar") == 0)
        return 0;
    if (strcmp(name, "aesni") == 0) {
        if (!bt_cpu.aesni) {
            PyErr_SetString(PyExc_ValueError, "_aes path aesni is not available on this CPU");
            return -1;
        }
        return 1;
    }
    PyErr_Format(PyExc_ValueError, "unknown _aes path '%s' (auto, aesni or scalar)", name);
    return -1;
}

/* The stretch path `auto` takes for n candidates: one candidate runs the single-chain SHA-NI
 * kernel directly, anything else goes through the planner. */
static int auto_stretch_path(size_t n)
{
    return n == 1 && bt_cpu.sha_ni ? BT_PATH_SHANI : BT_PATH_AUTO;
}

/* Core of stretch / stretch_many: n candidates of 32 bytes at `init` (contiguous), with the
 * kernels of `path` (a BT_PATH_* the CPU has, from sha_path_arg). With the GIL held. */
static PyObject *do_stretch(const uint8_t *init, size_t n, const uint8_t *salt, uint64_t rounds,
                            int as_list, int path)
{
    uint32_t *in_w = NULL, *out_w = NULL, salt_w[4];
    PyObject *res = NULL;
    size_t i;
    int rc;
    in_w = (uint32_t *)PyMem_Malloc((n ? n : 1) * 32);
    out_w = (uint32_t *)PyMem_Malloc((n ? n : 1) * 32);
    if (!in_w || !out_w) {
        PyErr_NoMemory();
        goto done;
    }
    words_from_be(in_w, init, 8 * n);
    words_from_be(salt_w, salt, 4);
    if (path == BT_PATH_AUTO)
        path = auto_stretch_path(n);
    if (n == 1 && path == BT_PATH_SHANI) {
        int k = bt_stretch_find_kernel("shani1");
        Py_BEGIN_ALLOW_THREADS
        bt_stretch_run_kernel(k, in_w, 1, salt_w, rounds, out_w);
        bt_burn_stack();
        Py_END_ALLOW_THREADS
        rc = 0;
    } else {
        /* the planner compares kernels by their measured speed: measure once per process
         * (about 50 ms), here with the GIL held, so that the costs are written once and before
         * any planner reads them without the GIL */
        bt_stretch_calibrate();
        Py_BEGIN_ALLOW_THREADS
        rc = bt_stretch_plan_run(path, in_w, n, salt_w, rounds, out_w);
        bt_burn_stack();
        Py_END_ALLOW_THREADS
    }
    if (rc == -1) {
        PyErr_Format(PyExc_RuntimeError, "stretch path %s is not available on this CPU",
                     sha_names[path]);
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
    scratch_release(in_w, (n ? n : 1) * 32);
    scratch_release(out_w, (n ? n : 1) * 32);
    bt_wipe(salt_w, sizeof salt_w);
    return res;
}

/* ---- stretch ------------------------------------------------------------------------------------- */

PyDoc_STRVAR(stretch_doc,
             "stretch($module, /, initial, salt, rounds, *, _sha='auto')\n--\n\n"
             "BitLocker key stretch: `rounds` SHA-256 calls over last_hash(32) || initial(32) ||\n"
             "salt(16) || LE64(count); returns the last hash. initial: 32 bytes, salt: 16 bytes.\n"
             "_sha (tests and benchmarks): force the SHA-256 kernels, 'auto', 'scalar', 'shani',\n"
             "'avx2' or 'avx512'; ValueError for one this CPU lacks.");

static PyObject *py_stretch(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"initial", "salt", "rounds", "_sha", NULL};
    Py_buffer ini, salt;
    PyObject *rounds_o, *res = NULL;
    const char *sha = "auto";
    uint64_t rounds;
    int path;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*O|$s:stretch", kwlist, &ini, &salt, &rounds_o,
                                     &sha))
        return NULL;
    if ((path = sha_path_arg(sha, "stretch", 1)) < 0)
        goto done;
    if (ini.len != 32 || salt.len != 16) {
        PyErr_SetString(PyExc_ValueError, "initial must be 32 bytes and salt 16 bytes");
        goto done;
    }
    if (get_rounds(rounds_o, &rounds) < 0)
        goto done;
    res = do_stretch((const uint8_t *)ini.buf, 1, (const uint8_t *)salt.buf, rounds, 0, path);
done:
    PyBuffer_Release(&ini);
    PyBuffer_Release(&salt);
    return res;
}

PyDoc_STRVAR(stretch_many_doc,
             "stretch_many($module, /, initials, salt, rounds, *, _sha='auto')\n--\n\n"
             "stretch() for many candidates at once (several chains in flight: pipelined SHA-NI\n"
             "or one candidate per SIMD lane). Same results as [stretch(i, salt, rounds) for i in\n"
             "initials]. Releases the GIL: use threads to spread batches over cores. _sha: as\n"
             "for stretch(); a forced path plans with that path's kernels only.");

static PyObject *py_stretch_many(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"initials", "salt", "rounds", "_sha", NULL};
    PyObject *seq_o, *rounds_o, *seq = NULL, *res = NULL;
    Py_buffer salt;
    uint8_t *flat = NULL;
    const char *sha = "auto";
    Py_ssize_t n = 0, i;
    uint64_t rounds;
    int path;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oy*O|$s:stretch_many", kwlist, &seq_o, &salt,
                                     &rounds_o, &sha))
        return NULL;
    if ((path = sha_path_arg(sha, "stretch_many", 1)) < 0)
        goto done;
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
    res = do_stretch(flat, (size_t)n, (const uint8_t *)salt.buf, rounds, 1, path);
done:
    scratch_release(flat, n ? (size_t)n * 32 : 1);
    Py_XDECREF(seq);
    PyBuffer_Release(&salt);
    return res;
}

PyDoc_STRVAR(stretch_kernel_doc,
             "_stretch_kernel($module, name, initials, salt, rounds, /)\n--\n\n"
             "Test and benchmark hook: run one named kernel (see _features()['kernels']) over\n"
             "the candidates, padding its last call; returns list[bytes].");

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
    if (k < 0 || !bt_stretch_kernel_available(k)) {
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
    bt_burn_stack();
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
        bt_wipe(digest, sizeof digest);
        if (!b) {
            Py_CLEAR(res);
            goto done;
        }
        PyList_SET_ITEM(res, i, b);
    }
done:
    scratch_release(in_w, n ? (size_t)n * 32 : 1);
    scratch_release(out_w, n ? (size_t)n * 32 : 1);
    bt_wipe(salt_w, sizeof salt_w);
    Py_XDECREF(seq);
    PyBuffer_Release(&salt);
    return res;
}

/* ---- sector crypto ----------------------------------------------------------------------------- */

/* Validate and run one crypt into `out` (len bytes, may equal `in`); ni: AES-NI (1) or the
 * portable AES (0), from aes_ni_arg. 0 ok, -1 error set. */
static int do_crypt(int method, const uint8_t *key, Py_ssize_t klen, const uint8_t *in,
                    uint8_t *out, Py_ssize_t len, uint64_t offset, Py_ssize_t ss, int decrypt,
                    int ni)
{
    bt_aes_key *k = NULL;
    size_t n = (size_t)(len / ss);
    int rc = 0;
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
            bt_burn_stack();
            Py_END_ALLOW_THREADS
        } else if (rc == -1) {
            PyErr_Format(PyExc_ValueError, "invalid AES key length (%zd bytes) for method %#x",
                         klen, method);
        }
        scratch_release(raw, 2 * sizeof(bt_aes_key) + 16);
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
             "crypt_sectors($module, /, method, key, data, offset, sector_size, decrypt=True, *,\n"
             "              _aes='auto')\n--\n\n"
             "Decrypt (or encrypt) whole sectors stored at volume byte `offset`; returns a new\n"
             "bytearray. key: CBC the FVEK; XTS key1||key2; diffuser FVEK||TWEAK (two equal\n"
             "halves). data: any contiguous buffer. _aes (tests and benchmarks): 'auto',\n"
             "'aesni' or 'scalar' (the portable AES); ValueError for one this CPU lacks.");

static PyObject *py_crypt_sectors(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"method", "key",     "data", "offset",
                             "sector_size", "decrypt", "_aes", NULL};
    int method, decrypt = 1, ni;
    Py_buffer key, data;
    PyObject *offset_o, *res = NULL;
    const char *aes = "auto";
    Py_ssize_t ss;
    uint64_t offset;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iy*y*On|p$s:crypt_sectors", kwlist, &method, &key,
                                     &data, &offset_o, &ss, &decrypt, &aes))
        return NULL;
    if ((ni = aes_ni_arg(aes)) < 0)
        goto done;
    if (check_sizes(data.len, ss) < 0 || get_u64(offset_o, &offset, "offset") < 0)
        goto done;
    res = PyByteArray_FromStringAndSize(NULL, data.len);
    if (!res)
        goto done;
    if (do_crypt(method, (const uint8_t *)key.buf, key.len, (const uint8_t *)data.buf,
                 (uint8_t *)PyByteArray_AS_STRING(res), data.len, offset, ss, decrypt, ni) < 0)
        Py_CLEAR(res);
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return res;
}

PyDoc_STRVAR(crypt_sectors_into_doc,
             "crypt_sectors_into($module, /, method, key, data, offset, sector_size, decrypt,\n"
             "                   out, *, _aes='auto')\n--\n\n"
             "crypt_sectors() writing into `out`, a writable buffer of the same length (it may\n"
             "be `data` itself, for in-place work); returns None. Avoids an allocation per call.\n"
             "_aes: as for crypt_sectors().");

static PyObject *py_crypt_sectors_into(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"method",  "key", "data", "offset", "sector_size",
                             "decrypt", "out", "_aes", NULL};
    int method, decrypt = 1, ni;
    Py_buffer key, data, out;
    PyObject *offset_o, *res = NULL;
    const char *aes = "auto";
    Py_ssize_t ss;
    uint64_t offset;
    uint8_t *tmp = NULL;
    const uint8_t *src;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iy*y*Onpw*|$s:crypt_sectors_into", kwlist,
                                     &method, &key, &data, &offset_o, &ss, &decrypt, &out, &aes))
        return NULL;
    if ((ni = aes_ni_arg(aes)) < 0)
        goto done;
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
                 offset, ss, decrypt, ni) == 0) {
        res = Py_None;
        Py_INCREF(res);
    }
done:
    scratch_release(tmp, (size_t)data.len);
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
             "ccm_decrypt($module, /, key, nonce, data, mac, *, _aes='auto')\n--\n\n"
             "AES-CCM decryption of a BitLocker key blob (12-byte nonce, 16-byte tag, no\n"
             "associated data): the plaintext bytes, or None when the tag does not verify.\n"
             "_aes: as for crypt_sectors().");

static PyObject *py_ccm_decrypt(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"key", "nonce", "data", "mac", "_aes", NULL};
    Py_buffer key, nonce, data, mac;
    PyObject *res = NULL;
    const char *aes = "auto";
    uint8_t *out = NULL;
    int rc, ni;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*y*y*|$s:ccm_decrypt", kwlist, &key, &nonce,
                                     &data, &mac, &aes))
        return NULL;
    if ((ni = aes_ni_arg(aes)) < 0)
        goto done;
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
                        ni);
    bt_burn_stack();
    if (rc == 0)
        res = PyBytes_FromStringAndSize((const char *)out, data.len);
    else {
        res = Py_None;
        Py_INCREF(res);
    }
done:
    scratch_release(out, data.len ? (size_t)data.len : 1);
    PyBuffer_Release(&key);
    PyBuffer_Release(&nonce);
    PyBuffer_Release(&data);
    PyBuffer_Release(&mac);
    return res;
}

PyDoc_STRVAR(ccm_encrypt_doc,
             "ccm_encrypt($module, /, key, nonce, data, *, _aes='auto')\n--\n\n"
             "AES-CCM encryption as BitLocker wraps a key (used by the fixture forge): returns\n"
             "(ciphertext, tag), the tag 16 bytes. _aes: as for crypt_sectors().");

static PyObject *py_ccm_encrypt(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"key", "nonce", "data", "_aes", NULL};
    Py_buffer key, nonce, data;
    PyObject *res = NULL, *ct;
    const char *aes = "auto";
    uint8_t mac[16];
    int ni;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*y*|$s:ccm_encrypt", kwlist, &key, &nonce,
                                     &data, &aes))
        return NULL;
    if ((ni = aes_ni_arg(aes)) < 0)
        goto done;
    if (ccm_args(&key, &nonce, &data) < 0)
        goto done;
    ct = PyBytes_FromStringAndSize(NULL, data.len);
    if (!ct)
        goto done;
    bt_ccm_encrypt((const uint8_t *)key.buf, (size_t)key.len, (const uint8_t *)nonce.buf,
                   (const uint8_t *)data.buf, (size_t)data.len, (uint8_t *)PyBytes_AS_STRING(ct),
                   mac, ni);
    bt_burn_stack();
    res = Py_BuildValue("(Ny#)", ct, (const char *)mac, (Py_ssize_t)16);
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&nonce);
    PyBuffer_Release(&data);
    return res;
}

PyDoc_STRVAR(diffuser_test_doc,
             "_diffuser_test($module, which, decrypt, data, /)\n--\n\n"
             "Test hook: run Elephant diffuser 'a' or 'b' alone over `data` as one sector;\n"
             "returns a bytearray.");

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
             "sha256_many($module, /, data, item_len, *, _sha='auto')\n--\n\n"
             "SHA-256 of each consecutive item_len-byte item of data, digests concatenated\n"
             "(bytes). _sha (tests and benchmarks): 'auto', 'scalar' or 'shani'; ValueError for\n"
             "one this CPU lacks.");

static PyObject *py_sha256_many(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "item_len", "_sha", NULL};
    Py_buffer data;
    Py_ssize_t item_len, n;
    PyObject *res = NULL;
    const char *sha = "auto";
    int shani, path;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*n|$s:sha256_many", kwlist, &data, &item_len,
                                     &sha))
        return NULL;
    if ((path = sha_path_arg(sha, "sha256_many", 0)) < 0)
        goto done;
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
    shani = path == BT_PATH_SHANI || (path == BT_PATH_AUTO && bt_cpu.sha_ni);
    Py_BEGIN_ALLOW_THREADS
    bt_sha256_many((const uint8_t *)data.buf, (size_t)item_len, (size_t)n,
                   (uint8_t *)PyBytes_AS_STRING(res), shani);
    bt_burn_stack();
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&data);
    return res;
}

PyDoc_STRVAR(expand_groups_doc,
             "expand_groups($module, /, groups)\n--\n\n"
             "groups: 8 lists of candidate 16-bit words (recovery-password group / 11). Returns\n"
             "the key16 (8 little-endian u16) of every combination, concatenated, in\n"
             "lexicographic order with group 0 slowest.");

static PyObject *py_expand_groups(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"groups", NULL};
    PyObject *arg, *seq = NULL, *res = NULL;
    uint16_t *vals[8] = {NULL};
    size_t cnt[8] = {0}, total = 1;
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
        cnt[g] = (size_t)m; /* the size scratch_release() wipes, even after an error */
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
        uint8_t prefix[14];
        for (r = 0; r < total; r += cnt[7]) {
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
        bt_wipe(prefix, sizeof prefix);
        Py_END_ALLOW_THREADS
    }
done:
    for (g = 0; g < 8; g++) /* the words are digits of a (partly known) recovery password */
        scratch_release(vals[g], cnt[g] ? cnt[g] * 2 : 1);
    Py_XDECREF(seq);
    if (PyErr_Occurred())
        Py_CLEAR(res);
    return res;
}

/* ---- test and benchmark hooks ------------------------------------------------------------------- */

/* A list of the names in `names` for which `ok` says yes. */
static PyObject *name_list(const char *const *names, int count, int (*ok)(int))
{
    PyObject *l = PyList_New(0);
    int i;
    if (!l)
        return NULL;
    for (i = 0; i < count; i++) {
        PyObject *u;
        if (!ok(i))
            continue;
        u = PyUnicode_FromString(names[i]);
        if (!u || PyList_Append(l, u) < 0) {
            Py_XDECREF(u);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(u);
    }
    return l;
}

static int aes_path_available(int i) { return i != 1 || bt_cpu.aesni; }

PyDoc_STRVAR(features_doc,
             "_features($module, /)\n--\n\n"
             "Test and benchmark hook: what this CPU offers, as a dict. sha_ni, aesni, avx2,\n"
             "avx512, vaes: the CPU features (bool); arch; sha_paths / aes_paths: the _sha= /\n"
             "_aes= values this CPU accepts (sha256_many takes only auto, scalar and shani of\n"
             "them); stretch_single_path / aes_path: what 'auto' runs\n"
             "for one stretch candidate ('shani', or 'auto' for the planner) and for AES;\n"
             "calibrated: whether the kernel costs were measured yet (see _calibrate()); kernels:\n"
             "the kernels this CPU runs, with lanes, path and ms_per_key_estimate.");

static PyObject *py_features(PyObject *self, PyObject *noargs)
{
    PyObject *d, *kd, *sp = NULL, *ap = NULL;
    int i;
    (void)self;
    (void)noargs;
    sp = name_list(sha_names, N_SHA_PATHS, sha_path_available);
    ap = name_list(aes_names, N_AES_PATHS, aes_path_available);
    if (!sp || !ap) {
        Py_XDECREF(sp);
        Py_XDECREF(ap);
        return NULL;
    }
    d = Py_BuildValue("{s:O,s:O,s:O,s:O,s:O,s:s,s:N,s:N,s:s,s:s,s:O}", "sha_ni",
                      bt_cpu.sha_ni ? Py_True : Py_False, "aesni", bt_cpu.aesni ? Py_True : Py_False,
                      "avx2", bt_cpu.avx2 ? Py_True : Py_False, "avx512",
                      bt_cpu.avx512 ? Py_True : Py_False, "vaes", bt_cpu.vaes ? Py_True : Py_False,
                      "arch", BT_X86 ? "x86_64" : "portable", "sha_paths", sp, "aes_paths", ap,
                      "stretch_single_path", sha_names[auto_stretch_path(1)], "aes_path",
                      bt_cpu.aesni ? "aesni" : "scalar", "calibrated",
                      bt_stretch_calibrated() ? Py_True : Py_False);
    if (!d)
        return NULL;
    kd = PyDict_New();
    if (!kd) {
        Py_DECREF(d);
        return NULL;
    }
    for (i = 0; i < bt_stretch_nkernels(); i++) {
        const bt_kinfo *k = bt_stretch_kernel(i);
        PyObject *v;
        if (!bt_stretch_kernel_available(i))
            continue;
        v = Py_BuildValue("{s:i,s:s,s:d}", "lanes", k->lanes, "path", sha_names[k->path],
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

PyDoc_STRVAR(calibrate_doc,
             "_calibrate($module, /)\n--\n\n"
             "Benchmark hook: measure the stretch kernels now (otherwise the first planned\n"
             "stretch does it); once per process, later calls return at once.");

static PyObject *py_calibrate(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    bt_stretch_calibrate(); /* with the GIL held, like every other call of it */
    Py_RETURN_NONE;
}

/* ---- wipe audit (test hook) ---------------------------------------------------------------------- */

#define AUDIT_STACK 65536 /* bytes of stack below the hook's frame read back after the call */

/* The call under audit, in a frame of its own, so that every frame of the audited function
 * lies below the hook's frame, where stack_residue() then reads. */
BT_NOINLINE static PyObject *audited_call(PyObject *fn, PyObject *args, PyObject *kw)
{
    return PyObject_Call(fn, args, kw);
}

/* What the stack below the caller's frame holds now: the frames of the call that just returned
 * (its locals, spilled registers, the AES schedules and tweaks of the sector code). A volatile
 * local array occupies exactly that memory; reading it without writing it first is the point. */
BT_NOINLINE static void stack_residue(uint8_t *out)
{
    uint8_t area[AUDIT_STACK];
    const volatile uint8_t *v = area;
    size_t i;
#if defined(__GNUC__) || defined(__clang__)
    __asm__ __volatile__("" : "+r"(v)); /* the compiler no longer knows what v points to */
#endif
    for (i = 0; i < AUDIT_STACK; i++)
        out[i] = v[i];
}

PyDoc_STRVAR(wipe_audit_doc,
             "_wipe_audit($module, fn, args, kwargs=None, wipes=True, /)\n--\n\n"
             "Test hook (tests/test_secrets_native.py): call fn(*args, **kwargs), one of this\n"
             "module's functions, and return (result, blocks, stack). blocks: the contents of\n"
             "every scratch heap buffer the call freed, as they were when freed (after the wipe);\n"
             "stack: the 64 KiB of stack below this hook's frame as the call left it. wipes=False\n"
             "turns every wipe off for this one call, so that a test can show the audit finds\n"
             "what unwiped buffers hold. Not for concurrent use: no other thread may call the\n"
             "module meanwhile.");

static PyObject *py_wipe_audit(PyObject *self, PyObject *args)
{
    PyObject *fn, *fargs, *fkw = NULL, *blocks, *stack, *res;
    int wipes = 1;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO!|Op:_wipe_audit", &fn, &PyTuple_Type, &fargs, &fkw, &wipes))
        return NULL;
    if (fkw == Py_None)
        fkw = NULL;
    if (fkw && !PyDict_Check(fkw)) {
        PyErr_SetString(PyExc_TypeError, "kwargs must be a dict or None");
        return NULL;
    }
    if (audit_blocks) {
        PyErr_SetString(PyExc_RuntimeError, "_wipe_audit is already running");
        return NULL;
    }
    blocks = PyList_New(0);
    stack = PyBytes_FromStringAndSize(NULL, AUDIT_STACK);
    if (!blocks || !stack) {
        Py_XDECREF(blocks);
        Py_XDECREF(stack);
        return NULL;
    }
    audit_blocks = blocks;
    bt_wipe_skip = !wipes;
    res = audited_call(fn, fargs, fkw);
    stack_residue((uint8_t *)PyBytes_AS_STRING(stack)); /* first: nothing may reuse that stack */
    bt_wipe_skip = 0;
    audit_blocks = NULL;
    if (!res) {
        Py_DECREF(blocks);
        Py_DECREF(stack);
        return NULL;
    }
    return Py_BuildValue("(NNN)", res, blocks, stack);
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
    {"_features", py_features, METH_NOARGS, features_doc},
    {"_diffuser_test", py_diffuser_test, METH_VARARGS, diffuser_test_doc},
    {"_stretch_kernel", py_stretch_kernel, METH_VARARGS, stretch_kernel_doc},
    {"_calibrate", py_calibrate, METH_NOARGS, calibrate_doc},
    {"_wipe_audit", py_wipe_audit, METH_VARARGS, wipe_audit_doc},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_native",
    "C core of bitlocker_tools: key stretching, sector crypto, candidate helpers.", -1, methods,
    NULL, NULL, NULL, NULL};

/* Single-phase init (m_size -1): CPython runs this with the GIL held, in practice once per
 * process (another interpreter that shares the GIL gets a copy of the module without running it
 * again; one with a GIL of its own refuses a single-phase module), and a free-threaded build
 * turns the GIL back on to load it (no Py_mod_gil declaration). So one GIL orders every write
 * of the process-wide state (bt_cpu here, the planner's calibration later) before its readers;
 * a second run would only write the same values again. */
PyMODINIT_FUNC PyInit__native(void)
{
    bt_cpu_detect();
    return PyModule_Create(&moduledef);
}
