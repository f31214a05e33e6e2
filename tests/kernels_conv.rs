//! conv3x3 + bias + ReLU (forward, ReLU mask, backward to the input) against the f64 CPU
//! reference in support_conv, on odd shapes, and the backward kernel by finite differences:
//! every kernel variant ([`ConvVariant::ALL`]) in every precision ([`Precision::ALL`]) the same way.
//! In f16 the reference sees what the kernel stores: the weights rounded to f16 (as the upload
//! rounds them), and in the workgroup variant's forward pass the input too (staged in f16).

mod common;
mod support_conv;

use common::{ctx, Rng};
use stylize::kernels::c4;
use stylize::kernels::conv::{pad_bias, pad_weights, Conv3x3, ConvShape, ConvVariant, Precision};
use stylize::kernels::window::Rect;
use support_conv::*;

/// (h, w, cin, cout): odd spatial sizes, channel counts that are and are not multiples of 4,
/// maps smaller than one 4-pixel block, and one map larger than a 64-thread workgroup.
const SHAPES: &[(usize, usize, usize, usize)] = &[
    (7, 5, 3, 8),
    (5, 9, 6, 12),
    (1, 1, 3, 5),
    (2, 3, 5, 7),
    (6, 7, 10, 6),
    (13, 11, 64, 20),
    (23, 17, 9, 13),
    // more than one 64-pixel x 64-channel tile both ways, channel counts not multiples of 16
    (19, 15, 70, 68),
];

/// Random input, kernel (He-like scale so pre-activations are O(1)) and bias, rounded to f32.
struct Problem {
    shape: ConvShape,
    x: Vec<f64>,
    k: Vec<f64>,
    b: Vec<f64>,
}

impl Problem {
    fn new(seed: u64, (h, w, cin, cout): (usize, usize, usize, usize)) -> Self {
        let mut rng = Rng::new(seed);
        let x = round_f32(&rng.vec_sym(h * w * cin, 1.0));
        let k = round_f32(&rng.vec_sym(cout * 9 * cin, (3.0 / (9 * cin) as f64).sqrt()));
        let b = round_f32(&rng.vec_sym(cout, 0.3));
        Problem { shape: ConvShape { h, w, cin, cout }, x, k, b }
    }

    /// The weights as `conv` stores them (in its precision).
    fn weight_buffer(&self, conv: &Conv3x3) -> wgpu::Buffer {
        let k32: Vec<f32> = self.k.iter().map(|&v| v as f32).collect();
        let bytes = conv.precision().weight_buffer_bytes(&pad_weights(self.shape.cin, self.shape.cout, &k32));
        ctx().storage_buffer_init("weight", &bytes)
    }

    /// The problem as `variant` in `precision` computes it: the weights rounded as they are stored,
    /// and with `input_staged` (the workgroup variant's forward pass in f16) the input too.
    fn as_stored(&self, precision: Precision, variant: ConvVariant, input_staged: bool) -> Problem {
        let round = |v: &Vec<f64>| v.iter().map(|&x| precision.round(x as f32) as f64).collect::<Vec<f64>>();
        let staged = input_staged && variant == ConvVariant::Workgroup64x64 && precision == Precision::F16;
        Problem { shape: self.shape, x: if staged { round(&self.x) } else { self.x.clone() }, k: round(&self.k), b: self.b.clone() }
    }

    /// Runs the GPU forward pass; returns (output HWC cout4, mask words).
    fn gpu_forward(&self, conv: &Conv3x3, variant: ConvVariant) -> (Vec<f32>, Vec<u32>) {
        let s = self.shape;
        let b32: Vec<f32> = self.b.iter().map(|&v| v as f32).collect();
        let input = upload("input", &pad(&self.x, s.h * s.w, s.cin));
        let weight = self.weight_buffer(conv);
        let bias = upload("bias", &pad_bias(s.cout, &b32));
        let output = poisoned("output", s.output_len());
        let mask = poisoned_words("mask", s.mask_words());
        let d = conv.forward(ctx(), variant, s, &input, &weight, &bias, &output, &mask);
        assert_eq!(d.flops, 2 * (s.h * s.w * s.cin * s.cout * 9) as u64);
        ctx().run(&[&d]);
        (read_f32(&output, s.output_len()), read_u32(&mask, s.mask_words()))
    }

    /// Runs the GPU backward pass for grad_output `g` ([h][w][cout]) and `mask_words`.
    fn gpu_backward(&self, conv: &Conv3x3, variant: ConvVariant, g: &[f64], mask_words: &[u32]) -> Vec<f32> {
        let s = self.shape;
        let grad_output = upload("grad_output", &pad(g, s.h * s.w, s.cout));
        let mask = upload_u32("mask", mask_words);
        let weight = self.weight_buffer(conv);
        let grad_input = poisoned("grad_input", s.input_len());
        let d = conv.backward_input(ctx(), variant, s, &grad_output, &mask, &weight, &grad_input);
        assert_eq!(d.flops, 2 * (s.h * s.w * s.cin * s.cout * 9) as u64);
        ctx().run(&[&d]);
        read_f32(&grad_input, s.input_len())
    }
}

/// Every kernel: each precision (the conv compiled in it) with each variant, named "variant/precision".
/// The test GPU must offer shader-f16 (lavapipe does): f16 is tested, not skipped.
fn each_kernel(mut test: impl FnMut(&Conv3x3, ConvVariant, &str)) {
    for precision in Precision::ALL {
        let conv = Conv3x3::with_precision(ctx(), precision).expect("the test GPU runs every precision");
        for variant in ConvVariant::ALL {
            test(&conv, variant, &format!("{}/{}", variant.name(), precision.name()));
        }
    }
}

#[test]
fn pad_weights_layout() {
    // cout=2, cin=3: values numbered by position so every move is visible
    let k: Vec<f32> = (0..2 * 9 * 3).map(|i| i as f32 + 1.0).collect();
    let p = pad_weights(3, 2, &k);
    assert_eq!(p.len(), 4 * 9 * 4);
    for co in 0..4 {
        for tap in 0..9 {
            for ci in 0..4 {
                let expect = if co < 2 && ci < 3 { k[(co * 9 + tap) * 3 + ci] } else { 0.0 };
                assert_eq!(p[(co * 9 + tap) * 4 + ci], expect, "co {co} tap {tap} ci {ci}");
            }
        }
    }
    assert_eq!(pad_bias(5, &[1.0, 2.0, 3.0, 4.0, 5.0]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0, 0.0]);
}

#[test]
#[should_panic(expected = "needs 54 values")]
fn pad_weights_rejects_a_wrong_length() {
    pad_weights(3, 2, &[0.0; 53]);
}

#[test]
fn forward_matches_reference() {
    each_kernel(|conv, variant, k| {
        for (i, &dims) in SHAPES.iter().enumerate() {
            let pb = Problem::new(100 + i as u64, dims);
            let ConvShape { h, w, cin, cout } = pb.shape;
            let seen = pb.as_stored(conv.precision(), variant, true);
            let (pre, abs) = conv_pre(h, w, cin, cout, &seen.x, &seen.k, &seen.b);
            // The GPU rounds a staged input to f16 itself, to either neighbour (WGSL leaves which to
            // the implementation): up to 2^-10 of each product. The weights are rounded here, exactly.
            let staged = seen.x != pb.x;
            let (out, mask) = pb.gpu_forward(conv, variant);
            let cout4 = c4(cout);
            let mut positive = 0;
            for p in 0..h * w {
                for co in 0..cout4 {
                    let got = out[p * cout4 + co] as f64;
                    let (word, slot) = block_slot(p, co, cout);
                    let bit = mask[word] >> slot & 1;
                    if co >= cout {
                        assert_eq!(got, 0.0, "{k} {dims:?} padded channel {co} at pixel {p}");
                        assert_eq!(bit, 0, "{k} {dims:?} mask bit of padded channel {co} at pixel {p}");
                        continue;
                    }
                    let r = pre[p * cout + co];
                    let tol = if staged { 1e-3 } else { 1e-5 } * abs[p * cout + co] + 1e-7;
                    assert!((got - r.max(0.0)).abs() <= tol, "{k} {dims:?} pixel {p} channel {co}: gpu {got} vs reference {}", r.max(0.0));
                    // the bit is exact wherever rounding cannot flip the sign
                    if r.abs() > tol {
                        assert_eq!(bit, (r > 0.0) as u32, "{k} {dims:?} mask bit at pixel {p} channel {co} (pre {r})");
                    }
                    positive += (r > 0.0) as usize;
                }
            }
            // slots of pixels past the end of the map (h*w not a multiple of 4) stay 0
            for p in h * w..(h * w).div_ceil(4) * 4 {
                for co in 0..cout4 {
                    let (word, slot) = block_slot(p, co, cout);
                    assert_eq!(mask[word] >> slot & 1, 0, "{k} {dims:?} mask bit past the end, pixel {p}");
                }
            }
            // the data exercises both sides of the ReLU (too few outputs in the tiniest maps to insist)
            assert!(h * w * cout < 32 || (positive > 0 && positive < h * w * cout), "{k} {dims:?}: {positive} positive of {}", h * w * cout);
        }
    });
}

#[test]
fn backward_input_matches_reference() {
    each_kernel(|conv, variant, k| {
        for (i, &dims) in SHAPES.iter().enumerate() {
            let pb = Problem::new(200 + i as u64, dims);
            let ConvShape { h, w, cin, cout } = pb.shape;
            let (pre, _) = conv_pre(h, w, cin, cout, &pb.x, &pb.k, &pb.b);
            let mask: Vec<bool> = pre.iter().map(|&v| v > 0.0).collect();
            let mut rng = Rng::new(300 + i as u64);
            let g = round_f32(&rng.vec_sym(h * w * cout, 1.0));
            let seen = pb.as_stored(conv.precision(), variant, false);
            let (dx, abs) = conv_backward_input(h, w, cin, cout, &g, &mask, &seen.k);
            let got = pb.gpu_backward(conv, variant, &g, &relu_mask_words(h, w, cout, &pre));
            let cin4 = c4(cin);
            for p in 0..h * w {
                for ci in 0..cin4 {
                    let v = got[p * cin4 + ci] as f64;
                    if ci >= cin {
                        assert_eq!(v, 0.0, "{k} {dims:?} padded input channel {ci} at pixel {p}");
                        continue;
                    }
                    let r = dx[p * cin + ci];
                    let tol = 1e-5 * abs[p * cin + ci] + 1e-7;
                    assert!((v - r).abs() <= tol, "{k} {dims:?} pixel {p} channel {ci}: gpu {v} vs reference {r}");
                }
            }
        }
    });
}

/// Within a rectangle (as a tiled step uses it): the rectangle's pixels equal the reference, every
/// other pixel keeps what the buffer held (NaN), and grad_output is read only within the rectangle
/// grown by one pixel (NaN everywhere else).
#[test]
fn backward_input_within_a_rectangle_writes_only_it() {
    each_kernel(|conv, variant, k| {
        let cases = [
            ((23, 17, 9, 13), Rect { y: 3, x: 2, h: 9, w: 5 }),
            ((23, 17, 9, 13), Rect { y: 22, x: 0, h: 1, w: 17 }),
            ((13, 11, 64, 20), Rect { y: 0, x: 10, h: 13, w: 1 }),
            ((7, 5, 3, 8), Rect { y: 1, x: 1, h: 1, w: 1 }),
            ((6, 7, 10, 6), Rect { y: 0, x: 0, h: 6, w: 7 }),
            // more than one 64-pixel tile and one 64-channel tile of the workgroup variant
            ((19, 15, 70, 68), Rect { y: 2, x: 3, h: 12, w: 9 }),
        ];
        for (i, &(dims, rect)) in cases.iter().enumerate() {
            let pb = Problem::new(700 + i as u64, dims);
            let ConvShape { h, w, cin, cout } = pb.shape;
            let (pre, _) = conv_pre(h, w, cin, cout, &pb.x, &pb.k, &pb.b);
            let mask: Vec<bool> = pre.iter().map(|&v| v > 0.0).collect();
            let mut rng = Rng::new(800 + i as u64);
            let g = round_f32(&rng.vec_sym(h * w * cout, 1.0));
            let (dx, abs) = conv_backward_input(h, w, cin, cout, &g, &mask, &pb.as_stored(conv.precision(), variant, false).k);
            let near = |y: usize, x: usize| y + 1 >= rect.y && y <= rect.y + rect.h && x + 1 >= rect.x && x <= rect.x + rect.w;
            let g_read: Vec<f64> = g.iter().enumerate().map(|(j, &v)| if near(j / cout / w, j / cout % w) { v } else { f64::NAN }).collect();
            let s = pb.shape;
            let grad_output = upload("grad_output", &pad(&g_read, h * w, cout));
            let mask_buffer = upload_u32("mask", &relu_mask_words(h, w, cout, &pre));
            let grad_input = poisoned("grad_input", s.input_len());
            let d = conv.backward_input_within(ctx(), variant, s, rect, &grad_output, &mask_buffer, &pb.weight_buffer(conv), &grad_input);
            assert_eq!(d.flops, 2 * (rect.pixels() * cin * cout * 9) as u64);
            ctx().run(&[&d]);
            let got = read_f32(&grad_input, s.input_len());
            let cin4 = c4(cin);
            for p in 0..h * w {
                let inside = (rect.y..rect.y + rect.h).contains(&(p / w)) && (rect.x..rect.x + rect.w).contains(&(p % w));
                for ci in 0..cin4 {
                    let v = got[p * cin4 + ci] as f64;
                    if !inside {
                        assert!(v.is_nan(), "{k} {dims:?} {rect:?}: pixel {p} outside the rectangle was written");
                    } else if ci >= cin {
                        assert_eq!(v, 0.0, "{k} {dims:?} padded input channel {ci} at pixel {p}");
                    } else {
                        let r = dx[p * cin + ci];
                        let tol = 1e-5 * abs[p * cin + ci] + 1e-7;
                        assert!((v - r).abs() <= tol, "{k} {dims:?} {rect:?} pixel {p} channel {ci}: gpu {v} vs reference {r}");
                    }
                }
            }
        }
    });
}

/// The mask alone gates the gradient: an all-zero mask gives an all-zero gradient, an
/// all-ones mask passes every grad_output element (checked against the reference).
#[test]
fn backward_input_honours_the_mask() {
    each_kernel(|conv, variant, k| {
        let dims = (5, 6, 7, 9);
        let pb = Problem::new(7, dims);
        let ConvShape { h, w, cin, cout } = pb.shape;
        let mut rng = Rng::new(8);
        let g = round_f32(&rng.vec_sym(h * w * cout, 1.0));
        let words = stylize::kernels::mask_words(h, w, cout);
        let none = pb.gpu_backward(conv, variant, &g, &vec![0; words]);
        assert!(none.iter().all(|&v| v == 0.0), "{k}: zero mask must give a zero gradient");
        let all_pre = vec![1.0; h * w * cout];
        let got = pb.gpu_backward(conv, variant, &g, &relu_mask_words(h, w, cout, &all_pre));
        let seen = pb.as_stored(conv.precision(), variant, false);
        let (dx, abs) = conv_backward_input(h, w, cin, cout, &g, &vec![true; h * w * cout], &seen.k);
        for p in 0..h * w {
            for ci in 0..cin {
                let (v, r) = (got[p * c4(cin) + ci] as f64, dx[p * cin + ci]);
                assert!((v - r).abs() <= 1e-5 * abs[p * cin + ci] + 1e-7, "{k}: pixel {p} channel {ci}: gpu {v} vs reference {r}");
            }
        }
    });
}

/// L(x) = sum(r * relu(conv(x) + b)); the GPU backward (fed r and the GPU forward's mask)
/// must match central differences of the f64 forward at random coordinates.
#[test]
fn backward_input_matches_finite_differences() {
    each_kernel(|conv, variant, k| {
        for (i, &dims) in [(7, 5, 3, 8), (5, 6, 6, 7), (3, 9, 13, 4)].iter().enumerate() {
            // Inputs and weights the kernel stores exactly, so that the f64 function differentiated
            // is the one the GPU computes (in f16: f16 weights, and f16 inputs where they are staged).
            let pb = Problem::new(400 + i as u64, dims).as_stored(conv.precision(), variant, true);
            let ConvShape { h, w, cin, cout } = pb.shape;
            let mut rng = Rng::new(500 + i as u64);
            let r = round_f32(&rng.vec_sym(h * w * cout, 1.0));
            let (pre, _) = conv_pre(h, w, cin, cout, &pb.x, &pb.k, &pb.b);
            let (_, gpu_mask) = pb.gpu_forward(conv, variant);
            assert_eq!(gpu_mask, relu_mask_words(h, w, cout, &pre), "{k} {dims:?}: GPU mask differs from the f64 reference");
            let grad = pb.gpu_backward(conv, variant, &r, &gpu_mask);

            let eps = 1e-4;
            let mut checked = 0;
            let mut worst: f64 = 0.0;
            let mut tries = 0;
            while checked < 24 {
                tries += 1;
                assert!(tries < 500, "{k} {dims:?}: too many coordinates sit on a ReLU kink");
                let j = rng.below(h * w * cin);
                let mut xp = pb.x.clone();
                xp[j] += eps;
                let mut xm = pb.x.clone();
                xm[j] -= eps;
                // L is piecewise linear: skip coordinates where the step crosses a kink
                let (pre_p, _) = conv_pre(h, w, cin, cout, &xp, &pb.k, &pb.b);
                let (pre_m, _) = conv_pre(h, w, cin, cout, &xm, &pb.k, &pb.b);
                let flips = pre.iter().zip(&pre_p).zip(&pre_m).any(|((a, b), c)| (*a > 0.0) != (*b > 0.0) || (*a > 0.0) != (*c > 0.0));
                if flips {
                    continue;
                }
                let fd = (conv_loss(h, w, cin, cout, &xp, &pb.k, &pb.b, &r) - conv_loss(h, w, cin, cout, &xm, &pb.k, &pb.b, &r))
                    / (2.0 * eps);
                let (p, ci) = (j / cin, j % cin);
                let got = grad[p * c4(cin) + ci] as f64;
                let err = (got - fd).abs() / (fd.abs() + 1e-2);
                worst = worst.max(err);
                assert!(err < 1e-4, "{k} {dims:?} x[{p}][{ci}]: gpu {got} vs finite difference {fd}");
                checked += 1;
            }
            eprintln!("{k} {dims:?}: worst relative error {worst:.2e} over {checked} coordinates");
        }
    });
}

#[test]
#[should_panic(expected = "the weight buffer holds")]
fn forward_rejects_a_short_weight_buffer() {
    let conv = Conv3x3::new(ctx());
    let s = ConvShape { h: 3, w: 3, cin: 4, cout: 4 };
    let input = ctx().storage_buffer("in", (s.input_len() * 4) as u64);
    let weight = ctx().storage_buffer("w", 16);
    let bias = ctx().storage_buffer("b", 16);
    let output = ctx().storage_buffer("out", (s.output_len() * 4) as u64);
    let mask = ctx().storage_buffer("mask", (s.mask_words() * 4) as u64);
    conv.forward(ctx(), ConvVariant::Register4x8, s, &input, &weight, &bias, &output, &mask);
}

/// Workgroup counts: every pixel and channel covered, no dimension over WebGPU's 65535 (the pixel
/// groups spill into z), for each variant, up to maps far larger than any plan makes.
#[test]
fn workgroup_counts_cover_every_pixel_within_the_limits() {
    for variant in ConvVariant::ALL {
        let (per_x, per_y) = variant.per_workgroup();
        for pixels in [1, 63, 64, 65, 256, 257, 4_194_240, 4_194_305, 16_777_216, 67_108_864] {
            for channels in [4, 8, 64, 68, 512] {
                let [x, y, z] = variant.workgroups(pixels, channels);
                assert!(x <= 65535 && y <= 65535 && z <= 65535, "{variant:?} {pixels} px: [{x}, {y}, {z}]");
                assert!((x as usize) * (z as usize) * per_x >= pixels, "{variant:?} {pixels} px: [{x}, {y}, {z}]");
                assert!((y as usize) * per_y >= channels, "{variant:?} {channels} channels: [{x}, {y}, {z}]");
            }
        }
    }
}
