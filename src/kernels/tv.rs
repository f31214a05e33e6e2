//! Total-variation loss on the image x and its gradient (`shaders/tv_loss.wgsl`).
//!
//! `TV = Σ(x[i+1,j] − x[i,j])² + Σ(x[i,j+1] − x[i,j])²` over all three channels of the
//! HWC RGB image. The engine's `L_tv = TV/(3·H·W)` (see [`tv_scale`]): pass that scale to
//! `Reduce::finish`, and `γ/(3·H·W)` as the gradient coefficient.

use crate::gpu::{self, Dispatch, GpuContext, Kernel};
use crate::kernels::reduce::{require_f32s, to_u32, LaneSum};
use crate::kernels::window::Rect;

const SOURCE: &str = include_str!("../../shaders/tv_loss.wgsl");

/// Pixels one `partial` workgroup covers (64 threads × 4): one partial per block.
const PIXELS_PER_BLOCK: usize = 64 * 4;

/// `1/(3·H·W)`, the normalisation of `L_tv`.
pub fn tv_scale(h: usize, w: usize) -> f32 {
    (1.0 / (3 * h * w) as f64) as f32
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PartialParams {
    h: u32,
    w: u32,
    offset: u32,
    blocks: u32,
    owners: [u32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GradParams {
    h: u32,
    w: u32,
    coef: f32,
    _pad: u32,
}

/// The compiled `partial` and `grad` kernels.
pub struct TvLoss {
    partial: Kernel,
    grad: Kernel,
}

impl TvLoss {
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_lane_sum(ctx, LaneSum::for_device(ctx))
    }

    pub fn with_lane_sum(ctx: &GpuContext, sum: LaneSum) -> Self {
        let module = ctx.shader_module("tv_loss", &sum.source(SOURCE));
        TvLoss {
            partial: ctx.kernel_from_module(&sum.label("tv_loss.partial"), &module, "partial"),
            grad: ctx.kernel_from_module("tv_loss.grad", &module, "grad"),
        }
    }

    /// Partials written by [`TvLoss::partial`] for an `h`×`w` image.
    pub fn partials_len(h: usize, w: usize) -> usize {
        (h * w).div_ceil(PIXELS_PER_BLOCK).max(1)
    }

    /// Writes partial sums of TV(image) to `partials[offset .. offset + partials_len(h, w)]`.
    pub fn partial(&self, ctx: &GpuContext, h: usize, w: usize, image: &wgpu::Buffer, partials: &wgpu::Buffer, offset: usize) -> Dispatch {
        self.partial_within(ctx, (h, w), Rect { y: 0, x: 0, h, w }, image, partials, offset)
    }

    /// The terms of TV(image) whose top/left pixel lies in `owners` (a tile's interior; the pixels
    /// below and right of it are read from the image), in `partials_len(owners.h, owners.w)`
    /// partial sums at `offset`.
    pub fn partial_within(
        &self,
        ctx: &GpuContext,
        (h, w): (usize, usize),
        owners: Rect,
        image: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        offset: usize,
    ) -> Dispatch {
        assert!(h > 0 && w > 0, "tv_loss: empty image {h}x{w}");
        assert!(
            owners.h > 0 && owners.w > 0 && owners.y + owners.h <= h && owners.x + owners.w <= w,
            "tv_loss: {owners:?} is empty or outside {h}x{w}"
        );
        let blocks = Self::partials_len(owners.h, owners.w);
        require_f32s(image, h * w * 3, "tv_loss.partial: image");
        require_f32s(partials, offset + blocks, "tv_loss.partial: partials");
        let params = PartialParams {
            h: to_u32(h, "image height"),
            w: to_u32(w, "image width"),
            offset: to_u32(offset, "partials offset"),
            blocks: to_u32(blocks, "tv blocks"),
            owners: [owners.y, owners.x, owners.h, owners.w].map(|v| to_u32(v, "tv window")),
        };
        self.partial
            .dispatch(ctx, bytemuck::bytes_of(&params), &[(1, image), (2, partials)], gpu::groups_2d(blocks as u32))
            .with_flops((owners.pixels() * 3 * 6) as u64)
    }

    /// `grad += coef * dTV/dx` (always adds: it follows the network's gradient into dx).
    pub fn grad(
        &self,
        ctx: &GpuContext,
        h: usize,
        w: usize,
        image: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        coef: f32,
    ) -> Dispatch {
        assert!(h > 0 && w > 0, "tv_loss: empty image {h}x{w}");
        require_f32s(image, h * w * 3, "tv_loss.grad: image");
        require_f32s(grad, h * w * 3, "tv_loss.grad: gradient");
        let params = GradParams { h: to_u32(h, "image height"), w: to_u32(w, "image width"), coef, _pad: 0 };
        self.grad
            .dispatch(
                ctx,
                bytemuck::bytes_of(&params),
                &[(1, image), (2, grad)],
                gpu::groups_2d(gpu::groups(h * w, 64)),
            )
            .with_flops((h * w * 3 * 14) as u64)
    }
}
