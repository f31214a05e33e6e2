//! Bicubic upsampling between the scales of a coarse-to-fine run (`shaders/resize.wgsl`), and its
//! CPU twin [`upsample_cpu`], which samples as `imageio::resize_to` does.

use crate::gpu::{self, Dispatch, GpuContext, Kernel};
use crate::kernels::reduce::{require_f32s, to_u32};

const SOURCE: &str = include_str!("../../shaders/resize.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ResizeParams {
    src_w: u32,
    src_h: u32,
    dst_w: u32,
    dst_h: u32,
    ratio_x: f32,
    ratio_y: f32,
    row0: u32,
    rows: u32,
}

pub struct Resize {
    upsample: Kernel,
}

impl Resize {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("resize", SOURCE);
        Resize { upsample: ctx.kernel_from_module("resize.upsample", &module, "upsample") }
    }

    /// `dst` (dst_w×dst_h×3) = `src` (src_w×src_h×3) upsampled bicubically. Upsampling only.
    ///
    /// # Panics
    /// If a side shrinks, a size is 0, or a buffer is too small.
    pub fn upsample(&self, ctx: &GpuContext, src_size: (usize, usize), src: &wgpu::Buffer, dst_size: (usize, usize), dst: &wgpu::Buffer) -> Dispatch {
        self.upsample_rows(ctx, src_size, src, dst_size, (0, dst_size.1), dst)
    }

    /// [`Resize::upsample`] for the output rows `row0 .. row0 + rows` only, which `dst` holds (a band
    /// of the image, [`crate::bands`]).
    pub fn upsample_rows(
        &self,
        ctx: &GpuContext,
        (src_w, src_h): (usize, usize),
        src: &wgpu::Buffer,
        (dst_w, dst_h): (usize, usize),
        (row0, rows): (usize, usize),
        dst: &wgpu::Buffer,
    ) -> Dispatch {
        assert!(src_w > 0 && src_h > 0 && dst_w >= src_w && dst_h >= src_h, "resize: {src_w}x{src_h} -> {dst_w}x{dst_h} is not an upsampling");
        assert!(rows > 0 && row0 + rows <= dst_h, "resize: rows {row0}..{} outside {dst_h}", row0 + rows);
        require_f32s(src, src_w * src_h * 3, "resize: source");
        require_f32s(dst, dst_w * rows * 3, "resize: destination");
        let params = ResizeParams {
            src_w: to_u32(src_w, "resize width"),
            src_h: to_u32(src_h, "resize height"),
            dst_w: to_u32(dst_w, "resize width"),
            dst_h: to_u32(dst_h, "resize height"),
            ratio_x: src_w as f32 / dst_w as f32,
            ratio_y: src_h as f32 / dst_h as f32,
            row0: to_u32(row0, "resize row"),
            rows: to_u32(rows, "resize rows"),
        };
        self.upsample.dispatch(ctx, bytemuck::bytes_of(&params), &[(1, src), (2, dst)], gpu::groups_2d(gpu::groups(dst_w * rows, 64)))
    }
}

fn catmull_rom(t: f32) -> f32 {
    let a = t.abs();
    if a < 1.0 {
        ((1.5 * a - 2.5) * a) * a + 1.0
    } else if a < 2.0 {
        ((-0.5 * a + 2.5) * a - 4.0) * a + 2.0
    } else {
        0.0
    }
}

/// The first tap and the normalised weights of output index `o` on an axis of `size` source pixels.
fn taps(o: usize, ratio: f32, size: usize) -> (usize, Vec<f32>) {
    let centre = (o as f32 + 0.5) * ratio;
    let left = ((centre - 2.0).floor() as i64).clamp(0, size as i64 - 1);
    let right = ((centre + 2.0).ceil() as i64).clamp(left + 1, size as i64);
    let w: Vec<f32> = (left..right).map(|i| catmull_rom(i as f32 - (centre - 0.5))).collect();
    let sum: f32 = w.iter().sum();
    (left as usize, w.iter().map(|x| x / sum).collect())
}

/// The CPU twin of [`Resize::upsample`] (upsampling only, as the kernel).
pub fn upsample_cpu(src: &[f32], (src_w, src_h): (usize, usize), (dst_w, dst_h): (usize, usize)) -> Vec<f32> {
    let (rx, ry) = (src_w as f32 / dst_w as f32, src_h as f32 / dst_h as f32);
    let mut out = vec![0.0f32; dst_w * dst_h * 3];
    for oy in 0..dst_h {
        let (y0, wy) = taps(oy, ry, src_h);
        for ox in 0..dst_w {
            let (x0, wx) = taps(ox, rx, src_w);
            let mut acc = [0.0f32; 3];
            for (j, wj) in wy.iter().enumerate() {
                let mut row = [0.0f32; 3];
                for (i, wi) in wx.iter().enumerate() {
                    let s = 3 * ((y0 + j) * src_w + x0 + i);
                    for c in 0..3 {
                        row[c] += wi * src[s + c];
                    }
                }
                for c in 0..3 {
                    acc[c] += wj * row[c];
                }
            }
            for c in 0..3 {
                out[3 * (oy * dst_w + ox) + c] = acc[c].clamp(0.0, 1.0);
            }
        }
    }
    out
}
