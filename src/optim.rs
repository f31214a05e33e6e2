//! The optimisers of the image `x`: Adam and L-BFGS, entirely on the GPU.
//!
//! Both own their state buffers (allocated once, in [`Optimizer::new`]) and prebuilt
//! dispatches. Each optimisation step the engine:
//! 1. calls [`Optimizer::prepare_step`] (writes the step's uniforms with `queue.write_buffer`),
//! 2. records its forward/backward dispatches, which write dL/dx into `grad`, and then
//!    [`Optimizer::record_step`] into the same compute pass, and submits once,
//! 3. calls [`Optimizer::finish_step`] (advances the host's step counter).
//!
//! Nothing is read back inside a step. The host only knows the step number; from it
//! follow Adam's bias corrections and L-BFGS's ring position (see [`kernels::lbfgs`]).
//!
//! L-BFGS follows torch.optim.LBFGS without a line search, with one addition: from step 2
//! on, a step is shortened so that pixels move by at most 0.05 on average (`[0,1]` units).
//! Without it, a step built from a poor first curvature pair can throw the image far out of
//! range (the objective jumped ×27000 in a 32 px run, and went to NaN in another). Steps
//! below the bound match torch exactly.

use std::fmt;

use crate::gpu::{Dispatch, GpuContext, GpuError};
use crate::kernels;
use crate::kernels::adam::AdamKernel;
use crate::kernels::lbfgs::{schedule, AxpyMode, FinishMode, LbfgsKernels, LbfgsOp, LbfgsShape};

/// ImageNet per-channel standard deviations (RGB): the seed form's Adam learning rate is
/// `lr` in normalised units, i.e. `lr * std_c` in `[0,1]` units.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Adam,
    Lbfgs,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    /// Learning rate (Adam: in `[0,1]` units before `channel_lr_scale`; L-BFGS: torch's `lr`).
    pub lr: f32,
    /// Adam only: the learning rate of channel c is `lr * channel_lr_scale[c]`
    /// (`[1,1,1]` canonical, [`IMAGENET_STD`] in the seed form).
    pub channel_lr_scale: [f32; 3],
    /// L-BFGS only: number of (s, y) pairs kept.
    pub lbfgs_history: usize,
    /// Adam only: clamp x to `[0,1]` after each step. L-BFGS never clamps during the run.
    pub clamp: bool,
}

impl OptimizerConfig {
    /// Adam with the canonical settings: same lr for every channel, clamping on.
    pub fn adam(lr: f32) -> Self {
        OptimizerConfig { kind: OptimizerKind::Adam, lr, channel_lr_scale: [1.0; 3], lbfgs_history: 0, clamp: true }
    }

    /// Adam as in the seed form: lr in ImageNet-normalised units, no clamping.
    pub fn adam_seed(lr: f32) -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr,
            channel_lr_scale: IMAGENET_STD,
            lbfgs_history: 0,
            clamp: false,
        }
    }

    /// L-BFGS with learning rate `lr` and `history` pairs.
    pub fn lbfgs(lr: f32, history: usize) -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Lbfgs,
            lr,
            channel_lr_scale: [1.0; 3],
            lbfgs_history: history,
            clamp: false,
        }
    }

    /// Checks the settings; `n` is the number of values of x (h*w*3).
    pub fn validate(&self, n: usize) -> Result<(), OptimizerError> {
        let bad = |msg: String| Err(OptimizerError::BadConfig(msg));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("the learning rate must be a positive number, got {}", self.lr));
        }
        if n == 0 || !n.is_multiple_of(3) {
            return bad(format!("the image must hold h*w*3 values (HWC RGB), got {n}"));
        }
        if n > u32::MAX as usize / 2 {
            return bad(format!("the image has {n} values, more than the optimiser can index"));
        }
        match self.kind {
            OptimizerKind::Adam => {
                if self.channel_lr_scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                    return bad(format!(
                        "the per-channel learning-rate scales must be positive numbers, got {:?}",
                        self.channel_lr_scale
                    ));
                }
            }
            OptimizerKind::Lbfgs => {
                if !(1..=MAX_LBFGS_HISTORY).contains(&self.lbfgs_history) {
                    return bad(format!(
                        "the L-BFGS history must be between 1 and {MAX_LBFGS_HISTORY}, got {}",
                        self.lbfgs_history
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Largest L-BFGS history accepted (each pair costs 2 image-sized buffers).
pub const MAX_LBFGS_HISTORY: usize = 1000;

/// Why an optimiser could not be built.
#[derive(Debug, Clone)]
pub enum OptimizerError {
    BadConfig(String),
    Gpu(GpuError),
}

impl fmt::Display for OptimizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimizerError::BadConfig(msg) => write!(f, "bad optimiser setting: {msg}"),
            OptimizerError::Gpu(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OptimizerError {}

impl From<GpuError> for OptimizerError {
    fn from(e: GpuError) -> Self {
        OptimizerError::Gpu(e)
    }
}

/// Bytes `GpuContext` allocates for a buffer of `bytes` (it rounds up to 16, minimum 16).
fn buffer_bytes(bytes: u64) -> u64 {
    bytes.max(16).div_ceil(16) * 16
}

struct AdamState {
    params: wgpu::Buffer,
    moment1: wgpu::Buffer,
    moment2: wgpu::Buffer,
    dispatch: Dispatch,
}

struct LbfgsState {
    shape: LbfgsShape,
    scalars: wgpu::Buffer,
    first: Dispatch,
    pair: Vec<Dispatch>,
    loop1: Vec<Dispatch>,
    loop1_last: Vec<Dispatch>,
    loop2: Vec<Dispatch>,
    loop2_last: Vec<Dispatch>,
    finish_first: Dispatch,
    finish_pair: Vec<Dispatch>,
    finish_alpha: Vec<Dispatch>,
    finish_beta: Vec<Dispatch>,
    finish_gtd: Dispatch,
    update: Dispatch,
}

enum State {
    Adam(AdamState),
    Lbfgs(Box<LbfgsState>),
}

/// An optimiser bound to one image buffer `x` and its gradient buffer `grad`.
pub struct Optimizer {
    cfg: OptimizerConfig,
    n: usize,
    /// The step about to be taken (1-based).
    step: u32,
    state: State,
    allocated: u64,
}

impl Optimizer {
    /// Allocates the state for an image of `n` values (h*w*3) and builds every dispatch.
    pub fn new(
        ctx: &GpuContext,
        cfg: &OptimizerConfig,
        x: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        n: usize,
    ) -> Result<Optimizer, OptimizerError> {
        cfg.validate(n)?;
        let vector_bytes = n as u64 * 4;
        for (what, buffer) in [("x", x), ("grad", grad)] {
            if buffer.size() < vector_bytes {
                return Err(OptimizerError::BadConfig(format!(
                    "the {what} buffer holds {} bytes, fewer than the {vector_bytes} of {n} values",
                    buffer.size()
                )));
            }
        }
        ctx.check_size("the optimiser state", vector_bytes)?;
        let state = match cfg.kind {
            OptimizerKind::Adam => State::Adam(Self::build_adam(ctx, cfg, x, grad, n)),
            OptimizerKind::Lbfgs => State::Lbfgs(Box::new(Self::build_lbfgs(ctx, cfg, x, grad, n))),
        };
        // tests/optim.rs checks this figure against the context's running total
        let allocated = Self::plan_bytes(cfg, n);
        Ok(Optimizer { cfg: cfg.clone(), n, step: 1, state, allocated })
    }

    fn build_adam(
        ctx: &GpuContext,
        cfg: &OptimizerConfig,
        x: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        n: usize,
    ) -> AdamState {
        let kernel = AdamKernel::new(ctx);
        let params =
            ctx.uniform_buffer_init("adam params", &AdamKernel::params_bytes(1, channel_lr(cfg), cfg.clamp, n));
        // New buffers are zero: that is Adam's initial state.
        let moment1 = ctx.storage_buffer("adam m", n as u64 * 4);
        let moment2 = ctx.storage_buffer("adam v", n as u64 * 4);
        let dispatch = kernel.step(ctx, &params, x, grad, &moment1, &moment2, n);
        AdamState { params, moment1, moment2, dispatch }
    }

    fn build_lbfgs(
        ctx: &GpuContext,
        cfg: &OptimizerConfig,
        x: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        n: usize,
    ) -> LbfgsState {
        let k = LbfgsKernels::new(ctx);
        let m = cfg.lbfgs_history;
        let shape = LbfgsShape::new(n, m, cfg.lr);
        let bytes = n as u64 * 4;
        let gprev = ctx.storage_buffer("lbfgs g_prev", bytes);
        let dir = ctx.storage_buffer("lbfgs d", bytes);
        let ys: Vec<wgpu::Buffer> = (0..m).map(|j| ctx.storage_buffer(&format!("lbfgs y{j}"), bytes)).collect();
        let ss: Vec<wgpu::Buffer> = (0..m).map(|j| ctx.storage_buffer(&format!("lbfgs s{j}"), bytes)).collect();
        let scalars = ctx.storage_buffer_init("lbfgs scalars", bytemuck::cast_slice(&initial_scalars(m)));
        let partials = ctx.storage_buffer("lbfgs partials", shape.reduction.partials_bytes());
        let older = |j: usize| (j + m - 1) % m;
        let newer = |j: usize| (j + 1) % m;
        // Loop dispatches that move to another slot exist only when there is another slot.
        let slots_to_next = if m >= 2 { 0..m } else { 0..0 };
        LbfgsState {
            first: k.first(ctx, &shape, grad, &gprev, &dir, &partials),
            pair: (0..m)
                .map(|j| k.pair(ctx, &shape, &scalars, grad, &gprev, &dir, &ys[j], &ss[j], &partials))
                .collect(),
            loop1: slots_to_next
                .clone()
                .map(|j| k.axpy_dot(ctx, &shape, AxpyMode::Loop1, j, &scalars, &dir, &ys[j], &ss[older(j)], &partials))
                .collect(),
            loop1_last: (0..m)
                .map(|j| k.axpy_dot(ctx, &shape, AxpyMode::Loop1Last, j, &scalars, &dir, &ys[j], &ys[j], &partials))
                .collect(),
            loop2: slots_to_next
                .map(|j| k.axpy_dot(ctx, &shape, AxpyMode::Loop2, j, &scalars, &dir, &ss[j], &ys[newer(j)], &partials))
                .collect(),
            loop2_last: (0..m)
                .map(|j| k.axpy_dot(ctx, &shape, AxpyMode::Loop2, j, &scalars, &dir, &ss[j], grad, &partials))
                .collect(),
            finish_first: k.finish(ctx, &shape, FinishMode::First, 0, &scalars, &partials),
            finish_pair: (0..m).map(|j| k.finish(ctx, &shape, FinishMode::Pair, j, &scalars, &partials)).collect(),
            finish_alpha: (0..m).map(|j| k.finish(ctx, &shape, FinishMode::Alpha, j, &scalars, &partials)).collect(),
            finish_beta: (0..m).map(|j| k.finish(ctx, &shape, FinishMode::Beta, j, &scalars, &partials)).collect(),
            finish_gtd: k.finish(ctx, &shape, FinishMode::Gtd, 0, &scalars, &partials),
            update: k.update(ctx, &shape, &scalars, &dir, x),
            shape,
            scalars,
        }
    }

    /// Bytes of GPU memory [`Optimizer::new`] allocates for this config and image size
    /// (state buffers and the small parameter uniforms), without allocating.
    pub fn plan_bytes(cfg: &OptimizerConfig, n: usize) -> u64 {
        let vector = buffer_bytes(n as u64 * 4);
        let uniform = buffer_bytes(kernels::lbfgs::PARAMS_BYTES as u64);
        match cfg.kind {
            OptimizerKind::Adam => 2 * vector + buffer_bytes(kernels::adam::PARAMS_BYTES as u64),
            OptimizerKind::Lbfgs => {
                let m = cfg.lbfgs_history as u64;
                let shape = LbfgsShape::new(n, cfg.lbfgs_history, cfg.lr);
                let loops = if m >= 2 { 2 * m } else { 0 };
                // first, pair[m], loop1[m], loop1_last[m], loop2[m], loop2_last[m],
                // finish_first, finish_pair/alpha/beta[m], finish_gtd, update
                let dispatches = 1 + m + loops + 2 * m + 1 + 3 * m + 1 + 1;
                (2 + 2 * m) * vector
                    + buffer_bytes(kernels::lbfgs::scalars_len(cfg.lbfgs_history) as u64 * 4)
                    + buffer_bytes(shape.reduction.partials_bytes())
                    + dispatches * uniform
            }
        }
    }

    /// Bytes of GPU memory this optimiser allocated (equals [`Optimizer::plan_bytes`]).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated
    }

    pub fn config(&self) -> &OptimizerConfig {
        &self.cfg
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Steps completed since creation or the last [`Optimizer::reset`].
    pub fn steps_done(&self) -> u32 {
        self.step - 1
    }

    /// Called once per step before the step's command buffer is submitted: writes the
    /// step's uniforms (Adam's bias corrections; L-BFGS needs none).
    pub fn prepare_step(&mut self, ctx: &GpuContext) {
        if let State::Adam(adam) = &self.state {
            let bytes = AdamKernel::params_bytes(self.step, channel_lr(&self.cfg), self.cfg.clamp, self.n);
            ctx.queue.write_buffer(&adam.params, 0, &bytes);
        }
    }

    /// The dispatches of this step's update, in order (what [`Optimizer::record_step`] records;
    /// the benchmark can time them one by one).
    pub fn step_dispatches(&self) -> Vec<&Dispatch> {
        match &self.state {
            State::Adam(adam) => vec![&adam.dispatch],
            State::Lbfgs(l) => schedule(self.step, l.shape.history)
                .into_iter()
                .map(|op| match op {
                    LbfgsOp::First => &l.first,
                    LbfgsOp::Pair { slot } => &l.pair[slot],
                    LbfgsOp::Loop1 { slot, .. } => &l.loop1[slot],
                    LbfgsOp::Loop1Last { slot } => &l.loop1_last[slot],
                    LbfgsOp::Loop2 { slot, .. } => &l.loop2[slot],
                    LbfgsOp::Loop2Last { slot } => &l.loop2_last[slot],
                    LbfgsOp::Finish { mode, slot } => match mode {
                        FinishMode::First => &l.finish_first,
                        FinishMode::Pair => &l.finish_pair[slot],
                        FinishMode::Alpha => &l.finish_alpha[slot],
                        FinishMode::Beta => &l.finish_beta[slot],
                        FinishMode::Gtd => &l.finish_gtd,
                    },
                    LbfgsOp::Update => &l.update,
                })
                .collect(),
        }
    }

    /// Records this step's update (x <- x + ..., from `grad`) into the step's compute pass,
    /// after the dispatches that write `grad`.
    pub fn record_step(&self, pass: &mut wgpu::ComputePass<'_>) {
        for dispatch in self.step_dispatches() {
            dispatch.record(pass);
        }
    }

    /// Call after the step's submit: advances the step counter (and so the ring position).
    pub fn finish_step(&mut self) {
        self.step += 1;
    }

    /// Back to step 1 with empty state (e.g. after the engine re-initialises x).
    pub fn reset(&mut self, ctx: &GpuContext) {
        self.step = 1;
        match &self.state {
            State::Adam(adam) => {
                let mut encoder = ctx.encoder("adam reset");
                encoder.clear_buffer(&adam.moment1, 0, None);
                encoder.clear_buffer(&adam.moment2, 0, None);
                ctx.submit(encoder);
            }
            State::Lbfgs(l) => {
                // Step 1 rebuilds d and g_prev, and each pair is written before it is used,
                // so only the coefficients need their initial values.
                ctx.queue.write_buffer(&l.scalars, 0, bytemuck::cast_slice(&initial_scalars(l.shape.history)));
            }
        }
    }

    /// L-BFGS only: the coefficient buffer (layout: `kernels::lbfgs::SCALAR_*`), for diagnostics.
    pub fn lbfgs_scalars(&self) -> Option<&wgpu::Buffer> {
        match &self.state {
            State::Lbfgs(l) => Some(&l.scalars),
            State::Adam(_) => None,
        }
    }
}

fn channel_lr(cfg: &OptimizerConfig) -> [f32; 3] {
    cfg.channel_lr_scale.map(|s| cfg.lr * s)
}

/// Coefficients before step 1: gamma = H_diag = 1, everything else 0.
fn initial_scalars(history: usize) -> Vec<f32> {
    let mut scalars = vec![0.0f32; kernels::lbfgs::scalars_len(history)];
    scalars[kernels::lbfgs::SCALAR_GAMMA] = 1.0;
    scalars
}
