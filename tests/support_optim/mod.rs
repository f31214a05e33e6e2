//! Test support for the optimisers: test objectives, plain Rust (f64) references of Adam
//! and L-BFGS, and a harness that drives an `Optimizer` on the GPU step by step (the tests read x back and upload the gradient each step; the
//! optimiser itself never reads anything back).
#![allow(dead_code, clippy::needless_range_loop)]

use crate::common::{context, to_f32, to_f64, Rng};
use stylize::gpu::GpuContext;
use stylize::optim::{Optimizer, OptimizerConfig, OptimizerKernels, OptimizerLayout};

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// ||a - b|| / ||reference - start||: the error relative to how far the reference moved.
pub fn error_relative_to_motion(a: &[f64], reference: &[f64], start: &[f64]) -> f64 {
    let diff: Vec<f64> = a.iter().zip(reference).map(|(x, y)| x - y).collect();
    let motion: Vec<f64> = reference.iter().zip(start).map(|(x, y)| x - y).collect();
    norm(&diff) / norm(&motion)
}

/// f(x) = 0.5 Σ a_i (x_i - b_i)² + 0.5 κ Σ_i (x_{i+1} - x_i)²: a positive-definite quadratic,
/// coupled like a total-variation term when κ > 0.
pub struct Quadratic {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    pub kappa: f64,
}

impl Quadratic {
    pub fn random(rng: &mut Rng, n: usize, kappa: f64) -> Self {
        Quadratic { a: rng.vec(n, 0.5, 2.0), b: rng.vec(n, 0.0, 1.0), kappa }
    }

    pub fn value(&self, x: &[f64]) -> f64 {
        let data: f64 = (0..x.len()).map(|i| 0.5 * self.a[i] * (x[i] - self.b[i]).powi(2)).sum();
        let coupling: f64 = x.windows(2).map(|w| 0.5 * self.kappa * (w[1] - w[0]).powi(2)).sum();
        data + coupling
    }

    pub fn grad(&self, x: &[f64]) -> Vec<f64> {
        let n = x.len();
        let mut g: Vec<f64> = (0..n).map(|i| self.a[i] * (x[i] - self.b[i])).collect();
        for i in 0..n.saturating_sub(1) {
            let d = self.kappa * (x[i + 1] - x[i]);
            g[i + 1] += d;
            g[i] -= d;
        }
        g
    }
}

/// Where each step's gradient comes from.
pub enum GradSource<'a> {
    /// The gradient of the objective at the current x.
    Objective(&'a Quadratic),
    /// Like `Objective`, but at the listed steps (1-based) the gradient is twice the previous
    /// step's, which makes y.s < 0 (torch drops that pair).
    ObjectiveWithDoubledSteps(&'a Quadratic, &'a [u32]),
    /// A fixed list of gradients, one per step.
    Fixed(&'a [Vec<f64>]),
}

impl GradSource<'_> {
    pub fn grad(&self, step: u32, x: &[f64], last: Option<&[f64]>) -> Vec<f64> {
        match self {
            GradSource::Objective(q) => q.grad(x),
            GradSource::ObjectiveWithDoubledSteps(q, steps) => {
                if steps.contains(&step) {
                    last.expect("a doubled step needs a previous gradient").iter().map(|g| 2.0 * g).collect()
                } else {
                    q.grad(x)
                }
            }
            GradSource::Fixed(list) => list[step as usize - 1].clone(),
        }
    }
}

/// torch.optim.Adam (no weight decay, no amsgrad) in f64, with a learning rate per channel
/// (i % 3) and optional clamping to [0,1].
pub struct AdamRef {
    pub channel_lr: [f64; 3],
    pub clamp: bool,
    pub m: Vec<f64>,
    pub v: Vec<f64>,
    pub step: i32,
}

impl AdamRef {
    pub fn new(n: usize, channel_lr: [f64; 3], clamp: bool) -> Self {
        AdamRef { channel_lr, clamp, m: vec![0.0; n], v: vec![0.0; n], step: 0 }
    }

    pub fn step(&mut self, x: &mut [f64], g: &[f64]) {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        self.step += 1;
        let bc1 = 1.0 - b1.powi(self.step);
        let bc2 = 1.0 - b2.powi(self.step);
        for i in 0..x.len() {
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g[i];
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g[i] * g[i];
            let denom = self.v[i].sqrt() / bc2.sqrt() + eps;
            x[i] -= self.channel_lr[i % 3] / bc1 * self.m[i] / denom;
            if self.clamp {
                x[i] = x[i].clamp(0.0, 1.0);
            }
        }
    }
}

/// How the L-BFGS reference keeps its history.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HistoryPolicy {
    /// torch.optim.LBFGS: the last m accepted pairs.
    TorchList,
    /// The GPU's ring: the last m pairs made, rejected ones kept with rho = 0.
    RingByAttempt,
}

/// torch.optim.LBFGS with line_search_fn=None and max_iter=1 per step, in f64.
pub struct LbfgsRef {
    pub lr: f64,
    pub history: usize,
    pub policy: HistoryPolicy,
    pub step: u32,
    /// (y, s, rho), oldest first; rho = 0 marks a rejected pair (ring policy only).
    pub pairs: Vec<(Vec<f64>, Vec<f64>, f64)>,
    pub gamma: f64,
    /// torch keeps a pair only if y.s exceeds this (1e-10).
    pub curvature_min: f64,
    pub d: Vec<f64>,
    pub t: f64,
    pub g_prev: Vec<f64>,
}

impl LbfgsRef {
    pub fn new(lr: f64, history: usize, policy: HistoryPolicy) -> Self {
        LbfgsRef {
            lr,
            history,
            policy,
            step: 0,
            pairs: vec![],
            gamma: 1.0,
            curvature_min: 1e-10,
            d: vec![],
            t: 0.0,
            g_prev: vec![],
        }
    }

    pub fn step(&mut self, x: &mut [f64], g: &[f64]) {
        self.step += 1;
        if self.step == 1 {
            self.d = g.iter().map(|v| -v).collect();
            self.gamma = 1.0;
        } else {
            let y: Vec<f64> = g.iter().zip(&self.g_prev).map(|(a, b)| a - b).collect();
            let s: Vec<f64> = self.d.iter().map(|v| v * self.t).collect();
            let ys = dot(&y, &s);
            let accepted = ys > self.curvature_min;
            if accepted {
                self.gamma = ys / dot(&y, &y);
            }
            match self.policy {
                HistoryPolicy::TorchList => {
                    if accepted {
                        if self.pairs.len() == self.history {
                            self.pairs.remove(0);
                        }
                        self.pairs.push((y, s, 1.0 / ys));
                    }
                }
                HistoryPolicy::RingByAttempt => {
                    if self.pairs.len() == self.history {
                        self.pairs.remove(0);
                    }
                    self.pairs.push((y, s, if accepted { 1.0 / ys } else { 0.0 }));
                }
            }
            let k = self.pairs.len();
            let mut alpha = vec![0.0; k];
            let mut q: Vec<f64> = g.iter().map(|v| -v).collect();
            for i in (0..k).rev() {
                let (y, s, rho) = &self.pairs[i];
                alpha[i] = rho * dot(s, &q);
                for j in 0..q.len() {
                    q[j] -= alpha[i] * y[j];
                }
            }
            let mut r: Vec<f64> = q.iter().map(|v| v * self.gamma).collect();
            for i in 0..k {
                let (y, s, rho) = &self.pairs[i];
                let beta = rho * dot(y, &r);
                for j in 0..r.len() {
                    r[j] += (alpha[i] - beta) * s[j];
                }
            }
            self.d = r;
        }
        self.g_prev = g.to_vec();
        self.t = if self.step == 1 {
            let l1: f64 = g.iter().map(|v| v.abs()).sum();
            (1.0f64).min(1.0 / l1) * self.lr
        } else {
            // Our one departure from torch (shaders/lbfgs.wgsl, FIN_GTD): the step moves pixels by
            // at most 0.05 on average.
            let d_l1: f64 = self.d.iter().map(|v| v.abs()).sum();
            let limit = 0.05 * x.len() as f64;
            if self.lr * d_l1 > limit {
                limit / d_l1
            } else {
                self.lr
            }
        };
        // torch: stop before moving when d is not a descent direction
        if dot(g, &self.d) > -1e-9 {
            return;
        }
        for i in 0..x.len() {
            x[i] += self.t * self.d[i];
        }
    }
}

/// Runs the L-BFGS reference for `steps` steps from `x0`.
pub fn run_lbfgs_ref(
    lr: f64,
    history: usize,
    policy: HistoryPolicy,
    x0: &[f64],
    steps: u32,
    source: &GradSource,
) -> Vec<f64> {
    run_lbfgs_ref_with(LbfgsRef::new(lr, history, policy), x0, steps, source)
}

/// Runs a configured L-BFGS reference for `steps` steps from `x0`.
pub fn run_lbfgs_ref_with(mut opt: LbfgsRef, x0: &[f64], steps: u32, source: &GradSource) -> Vec<f64> {
    let mut x = x0.to_vec();
    let mut last: Option<Vec<f64>> = None;
    for step in 1..=steps {
        let g = source.grad(step, &x, last.as_deref());
        opt.step(&mut x, &g);
        last = Some(g);
    }
    x
}

/// An `Optimizer` on the GPU with its own x and grad buffers.
pub struct GpuRun {
    pub ctx: GpuContext,
    pub x: wgpu::Buffer,
    pub grad: wgpu::Buffer,
    pub opt: Optimizer,
    pub n: usize,
    pub history: usize,
}

impl GpuRun {
    pub fn new(cfg: &OptimizerConfig, x0: &[f32]) -> Self {
        Self::with_context(context(), cfg, x0)
    }

    pub fn with_context(ctx: GpuContext, cfg: &OptimizerConfig, x0: &[f32]) -> Self {
        let n = x0.len();
        let x = ctx.storage_buffer_init("x", bytemuck::cast_slice(x0));
        let grad = ctx.storage_buffer("grad", n as u64 * 4);
        let kernels = OptimizerKernels::new(&ctx);
        let opt = Optimizer::new(&ctx, &kernels, cfg, &OptimizerLayout::new(cfg, n), &x, &grad, n).expect("optimizer");
        GpuRun { ctx, x, grad, opt, n, history: cfg.lbfgs_history }
    }

    /// One step with gradient `g`: upload, then one submit with the optimiser's dispatches.
    pub fn step(&mut self, g: &[f32]) {
        self.ctx.queue.write_buffer(&self.grad, 0, bytemuck::cast_slice(g));
        self.opt.prepare_step(&self.ctx);
        let mut encoder = self.ctx.encoder("step");
        {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            self.opt.record_step(&mut pass);
        }
        self.ctx.submit(encoder);
        self.opt.finish_step();
    }

    pub fn read_x(&self) -> Vec<f32> {
        pollster::block_on(self.ctx.read_f32(&self.x, 0, self.n)).expect("read x")
    }

    pub fn write_x(&self, x: &[f32]) {
        self.ctx.queue.write_buffer(&self.x, 0, bytemuck::cast_slice(x));
    }

    pub fn read_scalars(&self) -> Vec<f32> {
        let buffer = self.opt.lbfgs_scalars().expect("an L-BFGS optimiser");
        let len = stylize::kernels::lbfgs::scalars_len(self.history);
        pollster::block_on(self.ctx.read_f32(buffer, 0, len)).expect("read scalars")
    }

    /// `steps` steps, each with the gradient from `source` at the GPU's current x.
    pub fn run(&mut self, steps: u32, source: &GradSource) -> Vec<f32> {
        let mut last: Option<Vec<f64>> = None;
        for _ in 0..steps {
            let step = self.opt.steps_done() + 1;
            let x = to_f64(&self.read_x());
            let g = source.grad(step, &x, last.as_deref());
            self.step(&to_f32(&g));
            // what the GPU saw, so that a doubled step doubles exactly that
            last = Some(to_f64(&to_f32(&g)));
        }
        let x = self.read_x();
        if let Some(e) = self.ctx.take_error() {
            panic!("GPU validation error: {e}");
        }
        x
    }
}
