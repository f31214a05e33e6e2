//! Window copies between HWC maps (`shaders/window.wgsl`), with the CPU twin [`copy_window_cpu`]: a
//! tiled step cuts each tile's region out of full-size maps and puts its interior back with them.

use crate::gpu::{self, Dispatch, GpuContext, Kernel};
use crate::kernels::reduce::{require_f32s, to_u32};

const SOURCE: &str = include_str!("../../shaders/window.wgsl");

/// A rectangle of pixels: rows `y..y + h`, columns `x..x + w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub y: usize,
    pub x: usize,
    pub h: usize,
    pub w: usize,
}

impl Rect {
    pub fn pixels(&self) -> usize {
        self.h * self.w
    }
}

/// One side of a window copy: a map `width` pixels wide, and the window's top-left corner in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub width: usize,
    pub y: usize,
    pub x: usize,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WindowParams {
    h: u32,
    w: u32,
    channels: u32,
    src_width: u32,
    src_y: u32,
    src_x: u32,
    dst_width: u32,
    dst_y: u32,
    dst_x: u32,
    _pad: [u32; 3],
}

pub struct WindowCopy {
    copy: Kernel,
}

impl WindowCopy {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("window", SOURCE);
        WindowCopy { copy: ctx.kernel_from_module("window.copy_window", &module, "copy_window") }
    }

    /// Copies an `h`×`w` window (`channels` f32 per pixel) from `src` at `from` to `dst` at `to`.
    ///
    /// # Panics
    /// If a window reaches outside its buffer (the tiling code works out windows inside their maps).
    #[allow(clippy::too_many_arguments)]
    pub fn copy(&self, ctx: &GpuContext, (h, w): (usize, usize), channels: usize, src: &wgpu::Buffer, from: At, dst: &wgpu::Buffer, to: At) -> Dispatch {
        assert!(h > 0 && w > 0 && channels > 0, "window copy: empty window {h}×{w}×{channels}");
        assert!(from.x + w <= from.width && to.x + w <= to.width, "window copy: a {w} px wide window outside its map");
        require_f32s(src, ((from.y + h - 1) * from.width + from.x + w) * channels, "window copy: source");
        require_f32s(dst, ((to.y + h - 1) * to.width + to.x + w) * channels, "window copy: destination");
        let params = WindowParams {
            h: to_u32(h, "window rows"),
            w: to_u32(w, "window columns"),
            channels: to_u32(channels, "window channels"),
            src_width: to_u32(from.width, "source width"),
            src_y: to_u32(from.y, "source row"),
            src_x: to_u32(from.x, "source column"),
            dst_width: to_u32(to.width, "destination width"),
            dst_y: to_u32(to.y, "destination row"),
            dst_x: to_u32(to.x, "destination column"),
            _pad: [0; 3],
        };
        self.copy.dispatch(ctx, bytemuck::bytes_of(&params), &[(1, src), (2, dst)], gpu::groups_2d(gpu::groups(h * w * channels, 64)))
    }
}

/// The CPU twin of [`WindowCopy::copy`].
pub fn copy_window_cpu((h, w): (usize, usize), channels: usize, src: &[f32], from: At, dst: &mut [f32], to: At) {
    for y in 0..h {
        let s = ((from.y + y) * from.width + from.x) * channels;
        let d = ((to.y + y) * to.width + to.x) * channels;
        dst[d..d + w * channels].copy_from_slice(&src[s..s + w * channels]);
    }
}
