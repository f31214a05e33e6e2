//! Plain f64 CPU references for the conv3x3 and pool2x2 kernels and GPU buffer helpers,
//! shared by tests/kernels_conv.rs and tests/kernels_pool.rs.
//!
//! Reference maps are unpadded HWC f64 (`[h][w][c]`); the `pad`/`unpad` helpers convert
//! to and from the kernels' channel-padded f32 layout.
#![allow(dead_code)]

use crate::common::ctx;
use stylize::kernels::{c4, mask_words};
use wgpu::Buffer;

/// `[pixels][c]` f64 -> `[pixels][c4]` f32 with zero padding.
pub fn pad(data: &[f64], pixels: usize, c: usize) -> Vec<f32> {
    assert_eq!(data.len(), pixels * c);
    let cp = c4(c);
    let mut out = vec![0.0f32; pixels * cp];
    for p in 0..pixels {
        for ch in 0..c {
            out[p * cp + ch] = data[p * c + ch] as f32;
        }
    }
    out
}

/// Rounds f64 values to f32 and back, so the CPU reference sees exactly what the GPU sees.
pub fn round_f32(data: &[f64]) -> Vec<f64> {
    data.iter().map(|&v| v as f32 as f64).collect()
}

/// A storage buffer holding `data`.
pub fn upload(label: &str, data: &[f32]) -> Buffer {
    ctx().storage_buffer_init(label, bytemuck::cast_slice(data))
}

pub fn upload_u32(label: &str, data: &[u32]) -> Buffer {
    ctx().storage_buffer_init(label, bytemuck::cast_slice(data))
}

/// A buffer of `len` f32 filled with NaN, to prove a kernel writes every element.
pub fn poisoned(label: &str, len: usize) -> Buffer {
    upload(label, &vec![f32::NAN; len])
}

/// A buffer of `len` u32 with every bit set, to prove a kernel writes every word.
pub fn poisoned_words(label: &str, len: usize) -> Buffer {
    upload_u32(label, &vec![u32::MAX; len])
}

pub fn read_f32(buffer: &Buffer, len: usize) -> Vec<f32> {
    pollster::block_on(ctx().read_f32(buffer, 0, len)).expect("readback")
}

pub fn read_u32(buffer: &Buffer, len: usize) -> Vec<u32> {
    pollster::block_on(ctx().read_u32(buffer, 0, len)).expect("readback")
}

/// Element (p, ch) of a 4x4-block word layout: (word, slot).
pub fn block_slot(p: usize, ch: usize, c: usize) -> (usize, usize) {
    ((p / 4) * (c4(c) / 4) + ch / 4, (p % 4) * 4 + ch % 4)
}

// ---------------------------------------------------------------- conv3x3

/// Pre-activations of conv3x3 (stride 1, zero pad 1) + bias, `[h][w][cout]`, and for each
/// output the sum of absolute terms (the scale of its rounding error).
pub fn conv_pre(h: usize, w: usize, cin: usize, cout: usize, x: &[f64], k: &[f64], b: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut pre = vec![0.0; h * w * cout];
    let mut abs = vec![0.0; h * w * cout];
    for y in 0..h {
        for xx in 0..w {
            for co in 0..cout {
                let mut s = b[co];
                let mut a = b[co].abs();
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (sy, sx) = (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                        if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                            continue;
                        }
                        let src = (sy as usize * w + sx as usize) * cin;
                        let wk = ((co * 3 + ky) * 3 + kx) * cin;
                        for ci in 0..cin {
                            let t = k[wk + ci] * x[src + ci];
                            s += t;
                            a += t.abs();
                        }
                    }
                }
                pre[(y * w + xx) * cout + co] = s;
                abs[(y * w + xx) * cout + co] = a;
            }
        }
    }
    (pre, abs)
}

/// L = sum(r * relu(conv(x) + b)): the scalar whose gradient the backward kernel computes for grad_output = r.
#[allow(clippy::too_many_arguments)]
pub fn conv_loss(h: usize, w: usize, cin: usize, cout: usize, x: &[f64], k: &[f64], b: &[f64], r: &[f64]) -> f64 {
    let (pre, _) = conv_pre(h, w, cin, cout, x, k, b);
    pre.iter().zip(r).map(|(p, r)| p.max(0.0) * r).sum()
}

/// Expected ReLU mask words (bit set where pre > 0).
pub fn relu_mask_words(h: usize, w: usize, cout: usize, pre: &[f64]) -> Vec<u32> {
    let mut words = vec![0u32; mask_words(h, w, cout)];
    for p in 0..h * w {
        for co in 0..cout {
            if pre[p * cout + co] > 0.0 {
                let (word, slot) = block_slot(p, co, cout);
                words[word] |= 1 << slot;
            }
        }
    }
    words
}

/// dL/dx of conv3x3 + ReLU given dL/d(post-ReLU output) `g` and the ReLU `mask` (`[h][w][cout]`),
/// plus per-element sums of absolute terms.
pub fn conv_backward_input(
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    g: &[f64],
    mask: &[bool],
    k: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; h * w * cin];
    let mut abs = vec![0.0; h * w * cin];
    // scatter form (the transpose of the forward gather), independent of the shader's gather form
    for y in 0..h {
        for xx in 0..w {
            for co in 0..cout {
                let o = (y * w + xx) * cout + co;
                if !mask[o] {
                    continue;
                }
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (sy, sx) = (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                        if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                            continue;
                        }
                        let src = (sy as usize * w + sx as usize) * cin;
                        let wk = ((co * 3 + ky) * 3 + kx) * cin;
                        for ci in 0..cin {
                            let t = k[wk + ci] * g[o];
                            dx[src + ci] += t;
                            abs[src + ci] += t.abs();
                        }
                    }
                }
            }
        }
    }
    (dx, abs)
}

// ---------------------------------------------------------------- pool2x2

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Max,
    Avg,
}

/// Floor-mode 2x2 stride-2 pooling of `[h][w][c]`: output `[h/2][w/2][c]` and, for max, the
/// winning position dy*2+dx per output element (first maximum in row-major order).
pub fn pool_forward(kind: Pool, h: usize, w: usize, c: usize, x: &[f64]) -> (Vec<f64>, Vec<u8>) {
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![0.0; oh * ow * c];
    let mut choice = vec![0u8; oh * ow * c];
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let at = |d: usize| x[((2 * oy + d / 2) * w + 2 * ox + d % 2) * c + ch];
                let o = (oy * ow + ox) * c + ch;
                match kind {
                    Pool::Max => {
                        let mut best = 0;
                        for d in 1..4 {
                            if at(d) > at(best) {
                                best = d;
                            }
                        }
                        out[o] = at(best);
                        choice[o] = best as u8;
                    }
                    Pool::Avg => out[o] = (0..4).map(at).sum::<f64>() / 4.0,
                }
            }
        }
    }
    (out, choice)
}

/// Expected max-pool choice words (2 bits per slot) for an output of `oh*ow` pixels.
pub fn choice_words(oh: usize, ow: usize, c: usize, choice: &[u8]) -> Vec<u32> {
    let mut words = vec![0u32; mask_words(oh, ow, c)];
    for q in 0..oh * ow {
        for ch in 0..c {
            let (word, slot) = block_slot(q, ch, c);
            words[word] |= (choice[q * c + ch] as u32) << (2 * slot);
        }
    }
    words
}

/// dL/dx of pooling given dL/d(output) `g` (`[h/2][w/2][c]`).
pub fn pool_backward(kind: Pool, h: usize, w: usize, c: usize, g: &[f64], choice: &[u8]) -> Vec<f64> {
    let (oh, ow) = (h / 2, w / 2);
    let mut dx = vec![0.0; h * w * c];
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let o = (oy * ow + ox) * c + ch;
                for d in 0..4 {
                    let i = ((2 * oy + d / 2) * w + 2 * ox + d % 2) * c + ch;
                    dx[i] += match kind {
                        Pool::Max => if choice[o] as usize == d { g[o] } else { 0.0 },
                        Pool::Avg => g[o] / 4.0,
                    };
                }
            }
        }
    }
    dx
}
