//! Plain f64 CPU references for the ops kernels (gram, losses, TV, image), and comparison
//! helpers (the PRNG is tests/common's). Shared by tests/kernels_ops.rs.
#![allow(dead_code)]

use crate::common::Rng;

pub fn c4(c: usize) -> usize {
    c.div_ceil(4) * 4
}

/// A random h×w×c4 HWC feature map with `c` real channels (padding 0), values in [lo, hi).
pub fn feature_map(rng: &mut Rng, pixels: usize, c: usize, lo: f64, hi: f64) -> Vec<f32> {
    let c4 = c4(c);
    let mut f = vec![0f32; pixels * c4];
    for p in 0..pixels {
        for k in 0..c {
            f[p * c4 + k] = rng.range(lo, hi) as f32;
        }
    }
    f
}

/// A random c4×c4 matrix with zero padded rows/columns (not symmetric unless asked).
pub fn matrix(rng: &mut Rng, c: usize, lo: f64, hi: f64) -> Vec<f32> {
    let c4 = c4(c);
    let mut m = vec![0f32; c4 * c4];
    for a in 0..c {
        for b in 0..c {
            m[a * c4 + b] = rng.range(lo, hi) as f32;
        }
    }
    m
}

/// G = scale · FᵀF (c4×c4) for F pixels×c4.
pub fn gram(f: &[f64], pixels: usize, c4: usize, scale: f64) -> Vec<f64> {
    let mut g = vec![0f64; c4 * c4];
    for p in 0..pixels {
        let row = &f[p * c4..(p + 1) * c4];
        for a in 0..c4 {
            for b in 0..c4 {
                g[a * c4 + b] += row[a] * row[b];
            }
        }
    }
    g.iter_mut().for_each(|v| *v *= scale);
    g
}

/// Bound on the rounding of each Gram entry: scale · Σ_p |F_pa F_pb|.
pub fn gram_abs(f: &[f64], pixels: usize, c4: usize, scale: f64) -> Vec<f64> {
    let a: Vec<f64> = f.iter().map(|v| v.abs()).collect();
    gram(&a, pixels, c4, scale.abs())
}

/// Σ (a − b)².
pub fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// out[p][c] = coef · Σ_k F[p][k] D[k][c].
pub fn features_times(f: &[f64], d: &[f64], pixels: usize, c4: usize, coef: f64) -> Vec<f64> {
    let mut out = vec![0f64; pixels * c4];
    for p in 0..pixels {
        for k in 0..c4 {
            let fk = f[p * c4 + k];
            if fk == 0.0 {
                continue;
            }
            for c in 0..c4 {
                out[p * c4 + c] += fk * d[k * c4 + c];
            }
        }
    }
    out.iter_mut().for_each(|v| *v *= coef);
    out
}

/// Canonical (seed_form = false) or seed-form style loss of one layer, real channels `c`:
/// canonical w·mean_{C²}((FᵀF/(CHW) − T)²); seed w·mean_{C²}((FᵀF − T)²)/(CHW).
pub fn style_loss(f: &[f64], t: &[f64], pixels: usize, c: usize, weight: f64, seed_form: bool) -> f64 {
    let c4 = c4(c);
    let n = (c * pixels) as f64;
    let g = gram(f, pixels, c4, if seed_form { 1.0 } else { 1.0 / n });
    let mean = squared_distance(&g, t) / (c * c) as f64;
    if seed_form {
        weight * mean / n
    } else {
        weight * mean
    }
}

/// Σ(x[i+1,j]−x[i,j])² + Σ(x[i,j+1]−x[i,j])² over the 3 channels of an HWC RGB image.
pub fn tv(x: &[f64], h: usize, w: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..h {
        for j in 0..w {
            for ch in 0..3 {
                let v = x[(i * w + j) * 3 + ch];
                if i + 1 < h {
                    let d = x[((i + 1) * w + j) * 3 + ch] - v;
                    s += d * d;
                }
                if j + 1 < w {
                    let d = x[(i * w + j + 1) * 3 + ch] - v;
                    s += d * d;
                }
            }
        }
    }
    s
}

/// v[p][k] = scale·x[p][perm[k]] − mean[k], v[p][3] = 0.
pub fn to_network_input(x: &[f64], pixels: usize, perm: [u32; 3], scale: f64, mean: [f64; 3]) -> Vec<f64> {
    let mut v = vec![0f64; pixels * 4];
    for p in 0..pixels {
        for k in 0..3 {
            v[p * 4 + k] = scale * x[p * 3 + perm[k] as usize] - mean[k];
        }
    }
    v
}

/// Packed RGBA8 as the shader defines it (round half to even, like WGSL `round`).
pub fn rgba8(x: &[f32], pixels: usize) -> Vec<u32> {
    (0..pixels)
        .map(|p| {
            let byte = |v: f32| -> u32 {
                let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
                (v * 255.0).round_ties_even() as u32
            };
            byte(x[p * 3]) | (byte(x[p * 3 + 1]) << 8) | (byte(x[p * 3 + 2]) << 16) | (255 << 24)
        })
        .collect()
}

/// Central difference of `f` along coordinate `i` of `x`.
pub fn central_difference(f: &dyn Fn(&[f64]) -> f64, x: &[f64], i: usize, step: f64) -> f64 {
    let mut plus = x.to_vec();
    let mut minus = x.to_vec();
    plus[i] += step;
    minus[i] -= step;
    (f(&plus) - f(&minus)) / (2.0 * step)
}

/// Asserts |got − want| ≤ tol · scale_i elementwise, naming the first failure.
pub fn assert_close_scaled(what: &str, got: &[f32], want: &[f64], scale: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i]).abs();
        let allowed = tol * scale[i];
        assert!(
            err <= allowed,
            "{what}: element {i}: GPU {} vs reference {} (error {err:e} > {allowed:e})",
            got[i],
            want[i]
        );
    }
}

/// Asserts every element within `tol` relative to max(|want_i|, floor · max|want|).
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    let max = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    let scale: Vec<f64> = want.iter().map(|v| v.abs().max(1e-3 * max).max(1e-30)).collect();
    assert_close_scaled(what, got, want, &scale, tol);
}

/// Asserts a scalar within `tol` relative.
pub fn assert_scalar(what: &str, got: f32, want: f64, tol: f64) {
    let err = (got as f64 - want).abs();
    assert!(
        err <= tol * want.abs().max(1e-30),
        "{what}: GPU {got} vs reference {want} (relative error {:e} > {tol:e})",
        err / want.abs().max(1e-30)
    );
}
