//! L-BFGS two-loop recursion on the GPU (`shaders/lbfgs.wgsl`).
//!
//! This module holds the compiled kernels, the builders of their [`Dispatch`]es and
//! [`schedule`], the order of operations of one step. Which history slot each
//! dispatch touches depends only on the step number, so the host can replay prebuilt
//! dispatches in the right order without reading anything back; every dot product
//! and coefficient stays on the GPU (see the shader header for the data layout).
//!
//! History: the pair made at step k (k >= 2) goes to slot `(k-2) % m`, whether or not it
//! passes torch's curvature test `y.s > 1e-10`; a pair that fails gets rho = 0, which
//! makes it contribute nothing to either loop, exactly as if it were absent. The one
//! difference from torch.optim.LBFGS: torch's list holds the last m *accepted* pairs,
//! this ring the accepted pairs among the last m *made*, so after a rejected pair the
//! effective history is shorter than m until the ring has turned over.

use crate::gpu::{groups, groups_2d, Dispatch, GpuContext, Kernel};

/// Index in `scalars` of t, the step length of the current direction.
pub const SCALAR_T: usize = 0;
/// Index in `scalars` of gamma = H_diag = y.s / y.y of the newest accepted pair (1 if none).
pub const SCALAR_GAMMA: usize = 1;
/// Index in `scalars` of g.d for the current direction.
pub const SCALAR_GTD: usize = 2;
/// Index in `scalars` of |g|_1 at step 1.
pub const SCALAR_L1: usize = 3;
/// Index in `scalars` of y.s of the newest pair (accepted or not).
pub const SCALAR_YS: usize = 4;
/// Index in `scalars` of y.y of the newest pair.
pub const SCALAR_YY: usize = 5;
/// Index in `scalars` of rho of slot 0; alpha_j is at `SCALAR_RHO + m + j`, beta_j at `SCALAR_RHO + 2m + j`.
pub const SCALAR_RHO: usize = 8;

/// Number of f32 in the `scalars` buffer for history `m`.
pub fn scalars_len(history: usize) -> usize {
    SCALAR_RHO + 3 * history
}

/// Threads per workgroup of every L-BFGS kernel.
const WORKGROUP: usize = 256;
/// At most this many partial sums per reduction: enough workgroups to fill a large GPU,
/// few enough for one workgroup to add them up quickly.
const MAX_REDUCTION_GROUPS: usize = 1024;

/// Bytes of the parameter uniform (`Params` in the shader).
pub const PARAMS_BYTES: usize = 32;

/// How a reduction over n elements is spread: `groups` workgroups of 256 threads,
/// each thread handling `per_thread` elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReductionShape {
    pub per_thread: usize,
    pub groups: usize,
}

impl ReductionShape {
    pub fn for_len(n: usize) -> Self {
        let per_thread = n.div_ceil(WORKGROUP * MAX_REDUCTION_GROUPS).max(1);
        let groups = n.div_ceil(WORKGROUP * per_thread).max(1);
        ReductionShape { per_thread, groups }
    }

    /// Bytes of the partial-sum buffer (one vec4 per workgroup).
    pub fn partials_bytes(&self) -> u64 {
        self.groups as u64 * 16
    }
}

/// What `lbfgs_axpy_dot` does to the direction buffer (shader `MODE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxpyMode {
    /// q <- q - alpha_a y_a
    Loop1 = 0,
    /// r <- gamma (q - alpha_a y_a)
    Loop1Last = 1,
    /// r <- r + (alpha_a - beta_a) s_a
    Loop2 = 2,
}

/// Which coefficient `lbfgs_finish` computes from the summed partials (shader `FIN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishMode {
    /// t = min(1, 1/|g|_1) lr, and g.d.
    First = 0,
    /// rho, gamma and alpha of the new pair.
    Pair = 1,
    Alpha = 2,
    Beta = 3,
    /// g.d, and t = lr shortened so that pixels move by at most 0.05 on average (|d|_1 bound).
    Gtd = 4,
}

/// One operation of a step, naming the history slots it touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbfgsOp {
    /// Step 1: d = -g, gprev = g; sums |g|_1 and g.d.
    First,
    /// New pair into `slot`, gprev = g, q = -g; sums y.s, y.y, s.q.
    Pair { slot: usize },
    /// Loop 1 with pair `slot`, then s.q for the next older slot `next`.
    Loop1 { slot: usize, next: usize },
    /// Last iteration of loop 1 (the oldest pair, `slot`), r = gamma q, then y.r for the same slot.
    Loop1Last { slot: usize },
    /// Loop 2 with pair `slot`, then y.r for the next newer slot `next`.
    Loop2 { slot: usize, next: usize },
    /// Last iteration of loop 2 (the newest pair), then g.d.
    Loop2Last { slot: usize },
    /// Sums the partials of the previous op into the coefficient `mode` of `slot`.
    Finish { mode: FinishMode, slot: usize },
    /// x <- x + t d (if g.d < -1e-9).
    Update,
}

/// The operations of step `step` (1-based) with history `m`.
pub fn schedule(step: u32, history: usize) -> Vec<LbfgsOp> {
    assert!(step >= 1 && history >= 1);
    use LbfgsOp::*;
    let m = history;
    let mut ops = Vec::with_capacity(4 * m + 3);
    if step == 1 {
        ops.push(First);
        ops.push(Finish { mode: FinishMode::First, slot: 0 });
        ops.push(Update);
        return ops;
    }
    let k = step as usize;
    let newest = (k - 2) % m;
    let pairs = (k - 1).min(m);
    // slot of the i-th newest pair
    let slot = |i: usize| (newest + m - i) % m;
    ops.push(Pair { slot: newest });
    ops.push(Finish { mode: FinishMode::Pair, slot: newest });
    for i in 0..pairs - 1 {
        ops.push(Loop1 { slot: slot(i), next: slot(i + 1) });
        ops.push(Finish { mode: FinishMode::Alpha, slot: slot(i + 1) });
    }
    let oldest = slot(pairs - 1);
    ops.push(Loop1Last { slot: oldest });
    ops.push(Finish { mode: FinishMode::Beta, slot: oldest });
    for i in (1..pairs).rev() {
        ops.push(Loop2 { slot: slot(i), next: slot(i - 1) });
        ops.push(Finish { mode: FinishMode::Beta, slot: slot(i - 1) });
    }
    ops.push(Loop2Last { slot: newest });
    ops.push(Finish { mode: FinishMode::Gtd, slot: 0 });
    ops.push(Update);
    ops
}

/// Fixed shape of one L-BFGS problem, shared by all its dispatches.
#[derive(Clone, Copy, Debug)]
pub struct LbfgsShape {
    pub n: usize,
    pub history: usize,
    pub lr: f32,
    pub reduction: ReductionShape,
}

impl LbfgsShape {
    pub fn new(n: usize, history: usize, lr: f32) -> Self {
        LbfgsShape { n, history, lr, reduction: ReductionShape::for_len(n) }
    }

    fn params(&self, slot_a: usize, slot_b: usize, mode: u32) -> [u8; PARAMS_BYTES] {
        let words: [u32; PARAMS_BYTES / 4] = [
            self.n as u32,
            self.reduction.per_thread as u32,
            self.reduction.groups as u32,
            self.history as u32,
            slot_a as u32,
            slot_b as u32,
            mode,
            self.lr.to_bits(),
        ];
        bytemuck::cast(words)
    }

    fn reduction_grid(&self) -> [u32; 3] {
        [self.reduction.groups as u32, 1, 1]
    }
}

/// The compiled L-BFGS kernels (one shader module).
pub struct LbfgsKernels {
    first: Kernel,
    pair: Kernel,
    axpy_dot: Kernel,
    finish: Kernel,
    update: Kernel,
}

impl LbfgsKernels {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("lbfgs", include_str!("../../shaders/lbfgs.wgsl"));
        let k = |entry: &str| ctx.kernel_from_module(entry, &module, entry);
        LbfgsKernels {
            first: k("lbfgs_first"),
            pair: k("lbfgs_pair"),
            axpy_dot: k("lbfgs_axpy_dot"),
            finish: k("lbfgs_finish"),
            update: k("lbfgs_update"),
        }
    }

    /// Step 1: dir = -g, gprev = g, partials of |g|_1 and g.dir.
    pub fn first(
        &self,
        ctx: &GpuContext,
        shape: &LbfgsShape,
        g: &wgpu::Buffer,
        gprev: &wgpu::Buffer,
        dir: &wgpu::Buffer,
        partials: &wgpu::Buffer,
    ) -> Dispatch {
        self.first.dispatch(
            ctx,
            &shape.params(0, 0, 0),
            &[(2, g), (3, gprev), (4, dir), (7, partials)],
            shape.reduction_grid(),
        )
    }

    /// The new pair into (`y_slot`, `s_slot`) from g, gprev, dir and t; then gprev = g, dir = -g.
    #[allow(clippy::too_many_arguments)]
    pub fn pair(
        &self,
        ctx: &GpuContext,
        shape: &LbfgsShape,
        scalars: &wgpu::Buffer,
        g: &wgpu::Buffer,
        gprev: &wgpu::Buffer,
        dir: &wgpu::Buffer,
        y_slot: &wgpu::Buffer,
        s_slot: &wgpu::Buffer,
        partials: &wgpu::Buffer,
    ) -> Dispatch {
        self.pair.dispatch(
            ctx,
            &shape.params(0, 0, 0),
            &[(1, scalars), (2, g), (3, gprev), (4, dir), (7, partials), (11, y_slot), (12, s_slot)],
            shape.reduction_grid(),
        )
    }

    /// dir <- (dir + c vec_a) * scale with c, scale from `mode` and the coefficients of
    /// `slot`; partials of vec_b . dir.
    #[allow(clippy::too_many_arguments)]
    pub fn axpy_dot(
        &self,
        ctx: &GpuContext,
        shape: &LbfgsShape,
        mode: AxpyMode,
        slot: usize,
        scalars: &wgpu::Buffer,
        dir: &wgpu::Buffer,
        vec_a: &wgpu::Buffer,
        vec_b: &wgpu::Buffer,
        partials: &wgpu::Buffer,
    ) -> Dispatch {
        self.axpy_dot.dispatch(
            ctx,
            &shape.params(slot, 0, mode as u32),
            &[(1, scalars), (4, dir), (5, vec_a), (6, vec_b), (7, partials)],
            shape.reduction_grid(),
        )
    }

    /// Sums `partials` and writes coefficient `mode` of `slot` into `scalars` (one workgroup).
    pub fn finish(
        &self,
        ctx: &GpuContext,
        shape: &LbfgsShape,
        mode: FinishMode,
        slot: usize,
        scalars: &wgpu::Buffer,
        partials: &wgpu::Buffer,
    ) -> Dispatch {
        self.finish.dispatch(ctx, &shape.params(0, slot, mode as u32), &[(9, scalars), (10, partials)], [1, 1, 1])
    }

    /// x <- x + t dir, unless g.dir > -1e-9.
    pub fn update(
        &self,
        ctx: &GpuContext,
        shape: &LbfgsShape,
        scalars: &wgpu::Buffer,
        dir: &wgpu::Buffer,
        x: &wgpu::Buffer,
    ) -> Dispatch {
        self.update.dispatch(
            ctx,
            &shape.params(0, 0, 0),
            &[(1, scalars), (4, dir), (8, x)],
            groups_2d(groups(shape.n, WORKGROUP)),
        )
    }
}
