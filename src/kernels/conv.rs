//! 3×3 convolution (stride 1, zero padding 1) + bias + ReLU, and its gradient with
//! respect to the input: `shaders/conv3x3.wgsl`.
//!
//! The convolution is a tiled implicit GEMM: no im2col buffer (at 512 px that alone
//! would need 600 MB). Each thread computes 4 pixels × 8 channels; the forward
//! pass also writes the ReLU mask (1 bit per output element, 4×4-block word layout,
//! see [`crate::kernels`]) that the backward pass reads instead of the activations.

use crate::gpu::{Dispatch, GpuContext, Kernel};
use crate::kernels::window::Rect;
use crate::kernels::{c4, mask_words};
use wgpu::Buffer;

const SHADER: &str = include_str!("../../shaders/conv3x3.wgsl");
/// Invocations per workgroup (the shader's `WG`); each handles 4 pixels.
const WORKGROUP: usize = 64;
const PIXELS_PER_THREAD: usize = 4;
const CHANNELS_PER_THREAD: usize = 8;

/// The size of one convolution: an `h`×`w` map with `cin` channels in, `cout` out
/// (real channel counts; buffers hold them padded to multiples of 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
}

impl ConvShape {
    /// Multiply-adds × 2 of one pass (forward or backward to the input).
    pub fn flops(&self) -> u64 {
        2 * (self.h * self.w * self.cin * self.cout * 9) as u64
    }

    /// f32 elements of the input map (HWC, cin padded to 4).
    pub fn input_len(&self) -> usize {
        self.h * self.w * c4(self.cin)
    }

    /// f32 elements of the output map (HWC, cout padded to 4).
    pub fn output_len(&self) -> usize {
        self.h * self.w * c4(self.cout)
    }

    /// f32 elements of the padded weight, `[cout4][3][3][cin4]` (see [`pad_weights`]).
    pub fn weight_len(&self) -> usize {
        c4(self.cout) * 9 * c4(self.cin)
    }

    /// u32 words of the ReLU mask.
    pub fn mask_words(&self) -> usize {
        mask_words(self.h, self.w, self.cout)
    }

    /// The whole map, as a rectangle.
    pub fn full(&self) -> Rect {
        Rect { y: 0, x: 0, h: self.h, w: self.w }
    }

    fn params(&self, rect: Rect) -> [u32; 8] {
        let [y, x, h, w] = [rect.y, rect.x, rect.h, rect.w].map(|v| v as u32);
        [self.h as u32, self.w as u32, c4(self.cin) as u32, c4(self.cout) as u32, y, x, h, w]
    }

    fn check(&self) {
        assert!(
            self.h > 0 && self.w > 0 && self.cin > 0 && self.cout > 0,
            "conv3x3: every dimension of {self:?} must be positive"
        );
    }

    /// Workgroups: x (and z past 65535) over groups of 64 four-pixel blocks of `pixels`, y over
    /// 8-channel blocks (of the output channels forward, the input channels backward).
    fn workgroups(pixels: usize, channels: usize) -> [u32; 3] {
        let pixel_groups = crate::gpu::groups(pixels, WORKGROUP * PIXELS_PER_THREAD);
        let [x, z, _] = crate::gpu::groups_2d(pixel_groups);
        [x, channels.div_ceil(CHANNELS_PER_THREAD) as u32, z]
    }
}

/// Panics with a message naming the buffer when it is too small for the shape
/// (a programming error: the engine sizes every buffer from the same shape).
fn check_len(what: &str, buffer: &Buffer, elements: usize, shape: &ConvShape) {
    let needed = (elements * 4) as u64;
    assert!(
        buffer.size() >= needed,
        "conv3x3: the {what} buffer holds {} bytes but {shape:?} needs {needed}",
        buffer.size()
    );
}

/// The compiled forward and backward-to-input kernels.
pub struct Conv3x3 {
    forward: Kernel,
    backward_input: Kernel,
}

impl Conv3x3 {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("conv3x3", SHADER);
        Conv3x3 {
            forward: ctx.kernel_from_module("conv3x3_forward", &module, "forward"),
            backward_input: ctx.kernel_from_module("conv3x3_backward_input", &module, "backward_input"),
        }
    }

    /// `output = relu(conv(input, weight) + bias)` and the ReLU mask (bit set where the
    /// pre-activation is > 0). `input` is HWC cin4, `weight` from [`pad_weights`], `bias`
    /// from [`pad_bias`], `output` HWC cout4 (padded channels come out 0),
    /// `relu_mask` [`ConvShape::mask_words`] words. Every output element and mask word is written.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        ctx: &GpuContext,
        shape: ConvShape,
        input: &Buffer,
        weight: &Buffer,
        bias: &Buffer,
        output: &Buffer,
        relu_mask: &Buffer,
    ) -> Dispatch {
        shape.check();
        check_len("input", input, shape.input_len(), &shape);
        check_len("weight", weight, shape.weight_len(), &shape);
        check_len("bias", bias, c4(shape.cout), &shape);
        check_len("output", output, shape.output_len(), &shape);
        check_len("relu mask", relu_mask, shape.mask_words(), &shape);
        self.forward
            .dispatch(
                ctx,
                bytemuck::bytes_of(&shape.params(shape.full())),
                &[(1, input), (2, weight), (3, bias), (4, output), (5, relu_mask)],
                ConvShape::workgroups(shape.h * shape.w, shape.cout),
            )
            .with_flops(shape.flops())
    }

    /// `grad_input` (HWC cin4) from `grad_output` = dL/d(post-ReLU output) (HWC cout4) and
    /// the forward pass's `relu_mask`, with the same `weight` buffer as the forward pass.
    /// Every element of `grad_input` is written (no clearing needed).
    pub fn backward_input(
        &self,
        ctx: &GpuContext,
        shape: ConvShape,
        grad_output: &Buffer,
        relu_mask: &Buffer,
        weight: &Buffer,
        grad_input: &Buffer,
    ) -> Dispatch {
        self.backward_input_within(ctx, shape, shape.full(), grad_output, relu_mask, weight, grad_input)
    }

    /// [`Conv3x3::backward_input`] for the pixels of `rect` only (non-empty, inside the map): the
    /// rest of `grad_input` keeps what it held. It reads `grad_output` in `rect` grown by one
    /// pixel. A tiled step needs the gradient only where it reaches the tile's interior.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_input_within(
        &self,
        ctx: &GpuContext,
        shape: ConvShape,
        rect: Rect,
        grad_output: &Buffer,
        relu_mask: &Buffer,
        weight: &Buffer,
        grad_input: &Buffer,
    ) -> Dispatch {
        shape.check();
        assert!(
            rect.h > 0 && rect.w > 0 && rect.y + rect.h <= shape.h && rect.x + rect.w <= shape.w,
            "conv3x3: {rect:?} is empty or not inside {shape:?}"
        );
        check_len("grad_output", grad_output, shape.output_len(), &shape);
        check_len("relu mask", relu_mask, shape.mask_words(), &shape);
        check_len("weight", weight, shape.weight_len(), &shape);
        check_len("grad_input", grad_input, shape.input_len(), &shape);
        let flops = shape.flops() / shape.full().pixels() as u64 * rect.pixels() as u64;
        self.backward_input
            .dispatch(
                ctx,
                bytemuck::bytes_of(&shape.params(rect)),
                &[(1, grad_output), (2, relu_mask), (3, weight), (4, grad_input)],
                ConvShape::workgroups(rect.pixels(), shape.cin),
            )
            .with_flops(flops)
    }
}

/// Converts an unpadded `[cout][3][3][cin]` kernel (as in `weights::ConvWeights`) to the
/// shader layout `[cout4][3][3][cin4]`: zeros in the padded input columns and in the
/// padded output rows, so that padded output channels stay exactly 0.
pub fn pad_weights(cin: usize, cout: usize, kernel_ohwi: &[f32]) -> Vec<f32> {
    assert_eq!(
        kernel_ohwi.len(),
        cout * 9 * cin,
        "pad_weights: a {cout}x3x3x{cin} kernel needs {} values, got {}",
        cout * 9 * cin,
        kernel_ohwi.len()
    );
    let cin4 = c4(cin);
    let mut out = vec![0.0f32; c4(cout) * 9 * cin4];
    for (tap, src) in kernel_ohwi.chunks_exact(cin).enumerate() {
        out[tap * cin4..tap * cin4 + cin].copy_from_slice(src);
    }
    out
}

/// Pads a bias of `cout` values with zeros to `cout4`.
pub fn pad_bias(cout: usize, bias: &[f32]) -> Vec<f32> {
    assert_eq!(bias.len(), cout, "pad_bias: expected {cout} values, got {}", bias.len());
    let mut out = bias.to_vec();
    out.resize(c4(cout), 0.0);
    out
}
