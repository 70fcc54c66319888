/*
 * Fused float32 CPU kernels for skinfo.nn.vib: the reparametrized sample
 * z = mean + softplus(rho - shift) * eps, the batch-mean closed-form rate
 * mean_rows KL(N(mean, diag std^2) || N(0, I)) and (optionally) the linear
 * decoder's logits, forward and backward, each in one pass over the batch.
 *
 * Built on first use by skinfo.nn.native with the system C compiler and
 * loaded through ctypes; no Python or torch headers are needed. The
 * transcendental functions are written out (range reduction plus a minimax
 * polynomial, the classic single-precision approximations) so that the
 * compiler vectorizes the loops on any target; measured against float64,
 * exp and log are within 3 ulp on the ranges used here (tested).
 *
 * Layout: h is (B, 2K) row-major, mean in columns [0, K), rho in [K, 2K);
 * eps, z and grad_z are (B, K), logits (B, C), all row-major. NaN in the input propagates to the
 * outputs.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* sigmoid(t) = 1 above this (1 - e^-20 rounds to 1 in float) */
#define SOFTPLUS_THRESHOLD 20.0f
/* below this, log(softplus(t)) = t to float precision (softplus(t) = e^t (1 - e^t / 2 ...)) */
#define LOG_SOFTPLUS_LINEAR -20.0f

int skinfo_vib_abi_version(void) { return 6; }

static inline float bits_as_float(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline int32_t float_as_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* e^x for finite x, clamped to [FLT_MIN, 2^127 * 1.99]; NaN stays NaN. */
static inline float exp_approx(float x) {
    float c = x != x ? 0.0f : x;
    c = c < -87.33654f ? -87.33654f : c;
    c = c > 88.37626f ? 88.37626f : c;
    /* x = n ln2 + r, |r| <= ln2 / 2; rounding by the 1.5 * 2^23 shift */
    float fn = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    int32_t n = (int32_t)fn;
    float r = c - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    float y = p * bits_as_float((n + 127) << 23);
    return x != x ? x : y;
}

/* log(2^e (1 + f)) for f in [sqrt(1/2) - 1, sqrt(2) - 1]: a minimax polynomial in f. */
static inline float log_reduced(float f, float e) {
    float z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    y += e * -2.12194440e-4f;
    y += -0.5f * z;
    return f + y + e * 0.693359375f;
}

/* log(x) for normal x > 0 (here x is at least FLT_MIN and finite). */
static inline float log_approx(float x) {
    int32_t bits = float_as_bits(x);
    float e = (float)(((bits >> 23) & 0xff) - 126);
    float m = bits_as_float((bits & 0x807fffff) | 0x3f000000); /* x = m 2^e, m in [0.5, 1) */
    int below = m < 0.707106781186547524f;
    e = below ? e - 1.0f : e;
    m = below ? m + m - 1.0f : m - 1.0f;
    return log_reduced(m, e);
}

/* log(1 + a) for a in [0, 1], from a itself (no rounding of 1 + a, no division). */
static inline float log1p_unit(float a) {
    int upper = a > 0.41421356237309505f; /* 1 + a >= sqrt 2: (1 + a) / 2 = 1 + (a - 1) / 2 */
    float f = upper ? 0.5f * (a - 1.0f) : a;
    return log_reduced(f, upper ? 1.0f : 0.0f);
}

/*
 * std = softplus(t) = max(t, 0) + log1p(e^-|t|), log(std), 1 / std and
 * sigmoid(t) = d std / d t (one division for both reciprocals). As in
 * PyTorch, e^t is subnormal below t = -87.3 (computed as e^(t + 40) e^-40)
 * and 0 below t = -104, where std = 0 and log(std) = -inf.
 */
static inline void softplus_terms(float t, float *std, float *log_std, float *inv_std,
                                  float *sig) {
    float abs_t = t < 0.0f ? -t : t;
    float far = abs_t > 80.0f ? 40.0f : 0.0f;
    float scale = abs_t > 80.0f ? 4.24835425529158899e-18f : 1.0f; /* e^-40 */
    float a = exp_approx(far - abs_t) * scale;                       /* e^-|t| in [0, 1] */
    float s = (t > 0.0f ? t : 0.0f) + log1p_unit(a);
    float ls = log_approx(s);
    ls = t < LOG_SOFTPLUS_LINEAR ? t : ls;
    ls = t > 3.0e38f ? t : ls;         /* +inf */
    ls = s == 0.0f ? -INFINITY : ls;  /* e^t underflowed */
    float q = 1.0f / (s * (1.0f + a));
    float r = q * s; /* 1 / (1 + e^-|t|) */
    float sv = t >= 0.0f ? r : a * r;
    *std = s;
    *log_std = t != t ? t : ls;
    *inv_std = q * (1.0f + a);
    *sig = t > SOFTPLUS_THRESHOLD ? 1.0f : sv;
}

/* Short loops run in blocks of CHUNK entries (a fixed trip count that the compiler turns into
 * whole vector operations, kept in registers), with the remainder padded or handled apart. */
#define CHUNK 16

/*
 * logits (B, C) = z (B, K) W^T + bias, W (C, K) row-major. Vectorized over
 * the classes: W is copied transposed into blocks of CHUNK classes (zero
 * padded), so that each row costs K vector multiply-adds per block.
 */
static int linear_forward(const float *z, const float *W, const float *bias, float *logits,
                          int64_t B, int64_t K, int64_t C) {
    int64_t blocks = (C + CHUNK - 1) / CHUNK;
    float *wt = (float *)calloc((size_t)(blocks * K * CHUNK), sizeof(float));
    if (!wt) return -1;
    for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < K; ++k) wt[((c / CHUNK) * K + k) * CHUNK + c % CHUNK] = W[c * K + k];
    float padded_bias[CHUNK];
    for (int64_t blk = 0; blk < blocks; ++blk) {
        int64_t c0 = blk * CHUNK, n = C - c0 < CHUNK ? C - c0 : CHUNK;
        for (int j = 0; j < CHUNK; ++j) padded_bias[j] = j < n ? bias[c0 + j] : 0.0f;
        const float *w_blk = wt + blk * K * CHUNK;
        for (int64_t b = 0; b < B; ++b) {
            const float *z_row = z + b * K;
            float acc[CHUNK];
#pragma omp simd
            for (int j = 0; j < CHUNK; ++j) acc[j] = padded_bias[j];
            for (int64_t k = 0; k < K; ++k) {
                float zk = z_row[k];
                const float *w_k = w_blk + k * CHUNK;
#pragma omp simd
                for (int j = 0; j < CHUNK; ++j) acc[j] += zk * w_k[j];
            }
            for (int64_t j = 0; j < n; ++j) logits[b * C + c0 + j] = acc[j];
        }
    }
    free(wt);
    return 0;
}

/*
 * z = mean + softplus(rho - shift) * eps,
 * rate = (1/B) sum_rows sum_k [0.5 (mean^2 + std^2 - 1) - log std]
 * (each row summed in float, the rows in double), when C > 0 the logits of the linear
 * decoder, logits = z W^T + bias with W (C, K) row-major, and for the
 * backward pass aux (2, B, K): aux[0] = eps * sigmoid(t) = d z / d rho and
 * aux[1] = (std - 1 / std) * sigmoid(t) = B * d rate / d rho.
 * Returns 0, or -1 if memory for the decoder's scratch copy ran out.
 */
int skinfo_vib_forward(const float *h, const float *eps, float shift, const float *W,
                       const float *bias, float *z, float *logits, float *rate, float *aux,
                       int64_t B, int64_t K, int64_t C) {
    double acc = 0.0;
    float *dz_drho = aux, *drate_drho = aux + B * K;
    for (int64_t b = 0; b < B; ++b) {
        const float *mean = h + b * 2 * K, *rho = mean + K, *e_row = eps + b * K;
        float *z_row = z + b * K, *a_row = dz_drho + b * K, *c_row = drate_drho + b * K;
        float row = 0.0f;
#pragma omp simd reduction(+ : row)
        for (int64_t k = 0; k < K; ++k) {
            float m = mean[k], e = e_row[k], s, ls, inv, sig;
            softplus_terms(rho[k] - shift, &s, &ls, &inv, &sig);
            z_row[k] = m + s * e;
            a_row[k] = e * sig;
            c_row[k] = (s - inv) * sig;
            row += 0.5f * (m * m + s * s - 1.0f) - ls;
        }
        acc += row;
    }
    *rate = (float)(acc / (double)B);
    return C > 0 ? linear_forward(z, W, bias, logits, B, K, C) : 0;
}

/*
 * The gradients of <grad_z, z> + <grad_logits, logits> + grad_rate * rate,
 * from the forward pass's aux:
 *   g      = grad_z + grad_logits W                  (d / dz, per row)
 *   mean:    g + grad_rate * mean / B
 *   rho:     g * aux[0] + grad_rate * aux[1] / B
 *   W:       grad_logits^T z,   bias: column sums of grad_logits
 * grad_z, grad_logits and grad_rate (a pointer to one float) may be NULL
 * (zero); with C = 0, grad_logits NULL or grad_W NULL (then z may be NULL),
 * grad_W and grad_bias are not written.
 */
void skinfo_vib_backward(const float *h, const float *aux, const float *W, const float *z,
                         const float *grad_z, const float *grad_logits, const float *grad_rate,
                         float *grad_h, float *grad_W, float *grad_bias, int64_t B, int64_t K,
                         int64_t C) {
    float s_rate = grad_rate ? *grad_rate / (float)B : 0.0f;
    const float *dz_drho = aux, *drate_drho = aux + B * K;
    int64_t n_out = grad_logits ? C : 0, k_full = K - K % CHUNK;
    for (int64_t b = 0; b < B; ++b) {
        const float *mean = h + b * 2 * K, *a_row = dz_drho + b * K, *c_row = drate_drho + b * K;
        const float *gl_row = n_out ? grad_logits + b * C : 0;
        float *g_mean = grad_h + b * 2 * K, *g_rho = g_mean + K;
        /* g (d / dz) is built in the mean half of grad_h, then finished in place */
        for (int64_t k0 = 0; k0 < k_full; k0 += CHUNK) {
            float g[CHUNK];
#pragma omp simd
            for (int j = 0; j < CHUNK; ++j) g[j] = grad_z ? grad_z[b * K + k0 + j] : 0.0f;
            for (int64_t c = 0; c < n_out; ++c) {
                float gl = gl_row[c];
                const float *w = W + c * K + k0;
#pragma omp simd
                for (int j = 0; j < CHUNK; ++j) g[j] += gl * w[j];
            }
#pragma omp simd
            for (int j = 0; j < CHUNK; ++j) g_mean[k0 + j] = g[j];
        }
        for (int64_t k = k_full; k < K; ++k) {
            float g = grad_z ? grad_z[b * K + k] : 0.0f;
            for (int64_t c = 0; c < n_out; ++c) g += gl_row[c] * W[c * K + k];
            g_mean[k] = g;
        }
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) {
            float g = g_mean[k];
            g_rho[k] = g * a_row[k] + s_rate * c_row[k];
            g_mean[k] = g + s_rate * mean[k];
        }
    }
    /* grad_W = grad_logits^T z (C, K) and grad_bias, accumulated over the rows in registers */
    for (int64_t c = 0; grad_W && c < n_out; ++c) {
        float gb = 0.0f;
        for (int64_t b = 0; b < B; ++b) gb += grad_logits[b * C + c];
        grad_bias[c] = gb;
        for (int64_t k0 = 0; k0 < k_full; k0 += CHUNK) {
            float acc[CHUNK] = {0.0f};
            for (int64_t b = 0; b < B; ++b) {
                float gl = grad_logits[b * C + c];
                const float *z_row = z + b * K + k0;
#pragma omp simd
                for (int j = 0; j < CHUNK; ++j) acc[j] += gl * z_row[j];
            }
#pragma omp simd
            for (int j = 0; j < CHUNK; ++j) grad_W[c * K + k0 + j] = acc[j];
        }
        for (int64_t k = k_full; k < K; ++k) {
            float acc = 0.0f;
            for (int64_t b = 0; b < B; ++b) acc += grad_logits[b * C + c] * z[b * K + k];
            grad_W[c * K + k] = acc;
        }
    }
}
