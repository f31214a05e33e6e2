//! GPU tests of the ops kernels (reduce, gram, content/style/TV losses, image in/out)
//! against plain f64 CPU references in tests/support_ops, on odd shapes, plus
//! finite-difference checks of every backward kernel. Runs on lavapipe: keep it tiny.

mod common;
mod support_ops;

use common::{ctx, to_f64, Rng};
use stylize::gpu::Dispatch;
use stylize::kernels::gram::Gram;
use stylize::kernels::image::{ImageOps, InputTransform};
use stylize::kernels::loss::{content_scales, gram_scale, style_scales, ContentLoss, StyleLoss};
use stylize::kernels::reduce::{LaneSum, Reduce};
use stylize::kernels::tv::{tv_scale, TvLoss};
use support_ops::*;

fn upload(label: &str, data: &[f32]) -> wgpu::Buffer {
    ctx().storage_buffer_init(label, bytemuck::cast_slice(data))
}

fn read(buffer: &wgpu::Buffer, first: usize, len: usize) -> Vec<f32> {
    pollster::block_on(ctx().read_f32(buffer, first, len)).expect("GPU readback")
}

fn run(dispatches: &[&Dispatch]) {
    ctx().run(dispatches);
}

/// Every way a workgroup sums its lanes: the loss and reduce tests run with each. The test GPU must
/// have subgroups (lavapipe does): they are tested, not skipped.
fn lane_sums() -> [LaneSum; 2] {
    assert!(LaneSum::Subgroups.available(ctx()), "the test GPU has no subgroups");
    LaneSum::ALL
}

const SENTINEL: f32 = 1234.5;

/// A partials buffer filled with a sentinel, so writes outside an op's range show.
fn sentinel_partials(len: usize) -> wgpu::Buffer {
    upload("partials", &vec![SENTINEL; len])
}

fn assert_untouched(partials: &wgpu::Buffer, ranges: &[(usize, usize)]) {
    for &(first, len) in ranges {
        let values = read(partials, first, len);
        assert!(values.iter().all(|&v| v == SENTINEL), "partials outside the op's range were written: {values:?}");
    }
}

// ---------------------------------------------------------------- reduce

#[test]
fn reduce_finish_and_combine_match_reference() {
    for sum in lane_sums() {
        eprintln!("lane sum: {}", sum.name());
        let ctx = ctx();
        let reduce = Reduce::with_lane_sum(ctx, sum);
        let mut rng = Rng::new(1);
        let n = 300_000;
        // Positive like every loss partial; a mixed-sign range too.
        let mut partials = rng.vec_f32(n + 100, 0.0, 1.0);
        for v in partials[10..1010].iter_mut() {
            *v = *v * 2.0 - 1.0;
        }
        let partials_buf = upload("partials", &partials);
        let initial = [1.5f32, -2.0, 3.0, 0.25, 99.0, 7.0, 99.0, 0.0];
        let scalars = upload("scalars", &initial);
        let big = reduce.finish(ctx, &partials_buf, 57, n, &scalars, 4, 0.5, false);
        let small = reduce.finish(ctx, &partials_buf, 10, 1000, &scalars, 1, 2.0, true);
        let empty = reduce.finish(ctx, &partials_buf, 0, 0, &scalars, 5, 1.0, true);
        let one = reduce.finish(ctx, &partials_buf, 3, 1, &scalars, 3, -1.0, true);
        let total = reduce.combine(ctx, &scalars, [4, 1, 0], [2.0, -1.0, 0.5], 6);
        run(&[&big, &small, &empty, &one, &total]);
        let got = read(&scalars, 0, 8);

        let p = to_f64(&partials);
        let big_want = 0.5 * p[57..57 + n].iter().sum::<f64>();
        let small_sum: f64 = p[10..1010].iter().sum();
        let small_abs: f64 = p[10..1010].iter().map(|v| v.abs()).sum();
        let small_want = -2.0 + 2.0 * small_sum;
        assert_scalar("finish over 300k partials", got[4], big_want, 1e-5);
        assert!(
            (got[1] as f64 - small_want).abs() <= 1e-5 * (2.0 + 2.0 * small_abs),
            "finish with accumulate: GPU {} vs {small_want}",
            got[1]
        );
        assert_eq!(got[5], 7.0, "finish over 0 partials with accumulate keeps the slot");
        assert_scalar("finish of one partial", got[3], 0.25 - p[3], 1e-6);
        assert_eq!(got[0], 1.5, "slots not named stay as they were");
        assert_eq!(got[2], 3.0);
        let total_want = 2.0 * got[4] as f64 - got[1] as f64 + 0.5 * 1.5;
        assert!((got[6] as f64 - total_want).abs() <= 1e-6 * (2.0 * got[4].abs() as f64 + got[1].abs() as f64 + 1.0));
    }
}

#[test]
fn finish_overwrites_without_accumulate() {
    for sum in lane_sums() {
        eprintln!("lane sum: {}", sum.name());
        let ctx = ctx();
        let reduce = Reduce::with_lane_sum(ctx, sum);
        let partials = upload("partials", &[1.0, 2.0, 3.0, 4.0]);
        let scalars = upload("scalars", &[f32::NAN, 5.0, 0.0, 0.0]);
        let d = reduce.finish(ctx, &partials, 1, 3, &scalars, 0, 0.5, false);
        run(&[&d]);
        assert_eq!(read(&scalars, 0, 2), vec![4.5, 5.0]);
    }
}

// ---------------------------------------------------------------- gram

#[test]
fn gram_matches_reference_on_odd_shapes() {
    let ctx = ctx();
    let gram_op = Gram::new(ctx);
    let mut rng = Rng::new(2);
    // (h, w, c, value range): odd spatial sizes, c not multiples of 4, several chunks
    // for 64x64x5 and 32x32x64.
    let shapes = [
        (7, 5, 3, -1.0),
        (13, 3, 5, 0.0),
        (1, 1, 12, -1.0),
        (7, 5, 64, 0.0),
        (9, 11, 20, -1.0),
        (4, 3, 7, -1.0),
        (64, 64, 5, 0.0),
        (32, 32, 64, -1.0),
    ];
    for (h, w, c, lo) in shapes {
        let pixels = h * w;
        let c4 = c4(c);
        let f = feature_map(&mut rng, pixels, c, lo, 1.0);
        let scale = 1.0 / (c * pixels) as f64;
        let features = upload("features", &f);
        let partials = ctx.storage_buffer("partials", (Gram::partials_len(h, w, c) * 4) as u64);
        let out = upload("gram", &vec![f32::NAN; c4 * c4]);
        let dispatches = gram_op.build(ctx, h, w, c, &features, &partials, &out, scale as f32);
        run(&dispatches.iter().collect::<Vec<_>>());
        let got = read(&out, 0, c4 * c4);
        let f64s = to_f64(&f);
        let want = gram(&f64s, pixels, c4, scale);
        let bound = gram_abs(&f64s, pixels, c4, scale);
        assert_close_scaled(&format!("gram {h}x{w}x{c}"), &got, &want, &bound, 1e-5);
        for a in 0..c4 {
            for b in 0..c4 {
                if a >= c || b >= c {
                    assert_eq!(got[a * c4 + b], 0.0, "gram {h}x{w}x{c}: padded entry ({a},{b}) must be 0");
                }
            }
        }
    }
}

// ---------------------------------------------------------------- content loss

#[test]
fn content_loss_partial_finish_and_grad_match_reference() {
    for sum in lane_sums() {
        eprintln!("lane sum: {}", sum.name());
        let ctx = ctx();
        let content = ContentLoss::with_lane_sum(ctx, sum);
        let reduce = Reduce::with_lane_sum(ctx, sum);
        let mut rng = Rng::new(4);
        // 100x75x40 is a 300k-element reduction.
        for (h, w, c) in [(7, 5, 3), (13, 3, 5), (1, 1, 12), (7, 5, 64), (4, 4, 8), (100, 75, 40)] {
            let pixels = h * w;
            let n = pixels * c4(c);
            let f = feature_map(&mut rng, pixels, c, 0.0, 2.0);
            let fc = feature_map(&mut rng, pixels, c, 0.0, 2.0);
            let features = upload("features", &f);
            let target = upload("content", &fc);
            let len = ContentLoss::partials_len(h, w, c);
            let offset = 3;
            let partials = sentinel_partials(offset + len + 4);
            let scalars = upload("scalars", &[0.0; 4]);
            let scale = 0.25f32;
            let partial = content.partial(ctx, h, w, c, &features, &target, &partials, offset);
            let finish = reduce.finish(ctx, &partials, offset, len, &scalars, 2, scale, false);

            let g0 = rng.vec_f32(n, -1.0, 1.0);
            let grad_acc = upload("grad", &g0);
            let grad_new = upload("grad", &vec![f32::NAN; n]);
            let coef = -0.75f32;
            let acc = content.grad(ctx, h, w, c, &features, &target, &grad_acc, coef, true);
            let new = content.grad(ctx, h, w, c, &features, &target, &grad_new, coef, false);
            run(&[&partial, &finish, &acc, &new]);

            let what = format!("content {h}x{w}x{c}");
            let ff = to_f64(&f);
            let fcc = to_f64(&fc);
            let want = scale as f64 * squared_distance(&ff, &fcc);
            assert_scalar(&format!("{what}: loss"), read(&scalars, 2, 1)[0], want, 1e-5);
            assert_untouched(&partials, &[(0, offset), (offset + len, 4)]);
            let diff: Vec<f64> = ff.iter().zip(&fcc).map(|(a, b)| coef as f64 * (a - b)).collect();
            assert_close(&format!("{what}: grad"), &read(&grad_new, 0, n), &diff, 1e-5);
            let acc_want: Vec<f64> = diff.iter().zip(&g0).map(|(d, g)| d + *g as f64).collect();
            // The sum may cancel: bound the rounding by the sizes of both terms.
            let acc_bound: Vec<f64> = diff.iter().zip(&g0).map(|(d, g)| d.abs() + g.abs() as f64).collect();
            assert_close_scaled(&format!("{what}: accumulated grad"), &read(&grad_acc, 0, n), &acc_want, &acc_bound, 1e-5);
        }
    }
}

#[test]
fn content_grad_matches_finite_differences() {
    for sum in lane_sums() {
        eprintln!("lane sum: {}", sum.name());
        let ctx = ctx();
        let content = ContentLoss::with_lane_sum(ctx, sum);
        let reduce = Reduce::with_lane_sum(ctx, sum);
        let mut rng = Rng::new(5);
        let (h, w, c) = (7, 5, 5);
        let (c4, pixels) = (c4(c), h * w);
        let (layer_weight, alpha) = (0.7, 1.3);
        let f = feature_map(&mut rng, pixels, c, 0.0, 1.0);
        let fc = to_f64(&feature_map(&mut rng, pixels, c, 0.0, 1.0));
        let scales = content_scales(layer_weight, c, h, w);
        let features = upload("features", &f);
        let target = upload("content", &fc.iter().map(|&v| v as f32).collect::<Vec<_>>());
        let len = ContentLoss::partials_len(h, w, c);
        let partials = ctx.storage_buffer("partials", (len * 4) as u64);
        let scalars = ctx.storage_buffer("scalars", 16);
        let grad = ctx.storage_buffer("grad", (pixels * c4 * 4) as u64);
        let dispatches = [
            content.partial(ctx, h, w, c, &features, &target, &partials, 0),
            reduce.finish(ctx, &partials, 0, len, &scalars, 0, scales.loss, false),
            reduce.combine(ctx, &scalars, [0, 0, 0], [alpha as f32, 0.0, 0.0], 1),
            content.grad(ctx, h, w, c, &features, &target, &grad, alpha as f32 * scales.grad, false),
        ];
        run(&dispatches.iter().collect::<Vec<_>>());
        let loss = |x: &[f64]| alpha * layer_weight * squared_distance(x, &fc) / (c * h * w) as f64;
        let x = to_f64(&f);
        assert_scalar("content loss", read(&scalars, 1, 1)[0], loss(&x), 1e-5);
        let g = read(&grad, 0, pixels * c4);
        check_finite_differences("content", &loss, &x, &g, &real_coordinates(&mut rng, pixels, c, 20), 1e-3);
    }
}

/// Random coordinates of real (not padded) channels.
fn real_coordinates(rng: &mut Rng, pixels: usize, c: usize, count: usize) -> Vec<usize> {
    (0..count).map(|_| rng.below(pixels) * c4(c) + rng.below(c)).collect()
}

fn check_finite_differences(what: &str, loss: &dyn Fn(&[f64]) -> f64, x: &[f64], gpu: &[f32], at: &[usize], step: f64) {
    let scale = gpu.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    assert!(scale > 0.0, "{what}: the GPU gradient is all zero");
    for &i in at {
        let fd = central_difference(loss, x, i, step);
        let err = (gpu[i] as f64 - fd).abs();
        assert!(
            err <= 1e-4 * scale + 1e-4 * fd.abs(),
            "{what}: d/dx[{i}]: GPU {} vs finite difference {fd} (error {err:e}, gradient scale {scale:e})",
            gpu[i]
        );
    }
}

// ---------------------------------------------------------------- style loss

#[test]
fn style_loss_partial_and_grad_match_reference() {
    for sum in lane_sums() {
        eprintln!("lane sum: {}", sum.name());
        let ctx = ctx();
        let style = StyleLoss::with_lane_sum(ctx, sum);
        let reduce = Reduce::with_lane_sum(ctx, sum);
        let mut rng = Rng::new(6);
        // Pixel counts not multiples of 4 (partial last block) and multiples of 4.
        let shapes = [(7, 5, 3), (13, 3, 5), (1, 1, 12), (7, 5, 64), (13, 3, 64), (1, 1, 5), (4, 3, 7), (2, 2, 64)];
        for (h, w, c) in shapes {
            let (pixels, c4) = (h * w, c4(c));
            let f = feature_map(&mut rng, pixels, c, 0.0, 1.0);
            // Not symmetric, so that a transposed index would show.
            let g = matrix(&mut rng, c, -1.0, 1.0);
            let t = matrix(&mut rng, c, -1.0, 1.0);
            let features = upload("features", &f);
            let gram_buf = upload("gram", &g);
            let target = upload("target", &t);
            let len = StyleLoss::partials_len(c);
            let offset = 5;
            let partials = sentinel_partials(offset + len + 3);
            let scalars = upload("scalars", &[0.5; 4]);
            let partial = style.partial(ctx, c, &gram_buf, &target, &partials, offset);
            let finish = reduce.finish(ctx, &partials, offset, len, &scalars, 1, 2.0, true);
            let n = pixels * c4;
            let g0 = rng.vec_f32(n, -1.0, 1.0);
            let grad_acc = upload("grad", &g0);
            let grad_new = upload("grad", &vec![f32::NAN; n]);
            let coef = 0.37f32;
            let acc = style.grad(ctx, h, w, c, &features, &gram_buf, &target, &grad_acc, coef, true);
            let new = style.grad(ctx, h, w, c, &features, &gram_buf, &target, &grad_new, coef, false);
            run(&[&partial, &finish, &acc, &new]);

            let what = format!("style {h}x{w}x{c}");
            let (gg, tt) = (to_f64(&g), to_f64(&t));
            let want = 0.5 + 2.0 * squared_distance(&gg, &tt);
            assert_scalar(&format!("{what}: loss"), read(&scalars, 1, 1)[0], want, 1e-5);
            assert_untouched(&partials, &[(0, offset), (offset + len, 3)]);
            let d: Vec<f64> = gg.iter().zip(&tt).map(|(a, b)| a - b).collect();
            let ff = to_f64(&f);
            let grad_want = features_times(&ff, &d, pixels, c4, coef as f64);
            // Rounding bound per element: coef * Σ_k |F_pk| |D_kc|.
            let abs_f: Vec<f64> = ff.iter().map(|v| v.abs()).collect();
            let abs_d: Vec<f64> = d.iter().map(|v| v.abs()).collect();
            let bound = features_times(&abs_f, &abs_d, pixels, c4, coef as f64);
            assert_close_scaled(&format!("{what}: grad"), &read(&grad_new, 0, n), &grad_want, &bound, 1e-5);
            let acc_want: Vec<f64> = grad_want.iter().zip(&g0).map(|(a, b)| a + *b as f64).collect();
            let acc_bound: Vec<f64> = bound.iter().zip(&g0).map(|(a, b)| a + b.abs() as f64).collect();
            assert_close_scaled(&format!("{what}: accumulated grad"), &read(&grad_acc, 0, n), &acc_want, &acc_bound, 1e-5);
        }
    }
}

#[test]
fn style_grad_through_gram_matches_finite_differences() {
    for sum in lane_sums() {
        eprintln!("lane sum: {}", sum.name());
        let ctx = ctx();
        let gram_op = Gram::new(ctx);
        let style = StyleLoss::with_lane_sum(ctx, sum);
        let reduce = Reduce::with_lane_sum(ctx, sum);
        let mut rng = Rng::new(7);
        for seed_form in [false, true] {
            let (h, w, c) = (7, 5, 6);
            let (pixels, c4) = (h * w, c4(c));
            let (layer_weight, beta) = (0.8, 2.0);
            let f = feature_map(&mut rng, pixels, c, 0.0, 1.0);
            // The target: the Gram of another map (symmetric, padding 0), as the engine builds it.
            let s = to_f64(&feature_map(&mut rng, pixels, c, 0.0, 1.0));
            let gscale = gram_scale(c, h, w, seed_form) as f64;
            let t: Vec<f64> = gram(&s, pixels, c4, gscale).iter().map(|&v| v as f32 as f64).collect();
            let scales = style_scales(layer_weight, c, h, w, seed_form);

            let features = upload("features", &f);
            let target = upload("target", &t.iter().map(|&v| v as f32).collect::<Vec<_>>());
            let gram_partials = ctx.storage_buffer("gram partials", (Gram::partials_len(h, w, c) * 4) as u64);
            let gram_buf = ctx.storage_buffer("gram", (c4 * c4 * 4) as u64);
            let len = StyleLoss::partials_len(c);
            let partials = ctx.storage_buffer("partials", (len * 4) as u64);
            let scalars = ctx.storage_buffer("scalars", 16);
            let grad = ctx.storage_buffer("grad", (pixels * c4 * 4) as u64);
            let mut dispatches = gram_op.build(ctx, h, w, c, &features, &gram_partials, &gram_buf, gscale as f32);
            dispatches.push(style.partial(ctx, c, &gram_buf, &target, &partials, 0));
            dispatches.push(reduce.finish(ctx, &partials, 0, len, &scalars, 0, scales.loss, false));
            dispatches.push(reduce.combine(ctx, &scalars, [0, 0, 0], [beta as f32, 0.0, 0.0], 1));
            dispatches.push(style.grad(
                ctx,
                h,
                w,
                c,
                &features,
                &gram_buf,
                &target,
                &grad,
                beta as f32 * scales.grad,
                false,
            ));
            run(&dispatches.iter().collect::<Vec<_>>());

            let what = if seed_form { "style (seed form)" } else { "style (canonical)" };
            let loss = |x: &[f64]| beta * style_loss(x, &t, pixels, c, layer_weight, seed_form);
            let x = to_f64(&f);
            assert_scalar(&format!("{what}: loss"), read(&scalars, 1, 1)[0], loss(&x), 1e-4);
            let g = read(&grad, 0, pixels * c4);
            check_finite_differences(what, &loss, &x, &g, &real_coordinates(&mut rng, pixels, c, 24), 1e-3);
        }
    }
}

// ---------------------------------------------------------------- total variation

#[test]
fn tv_loss_and_grad_match_reference_and_finite_differences() {
    for sum in lane_sums() {
        eprintln!("lane sum: {}", sum.name());
        let ctx = ctx();
        let tv_op = TvLoss::with_lane_sum(ctx, sum);
        let reduce = Reduce::with_lane_sum(ctx, sum);
        let mut rng = Rng::new(8);
        for (h, w) in [(7, 5), (13, 3), (1, 1), (1, 9), (9, 1), (4, 4), (300, 200)] {
            let n = h * w * 3;
            let x = rng.vec_f32(n, 0.0, 1.0);
            let image = upload("x", &x);
            let len = TvLoss::partials_len(h, w);
            let offset = 2;
            let partials = sentinel_partials(offset + len + 2);
            let scalars = upload("scalars", &[0.0; 4]);
            let gamma = 1.7;
            let scale = tv_scale(h, w);
            let dx0 = rng.vec_f32(n, -1.0, 1.0);
            let dx = upload("dx", &dx0);
            let dispatches = [
                tv_op.partial(ctx, h, w, &image, &partials, offset),
                reduce.finish(ctx, &partials, offset, len, &scalars, 3, scale, false),
                tv_op.grad(ctx, h, w, &image, &dx, (gamma * scale as f64) as f32),
            ];
            run(&dispatches.iter().collect::<Vec<_>>());

            let what = format!("tv {h}x{w}");
            let xx = to_f64(&x);
            let loss = |v: &[f64]| gamma * tv(v, h, w) / (3 * h * w) as f64;
            let got = read(&scalars, 3, 1)[0];
            if h * w == 1 {
                assert_eq!(got, 0.0, "{what}: a single pixel has no variation");
            } else {
                assert_scalar(&format!("{what}: loss"), got * gamma as f32, loss(&xx), 1e-5);
            }
            assert_untouched(&partials, &[(0, offset), (offset + len, 2)]);
            let added: Vec<f32> = read(&dx, 0, n).iter().zip(&dx0).map(|(a, b)| a - b).collect();
            if h * w == 1 {
                assert!(added.iter().all(|&v| v == 0.0), "{what}: gradient must be 0");
                continue;
            }
            let coords: Vec<usize> = if n <= 200 { (0..n).collect() } else { (0..20).map(|_| rng.below(n)).collect() };
            // dx0 + g - dx0 loses a few bits of g; compare against the gradient's scale.
            let scale_g = added.iter().fold(0f32, |m, v| m.max(v.abs()));
            for &i in &coords {
                let fd = central_difference(&loss, &xx, i, 1e-3);
                assert!(
                    (added[i] as f64 - fd).abs() <= 1e-4 * scale_g as f64 + 1e-4 * fd.abs() + 1e-7,
                    "{what}: d/dx[{i}]: GPU {} vs finite difference {fd}",
                    added[i]
                );
            }
        }
    }
}

// ---------------------------------------------------------------- image in and out

const VGG_MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];

#[test]
fn network_input_matches_reference_and_round_trips() {
    let ctx = ctx();
    let ops = ImageOps::new(ctx);
    let mut rng = Rng::new(9);
    for (order, (h, w)) in [("BGR", (7, 5)), ("RGB", (13, 3)), ("GBR", (1, 1))] {
        let transform = InputTransform::new(order, 255.0, VGG_MEAN_BGR).expect("valid order");
        let pixels = h * w;
        let x = rng.vec_f32(pixels * 3, 0.0, 1.0);
        let image = upload("x", &x);
        let v = upload("v", &vec![f32::NAN; pixels * 4]);
        let d = ops.to_network_input(ctx, h, w, &image, &v, &transform);
        run(&[&d]);
        let got = read(&v, 0, pixels * 4);
        let mean = VGG_MEAN_BGR.map(|m| m as f64);
        let want = to_network_input(&to_f64(&x), pixels, transform.perm, 255.0, mean);
        let scale = vec![255.0; want.len()];
        assert_close_scaled(&format!("network input {order}"), &got, &want, &scale, 1e-6);
        // Back to x on the CPU: x[perm[k]] = (v[k] + mean[k]) / scale.
        for p in 0..pixels {
            assert_eq!(got[p * 4 + 3], 0.0, "padding channel must be 0");
            for k in 0..3 {
                let back = (got[p * 4 + k] as f64 + mean[k]) / 255.0;
                let orig = x[p * 3 + transform.perm[k] as usize] as f64;
                assert!((back - orig).abs() < 1e-6, "{order}: pixel {p} channel {k}: {back} vs {orig}");
            }
        }
    }
}

#[test]
fn network_grad_to_image_matches_finite_differences() {
    let ctx = ctx();
    let ops = ImageOps::new(ctx);
    let mut rng = Rng::new(10);
    let (h, w) = (7, 5);
    let pixels = h * w;
    let transform = InputTransform::new("BGR", 255.0, VGG_MEAN_BGR).unwrap();
    // L(x) = Σ r · v(x) for a random r, so dL/dv = r.
    let r = rng.vec_f32(pixels * 4, -1.0, 1.0);
    let dv = upload("dv", &r);
    let dx = upload("dx", &vec![f32::NAN; pixels * 3]);
    let d = ops.network_grad_to_image(ctx, h, w, &dv, &dx, &transform);
    run(&[&d]);
    let got = read(&dx, 0, pixels * 3);
    let rr = to_f64(&r);
    let mean = VGG_MEAN_BGR.map(|m| m as f64);
    let loss = |x: &[f64]| -> f64 {
        let v = to_network_input(x, pixels, transform.perm, 255.0, mean);
        v.iter().zip(&rr).map(|(a, b)| a * b).sum()
    };
    let x = to_f64(&rng.vec_f32(pixels * 3, 0.0, 1.0));
    for (i, &g) in got.iter().enumerate() {
        let fd = central_difference(&loss, &x, i, 1e-3);
        assert!((g as f64 - fd).abs() <= 1e-6 * 255.0, "dx[{i}]: GPU {g} vs finite difference {fd}");
    }
}

#[test]
fn input_transform_rejects_bad_channel_orders() {
    for bad in ["BGRA", "BBR", "XYZ", "", "RG"] {
        let err = InputTransform::new(bad, 255.0, [0.0; 3]).expect_err(bad);
        assert!(err.to_string().contains("channel order"), "{err}");
    }
    assert_eq!(InputTransform::new("bgr", 255.0, [0.0; 3]).unwrap().perm, [2, 1, 0]);
}

#[test]
#[should_panic(expected = "too small")]
fn too_small_buffers_are_refused_with_a_message() {
    for sum in lane_sums() {
        eprintln!("lane sum: {}", sum.name());
        let ctx = ctx();
        let content = ContentLoss::with_lane_sum(ctx, sum);
        let small = ctx.storage_buffer("small", 16);
        let partials = ctx.storage_buffer("partials", 16);
        let _ = content.partial(ctx, 7, 5, 3, &small, &small, &partials, 0);
    }
}

#[test]
fn keep_finite_copies_only_after_a_finite_objective() {
    use stylize::kernels::keep_finite::{keep_finite_cpu, KeepFinite};
    let ctx = ctx();
    let kernel = KeepFinite::new(ctx);
    let mut rng = Rng::new(5);
    // An odd length (not a multiple of the workgroup size) and every kind of total.
    let n = 3 * 37 * 29;
    for total in [1.5f32, 0.0, -2.0, f32::MAX, f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
        let x = rng.vec_f32(n, -1.0, 2.0);
        let before = rng.vec_f32(n, 0.0, 1.0);
        let scalars = upload("scalars", &[0.0, 0.0, 0.0, total]);
        let xb = upload("x", &x);
        let kept = upload("kept", &before);
        let d = kernel.keep(ctx, n, &scalars, 3, &xb, &kept);
        run(&[&d]);
        let got = pollster::block_on(ctx.read_f32(&kept, 0, n)).unwrap();
        let mut want = before.clone();
        keep_finite_cpu(total, &x, &mut want);
        assert_eq!(got, want, "total {total}");
        assert_eq!(got == x, total.is_finite(), "total {total}");
    }
}

/// TV summed over an owner window (a tile's interior): the terms whose top/left pixel lies in it,
/// neighbours read outside it; the windows of a partition add up to the whole.
#[test]
fn tv_over_an_owner_window_sums_that_window_s_terms() {
    for sum in lane_sums() {
        eprintln!("lane sum: {}", sum.name());
        use stylize::kernels::window::Rect;
        let ctx = ctx();
        let tv_op = TvLoss::with_lane_sum(ctx, sum);
        let reduce = Reduce::with_lane_sum(ctx, sum);
        let mut rng = Rng::new(81);
        let (h, w) = (23, 17);
        let x = rng.vec_f32(h * w * 3, 0.0, 1.0);
        let xx = to_f64(&x);
        let image = upload("x", &x);
        // The terms owned by a window, on the CPU: TV of the image minus nothing outside it.
        let owned = |r: Rect| {
            let mut sum = 0.0;
            for i in r.y..r.y + r.h {
                for j in r.x..r.x + r.w {
                    for ch in 0..3 {
                        let v = xx[(i * w + j) * 3 + ch];
                        if i + 1 < h {
                            sum += (xx[((i + 1) * w + j) * 3 + ch] - v).powi(2);
                        }
                        if j + 1 < w {
                            sum += (xx[(i * w + j + 1) * 3 + ch] - v).powi(2);
                        }
                    }
                }
            }
            sum
        };
        let windows = [Rect { y: 0, x: 0, h: 10, w: 9 }, Rect { y: 0, x: 9, h: 10, w: 8 }, Rect { y: 10, x: 0, h: 13, w: 17 }];
        let mut total = 0.0;
        for (k, r) in windows.into_iter().enumerate() {
            let len = TvLoss::partials_len(r.h, r.w);
            let partials = sentinel_partials(len + 1);
            let scalars = upload("scalars", &[0.0; 2]);
            run(&[&tv_op.partial_within(ctx, (h, w), r, &image, &partials, 0), &reduce.finish(ctx, &partials, 0, len, &scalars, 1, 1.0, false)]);
            let got = read(&scalars, 1, 1)[0];
            assert_scalar(&format!("window {k} {r:?}"), got, owned(r), 1e-5);
            assert_untouched(&partials, &[(len, 1)]);
            total += got as f64;
        }
        assert!((total - tv(&xx, h, w)).abs() <= 1e-4 * tv(&xx, h, w), "the windows' sums {total} are not the image's TV");
    }
}

/// Upsampling a band of rows (the image in bands) writes exactly those rows of the whole result.
#[test]
fn upsampling_rows_gives_those_rows_of_the_whole() {
    use stylize::kernels::resize::{upsample_cpu, Resize};
    let ctx = ctx();
    let kernel = Resize::new(ctx);
    let mut rng = Rng::new(22);
    let ((sw, sh), (dw, dh)) = ((20, 11), (28, 16));
    let x = rng.vec_f32(sw * sh * 3, 0.0, 1.0);
    let twin = upsample_cpu(&x, (sw, sh), (dw, dh));
    let src = upload("src", &x);
    for (row0, rows) in [(0, 5), (5, 6), (11, 5), (15, 1)] {
        let dst = upload("band", &vec![f32::NAN; dw * rows * 3]);
        run(&[&kernel.upsample_rows(ctx, (sw, sh), &src, (dw, dh), (row0, rows), &dst)]);
        let got = pollster::block_on(ctx.read_f32(&dst, 0, dw * rows * 3)).unwrap();
        let want = &twin[row0 * dw * 3..(row0 + rows) * dw * 3];
        assert!(got.iter().all(|v| v.is_finite()), "rows {row0}..{}: a value was not written", row0 + rows);
        let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "rows {row0}..{}: GPU vs twin {worst}", row0 + rows);
    }
}

#[test]
fn upsampling_matches_its_cpu_twin_and_the_image_resize() {
    use stylize::kernels::resize::{upsample_cpu, Resize};
    let ctx = ctx();
    let kernel = Resize::new(ctx);
    let mut rng = Rng::new(21);
    for ((sw, sh), (dw, dh)) in [((7, 5), (13, 9)), ((1, 1), (4, 3)), ((20, 11), (28, 16)), ((9, 6), (9, 6)), ((2, 17), (3, 24)), ((31, 23), (44, 33))] {
        let x = rng.vec_f32(sw * sh * 3, 0.0, 1.0);
        let src = upload("src", &x);
        let dst = ctx.storage_buffer("dst", (dw * dh * 3 * 4) as u64);
        let d = kernel.upsample(ctx, (sw, sh), &src, (dw, dh), &dst);
        run(&[&d]);
        let got = pollster::block_on(ctx.read_f32(&dst, 0, dw * dh * 3)).unwrap();
        let twin = upsample_cpu(&x, (sw, sh), (dw, dh));
        let worst = got.iter().zip(&twin).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{sw}x{sh} -> {dw}x{dh}: GPU vs twin {worst}");
        // The twin samples as imageio::resize_to (the image crate's Catmull-Rom) does.
        let image = stylize::imageio::Image { width: sw as u32, height: sh as u32, rgb: x.clone() };
        let reference = stylize::imageio::resize_to(&image, dw as u32, dh as u32);
        let worst = twin.iter().zip(&reference.rgb).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{sw}x{sh} -> {dw}x{dh}: twin vs image crate {worst}");
    }
}

#[test]
fn luma_swap_matches_its_twin_and_keeps_the_content_chroma() {
    use stylize::kernels::colour::{luma_swap_cpu, yiq, Colour};
    let ctx = ctx();
    let kernel = Colour::new(ctx);
    let mut rng = Rng::new(31);
    let pixels = 37 * 23;
    // Mid-range colours, so that the swap stays in gamut (no clamping) for most pixels.
    let stylized = rng.vec_f32(pixels * 3, 0.2, 0.8);
    let content = rng.vec_f32(pixels * 3, 0.35, 0.65);
    let (x, c) = (upload("stylized", &stylized), upload("content", &content));
    let d = kernel.luma_swap(ctx, pixels, &x, &c);
    run(&[&d]);
    let got = pollster::block_on(ctx.read_f32(&x, 0, pixels * 3)).unwrap();
    let twin = luma_swap_cpu(&stylized, &content);
    let worst = got.iter().zip(&twin).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "GPU vs twin {worst}");
    let mut checked = 0;
    for p in 0..pixels {
        let o = [got[3 * p], got[3 * p + 1], got[3 * p + 2]];
        if o.iter().any(|&v| v <= 0.0 || v >= 1.0) {
            continue; // clamped: out of gamut
        }
        let (yo, yc, ys) = (yiq(o), yiq([content[3 * p], content[3 * p + 1], content[3 * p + 2]]), yiq([stylized[3 * p], stylized[3 * p + 1], stylized[3 * p + 2]]));
        assert!((yo[0] - ys[0]).abs() < 1e-3, "pixel {p}: luminance {yo:?} vs {ys:?}");
        assert!((yo[1] - yc[1]).abs() < 1e-3 && (yo[2] - yc[2]).abs() < 1e-3, "pixel {p}: chroma {yo:?} vs {yc:?}");
        checked += 1;
    }
    assert!(checked > pixels / 2, "only {checked} pixels in gamut");
}

#[test]
fn colour_map_and_luminance_grad_match_their_twins() {
    use stylize::kernels::colour::{luminance_grad_cpu, Colour, ColourMap};
    let ctx = ctx();
    let kernel = Colour::new(ctx);
    let mut rng = Rng::new(41);
    let pixels = 29 * 31; // not a multiple of the workgroup
    let rgb = rng.vec_f32(pixels * 3, 0.0, 1.0);
    // A map that pushes some pixels out of [0, 1], so that the clamp is exercised too.
    let map = ColourMap { matrix: [[1.2, -0.3, 0.1], [0.2, 0.9, -0.4], [-0.1, 0.5, 1.1]], offset: [0.05, -0.1, 0.2] };
    for map in [map, ColourMap::luminance()] {
        let x = upload("image", &rgb);
        run(&[&kernel.colour_map(ctx, pixels, &map, &x)]);
        let got = pollster::block_on(ctx.read_f32(&x, 0, pixels * 3)).unwrap();
        let twin = map.apply_cpu(&rgb);
        let worst = got.iter().zip(&twin).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-6, "{map:?}: GPU vs twin {worst}");
        assert!(twin.iter().any(|&v| v == 0.0 || v == 1.0) || map == ColourMap::luminance(), "the clamp was not exercised");
    }
    let grad = rng.vec_f32(pixels * 3, -1.0, 1.0);
    let g = upload("gradient", &grad);
    run(&[&kernel.luminance_grad(ctx, pixels, &g)]);
    let got = pollster::block_on(ctx.read_f32(&g, 0, pixels * 3)).unwrap();
    assert_eq!(got, luminance_grad_cpu(&grad), "luminance_grad: GPU vs twin");
}

#[test]
fn colour_matching_maps_give_the_target_statistics() {
    use stylize::kernels::colour::{yiq, ColourMap, ColourStats};
    let mut rng = Rng::new(43);
    // Mid-range colours with some covariance, so that the maps stay in gamut (no clamping).
    let correlated = |rng: &mut Rng, n: usize, mix: [f32; 3], centre: [f32; 3]| -> Vec<f32> {
        (0..n)
            .flat_map(|_| {
                let (a, b) = (rng.vec_f32(1, -1.0, 1.0)[0], rng.vec_f32(3, -1.0, 1.0));
                [0, 1, 2].map(|c| centre[c] + 0.08 * (mix[c] * a + 0.5 * b[c]))
            })
            .collect()
    };
    let style = correlated(&mut rng, 4000, [1.0, 0.2, -0.6], [0.45, 0.5, 0.4]);
    let content = correlated(&mut rng, 3000, [-0.3, 0.8, 0.5], [0.55, 0.45, 0.5]);
    let (s, c) = (ColourStats::of(&style), ColourStats::of(&content));

    let mapped = ColourMap::histogram_matched(&s, &c).apply_cpu(&style);
    assert!(mapped.iter().all(|&v| v > 0.0 && v < 1.0), "the test's colours must stay in gamut");
    let m = ColourStats::of(&mapped);
    for i in 0..3 {
        assert!((m.mean[i] - c.mean[i]).abs() < 1e-5, "mean {:?} vs {:?}", m.mean, c.mean);
        for j in 0..3 {
            assert!((m.cov[i][j] - c.cov[i][j]).abs() < 1e-6, "covariance {:?} vs {:?}", m.cov, c.cov);
        }
    }

    let grey = ColourMap::luminance_matched(&s, &c).apply_cpu(&style);
    assert!(grey.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]), "the luminance map must give grey");
    let luma = |rgb: &[f32]| -> (f64, f64) {
        let y: Vec<f64> = rgb.chunks_exact(3).map(|p| yiq([p[0], p[1], p[2]])[0] as f64).collect();
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        (mean, y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64)
    };
    let ((gm, gv), (cm, cv)) = (luma(&grey), luma(&content));
    assert!((gm - cm).abs() < 1e-5 && (gv / cv - 1.0).abs() < 1e-4, "luminance mean/variance {gm}/{gv} vs the photo's {cm}/{cv}");
    // A flat painting (no variance) maps to the photo's mean luminance, not to infinities.
    let flat = vec![0.3f32; 300];
    let f = ColourMap::luminance_matched(&ColourStats::of(&flat), &c).apply_cpu(&flat);
    assert!(f.iter().all(|&v| (v as f64 - cm).abs() < 1e-5), "flat painting: {:?}", &f[..3]);
    let h = ColourMap::histogram_matched(&ColourStats::of(&flat), &c).apply_cpu(&flat);
    assert!(h.iter().all(|v| v.is_finite()), "flat painting under histogram matching");
}

#[test]
fn window_copy_matches_its_twin_both_ways() {
    use stylize::kernels::window::{copy_window_cpu, At, WindowCopy};
    let ctx = ctx();
    let kernel = WindowCopy::new(ctx);
    let mut rng = Rng::new(47);
    for (channels, (sw, sh), (dw, dh), (h, w), from, to) in [
        (3usize, (37usize, 29usize), (19usize, 13usize), (11usize, 17usize), (5usize, 9usize), (2usize, 1usize)),
        (12, (9, 7), (23, 19), (7, 9), (0, 0), (11, 13)), // a whole map put into a larger one
        (4, (1, 5), (1, 5), (5, 1), (0, 0), (0, 0)),
    ] {
        let src = rng.vec_f32(sw * sh * channels, -1.0, 1.0);
        let dst0 = rng.vec_f32(dw * dh * channels, -1.0, 1.0);
        let (s, d) = (upload("src", &src), upload("dst", &dst0));
        let (a, b) = (At { width: sw, y: from.0, x: from.1 }, At { width: dw, y: to.0, x: to.1 });
        run(&[&kernel.copy(ctx, (h, w), channels, &s, a, &d, b)]);
        let got = pollster::block_on(ctx.read_f32(&d, 0, dst0.len())).unwrap();
        let mut twin = dst0.clone();
        copy_window_cpu((h, w), channels, &src, a, &mut twin, b);
        assert_eq!(got, twin, "{channels} channels, {h}×{w} window");
        assert_ne!(twin, dst0, "the copy changed nothing");
    }
}
