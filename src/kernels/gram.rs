//! Gram matrix `G = scale * FᵀF` of an HWC feature map (`shaders/gram.wgsl`).
//!
//! A Gram is a long reduction over pixels, so it runs split-K: `partial` sums
//! 4×4 tiles of G over chunks of pixels (only tiles on or below the diagonal,
//! since G is symmetric), and `reduce` adds the chunks, mirrors the triangle and
//! scales. The chunk size is picked so that about [`TARGET_THREADS`] threads run
//! in the first pass whatever the layer's shape, which also bounds the partials
//! buffer to about `16 * TARGET_THREADS` floats.

use crate::gpu::{self, Dispatch, GpuContext, Kernel};
use crate::kernels::c4;
use crate::kernels::reduce::{require_f32s, to_u32};

const SOURCE: &str = include_str!("../../shaders/gram.wgsl");

/// Threads wanted in the first pass: enough to fill a real GPU.
pub const TARGET_THREADS: usize = 32768;
/// Fewest pixels per chunk, so that small maps are not split into slivers.
const MIN_CHUNK: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PartialParams {
    pixels: u32,
    nb: u32,
    tiles: u32,
    chunk: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ReduceParams {
    c4: u32,
    tiles: u32,
    chunks: u32,
    scale: f32,
    accumulate: u32,
    _pad: [u32; 3],
}

/// How a Gram of an `h`×`w`×`c` map is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    pixels: usize,
    c4: usize,
    /// 4×4 tiles on or below the diagonal: nb*(nb+1)/2 with nb = c4/4.
    tiles: usize,
    /// Pixels per chunk.
    chunk: usize,
    chunks: usize,
}

fn plan(h: usize, w: usize, c: usize) -> Plan {
    assert!(h > 0 && w > 0 && c > 0, "gram: empty feature map {h}x{w}x{c}");
    let pixels = h * w;
    let c4 = c4(c);
    let nb = c4 / 4;
    let tiles = nb * (nb + 1) / 2;
    let wanted_chunks = TARGET_THREADS.div_ceil(tiles).max(1);
    let chunk = pixels.div_ceil(wanted_chunks).max(MIN_CHUNK);
    let chunks = pixels.div_ceil(chunk);
    Plan { pixels, c4, tiles, chunk, chunks }
}

/// The compiled `partial` and `reduce` kernels.
pub struct Gram {
    partial: Kernel,
    reduce: Kernel,
}

impl Gram {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("gram", SOURCE);
        Gram {
            partial: ctx.kernel_from_module("gram.partial", &module, "partial"),
            reduce: ctx.kernel_from_module("gram.reduce", &module, "reduce"),
        }
    }

    /// f32 elements of partials that [`Gram::build`] needs for an `h`×`w`×`c` map (a multiple
    /// of 4).
    pub fn partials_len(h: usize, w: usize, c: usize) -> usize {
        let p = plan(h, w, c);
        p.chunks * p.tiles * 16
    }

    /// Dispatches computing `gram_out = scale * FᵀF` (c4 × c4, row-major; padded rows and
    /// columns 0) from `features` (h×w×c4 HWC). For the canonical Gram scale = 1/(C·H·W),
    /// for the seed form 1.
    ///
    /// # Panics
    /// If a buffer is too small for the shape.
    /// G = scale·FᵀF of an `h`×`w`×`c` map, written to `gram_out`.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        &self,
        ctx: &GpuContext,
        h: usize,
        w: usize,
        c: usize,
        features: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        gram_out: &wgpu::Buffer,
        scale: f32,
    ) -> Vec<Dispatch> {
        self.build_into(ctx, (h, w, c), features, partials, gram_out, scale, false)
    }

    /// As [`Gram::build`], adding scale·FᵀF to `gram_out` when `accumulate` (a tiled step sums
    /// G over its tiles' interiors).
    #[allow(clippy::too_many_arguments)]
    pub fn build_into(
        &self,
        ctx: &GpuContext,
        (h, w, c): (usize, usize, usize),
        features: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        gram_out: &wgpu::Buffer,
        scale: f32,
        accumulate: bool,
    ) -> Vec<Dispatch> {
        let p = plan(h, w, c);
        require_f32s(features, p.pixels * p.c4, "gram: features");
        require_f32s(partials, p.chunks * p.tiles * 16, "gram: partials");
        require_f32s(gram_out, p.c4 * p.c4, "gram: output");
        let partial_params = PartialParams {
            pixels: to_u32(p.pixels, "gram pixels"),
            nb: to_u32(p.c4 / 4, "gram channel blocks"),
            tiles: to_u32(p.tiles, "gram tiles"),
            chunk: to_u32(p.chunk, "gram chunk"),
        };
        let partial = self
            .partial
            .dispatch(
                ctx,
                bytemuck::bytes_of(&partial_params),
                &[(1, features), (2, partials)],
                [gpu::groups(p.tiles, 64), to_u32(p.chunks, "gram chunks"), 1],
            )
            .with_flops((2 * 16 * p.tiles * p.pixels) as u64);
        let reduce_params = ReduceParams {
            c4: to_u32(p.c4, "gram channels"),
            tiles: partial_params.tiles,
            chunks: to_u32(p.chunks, "gram chunks"),
            scale,
            accumulate: accumulate as u32,
            _pad: [0; 3],
        };
        let reduce = self
            .reduce
            .dispatch(
                ctx,
                bytemuck::bytes_of(&reduce_params),
                &[(1, partials), (2, gram_out)],
                gpu::groups_2d(gpu::groups(p.c4 * p.c4, 64)),
            )
            .with_flops((p.c4 * p.c4 * (p.chunks + 1)) as u64);
        vec![partial, reduce]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_keeps_chunks_and_partials_bounded() {
        // conv1_1 at 512 px: many chunks, bounded partials.
        let p = plan(512, 512, 64);
        assert_eq!(p.tiles, 136);
        assert!(p.chunks * p.tiles <= TARGET_THREADS + p.tiles);
        assert!(p.chunks * p.chunk >= p.pixels);
        // A tiny map is one chunk.
        assert_eq!(plan(7, 5, 3).chunks, 1);
        // Deep layers: about as many tiles as threads wanted, so few chunks (>= 256 pixels each).
        assert_eq!(plan(32, 32, 512).chunks, 4);
        assert_eq!(plan(16, 16, 512).chunks, 1);
        for (h, w, c) in [(2048, 2048, 64), (1, 1, 1), (1000, 3, 5), (64, 64, 512)] {
            let p = plan(h, w, c);
            assert!(p.chunks <= 65535, "{h}x{w}x{c}: {} chunks", p.chunks);
            assert!(p.chunks * p.chunk >= p.pixels && (p.chunks - 1) * p.chunk < p.pixels);
        }
    }
}
