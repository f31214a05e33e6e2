//! Colour control (`shaders/colour.wgsl`), each kernel with its CPU twin:
//! - the luma swap (the result's luminance with the content's chroma, in YIQ), [`luma_swap_cpu`];
//! - affine colour maps x ← clamp(A x + b) of the inputs, [`ColourMap::apply_cpu`]: grey for the
//!   luminance-only mode (the painting's luminance matched to the photo's mean and variance), and the
//!   painting's colours matched to the photo's mean and covariance for the histogram mode;
//! - the backward of the luminance → RGB replication, [`luminance_grad_cpu`].
//!
//! The statistics ([`ColourStats`]) are of the input images, which are on the CPU when a run is
//! prepared; the maps they give are 3×3 and are computed here in f64.

use crate::gpu::{self, Dispatch, GpuContext, Kernel};
use crate::kernels::reduce::{require_f32s, to_u32};

const SOURCE: &str = include_str!("../../shaders/colour.wgsl");

/// RGB → YIQ rows (as in the shader, whose matrices are column-major).
pub const TO_YIQ: [[f32; 3]; 3] = [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]];
/// YIQ → RGB rows.
pub const FROM_YIQ: [[f32; 3]; 3] = [[1.0, 0.9563, 0.6210], [1.0, -0.2721, -0.6474], [1.0, -1.1070, 1.7046]];

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ColourParams {
    pixels: u32,
    _pad: [u32; 3],
    rows: [[f32; 4]; 3],
    offset: [f32; 4],
}

impl ColourParams {
    fn new(pixels: usize, map: Option<&ColourMap>) -> Self {
        let map = map.copied().unwrap_or(ColourMap::IDENTITY);
        let row = |r: [f32; 3]| [r[0], r[1], r[2], 0.0];
        ColourParams {
            pixels: to_u32(pixels, "colour pixels"),
            _pad: [0; 3],
            rows: map.matrix.map(row),
            offset: row(map.offset),
        }
    }
}

pub struct Colour {
    luma_swap: Kernel,
    colour_map: Kernel,
    luminance_grad: Kernel,
}

impl Colour {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("colour", SOURCE);
        Colour {
            luma_swap: ctx.kernel_from_module("colour.luma_swap", &module, "luma_swap"),
            colour_map: ctx.kernel_from_module("colour.colour_map", &module, "colour_map"),
            luminance_grad: ctx.kernel_from_module("colour.luminance_grad", &module, "luminance_grad"),
        }
    }

    /// `x` (in place) = its luminance with `content`'s chroma (both HWC RGB, `pixels` pixels).
    pub fn luma_swap(&self, ctx: &GpuContext, pixels: usize, x: &wgpu::Buffer, content: &wgpu::Buffer) -> Dispatch {
        require_f32s(x, pixels * 3, "colour.luma_swap: image");
        require_f32s(content, pixels * 3, "colour.luma_swap: content");
        let params = ColourParams::new(pixels, None);
        self.luma_swap.dispatch(ctx, bytemuck::bytes_of(&params), &[(1, x), (2, content)], gpu::groups_2d(gpu::groups(pixels, 64)))
    }

    /// `x` (in place) = clamp(A x + b, 0, 1) per pixel.
    pub fn colour_map(&self, ctx: &GpuContext, pixels: usize, map: &ColourMap, x: &wgpu::Buffer) -> Dispatch {
        require_f32s(x, pixels * 3, "colour.colour_map: image");
        let params = ColourParams::new(pixels, Some(map));
        self.colour_map.dispatch(ctx, bytemuck::bytes_of(&params), &[(1, x)], gpu::groups_2d(gpu::groups(pixels, 64)))
    }

    /// `grad` (in place) = Σ_c grad_c in every channel: dL/dY for x = (Y, Y, Y).
    pub fn luminance_grad(&self, ctx: &GpuContext, pixels: usize, grad: &wgpu::Buffer) -> Dispatch {
        require_f32s(grad, pixels * 3, "colour.luminance_grad: gradient");
        let params = ColourParams::new(pixels, None);
        self.luminance_grad.dispatch(ctx, bytemuck::bytes_of(&params), &[(1, grad)], gpu::groups_2d(gpu::groups(pixels, 64)))
    }
}

fn mul(m: &[[f32; 3]; 3], v: [f32; 3]) -> [f32; 3] {
    m.map(|row| row[0] * v[0] + row[1] * v[1] + row[2] * v[2])
}

/// RGB → YIQ of one pixel.
pub fn yiq(rgb: [f32; 3]) -> [f32; 3] {
    mul(&TO_YIQ, rgb)
}

/// The CPU twin of [`Colour::luma_swap`].
pub fn luma_swap_cpu(stylized: &[f32], content: &[f32]) -> Vec<f32> {
    stylized
        .chunks_exact(3)
        .zip(content.chunks_exact(3))
        .flat_map(|(s, c)| {
            let (ys, yc) = (yiq([s[0], s[1], s[2]]), yiq([c[0], c[1], c[2]]));
            mul(&FROM_YIQ, [ys[0], yc[1], yc[2]]).map(|v| v.clamp(0.0, 1.0))
        })
        .collect()
}

/// The CPU twin of [`Colour::luminance_grad`].
pub fn luminance_grad_cpu(grad: &[f32]) -> Vec<f32> {
    grad.chunks_exact(3).flat_map(|g| [g[0] + g[1] + g[2]; 3]).collect()
}

/// The mean and covariance of an image's colours (f64).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColourStats {
    pub mean: [f64; 3],
    pub cov: [[f64; 3]; 3],
}

impl ColourStats {
    /// Of HWC RGB pixels (at least one).
    pub fn of(rgb: &[f32]) -> ColourStats {
        let n = (rgb.len() / 3).max(1) as f64;
        let mut mean = [0.0; 3];
        for p in rgb.chunks_exact(3) {
            for c in 0..3 {
                mean[c] += p[c] as f64 / n;
            }
        }
        let mut cov = [[0.0; 3]; 3];
        for p in rgb.chunks_exact(3) {
            let d = [p[0] as f64 - mean[0], p[1] as f64 - mean[1], p[2] as f64 - mean[2]];
            for i in 0..3 {
                for j in 0..3 {
                    cov[i][j] += d[i] * d[j] / n;
                }
            }
        }
        ColourStats { mean, cov }
    }

    /// The mean and variance of the luminance Y.
    fn luminance(&self) -> (f64, f64) {
        let w = TO_YIQ[0].map(|v| v as f64);
        let mean = (0..3).map(|i| w[i] * self.mean[i]).sum();
        let var = (0..3).flat_map(|i| (0..3).map(move |j| (i, j))).map(|(i, j)| w[i] * self.cov[i][j] * w[j]).sum();
        (mean, var)
    }
}

/// Variances below this (in [0,1]² units) count as flat: no direction is stretched by more than
/// 1/√ of it, so a painting with a flat channel cannot blow up.
const FLAT_VARIANCE: f64 = 1e-6;

/// An affine colour map x ← clamp(A x + b, 0, 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColourMap {
    pub matrix: [[f32; 3]; 3],
    pub offset: [f32; 3],
}

impl ColourMap {
    pub const IDENTITY: ColourMap = ColourMap { matrix: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], offset: [0.0; 3] };

    /// Grey: (Y, Y, Y) with Y the YIQ luminance.
    pub fn luminance() -> ColourMap {
        ColourMap { matrix: [TO_YIQ[0]; 3], offset: [0.0; 3] }
    }

    /// Grey with the luminance of `from` matched to the mean and variance of `to`'s:
    /// Y' = (σ_to/σ_from)(Y − μ_from) + μ_to (Gatys et al. 2016, section 2.1).
    pub fn luminance_matched(from: &ColourStats, to: &ColourStats) -> ColourMap {
        let ((mf, vf), (mt, vt)) = (from.luminance(), to.luminance());
        let a = if vf > FLAT_VARIANCE { (vt / vf).sqrt() } else { 0.0 };
        let b = (mt - a * mf) as f32;
        ColourMap { matrix: [TO_YIQ[0].map(|w| (a * w as f64) as f32); 3], offset: [b; 3] }
    }

    /// `from`'s colours matched to `to`'s mean and covariance: A = Σ_to^½ Σ_from^-½ (symmetric
    /// square roots), b = μ_to − A μ_from (Gatys et al. 2016, section 2.2).
    pub fn histogram_matched(from: &ColourStats, to: &ColourStats) -> ColourMap {
        let a = mat_mul(&sym_power(&to.cov, 0.5), &sym_power(&from.cov, -0.5));
        let offset = std::array::from_fn(|i| (to.mean[i] - (0..3).map(|j| a[i][j] * from.mean[j]).sum::<f64>()) as f32);
        ColourMap { matrix: a.map(|row| row.map(|v| v as f32)), offset }
    }

    /// The CPU twin of [`Colour::colour_map`].
    pub fn apply_cpu(&self, rgb: &[f32]) -> Vec<f32> {
        rgb.chunks_exact(3)
            .flat_map(|p| {
                let v = [p[0], p[1], p[2]];
                let m = self.matrix.map(|r| r[0] * v[0] + r[1] * v[1] + r[2] * v[2]);
                [0, 1, 2].map(|c| (m[c] + self.offset[c]).clamp(0.0, 1.0))
            })
            .collect()
    }
}

fn mat_mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// S^p for a symmetric positive semi-definite 3×3 S, by its eigendecomposition (cyclic Jacobi);
/// eigenvalues below [`FLAT_VARIANCE`] are raised to it.
fn sym_power(s: &[[f64; 3]; 3], p: f64) -> [[f64; 3]; 3] {
    let (values, vectors) = jacobi_eigen(s);
    let d = values.map(|l| l.max(FLAT_VARIANCE).powf(p));
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| vectors[i][k] * d[k] * vectors[j][k]).sum()))
}

/// Eigenvalues and eigenvectors (as columns) of a symmetric 3×3 matrix.
fn jacobi_eigen(s: &[[f64; 3]; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let mut a = *s;
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _sweep in 0..32 {
        let off: f64 = a[0][1].powi(2) + a[0][2].powi(2) + a[1][2].powi(2);
        if off < 1e-30 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q].abs() < 1e-300 {
                continue;
            }
            // The rotation that zeroes a[p][q] (Numerical Recipes, section 11.1).
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let (c, sn) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
            // A ← Pᵀ A P and V ← V P, P the rotation in the (p, q) plane.
            let rotate_columns = |m: &mut [[f64; 3]; 3]| {
                for row in m.iter_mut() {
                    let (mp, mq) = (row[p], row[q]);
                    row[p] = c * mp - sn * mq;
                    row[q] = sn * mp + c * mq;
                }
            };
            rotate_columns(&mut a);
            let (rp, rq) = (a[p], a[q]);
            a[p] = std::array::from_fn(|k| c * rp[k] - sn * rq[k]);
            a[q] = std::array::from_fn(|k| sn * rp[k] + c * rq[k]);
            rotate_columns(&mut v);
        }
    }
    ([a[0][0], a[1][1], a[2][2]], v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_square_root_squares_back_and_inverts() {
        let s = [[0.05, 0.02, -0.01], [0.02, 0.04, 0.015], [-0.01, 0.015, 0.03]];
        let r = sym_power(&s, 0.5);
        let rr = mat_mul(&r, &r);
        let inv = mat_mul(&sym_power(&s, -0.5), &r);
        for i in 0..3 {
            for j in 0..3 {
                assert!((rr[i][j] - s[i][j]).abs() < 1e-12, "{rr:?}");
                assert!((inv[i][j] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-9, "{inv:?}");
            }
        }
    }
}
