//! The image in and out of the network (`shaders/image.wgsl`).
//!
//! The optimised image x is HWC RGB f32 in [0,1]. VGG wants `v = scale·x[perm] − mean`
//! (Caffe convention: BGR order, ×255, minus the BGR means), as HWC with 4 channels
//! (the 4th is padding, 0). [`InputTransform`] holds that map, read from the weights
//! file's input convention.

use std::fmt;

use crate::gpu::{self, Dispatch, GpuContext, Kernel};
use crate::kernels::reduce::{require_f32s, to_u32};

const SOURCE: &str = include_str!("../../shaders/image.wgsl");

/// The affine map from x (RGB) to the network input: `v[k] = scale·x[perm[k]] − mean[k]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputTransform {
    /// For each network channel k, the RGB channel it reads (a permutation of 0, 1, 2).
    pub perm: [u32; 3],
    pub scale: f32,
    /// Subtracted per network channel, in network channel order.
    pub mean: [f32; 3],
}

/// A channel order that is not a permutation of R, G and B.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelOrderError(pub String);

impl fmt::Display for ChannelOrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown input channel order \"{}\": expected three distinct letters R, G and B, e.g. \"BGR\" or \"RGB\"",
            self.0
        )
    }
}

impl std::error::Error for ChannelOrderError {}

impl InputTransform {
    /// From a weights file's convention: `channel_order` like "BGR", `mean` in that order.
    pub fn new(channel_order: &str, scale: f32, mean: [f32; 3]) -> Result<Self, ChannelOrderError> {
        let letters: Vec<char> = channel_order.trim().to_ascii_uppercase().chars().collect();
        let mut perm = [0u32; 3];
        let mut seen = [false; 3];
        if letters.len() != 3 {
            return Err(ChannelOrderError(channel_order.to_string()));
        }
        for (k, letter) in letters.iter().enumerate() {
            let source = match letter {
                'R' => 0,
                'G' => 1,
                'B' => 2,
                _ => return Err(ChannelOrderError(channel_order.to_string())),
            };
            if seen[source] {
                return Err(ChannelOrderError(channel_order.to_string()));
            }
            seen[source] = true;
            perm[k] = source as u32;
        }
        Ok(InputTransform { perm, scale, mean })
    }

    fn params(&self, pixels: usize) -> ImageParams {
        let mut sorted = self.perm;
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2], "InputTransform.perm {:?} is not a permutation of 0, 1, 2", self.perm);
        ImageParams {
            perm: [self.perm[0], self.perm[1], self.perm[2], 0],
            mean: [self.mean[0], self.mean[1], self.mean[2], 0.0],
            pixels: to_u32(pixels, "image pixels"),
            scale: self.scale,
            _pad: [0; 2],
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ImageParams {
    perm: [u32; 4],
    mean: [f32; 4],
    pixels: u32,
    scale: f32,
    _pad: [u32; 2],
}

/// The compiled image kernels.
pub struct ImageOps {
    to_network_input: Kernel,
    network_grad_to_image: Kernel,
}

impl ImageOps {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("image", SOURCE);
        ImageOps {
            to_network_input: ctx.kernel_from_module("image.to_network_input", &module, "to_network_input"),
            network_grad_to_image: ctx.kernel_from_module(
                "image.network_grad_to_image",
                &module,
                "network_grad_to_image",
            ),
        }
    }

    /// `network_input` (h×w×4) = transform of `image` (h×w×3 RGB).
    pub fn to_network_input(
        &self,
        ctx: &GpuContext,
        h: usize,
        w: usize,
        image: &wgpu::Buffer,
        network_input: &wgpu::Buffer,
        transform: &InputTransform,
    ) -> Dispatch {
        let pixels = h * w;
        require_f32s(image, pixels * 3, "image.to_network_input: image");
        require_f32s(network_input, pixels * 4, "image.to_network_input: network input");
        let params = transform.params(pixels);
        self.to_network_input
            .dispatch(
                ctx,
                bytemuck::bytes_of(&params),
                &[(1, image), (2, network_input)],
                gpu::groups_2d(gpu::groups(pixels, 64)),
            )
            .with_flops(2 * 3 * pixels as u64)
    }

    /// `image_grad` (h×w×3 RGB, overwritten) = gradient through the transform of
    /// `network_grad` (h×w×4): `image_grad[p][perm[k]] = scale·network_grad[p][k]`.
    pub fn network_grad_to_image(
        &self,
        ctx: &GpuContext,
        h: usize,
        w: usize,
        network_grad: &wgpu::Buffer,
        image_grad: &wgpu::Buffer,
        transform: &InputTransform,
    ) -> Dispatch {
        let pixels = h * w;
        require_f32s(network_grad, pixels * 4, "image.network_grad_to_image: network gradient");
        require_f32s(image_grad, pixels * 3, "image.network_grad_to_image: image gradient");
        let params = transform.params(pixels);
        self.network_grad_to_image
            .dispatch(
                ctx,
                bytemuck::bytes_of(&params),
                &[(1, network_grad), (2, image_grad)],
                gpu::groups_2d(gpu::groups(pixels, 64)),
            )
            .with_flops(3 * pixels as u64)
    }
}
