//! 3×3 convolution (stride 1, zero padding 1) + bias + ReLU, and its gradient with
//! respect to the input, in several kernel variants ([`ConvVariant`]) that compute the same
//! thing: `shaders/conv3x3_shared.wgsl` followed by each variant's file.
//!
//! Every variant is an implicit GEMM: no im2col buffer (at 512 px that alone would need
//! 600 MB). The forward pass also writes the ReLU mask (1 bit per output element, 4×4-block
//! word layout, see [`crate::kernels`]) that the backward pass reads instead of the activations.
//! Which variant is fastest depends on the GPU: [`crate::autotune`] times them.

use crate::gpu::{Dispatch, GpuContext, Kernel};
use crate::kernels::window::Rect;
use crate::kernels::{c4, mask_words};
use wgpu::Buffer;

const SHARED: &str = include_str!("../../shaders/conv3x3_shared.wgsl");

/// How the conv kernels store their weights (and what the workgroup variant's forward pass stages in
/// workgroup memory); products are accumulated in f32 either way, and feature maps stay f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Precision {
    #[default]
    F32,
    /// Needs the GPU's shader-f16 feature; its cost on the objective is tested in
    /// `tests/objective.rs` (under 1%; measured about 0.02%, `stylize bench --precision f16`).
    F16,
}

impl Precision {
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::F16];

    /// The name `--precision` and `configure({precision})` take.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| format!("unknown precision {}; valid: f32, f16", crate::settings::show(text)))
    }

    /// Bytes of one stored weight.
    pub fn weight_bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }

    /// The WGSL that defines the storage types (`weight4`, `staged4`), put before everything else.
    fn prelude(self) -> &'static str {
        match self {
            Precision::F32 => include_str!("../../shaders/conv3x3_f32.wgsl"),
            Precision::F16 => include_str!("../../shaders/conv3x3_f16.wgsl"),
        }
    }

    /// Whether the kernels of this precision can run on `ctx`'s device; the error says why not.
    pub fn check(self, ctx: &GpuContext) -> Result<(), String> {
        match self {
            Precision::F16 if !ctx.device.features().contains(wgpu::Features::SHADER_F16) => Err(format!(
                "precision f16 needs the GPU feature shader-f16, which {} does not offer; use precision f32",
                ctx.describe()
            )),
            _ => Ok(()),
        }
    }

    /// `padded` weights (from [`pad_weights`]) as the bytes of a weight buffer of this precision (f16:
    /// rounded to nearest).
    pub fn weight_buffer_bytes(self, padded: &[f32]) -> Vec<u8> {
        match self {
            Precision::F32 => bytemuck::cast_slice(padded).to_vec(),
            Precision::F16 => padded.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        }
    }

    /// What storing `v` in this precision keeps of it (the CPU twin of a stored weight).
    pub fn round(self, v: f32) -> f32 {
        match self {
            Precision::F32 => v,
            Precision::F16 => half::f16::from_f32(v).to_f32(),
        }
    }
}

/// The kernel variants of the convolution. Each is exact (the kernel tests run every one);
/// they differ in speed, by GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConvVariant {
    /// `shaders/conv3x3.wgsl`: 4 pixels × 8 channels in registers per thread, no workgroup
    /// memory; the fastest on CPU-backed WebGPU (lavapipe, SwiftShader).
    Register4x8,
    /// `shaders/conv3x3_workgroup.wgsl`: 64 pixels × 64 channels per workgroup of 256 threads,
    /// staged through workgroup memory; meant for real GPUs.
    Workgroup64x64,
}

impl ConvVariant {
    pub const ALL: [ConvVariant; 2] = [ConvVariant::Register4x8, ConvVariant::Workgroup64x64];

    /// The name `--conv-kernel` and the tuning cache use.
    pub fn name(self) -> &'static str {
        match self {
            ConvVariant::Register4x8 => "register-4x8",
            ConvVariant::Workgroup64x64 => "workgroup-64x64",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The variant's own WGSL (after the shared part).
    fn source(self) -> &'static str {
        match self {
            ConvVariant::Register4x8 => include_str!("../../shaders/conv3x3.wgsl"),
            ConvVariant::Workgroup64x64 => include_str!("../../shaders/conv3x3_workgroup.wgsl"),
        }
    }

    /// Workgroups for `pixels` pixels (of the map forward, of the rectangle backward) and
    /// `channels` channels (output forward, input backward): x (and z past 65535) over pixel
    /// groups, y over channel groups.
    pub fn workgroups(self, pixels: usize, channels: usize) -> [u32; 3] {
        let (per_x, per_y) = self.per_workgroup();
        let [x, z, _] = crate::gpu::groups_2d(crate::gpu::groups(pixels, per_x));
        [x, channels.div_ceil(per_y) as u32, z]
    }

    /// (pixels, channels) one workgroup computes: 64 threads × 4 pixels × 8 channels, or a 64 × 64 tile.
    pub fn per_workgroup(self) -> (usize, usize) {
        match self {
            ConvVariant::Register4x8 => (64 * 4, 8),
            ConvVariant::Workgroup64x64 => (64, 64),
        }
    }

    /// A fingerprint of every variant's source: a tuning cache made with other kernels is stale.
    pub fn sources_hash() -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for p in Precision::ALL {
            hash.update(p.prelude());
        }
        hash.update(SHARED);
        for v in Self::ALL {
            hash.update(v.name());
            hash.update(v.source());
        }
        hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

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

    /// Elements of the padded weight, `[cout4][3][3][cin4]` (see [`pad_weights`]).
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
}

/// Panics with a message naming the buffer when it is too small for the shape
/// (a programming error: the engine sizes every buffer from the same shape).
fn check_len(what: &str, buffer: &Buffer, elements: usize, element_bytes: usize, shape: &ConvShape) {
    let needed = (elements * element_bytes) as u64;
    assert!(
        buffer.size() >= needed,
        "conv3x3: the {what} buffer holds {} bytes but {shape:?} needs {needed}",
        buffer.size()
    );
}

/// [`check_len`] for a buffer of 4-byte elements (f32 maps, mask words).
fn check_len_f32(what: &str, buffer: &Buffer, elements: usize, shape: &ConvShape) {
    check_len(what, buffer, elements, 4, shape)
}

/// The compiled forward and backward-to-input kernels of every variant, for one [`Precision`].
pub struct Conv3x3 {
    precision: Precision,
    /// (forward, backward_input), in the order of [`ConvVariant::ALL`].
    kernels: Vec<(Kernel, Kernel)>,
}

impl Conv3x3 {
    /// Every variant in f32.
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_precision(ctx, Precision::F32).expect("f32 needs no GPU feature")
    }

    /// Every variant in `precision`; an error when the GPU cannot run it ([`Precision::check`]).
    pub fn with_precision(ctx: &GpuContext, precision: Precision) -> Result<Self, String> {
        precision.check(ctx)?;
        let kernels = ConvVariant::ALL
            .iter()
            .map(|v| {
                let source = format!("{}\n{SHARED}\n{}", precision.prelude(), v.source());
                let module = ctx.shader_module(&format!("{}/{}", v.name(), precision.name()), &source);
                // The register variant keeps the labels the benchmark's tables have always shown.
                let suffix = if *v == ConvVariant::Register4x8 { String::new() } else { format!("[{}]", v.name()) };
                (
                    ctx.kernel_from_module(&format!("conv3x3_forward{suffix}"), &module, "forward"),
                    ctx.kernel_from_module(&format!("conv3x3_backward_input{suffix}"), &module, "backward_input"),
                )
            })
            .collect();
        Ok(Conv3x3 { precision, kernels })
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    fn kernels(&self, variant: ConvVariant) -> &(Kernel, Kernel) {
        &self.kernels[ConvVariant::ALL.iter().position(|v| *v == variant).expect("every variant is compiled")]
    }

    /// `output = relu(conv(input, weight) + bias)` and the ReLU mask (bit set where the
    /// pre-activation is > 0). `input` is HWC cin4, `weight` from [`pad_weights`] (stored by
    /// [`Precision::weight_buffer_bytes`] in this kernel's precision), `bias`
    /// from [`pad_bias`], `output` HWC cout4 (padded channels come out 0),
    /// `relu_mask` [`ConvShape::mask_words`] words. Every output element and mask word is written.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        ctx: &GpuContext,
        variant: ConvVariant,
        shape: ConvShape,
        input: &Buffer,
        weight: &Buffer,
        bias: &Buffer,
        output: &Buffer,
        relu_mask: &Buffer,
    ) -> Dispatch {
        shape.check();
        check_len_f32("input", input, shape.input_len(), &shape);
        check_len("weight", weight, shape.weight_len(), self.precision.weight_bytes(), &shape);
        check_len_f32("bias", bias, c4(shape.cout), &shape);
        check_len_f32("output", output, shape.output_len(), &shape);
        check_len_f32("relu mask", relu_mask, shape.mask_words(), &shape);
        self.kernels(variant)
            .0
            .dispatch(
                ctx,
                bytemuck::bytes_of(&shape.params(shape.full())),
                &[(1, input), (2, weight), (3, bias), (4, output), (5, relu_mask)],
                variant.workgroups(shape.h * shape.w, c4(shape.cout)),
            )
            .with_flops(shape.flops())
    }

    /// `grad_input` (HWC cin4) from `grad_output` = dL/d(post-ReLU output) (HWC cout4) and
    /// the forward pass's `relu_mask`, with the same `weight` buffer as the forward pass.
    /// Every element of `grad_input` is written (no clearing needed).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_input(
        &self,
        ctx: &GpuContext,
        variant: ConvVariant,
        shape: ConvShape,
        grad_output: &Buffer,
        relu_mask: &Buffer,
        weight: &Buffer,
        grad_input: &Buffer,
    ) -> Dispatch {
        self.backward_input_within(ctx, variant, shape, shape.full(), grad_output, relu_mask, weight, grad_input)
    }

    /// [`Conv3x3::backward_input`] for the pixels of `rect` only (non-empty, inside the map): the
    /// rest of `grad_input` keeps what it held. It reads `grad_output` in `rect` grown by one
    /// pixel. A tiled step needs the gradient only where it reaches the tile's interior.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_input_within(
        &self,
        ctx: &GpuContext,
        variant: ConvVariant,
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
        check_len_f32("grad_output", grad_output, shape.output_len(), &shape);
        check_len_f32("relu mask", relu_mask, shape.mask_words(), &shape);
        check_len("weight", weight, shape.weight_len(), self.precision.weight_bytes(), &shape);
        check_len_f32("grad_input", grad_input, shape.input_len(), &shape);
        let flops = shape.flops() / shape.full().pixels() as u64 * rect.pixels() as u64;
        self.kernels(variant)
            .1
            .dispatch(
                ctx,
                bytemuck::bytes_of(&shape.params(rect)),
                &[(1, grad_output), (2, relu_mask), (3, weight), (4, grad_input)],
                variant.workgroups(rect.pixels(), c4(shape.cin)),
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
