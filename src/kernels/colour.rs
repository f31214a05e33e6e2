//! Colour control (`shaders/colour.wgsl`): the luma swap (the result's luminance with the content's
//! chroma, in YIQ), with its CPU twin [`luma_swap_cpu`].

use crate::gpu::{self, Dispatch, GpuContext, Kernel};
use crate::kernels::reduce::{require_f32s, to_u32};

const SOURCE: &str = include_str!("../../shaders/colour.wgsl");

/// RGB → YIQ rows (as in the shader, whose matrices are column-major).
pub const TO_YIQ: [[f32; 3]; 3] = [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]];
/// YIQ → RGB rows.
pub const FROM_YIQ: [[f32; 3]; 3] = [[1.0, 0.9563, 0.6210], [1.0, -0.2721, -0.6474], [1.0, -1.1070, 1.7046]];

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ColourParams {
    pixels: u32,
    _pad: [u32; 3],
}

pub struct Colour {
    luma_swap: Kernel,
}

impl Colour {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("colour", SOURCE);
        Colour { luma_swap: ctx.kernel_from_module("colour.luma_swap", &module, "luma_swap") }
    }

    /// `x` (in place) = its luminance with `content`'s chroma (both HWC RGB, `pixels` pixels).
    pub fn luma_swap(&self, ctx: &GpuContext, pixels: usize, x: &wgpu::Buffer, content: &wgpu::Buffer) -> Dispatch {
        require_f32s(x, pixels * 3, "colour.luma_swap: image");
        require_f32s(content, pixels * 3, "colour.luma_swap: content");
        let params = ColourParams { pixels: to_u32(pixels, "colour pixels"), _pad: [0; 3] };
        self.luma_swap.dispatch(ctx, bytemuck::bytes_of(&params), &[(1, x), (2, content)], gpu::groups_2d(gpu::groups(pixels, 64)))
    }
}

fn mul(m: &[[f32; 3]; 3], v: [f32; 3]) -> [f32; 3] {
    m.map(|row| row[0] * v[0] + row[1] * v[1] + row[2] * v[2])
}

/// RGB → YIQ of one pixel.
pub fn yiq(rgb: [f32; 3]) -> [f32; 3] {
    mul(&TO_YIQ, rgb)
}

/// The CPU twin of [`Colour::luma_swap`].
pub fn luma_swap_cpu(stylized: &[f32], content: &[f32]) -> Vec<f32> {
    stylized
        .chunks_exact(3)
        .zip(content.chunks_exact(3))
        .flat_map(|(s, c)| {
            let (ys, yc) = (yiq([s[0], s[1], s[2]]), yiq([c[0], c[1], c[2]]));
            mul(&FROM_YIQ, [ys[0], yc[1], yc[2]]).map(|v| v.clamp(0.0, 1.0))
        })
        .collect()
}
