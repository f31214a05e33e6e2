//! 2x2 max and average pooling (floor mode) against the f64 CPU reference in support_conv,
//! on odd shapes, with the choice words, and the backward kernels by finite differences.

mod common;
mod support_conv;

use common::{ctx, Rng};
use stylize::kernels::pool::{choice_words as choice_len, Pool2x2, PoolKind};
use stylize::kernels::{c4, mask_words};
use support_conv::*;

/// (h, w, c): odd sizes (dropped row/column), 1-pixel maps (empty output), channel counts
/// not multiples of 4, and a map with more than one workgroup of threads.
const SHAPES: &[(usize, usize, usize)] = &[
    (7, 5, 3),
    (5, 9, 6),
    (1, 1, 5),
    (2, 3, 4),
    (3, 1, 2),
    (13, 11, 20),
    (24, 19, 9),
];

fn kind_of(pool: Pool) -> PoolKind {
    match pool {
        Pool::Max => PoolKind::Max,
        Pool::Avg => PoolKind::Avg,
    }
}

/// Input values: random, or drawn from {0, 1, 2} so that max-pool ties are frequent.
fn input(seed: u64, n: usize, ties: bool) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    if ties {
        (0..n).map(|_| rng.below(3) as f64).collect()
    } else {
        round_f32(&rng.vec_sym(n, 1.0))
    }
}

/// Runs the GPU forward pass; returns (output, choice words if max).
fn gpu_forward(pool: &Pool2x2, kind: Pool, h: usize, w: usize, c: usize, x: &[f64]) -> (Vec<f32>, Option<Vec<u32>>) {
    let (oh, ow) = (h / 2, w / 2);
    let input = upload("input", &pad(x, h * w, c));
    let output = poisoned("output", oh * ow * c4(c));
    let words = choice_len(h, w, c);
    assert_eq!(words, mask_words(oh, ow, c));
    let choice = poisoned_words("choice", words);
    let choice_arg = (kind == Pool::Max).then_some(&choice);
    let d = pool.forward(ctx(), kind_of(kind), h, w, c, &input, &output, choice_arg);
    ctx().run(&[&d]);
    let out = read_f32(&output, oh * ow * c4(c));
    (out, (kind == Pool::Max).then(|| read_u32(&choice, words)))
}

fn gpu_backward(pool: &Pool2x2, kind: Pool, h: usize, w: usize, c: usize, g: &[f64], choice: &[u32]) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let grad_output = upload("grad_output", &pad(g, oh * ow, c));
    let choice = upload_u32("choice", choice);
    let grad_input = poisoned("grad_input", h * w * c4(c));
    let choice_arg = (kind == Pool::Max).then_some(&choice);
    let d = pool.backward(ctx(), kind_of(kind), h, w, c, &grad_output, choice_arg, &grad_input);
    ctx().run(&[&d]);
    read_f32(&grad_input, h * w * c4(c))
}

fn check_map(what: &str, got: &[f32], expect: &[f64], pixels: usize, c: usize) {
    let cp = c4(c);
    for p in 0..pixels {
        for ch in 0..cp {
            let v = got[p * cp + ch] as f64;
            let e = if ch < c { expect[p * c + ch] } else { 0.0 };
            assert!((v - e).abs() <= 1e-6 * (1.0 + e.abs()), "{what}: pixel {p} channel {ch}: gpu {v} vs reference {e}");
        }
    }
}

#[test]
fn forward_matches_reference() {
    let pool = Pool2x2::new(ctx());
    for kind in [Pool::Max, Pool::Avg] {
        for ties in [false, true] {
            for (i, &(h, w, c)) in SHAPES.iter().enumerate() {
                let what = format!("{kind:?} {h}x{w}x{c} ties={ties}");
                let x = input(10 + i as u64, h * w * c, ties);
                let (expect, choice) = pool_forward(kind, h, w, c, &x);
                let (out, words) = gpu_forward(&pool, kind, h, w, c, &x);
                check_map(&what, &out, &expect, (h / 2) * (w / 2), c);
                if let Some(words) = words {
                    // padded channels and slots past the end hold choice 0
                    assert_eq!(words, choice_words(h / 2, w / 2, c, &choice), "{what}: choice words");
                }
            }
        }
    }
}

/// Ties resolve to the first maximum in row-major order, as PyTorch does.
#[test]
fn max_ties_pick_the_first_in_row_major_order() {
    let pool = Pool2x2::new(ctx());
    // one 2x2 window, 4 channels: all equal / max at (0,1) and (1,1) / at (1,0) and (1,1) / only (1,1)
    let windows = [[5.0, 5.0, 5.0, 5.0], [1.0, 7.0, 2.0, 7.0], [0.0, -1.0, 3.0, 3.0], [-2.0, -2.0, -2.0, -1.0]];
    let mut x = vec![0.0; 4 * 4];
    for (ch, win) in windows.iter().enumerate() {
        for d in 0..4 {
            x[d * 4 + ch] = win[d];
        }
    }
    let (out, words) = gpu_forward(&pool, Pool::Max, 2, 2, 4, &x);
    assert_eq!(out, vec![5.0, 7.0, 3.0, -1.0]);
    let word = words.unwrap()[0];
    let picks: Vec<u32> = (0..4).map(|ch| word >> (2 * ch) & 3).collect();
    assert_eq!(picks, vec![0, 1, 2, 3]);
}

#[test]
fn backward_matches_reference() {
    let pool = Pool2x2::new(ctx());
    for kind in [Pool::Max, Pool::Avg] {
        for (i, &(h, w, c)) in SHAPES.iter().enumerate() {
            let what = format!("{kind:?} {h}x{w}x{c}");
            let x = input(30 + i as u64, h * w * c, true);
            let (_, choice) = pool_forward(kind, h, w, c, &x);
            let mut rng = Rng::new(40 + i as u64);
            let g = round_f32(&rng.vec_sym((h / 2) * (w / 2) * c, 1.0));
            let expect = pool_backward(kind, h, w, c, &g, &choice);
            let got = gpu_backward(&pool, kind, h, w, c, &g, &choice_words(h / 2, w / 2, c, &choice));
            check_map(&what, &got, &expect, h * w, c);
        }
    }
}

/// L(x) = sum(r * pool(x)); the GPU backward (fed r and the GPU forward's choices) must
/// match central differences of the f64 forward at random coordinates.
#[test]
fn backward_matches_finite_differences() {
    let pool = Pool2x2::new(ctx());
    for kind in [Pool::Max, Pool::Avg] {
        for (i, &(h, w, c)) in [(7, 5, 3), (6, 9, 6), (5, 4, 13)].iter().enumerate() {
            let what = format!("{kind:?} {h}x{w}x{c}");
            let x = input(50 + i as u64, h * w * c, false);
            let mut rng = Rng::new(60 + i as u64);
            let r = round_f32(&rng.vec_sym((h / 2) * (w / 2) * c, 1.0));
            let (_, choice) = pool_forward(kind, h, w, c, &x);
            let (_, words) = gpu_forward(&pool, kind, h, w, c, &x);
            let words = words.unwrap_or_else(|| vec![0; choice_len(h, w, c)]);
            let grad = gpu_backward(&pool, kind, h, w, c, &r, &words);
            let loss = |x: &[f64]| -> f64 { pool_forward(kind, h, w, c, x).0.iter().zip(&r).map(|(a, b)| a * b).sum() };
            let eps = 1e-4;
            let mut checked = 0;
            let mut zeros = 0;
            let mut tries = 0;
            while checked < 24 {
                tries += 1;
                assert!(tries < 500, "{what}: too many coordinates sit on a max kink");
                let j = rng.below(h * w * c);
                let mut xp = x.clone();
                xp[j] += eps;
                let mut xm = x.clone();
                xm[j] -= eps;
                if pool_forward(kind, h, w, c, &xp).1 != choice || pool_forward(kind, h, w, c, &xm).1 != choice {
                    continue;
                }
                let fd = (loss(&xp) - loss(&xm)) / (2.0 * eps);
                let got = grad[(j / c) * c4(c) + j % c] as f64;
                assert!((got - fd).abs() <= 1e-5 * (1.0 + fd.abs()), "{what} x[{}][{}]: gpu {got} vs finite difference {fd}", j / c, j % c);
                zeros += (fd == 0.0) as usize;
                checked += 1;
            }
            // max pooling routes to one of four inputs: most samples are zero, but not all
            assert!(zeros < checked, "{what}: every sampled gradient was zero");
        }
    }
}

/// A map with more than 65535 workgroups of threads in the backward pass: the kernel must
/// linearise its workgroup id over x and y (gpu::groups_2d) and still write every element.
#[test]
fn backward_spans_two_dimensional_dispatch() {
    let pool = Pool2x2::new(ctx());
    let (h, w, c) = (2049, 2050, 4);
    assert!(h * w > 65535 * 64, "the shape must need a 2-D dispatch");
    let mut rng = Rng::new(77);
    let g: Vec<f64> = (0..(h / 2) * (w / 2) * c).map(|_| rng.below(1000) as f64).collect();
    let choice: Vec<u8> = (0..g.len()).map(|_| rng.below(4) as u8).collect();
    for kind in [Pool::Max, Pool::Avg] {
        let expect = pool_backward(kind, h, w, c, &g, &choice);
        let got = gpu_backward(&pool, kind, h, w, c, &g, &choice_words(h / 2, w / 2, c, &choice));
        let bad = got.iter().zip(&expect).position(|(a, b)| *a as f64 != *b);
        assert_eq!(bad, None, "{kind:?}: first mismatch at element {bad:?}");
    }
}

#[test]
#[should_panic(expected = "max pooling needs a choice buffer")]
fn max_without_choice_is_refused() {
    let pool = Pool2x2::new(ctx());
    let b = ctx().storage_buffer("b", 1024);
    pool.forward(ctx(), PoolKind::Max, 4, 4, 4, &b, &b, None);
}
