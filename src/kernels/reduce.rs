//! Second stage of the loss reductions (`shaders/reduce.wgsl`).
//!
//! Every op that produces a loss writes one partial sum per workgroup into a
//! shared f32 "partials" buffer, at an offset the engine chooses (each op has a
//! `partials_len` to size it). [`Reduce::finish`] then adds a range of partials
//! into one slot of a small f32 `scalars` buffer:
//! `scalars[slot] = (accumulate ? scalars[slot] : 0) + scale * sum(partials[offset..offset+count])`,
//! and [`Reduce::combine`] forms the weighted total `scalars[out] = a*s[i] + b*s[j] + c*s[k]`.
//! Nothing is read back inside a step.

use crate::gpu::{Dispatch, GpuContext, Kernel};

const SOURCE: &str = include_str!("../../shaders/reduce.wgsl");

/// How a workgroup adds up its lanes (`workgroup_sum`, in the loss kernels and [`Reduce::finish`]):
/// a tree through workgroup memory, or subgroup operations where the GPU has them. Both give the
/// same sums (the kernel tests run both); the subgroup one needs one barrier instead of log2(lanes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneSum {
    Tree,
    Subgroups,
}

impl LaneSum {
    pub const ALL: [LaneSum; 2] = [LaneSum::Tree, LaneSum::Subgroups];

    pub fn name(self) -> &'static str {
        match self {
            LaneSum::Tree => "tree",
            LaneSum::Subgroups => "subgroups",
        }
    }

    /// Subgroups where the device has them (natively: Vulkan, Metal, DX12; wgpu 30 does not pass
    /// WebGPU's "subgroups" feature through, so the page uses the tree).
    pub fn for_device(ctx: &GpuContext) -> LaneSum {
        if Self::Subgroups.available(ctx) {
            LaneSum::Subgroups
        } else {
            LaneSum::Tree
        }
    }

    pub fn available(self, ctx: &GpuContext) -> bool {
        self == LaneSum::Tree || ctx.device.features().contains(wgpu::Features::SUBGROUP)
    }

    /// `shader` (which defines `const THREADS`) with this `workgroup_sum` appended (WGSL has no
    /// #include). Naga takes the subgroup functions without `enable subgroups;` (and refuses that
    /// directive), given the device feature.
    pub fn source(self, shader: &str) -> String {
        let sum = match self {
            LaneSum::Tree => include_str!("../../shaders/workgroup_sum.wgsl"),
            LaneSum::Subgroups => include_str!("../../shaders/workgroup_sum_subgroups.wgsl"),
        };
        format!("{shader}\n{sum}")
    }

    /// A kernel label with this lane sum (the subgroup kernels are told apart in the benchmark).
    pub fn label(self, label: &str) -> String {
        match self {
            LaneSum::Tree => label.to_string(),
            LaneSum::Subgroups => format!("{label}[subgroups]"),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FinishParams {
    offset: u32,
    count: u32,
    slot: u32,
    accumulate: u32,
    scale: f32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CombineParams {
    slots: [u32; 4],
    coefs: [f32; 4],
}

/// The compiled `finish` and `combine` kernels.
pub struct Reduce {
    lane_sum: LaneSum,
    finish: Kernel,
    combine: Kernel,
}

impl Reduce {
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_lane_sum(ctx, LaneSum::for_device(ctx))
    }

    pub fn with_lane_sum(ctx: &GpuContext, sum: LaneSum) -> Self {
        let module = ctx.shader_module("reduce", &sum.source(SOURCE));
        Reduce {
            lane_sum: sum,
            finish: ctx.kernel_from_module(&sum.label("reduce.finish"), &module, "finish"),
            combine: ctx.kernel_from_module("reduce.combine", &module, "combine"),
        }
    }

    pub fn lane_sum(&self) -> LaneSum {
        self.lane_sum
    }

    /// `scalars[slot] = (accumulate ? scalars[slot] : 0) + scale * sum(partials[offset .. offset+count])`.
    ///
    /// # Panics
    /// If the range lies outside `partials` or the slot outside `scalars` (a planning bug).
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &self,
        ctx: &GpuContext,
        partials: &wgpu::Buffer,
        offset: usize,
        count: usize,
        scalars: &wgpu::Buffer,
        slot: usize,
        scale: f32,
        accumulate: bool,
    ) -> Dispatch {
        require_f32s(partials, offset + count, "reduce.finish: partials");
        require_f32s(scalars, slot + 1, "reduce.finish: scalars");
        let params = FinishParams {
            offset: to_u32(offset, "partials offset"),
            count: to_u32(count, "partials count"),
            slot: to_u32(slot, "scalar slot"),
            accumulate: accumulate as u32,
            scale,
            _pad: [0; 3],
        };
        self.finish
            .dispatch(ctx, bytemuck::bytes_of(&params), &[(1, partials), (2, scalars)], [1, 1, 1])
            .with_flops(2 * count as u64)
    }

    /// `scalars[out] = a*scalars[i] + b*scalars[j] + c*scalars[k]` for `inputs = [i, j, k]`,
    /// `coefs = [a, b, c]` (the total `alpha*Lc + beta*Ls + gamma*Ltv`).
    ///
    /// # Panics
    /// If a slot lies outside `scalars`.
    pub fn combine(
        &self,
        ctx: &GpuContext,
        scalars: &wgpu::Buffer,
        inputs: [usize; 3],
        coefs: [f32; 3],
        out: usize,
    ) -> Dispatch {
        let highest = inputs.iter().copied().max().unwrap_or(0).max(out);
        require_f32s(scalars, highest + 1, "reduce.combine: scalars");
        let params = CombineParams {
            slots: [
                to_u32(inputs[0], "scalar slot"),
                to_u32(inputs[1], "scalar slot"),
                to_u32(inputs[2], "scalar slot"),
                to_u32(out, "scalar slot"),
            ],
            coefs: [coefs[0], coefs[1], coefs[2], 0.0],
        };
        self.combine.dispatch(ctx, bytemuck::bytes_of(&params), &[(1, scalars)], [1, 1, 1]).with_flops(5)
    }
}

/// Panics with a message naming the buffer when it holds fewer than `count` f32s.
pub(crate) fn require_f32s(buffer: &wgpu::Buffer, count: usize, what: &str) {
    let needed = count as u64 * 4;
    assert!(
        buffer.size() >= needed,
        "{what}: buffer of {} bytes is too small, {needed} bytes needed ({count} f32 values)",
        buffer.size()
    );
}

/// Shader indices are u32; sizes beyond that are a planning bug.
pub(crate) fn to_u32(value: usize, what: &str) -> u32 {
    u32::try_from(value).unwrap_or_else(|_| panic!("{what} {value} does not fit the shader's 32-bit indices"))
}
