//! Keeps the last image whose objective was finite (`shaders/keep_finite.wgsl`), so that a
//! diverging run stops on a usable image. CPU twin: [`keep_finite_cpu`].

use crate::gpu::{self, Dispatch, GpuContext, Kernel};
use crate::kernels::reduce::{require_f32s, to_u32};

const SOURCE: &str = include_str!("../../shaders/keep_finite.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct KeepParams {
    len: u32,
    total_slot: u32,
    _pad: [u32; 2],
}

pub struct KeepFinite {
    kernel: Kernel,
}

impl KeepFinite {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("keep_finite", SOURCE);
        KeepFinite { kernel: ctx.kernel_from_module("keep_finite", &module, "keep_finite") }
    }

    /// `last_finite[..len] = x[..len]` when `scalars[total_slot]` is finite.
    pub fn keep(
        &self,
        ctx: &GpuContext,
        len: usize,
        scalars: &wgpu::Buffer,
        total_slot: usize,
        x: &wgpu::Buffer,
        last_finite: &wgpu::Buffer,
    ) -> Dispatch {
        require_f32s(scalars, total_slot + 1, "keep_finite: scalars");
        require_f32s(x, len, "keep_finite: x");
        require_f32s(last_finite, len, "keep_finite: last finite image");
        let params = KeepParams { len: to_u32(len, "keep_finite length"), total_slot: to_u32(total_slot, "slot"), _pad: [0; 2] };
        self.kernel.dispatch(
            ctx,
            bytemuck::bytes_of(&params),
            &[(1, scalars), (2, x), (3, last_finite)],
            gpu::groups_2d(gpu::groups(len, 64)),
        )
    }
}

/// The CPU twin: what [`KeepFinite::keep`] does to `last_finite`.
pub fn keep_finite_cpu(total: f32, x: &[f32], last_finite: &mut [f32]) {
    if total.is_finite() {
        last_finite.copy_from_slice(x);
    }
}
