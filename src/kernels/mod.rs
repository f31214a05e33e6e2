//! Rust wrappers of the WGSL ops in `shaders/`, one submodule per op.
//!
//! Conventions shared by every kernel (see each shader's header too):
//! - Feature maps are HWC f32 with the channel count padded to a multiple of 4
//!   (`c4`), so that four channels load as one `vec4<f32>`; padded channels hold 0.
//!   Element (y, x, c) of an `h`×`w` map lives at `(y*w + x)*c4 + c`.
//! - The image being optimised, `x`, is HWC RGB f32 in [0,1] with 3 channels (no padding).
//! - Conv weights are `[cout][ky][kx][cin4]` f32 (cin padded to 4 with zeros), biases `[cout4]`.
//! - ReLU masks and max-pool choices share one "4×4 block" word layout: for pixel `p`
//!   (flattened `y*w + x`) and channel `c`, the word is `(p/4)*(c4/4) + c/4` and the slot is
//!   `(p%4)*4 + c%4`; a ReLU mask keeps 1 bit per slot, a max-pool choice 2 bits per slot
//!   (`dy*2 + dx`). Each thread owns whole words, so no atomics and no clearing are needed.
//! - A uniform of parameters sits at binding 0; storage buffers follow at 1, 2, ...
//! - Each op builds [`Dispatch`](crate::gpu::Dispatch)es once per image size; the engine
//!   replays them every step.

pub mod adam;
pub mod colour;
pub mod conv;
pub mod gram;
pub mod image;
pub mod keep_finite;
pub mod lbfgs;
pub mod loss;
pub mod pool;
pub mod reduce;
pub mod resize;
pub mod tv;
pub mod window;

/// Rounds a channel count up to a multiple of 4.
pub fn c4(c: usize) -> usize {
    c.div_ceil(4) * 4
}

/// Number of u32 words of a 4×4-block mask for an `h`×`w`×`c` map.
pub fn mask_words(h: usize, w: usize, c: usize) -> usize {
    (h * w).div_ceil(4) * (c4(c) / 4)
}
