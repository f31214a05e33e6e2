//! Adam and L-BFGS on the GPU against plain Rust f64 references (torch semantics).

mod common;
mod support_optim;

use common::{context, to_f32, to_f64, Rng};
use stylize::kernels::adam::AdamKernel;
use stylize::kernels::lbfgs::{schedule, FinishMode, LbfgsOp, ReductionShape, SCALAR_GAMMA, SCALAR_RHO, SCALAR_T};
use stylize::optim::{Optimizer, OptimizerConfig, OptimizerKernels, OptimizerKind, OptimizerLayout, IMAGENET_STD};
use support_optim::*;

/// 7×5 pixels × RGB: odd, and not a multiple of the 256-thread workgroup.
const N_SMALL: usize = 7 * 5 * 3;

fn adam_run(clamp: bool, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let x0 = to_f64(&to_f32(&rng.vec(N_SMALL, 0.0, 1.0)));
    // distinct scales per channel, so a wrong channel index cannot pass
    let cfg = OptimizerConfig {
        kind: OptimizerKind::Adam,
        lr: 0.15,
        channel_lr_scale: [1.0, 0.5, 0.25],
        lbfgs_history: 0,
        clamp,
    };
    let mut gpu = GpuRun::new(&cfg, &to_f32(&x0));
    let channel_lr = [0.15f32 as f64, (0.15f32 * 0.5) as f64, (0.15f32 * 0.25) as f64];
    let mut reference = AdamRef::new(N_SMALL, channel_lr, clamp);
    let mut x_ref = x0.clone();
    for _ in 0..6 {
        // gradients of mixed sign and scale, some tiny
        let g: Vec<f64> = (0..N_SMALL).map(|_| rng.range(-1.0, 1.0) * 10f64.powf(rng.range(-4.0, 1.0))).collect();
        let g = to_f64(&to_f32(&g));
        gpu.step(&to_f32(&g));
        reference.step(&mut x_ref, &g);
    }
    let x_gpu = to_f64(&gpu.read_x());
    assert!(gpu.ctx.take_error().is_none());
    (x_gpu, x_ref)
}

#[test]
fn adam_matches_reference_with_per_channel_lr_and_clamping() {
    for clamp in [true, false] {
        let (x_gpu, x_ref) = adam_run(clamp, 11);
        for i in 0..N_SMALL {
            assert!(
                (x_gpu[i] - x_ref[i]).abs() <= 2e-6 + 1e-5 * x_ref[i].abs(),
                "clamp {clamp}: x[{i}] gpu {} vs reference {}",
                x_gpu[i],
                x_ref[i]
            );
        }
        let outside = x_ref.iter().filter(|v| **v < 0.0 || **v > 1.0).count();
        let on_bounds = x_ref.iter().filter(|v| **v == 0.0 || **v == 1.0).count();
        if clamp {
            // the test data pushes values over the bounds, so clamping is exercised
            assert!(on_bounds > 5 && outside == 0, "clamped run: {on_bounds} values on the bounds");
            assert!(x_gpu.iter().all(|v| (0.0..=1.0).contains(v)));
        } else {
            assert!(outside > 5, "unclamped run should leave [0,1]: {outside} values outside");
        }
    }
}

#[test]
fn adam_bias_correction_uniform() {
    let bytes = AdamKernel::params_bytes(1, [0.01, 0.02, 0.03], true, 105);
    let words: [u32; 8] = bytemuck::cast(bytes);
    let f = |w: u32| f32::from_bits(w) as f64;
    // step 1: lr / (1 - 0.9) and sqrt(1 - 0.999)
    assert!((f(words[0]) - 0.1).abs() < 1e-7);
    assert!((f(words[2]) - 0.3).abs() < 1e-7);
    assert_eq!(words[4], 105);
    assert_eq!(words[5], 1);
    assert!((f(words[6]) - 0.001f64.sqrt()).abs() < 1e-8);
    let later: [u32; 8] = bytemuck::cast(AdamKernel::params_bytes(1000, [0.01; 3], false, 105));
    assert!((f(later[0]) - 0.01).abs() < 1e-6 && later[5] == 0);
}

#[test]
fn seed_form_adam_uses_imagenet_std() {
    let cfg = OptimizerConfig::adam_seed(0.003);
    assert_eq!(cfg.channel_lr_scale, IMAGENET_STD);
    assert!(!cfg.clamp);
    assert!(OptimizerConfig::adam(0.01).clamp);
}

fn quadratic_setup(seed: u64, n: usize, kappa: f64) -> (Quadratic, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let q = Quadratic::random(&mut rng, n, kappa);
    let x0 = to_f64(&to_f32(&rng.vec(n, 0.0, 1.0)));
    (q, x0)
}

fn assert_close_to_reference(what: &str, x_gpu: &[f32], x_ref: &[f64], x0: &[f64], tol: f64) {
    let err = error_relative_to_motion(&to_f64(x_gpu), x_ref, x0);
    eprintln!("{what}: error {err:e}");
    assert!(err <= tol, "{what}: GPU vs reference error {err:e} (relative to the motion) > {tol:e}");
}

#[test]
fn lbfgs_matches_reference_on_a_quadratic() {
    let (q, x0) = quadratic_setup(3, N_SMALL, 0.3);
    let steps = 8;
    let source = GradSource::Objective(&q);
    let mut gpu = GpuRun::new(&OptimizerConfig::lbfgs(1.0, 10), &to_f32(&x0));
    let x_gpu = gpu.run(steps, &source);
    let x_ref = run_lbfgs_ref(1.0, 10, HistoryPolicy::TorchList, &x0, steps, &source);
    assert_close_to_reference("8 steps, m=10", &x_gpu, &x_ref, &x0, 1e-5);
    // step 1 was scaled by min(1, 1/|g|_1): check t after step 1 on a fresh run
    let mut first = GpuRun::new(&OptimizerConfig::lbfgs(0.5, 10), &to_f32(&x0));
    first.run(1, &source);
    let g1 = q.grad(&x0);
    let l1: f64 = to_f64(&to_f32(&g1)).iter().map(|v| v.abs()).sum();
    let t = first.read_scalars()[SCALAR_T] as f64;
    assert!(l1 > 1.0, "test data should need the scaling");
    assert!((t - 0.5 / l1).abs() <= 1e-6 * t, "t after step 1 = {t}, expected {}", 0.5 / l1);
}

#[test]
fn lbfgs_history_ring_wraps_around() {
    let (q, x0) = quadratic_setup(5, N_SMALL, 10.0);
    let steps = 10;
    let source = GradSource::Objective(&q);
    let mut gpu = GpuRun::new(&OptimizerConfig::lbfgs(1.0, 3), &to_f32(&x0));
    let x_gpu = gpu.run(steps, &source);
    let x_ref = run_lbfgs_ref(1.0, 3, HistoryPolicy::TorchList, &x0, steps, &source);
    assert_close_to_reference("10 steps, m=3", &x_gpu, &x_ref, &x0, 1e-5);
    // the history limit matters for this problem, so a ring that ignored it would fail
    let x_long = run_lbfgs_ref(1.0, 10, HistoryPolicy::TorchList, &x0, steps, &source);
    let sensitivity = error_relative_to_motion(&x_long, &x_ref, &x0);
    assert!(sensitivity > 2e-3, "m=3 and m=10 differ by only {sensitivity:e}");
}

#[test]
fn lbfgs_skips_pairs_without_positive_curvature() {
    let (q, x0) = quadratic_setup(7, N_SMALL, 0.2);
    let doubled = [2u32];
    let source = GradSource::ObjectiveWithDoubledSteps(&q, &doubled);
    let mut gpu = GpuRun::new(&OptimizerConfig::lbfgs(0.5, 5), &to_f32(&x0));
    gpu.run(2, &source);
    // the pair of step 2 (slot 0) has y.s < 0: rho = 0 and gamma stays 1
    let scalars = gpu.read_scalars();
    assert_eq!(scalars[SCALAR_RHO], 0.0, "rejected pair must be disabled");
    assert_eq!(scalars[SCALAR_GAMMA], 1.0, "gamma must stay 1 without an accepted pair");
    gpu.run(1, &source);
    let scalars = gpu.read_scalars();
    assert!(scalars[SCALAR_RHO + 1] > 0.0 && scalars[SCALAR_GAMMA] != 1.0, "the pair of step 3 is accepted");
    let x_gpu = gpu.run(4, &source);
    // m=5 and 6 pairs made, one of them rejected: nothing was evicted, so this is exactly torch
    let x_ref = run_lbfgs_ref(0.5, 5, HistoryPolicy::TorchList, &x0, 7, &source);
    assert_close_to_reference("skip at step 2", &x_gpu, &x_ref, &x0, 1e-5);
    // and the skip matters: a reference that kept the pair ends elsewhere
    let mut keep_all = LbfgsRef::new(0.5, 5, HistoryPolicy::TorchList);
    keep_all.curvature_min = f64::NEG_INFINITY;
    let x_keep = run_lbfgs_ref_with(keep_all, &x0, 7, &source);
    let sensitivity = error_relative_to_motion(&x_keep, &x_ref, &x0);
    assert!(sensitivity.is_nan() || sensitivity > 1e-2, "keeping the bad pair changes x by only {sensitivity:e}");
}

#[test]
fn lbfgs_rejected_pair_in_a_full_ring_matches_the_ring_reference() {
    // m = 2 with a rejected pair at step 3: the ring (by attempt) then holds one pair fewer
    // than torch's list for a while; the GPU follows the ring reference exactly.
    let (q, x0) = quadratic_setup(9, N_SMALL, 0.3);
    let doubled = [4u32];
    let source = GradSource::ObjectiveWithDoubledSteps(&q, &doubled);
    let mut gpu = GpuRun::new(&OptimizerConfig::lbfgs(0.5, 2), &to_f32(&x0));
    let x_gpu = gpu.run(8, &source);
    let x_ring = run_lbfgs_ref(0.5, 2, HistoryPolicy::RingByAttempt, &x0, 8, &source);
    assert_close_to_reference("ring with a rejected pair", &x_gpu, &x_ring, &x0, 1e-5);
}

#[test]
fn lbfgs_does_not_move_without_a_descent_direction() {
    let mut rng = Rng::new(13);
    // x near 0, so that f32 resolves the short step 3 (its pair comes from the tiny s of step 2)
    let x0 = to_f32(&rng.vec(N_SMALL, 0.0, 1e-6));
    let tiny = rng.vec(N_SMALL, -1e-6, 1e-6);
    let normal = rng.vec(N_SMALL, -1.0, 1.0);
    let grads = vec![vec![0.0; N_SMALL], to_f64(&to_f32(&tiny)), to_f64(&to_f32(&normal))];
    let source = GradSource::Fixed(&grads);
    let mut gpu = GpuRun::new(&OptimizerConfig::lbfgs(0.25, 4), &x0);
    // step 1, g = 0: g.d = 0 is not below -1e-9, torch stops before moving
    assert_eq!(gpu.run(1, &source), x0);
    // step 2, |g|^2 < 1e-9: again no move (s = 0, so the pair is dropped too)
    assert_eq!(gpu.run(1, &source), x0);
    assert_eq!(gpu.read_scalars()[SCALAR_RHO], 0.0);
    // step 3 moves, as the reference does
    let x_gpu = gpu.run(1, &source);
    assert_ne!(x_gpu, x0);
    let x_ref = run_lbfgs_ref(0.25, 4, HistoryPolicy::TorchList, &to_f64(&x0), 3, &source);
    assert_close_to_reference("no descent, then a step", &x_gpu, &x_ref, &to_f64(&x0), 1e-5);
}

#[test]
fn lbfgs_matches_reference_with_many_workgroups() {
    // 300×300×3: several elements per thread and more partial sums than one
    // finishing workgroup has threads
    let n = 300 * 300 * 3;
    let shape = ReductionShape::for_len(n);
    assert!(shape.per_thread > 1 && shape.groups > 256, "{shape:?}");
    // Scaled near 0 so that f32 resolves the short first step (t = 1/|g|_1 is tiny for a
    // large n at unit scale, and then rounding of x, not the reductions, would dominate).
    let (mut q, x0) = quadratic_setup(17, n, 0.3);
    let scale = 1e-4;
    q.b.iter_mut().for_each(|b| *b *= scale);
    let x0: Vec<f64> = to_f64(&to_f32(&x0.iter().map(|v| v * scale).collect::<Vec<_>>()));
    let source = GradSource::Objective(&q);
    let mut gpu = GpuRun::new(&OptimizerConfig::lbfgs(1.0, 4), &to_f32(&x0));
    let x_gpu = gpu.run(6, &source);
    let x_ref = run_lbfgs_ref(1.0, 4, HistoryPolicy::TorchList, &x0, 6, &source);
    assert_close_to_reference("n = 270000", &x_gpu, &x_ref, &x0, 1e-5);
}

#[test]
fn twenty_steps_lower_the_objective() {
    let n = 9 * 7 * 3;
    let (q, x0) = quadratic_setup(19, n, 1.0);
    let f0 = q.value(&x0);
    let source = GradSource::Objective(&q);

    let mut adam = GpuRun::new(&OptimizerConfig::adam(0.02), &to_f32(&x0));
    let x_adam = to_f64(&adam.run(20, &source));
    let f_adam = q.value(&x_adam);
    assert!(f_adam < 0.5 * f0, "Adam: f from {f0} to {f_adam}");
    let mut reference = AdamRef::new(n, [0.02f32 as f64; 3], true);
    let mut x_ref = x0.clone();
    for _ in 0..20 {
        let g = to_f64(&to_f32(&q.grad(&x_ref)));
        reference.step(&mut x_ref, &g);
    }
    assert_close_to_reference("Adam, 20 steps", &to_f32(&x_adam), &x_ref, &x0, 1e-5);

    let mut lbfgs = GpuRun::new(&OptimizerConfig::lbfgs(1.0, 5), &to_f32(&x0));
    let x_lbfgs = to_f64(&lbfgs.run(20, &source));
    let f_lbfgs = q.value(&x_lbfgs);
    let f_min = q.value(&solve_quadratic(&q));
    assert!(f_lbfgs - f_min < 1e-3 * (f0 - f_min), "L-BFGS: f from {f0} to {f_lbfgs}, minimum {f_min}");
}

/// The minimiser of the tridiagonal quadratic (Thomas algorithm), to measure progress.
fn solve_quadratic(q: &Quadratic) -> Vec<f64> {
    let n = q.a.len();
    let k = q.kappa;
    let diag: Vec<f64> = (0..n).map(|i| q.a[i] + k * ((i > 0) as u8 + (i + 1 < n) as u8) as f64).collect();
    let rhs: Vec<f64> = (0..n).map(|i| q.a[i] * q.b[i]).collect();
    let (mut c, mut d) = (vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let denom = diag[i] - if i > 0 { -k * c[i - 1] } else { 0.0 };
        c[i] = -k / denom;
        d[i] = (rhs[i] - if i > 0 { -k * d[i - 1] } else { 0.0 }) / denom;
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = d[i] - if i + 1 < n { c[i] * x[i + 1] } else { 0.0 };
    }
    x
}

#[test]
fn same_inputs_give_identical_results() {
    let (q, x0) = quadratic_setup(23, N_SMALL, 0.5);
    let x0 = to_f32(&x0);
    let source = GradSource::Objective(&q);
    for cfg in [OptimizerConfig::lbfgs(1.0, 3), OptimizerConfig::adam(0.05)] {
        let mut a = GpuRun::new(&cfg, &x0);
        let first = a.run(10, &source);
        let mut b = GpuRun::new(&cfg, &x0);
        let second = b.run(10, &source);
        assert_eq!(bits(&first), bits(&second), "{:?}: two fresh runs differ", cfg.kind);
        assert_ne!(bits(&first), bits(&x0));
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn allocated_bytes_match_the_layout() {
    let ctx = context();
    let kernels = OptimizerKernels::new(&ctx);
    for n in [N_SMALL, 300 * 300 * 3] {
        for cfg in [
            OptimizerConfig::adam(0.01),
            OptimizerConfig::adam_seed(0.003),
            OptimizerConfig::lbfgs(1.0, 1),
            OptimizerConfig::lbfgs(1.0, 4),
        ] {
            let x = ctx.storage_buffer("x", n as u64 * 4);
            let grad = ctx.storage_buffer("grad", n as u64 * 4);
            let layout = OptimizerLayout::new(&cfg, n);
            let before = ctx.allocated_bytes();
            let opt = Optimizer::new(&ctx, &kernels, &cfg, &layout, &x, &grad, n).unwrap();
            let used = ctx.allocated_bytes() - before;
            assert_eq!(opt.allocated_bytes(), used, "{cfg:?} n={n}");
            assert_eq!(layout.buffers().iter().map(|b| b.bytes).sum::<u64>(), used, "{cfg:?} n={n}");
            // state: 2 vectors for Adam, 2 + 2m for L-BFGS, plus small change
            let vectors = match cfg.kind {
                OptimizerKind::Adam => 2,
                OptimizerKind::Lbfgs => 2 + 2 * cfg.lbfgs_history as u64,
            };
            assert!(used >= vectors * n as u64 * 4 && used < vectors * n as u64 * 4 + 64 * 1024);
        }
    }
    // the layout at 2048×2048 does not allocate
    let big = 2048 * 2048 * 3;
    let layout = OptimizerLayout::new(&OptimizerConfig::adam(0.01), big);
    assert_eq!(layout.buffers().iter().map(|b| b.bytes).sum::<u64>(), 2 * big as u64 * 4);
}

#[test]
fn bad_settings_are_refused_with_a_message() {
    let ctx = context();
    let x = ctx.storage_buffer("x", N_SMALL as u64 * 4);
    let grad = ctx.storage_buffer("grad", N_SMALL as u64 * 4);
    let cases: Vec<(OptimizerConfig, usize, &str)> = vec![
        (OptimizerConfig::adam(0.0), N_SMALL, "learning rate"),
        (OptimizerConfig::adam(f32::NAN), N_SMALL, "learning rate"),
        (OptimizerConfig::lbfgs(1.0, 0), N_SMALL, "history"),
        (OptimizerConfig { channel_lr_scale: [1.0, -1.0, 1.0], ..OptimizerConfig::adam(0.01) }, N_SMALL, "scales"),
        (OptimizerConfig::adam(0.01), 104, "h*w*3"),
        (OptimizerConfig::adam(0.01), N_SMALL * 2, "grad buffer"),
    ];
    for (cfg, n, needle) in cases {
        let x_big;
        let x_used = if n > N_SMALL {
            x_big = ctx.storage_buffer("x big", n as u64 * 4);
            &x_big
        } else {
            &x
        };
        match Optimizer::new(&ctx, &OptimizerKernels::new(&ctx), &cfg, &OptimizerLayout::new(&cfg, n), x_used, &grad, n) {
            Ok(_) => panic!("{cfg:?} with n={n} was accepted"),
            Err(e) => assert!(e.to_string().contains(needle), "message '{e}' should mention '{needle}'"),
        }
    }
}

#[test]
fn schedule_visits_slots_newest_first_then_oldest_first() {
    use LbfgsOp::*;
    assert_eq!(schedule(1, 3), vec![First, Finish { mode: FinishMode::First, slot: 0 }, Update]);
    // step 2: one pair in slot 0
    assert_eq!(
        schedule(2, 3),
        vec![
            Pair { slot: 0 },
            Finish { mode: FinishMode::Pair, slot: 0 },
            Loop1Last { slot: 0 },
            Finish { mode: FinishMode::Beta, slot: 0 },
            Loop2Last { slot: 0 },
            Finish { mode: FinishMode::Gtd, slot: 0 },
            Update,
        ]
    );
    // step 6 with m = 3: pairs of steps 4, 5, 6 in slots 2, 0, 1 (newest: slot 1)
    let ops = schedule(6, 3);
    let loop_slots: Vec<(usize, Option<usize>)> = ops
        .iter()
        .filter_map(|op| match *op {
            Loop1 { slot, next } | Loop2 { slot, next } => Some((slot, Some(next))),
            Loop1Last { slot } | Loop2Last { slot } => Some((slot, None)),
            _ => None,
        })
        .collect();
    assert_eq!(loop_slots, vec![(1, Some(0)), (0, Some(2)), (2, None), (2, Some(0)), (0, Some(1)), (1, None)]);
    assert_eq!(ops.first(), Some(&Pair { slot: 1 }));
    assert_eq!(ops.len(), 4 * 3 + 3);
}
