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

use crate::bands::{Bands, BandsLayout};
use crate::gpu::{Dispatch, GpuContext, GpuError};
use crate::plan::BufferSpec;
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

/// The optimiser's compiled kernels: built once per device (with the network's kernels), shared by
/// every run.
pub struct OptimizerKernels {
    adam: AdamKernel,
    lbfgs: LbfgsKernels,
}

impl OptimizerKernels {
    pub fn new(ctx: &GpuContext) -> Self {
        OptimizerKernels { adam: AdamKernel::new(ctx), lbfgs: LbfgsKernels::new(ctx) }
    }
}

/// The optimiser's state buffers for an image of `n` values, worked out without a GPU
/// ([`Optimizer::new`] allocates exactly these).
#[derive(Clone, Debug)]
pub enum OptimizerLayout {
    /// Adam's moments, in the bands of x.
    Adam { moment1: BandsLayout, moment2: BandsLayout },
    Lbfgs { g_prev: BufferSpec, dir: BufferSpec, ys: Vec<BufferSpec>, ss: Vec<BufferSpec>, scalars: BufferSpec, partials: BufferSpec },
}

impl OptimizerLayout {
    /// The state for an image of `n` values in one buffer.
    pub fn new(cfg: &OptimizerConfig, n: usize) -> OptimizerLayout {
        OptimizerLayout::for_image(cfg, &BandsLayout::single("x", 1, n))
    }

    /// The state for the image `x` (L-BFGS: in one band).
    pub fn for_image(cfg: &OptimizerConfig, x: &BandsLayout) -> OptimizerLayout {
        let n = x.len();
        let vector = |label: String| BufferSpec::new(label, n as u64 * 4);
        match cfg.kind {
            OptimizerKind::Adam => OptimizerLayout::Adam { moment1: x.like("adam m"), moment2: x.like("adam v") },
            OptimizerKind::Lbfgs => {
                let m = cfg.lbfgs_history;
                OptimizerLayout::Lbfgs {
                    g_prev: vector("lbfgs g_prev".into()),
                    dir: vector("lbfgs d".into()),
                    ys: (0..m).map(|j| vector(format!("lbfgs y{j}"))).collect(),
                    ss: (0..m).map(|j| vector(format!("lbfgs s{j}"))).collect(),
                    scalars: BufferSpec::new("lbfgs scalars", kernels::lbfgs::scalars_len(m) as u64 * 4),
                    partials: BufferSpec::new("lbfgs partials", LbfgsShape::new(n, m, cfg.lr).reduction.partials_bytes()),
                }
            }
        }
    }

    pub fn buffers(&self) -> Vec<&BufferSpec> {
        match self {
            OptimizerLayout::Adam { moment1, moment2 } => moment1.specs().iter().chain(moment2.specs()).collect(),
            OptimizerLayout::Lbfgs { g_prev, dir, ys, ss, scalars, partials } => {
                [g_prev, dir].into_iter().chain(ys).chain(ss).chain([scalars, partials]).collect()
            }
        }
    }
}

struct AdamState {
    /// One uniform and one dispatch per band of x, each with the band's length.
    params: Vec<(wgpu::Buffer, usize)>,
    /// m and v: only the dispatches read them; held here with the state they are.
    _moments: [Bands; 2],
    dispatches: Vec<Dispatch>,
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
    Adam(Box<AdamState>),
    Lbfgs(Box<LbfgsState>),
}

/// An optimiser bound to one image buffer `x` and its gradient buffer `grad`.
pub struct Optimizer {
    cfg: OptimizerConfig,
    /// The step about to be taken (1-based).
    step: u32,
    state: State,
    allocated: u64,
}

impl Optimizer {
    /// Allocates the state of `layout` (made by [`OptimizerLayout::new`] for this config and `n`)
    /// and builds every dispatch.
    pub fn new(
        ctx: &GpuContext,
        kernels: &OptimizerKernels,
        cfg: &OptimizerConfig,
        layout: &OptimizerLayout,
        x: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        n: usize,
    ) -> Result<Optimizer, OptimizerError> {
        let (x, grad) = (Bands::from_buffer("x", x.clone(), n), Bands::from_buffer("dL/dx", grad.clone(), n));
        Optimizer::for_image(ctx, kernels, cfg, layout, &x, &grad)
    }

    /// [`Optimizer::new`] for an image in bands (`layout` from [`OptimizerLayout::for_image`]).
    pub fn for_image(
        ctx: &GpuContext,
        kernels: &OptimizerKernels,
        cfg: &OptimizerConfig,
        layout: &OptimizerLayout,
        xs: &Bands,
        grads: &Bands,
    ) -> Result<Optimizer, OptimizerError> {
        let n = xs.layout.len();
        cfg.validate(n)?;
        if cfg.kind == OptimizerKind::Lbfgs && xs.band_count() > 1 {
            return Err(OptimizerError::BadConfig("L-BFGS needs the image in one buffer".into()));
        }
        for (what, bands) in [("x", xs), ("grad", grads)] {
            for band in bands.iter() {
                let bytes = (band.len(bands.layout.row_len) * 4) as u64;
                if band.buffer.size() < bytes {
                    return Err(OptimizerError::BadConfig(format!(
                        "the {what} buffer holds {} bytes, fewer than the {bytes} of its values",
                        band.buffer.size()
                    )));
                }
            }
        }
        let state = match (cfg.kind, layout) {
            (OptimizerKind::Adam, OptimizerLayout::Adam { moment1, moment2 }) => {
                // New buffers are zero: that is Adam's initial state.
                let moments = [Bands::alloc(ctx, moment1), Bands::alloc(ctx, moment2)];
                let row_len = xs.layout.row_len;
                let mut params = Vec::new();
                let mut dispatches = Vec::new();
                for (((x, grad), m1), m2) in xs.zip(grads).zip(moments[0].iter()).zip(moments[1].iter()) {
                    let len = x.len(row_len);
                    let uniform = ctx.uniform_buffer_init("adam params", &AdamKernel::params_bytes(1, channel_lr(cfg), cfg.clamp, len));
                    dispatches.push(kernels.adam.step(ctx, &uniform, x.buffer, grad.buffer, m1.buffer, m2.buffer, len));
                    params.push((uniform, len));
                }
                State::Adam(Box::new(AdamState { params, _moments: moments, dispatches }))
            }
            (OptimizerKind::Lbfgs, OptimizerLayout::Lbfgs { .. }) => {
                State::Lbfgs(Box::new(Self::build_lbfgs(ctx, &kernels.lbfgs, cfg, layout, xs.single(), grads.single(), n)))
            }
            _ => return Err(OptimizerError::BadConfig("the layout was made for another optimiser".into())),
        };
        let allocated = layout.buffers().iter().map(|b| b.bytes).sum();
        Ok(Optimizer { cfg: cfg.clone(), step: 1, state, allocated })
    }

    fn build_lbfgs(
        ctx: &GpuContext,
        k: &LbfgsKernels,
        cfg: &OptimizerConfig,
        layout: &OptimizerLayout,
        x: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        n: usize,
    ) -> LbfgsState {
        let OptimizerLayout::Lbfgs { g_prev, dir, ys, ss, scalars, partials } = layout else {
            unreachable!("Optimizer::new matched the layout")
        };
        let m = cfg.lbfgs_history;
        let shape = LbfgsShape::new(n, m, cfg.lr);
        let gprev = ctx.alloc(g_prev);
        let dir = ctx.alloc(dir);
        let ys: Vec<wgpu::Buffer> = ys.iter().map(|spec| ctx.alloc(spec)).collect();
        let ss: Vec<wgpu::Buffer> = ss.iter().map(|spec| ctx.alloc(spec)).collect();
        let scalars = ctx.alloc(scalars);
        ctx.queue.write_buffer(&scalars, 0, bytemuck::cast_slice(&initial_scalars(m)));
        let partials = ctx.alloc(partials);
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

    /// Bytes of GPU storage this optimiser allocated (its layout's buffers).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated
    }

    /// Steps completed since creation or the last [`Optimizer::reset`].
    pub fn steps_done(&self) -> u32 {
        self.step - 1
    }

    /// Called once per step before the step's command buffer is submitted: writes the
    /// step's uniforms (Adam's bias corrections; L-BFGS needs none).
    pub fn prepare_step(&mut self, ctx: &GpuContext) {
        if let State::Adam(adam) = &self.state {
            for (uniform, len) in &adam.params {
                let bytes = AdamKernel::params_bytes(self.step, channel_lr(&self.cfg), self.cfg.clamp, *len);
                ctx.queue.write_buffer(uniform, 0, &bytes);
            }
        }
    }

    /// The dispatches of this step's update, in order (what [`Optimizer::record_step`] records;
    /// the benchmark can time them one by one).
    pub fn step_dispatches(&self) -> Vec<&Dispatch> {
        match &self.state {
            State::Adam(adam) => adam.dispatches.iter().collect(),
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

    /// L-BFGS only: the coefficient buffer (layout: `kernels::lbfgs::SCALAR_*`), which the tests
    /// read to check the recursion's state.
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
