//! Content and style loss terms and their gradients (`shaders/content_loss.wgsl`,
//! `shaders/style_loss.wgsl`).
//!
//! Each `partial` dispatch writes one sum per workgroup into the shared partials
//! buffer at `offset`; [`Reduce::finish`](crate::kernels::reduce::Reduce::finish)
//! then adds `partials_len` of them into a scalar slot with the layer's scale.
//! Each `grad` dispatch writes (or adds) the term's gradient to the layer's
//! feature-gradient buffer.
//!
//! ## Coefficients (F is the P×C feature map, P = H·W pixels, D = G − T)
//! - **Content**: `L = w·Σ(F − Fc)²/(C·H·W)`, so `dL/dF = 2w/(C·H·W)·(F − Fc)`.
//! - **Style, canonical**: `G = FᵀF/(C·H·W)`, `L = w·Σ_{ab} D_ab²/C²`. With
//!   `dG_ab/dF_pc = (δ_ac F_pb + F_pa δ_bc)/(C·H·W)` and D symmetric (G and every
//!   blended target are), `dL/dF = 2w/C²·2·F·D/(C·H·W) = 4w/(C²·C·H·W)·F·D`.
//! - **Style, seed form**: `G = FᵀF` (no 1/(C·H·W)) but `L = w·Σ D²/(C²·C·H·W)`;
//!   `dG/dF` loses the 1/(C·H·W) that `L` gains, so `dL/dF = 4w/(C²·C·H·W)·F·D` again
//!   (with the other G and T).
//!
//! [`content_scales`] and [`style_scales`] return these numbers (computed in f64);
//! the engine multiplies the gradient coefficients by α or β, and applies α, β, γ
//! to the loss slots with `Reduce::combine`. C is the real channel count, not c4:
//! padded channels are zero in F, Fc, G and T and add nothing.

use crate::gpu::{self, Dispatch, GpuContext, Kernel};
use crate::kernels::c4;
use crate::kernels::reduce::{require_f32s, to_u32, LaneSum};

const CONTENT_SOURCE: &str = include_str!("../../shaders/content_loss.wgsl");
const STYLE_SOURCE: &str = include_str!("../../shaders/style_loss.wgsl");

/// vec4s one `partial` workgroup sums (64 threads × 8): one partial per block.
const VEC4_PER_BLOCK: usize = 64 * 8;

/// Scale for `Reduce::finish` and the gradient coefficient (before α or β) of one layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScales {
    /// Multiplies the sum of partials: the layer's loss.
    pub loss: f32,
    /// Multiplies (F − Fc) or F·(G − T) in the gradient.
    pub grad: f32,
}

/// Content layer with weight `layer_weight` on a `c`×`h`×`w` map: loss w/(C·H·W), grad 2w/(C·H·W).
pub fn content_scales(layer_weight: f64, c: usize, h: usize, w: usize) -> LossScales {
    let n = c as f64 * h as f64 * w as f64;
    LossScales { loss: (layer_weight / n) as f32, grad: (2.0 * layer_weight / n) as f32 }
}

/// Style layer with weight `layer_weight` on a `c`×`h`×`w` map. Canonical: loss w/C²,
/// seed form: w/(C²·C·H·W); the gradient coefficient is 4w/(C²·C·H·W) in both (see the
/// module docs). The matching Gram scale is [`gram_scale`].
pub fn style_scales(layer_weight: f64, c: usize, h: usize, w: usize, seed_form: bool) -> LossScales {
    // in f64: at 8192 px a relu1 map has 2^32 elements (usize is 32 bits in wasm)
    let c2 = c as f64 * c as f64;
    let n = c as f64 * h as f64 * w as f64;
    let loss = if seed_form { layer_weight / (c2 * n) } else { layer_weight / c2 };
    LossScales { loss: loss as f32, grad: (4.0 * layer_weight / (c2 * n)) as f32 }
}

/// Gram scale: 1/(C·H·W) canonically, 1 in the seed form.
pub fn gram_scale(c: usize, h: usize, w: usize, seed_form: bool) -> f32 {
    if seed_form {
        1.0
    } else {
        (1.0 / (c as f64 * h as f64 * w as f64)) as f32
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PartialParams {
    count4: u32,
    offset: u32,
    blocks: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ContentGradParams {
    count4: u32,
    accumulate: u32,
    coef: f32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StyleGradParams {
    pixels: u32,
    nb: u32,
    accumulate: u32,
    coef: f32,
}

fn block_sum_dispatch(
    kernel: &Kernel,
    ctx: &GpuContext,
    count4: usize,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    partials: &wgpu::Buffer,
    offset: usize,
) -> Dispatch {
    let blocks = count4.div_ceil(VEC4_PER_BLOCK).max(1);
    require_f32s(a, count4 * 4, &format!("{}: input", kernel.label));
    require_f32s(b, count4 * 4, &format!("{}: target", kernel.label));
    require_f32s(partials, offset + blocks, &format!("{}: partials", kernel.label));
    let params = PartialParams {
        count4: to_u32(count4, "loss size"),
        offset: to_u32(offset, "partials offset"),
        blocks: to_u32(blocks, "loss blocks"),
        _pad: 0,
    };
    kernel
        .dispatch(ctx, bytemuck::bytes_of(&params), &[(1, a), (2, b), (3, partials)], gpu::groups_2d(blocks as u32))
        .with_flops(3 * 4 * count4 as u64)
}

/// Content loss `Σ(F − Fc)²` and its gradient.
pub struct ContentLoss {
    partial: Kernel,
    grad: Kernel,
}

impl ContentLoss {
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_lane_sum(ctx, LaneSum::for_device(ctx))
    }

    pub fn with_lane_sum(ctx: &GpuContext, sum: LaneSum) -> Self {
        let module = ctx.shader_module("content_loss", &sum.source(CONTENT_SOURCE));
        ContentLoss {
            partial: ctx.kernel_from_module(&sum.label("content_loss.partial"), &module, "partial"),
            grad: ctx.kernel_from_module("content_loss.grad", &module, "grad"),
        }
    }

    /// Partials written by [`ContentLoss::partial`] for an `h`×`w`×`c` map.
    pub fn partials_len(h: usize, w: usize, c: usize) -> usize {
        (h * w * c4(c) / 4).div_ceil(VEC4_PER_BLOCK).max(1)
    }

    /// Writes partial sums of `(features − content)²` to `partials[offset ..
    /// offset + partials_len(h, w, c)]`. Both maps are h×w×c4 HWC.
    #[allow(clippy::too_many_arguments)]
    pub fn partial(
        &self,
        ctx: &GpuContext,
        h: usize,
        w: usize,
        c: usize,
        features: &wgpu::Buffer,
        content: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        offset: usize,
    ) -> Dispatch {
        let count4 = h * w * c4(c) / 4;
        block_sum_dispatch(&self.partial, ctx, count4, features, content, partials, offset)
    }

    /// `grad = (accumulate ? grad : 0) + coef * (features − content)` over h×w×c4.
    #[allow(clippy::too_many_arguments)]
    pub fn grad(
        &self,
        ctx: &GpuContext,
        h: usize,
        w: usize,
        c: usize,
        features: &wgpu::Buffer,
        content: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        coef: f32,
        accumulate: bool,
    ) -> Dispatch {
        let count4 = h * w * c4(c) / 4;
        require_f32s(features, count4 * 4, "content_loss.grad: features");
        require_f32s(content, count4 * 4, "content_loss.grad: content features");
        require_f32s(grad, count4 * 4, "content_loss.grad: gradient");
        let params =
            ContentGradParams { count4: to_u32(count4, "content size"), accumulate: accumulate as u32, coef, _pad: 0 };
        self.grad
            .dispatch(
                ctx,
                bytemuck::bytes_of(&params),
                &[(1, features), (2, content), (3, grad)],
                gpu::groups_2d(gpu::groups(count4, 64)),
            )
            .with_flops(3 * 4 * count4 as u64)
    }
}

/// Style loss `Σ(G − T)²` and its gradient `F·(G − T)`.
pub struct StyleLoss {
    partial: Kernel,
    grad: Kernel,
}

impl StyleLoss {
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_lane_sum(ctx, LaneSum::for_device(ctx))
    }

    pub fn with_lane_sum(ctx: &GpuContext, sum: LaneSum) -> Self {
        let module = ctx.shader_module("style_loss", &sum.source(STYLE_SOURCE));
        StyleLoss {
            partial: ctx.kernel_from_module(&sum.label("style_loss.partial"), &module, "partial"),
            grad: ctx.kernel_from_module("style_loss.grad", &module, "grad"),
        }
    }

    /// Partials written by [`StyleLoss::partial`] for `c` channels.
    pub fn partials_len(c: usize) -> usize {
        (c4(c) * c4(c) / 4).div_ceil(VEC4_PER_BLOCK).max(1)
    }

    /// Writes partial sums of `(gram − target)²` (both c4×c4) to
    /// `partials[offset .. offset + partials_len(c)]`.
    pub fn partial(
        &self,
        ctx: &GpuContext,
        c: usize,
        gram: &wgpu::Buffer,
        target: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        offset: usize,
    ) -> Dispatch {
        let count4 = c4(c) * c4(c) / 4;
        block_sum_dispatch(&self.partial, ctx, count4, gram, target, partials, offset)
    }

    /// `grad = (accumulate ? grad : 0) + coef * features · (gram − target)` with features
    /// and grad h×w×c4 HWC and gram, target c4×c4.
    #[allow(clippy::too_many_arguments)]
    pub fn grad(
        &self,
        ctx: &GpuContext,
        h: usize,
        w: usize,
        c: usize,
        features: &wgpu::Buffer,
        gram: &wgpu::Buffer,
        target: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        coef: f32,
        accumulate: bool,
    ) -> Dispatch {
        assert!(h > 0 && w > 0 && c > 0, "style_loss.grad: empty feature map {h}x{w}x{c}");
        let pixels = h * w;
        let c4 = c4(c);
        require_f32s(features, pixels * c4, "style_loss.grad: features");
        require_f32s(gram, c4 * c4, "style_loss.grad: gram");
        require_f32s(target, c4 * c4, "style_loss.grad: target gram");
        require_f32s(grad, pixels * c4, "style_loss.grad: gradient");
        let params = StyleGradParams {
            pixels: to_u32(pixels, "style pixels"),
            nb: to_u32(c4 / 4, "style channel blocks"),
            accumulate: accumulate as u32,
            coef,
        };
        // One thread per 4 pixels × 4 channels.
        let threads = pixels.div_ceil(4) * (c4 / 4);
        self.grad
            .dispatch(
                ctx,
                bytemuck::bytes_of(&params),
                &[(1, features), (2, gram), (3, target), (4, grad)],
                gpu::groups_2d(gpu::groups(threads, 64)),
            )
            .with_flops((2 * pixels * c4 * c4) as u64)
    }
}
