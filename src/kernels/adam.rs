//! Adam on the image `x` (`shaders/adam.wgsl`): one elementwise dispatch per step.
//!
//! The step number enters through the bias corrections, so the parameters live in a
//! uniform that the caller rewrites before each step's submit ([`AdamKernel::params_bytes`]);
//! the [`Dispatch`] itself is built once.

use crate::gpu::{groups, groups_2d, Dispatch, GpuContext, Kernel};

pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.999;
pub const EPS: f32 = 1e-8;

/// Threads per workgroup of `adam_step`.
const WORKGROUP: usize = 256;

/// Bytes of the parameter uniform (`Params` in the shader).
pub const PARAMS_BYTES: usize = 32;

pub struct AdamKernel {
    step: Kernel,
}

impl AdamKernel {
    pub fn new(ctx: &GpuContext) -> Self {
        let source = include_str!("../../shaders/adam.wgsl");
        let module = ctx.shader_module("adam", source);
        AdamKernel { step: ctx.kernel_from_module("adam_step", &module, "adam_step") }
    }

    /// The uniform for step `step` (1-based): per-channel step sizes lr_c/(1-β1^t) and
    /// sqrt(1-β2^t), computed in f64 like torch does on the host.
    pub fn params_bytes(step: u32, channel_lr: [f32; 3], clamp: bool, n: usize) -> [u8; PARAMS_BYTES] {
        assert!(step >= 1, "Adam steps are numbered from 1");
        let bias1 = 1.0 - BETA1.powi(step as i32);
        let bias2 = 1.0 - BETA2.powi(step as i32);
        let mut words = [0u32; PARAMS_BYTES / 4];
        for c in 0..3 {
            words[c] = ((channel_lr[c] as f64 / bias1) as f32).to_bits();
        }
        words[4] = n as u32;
        words[5] = clamp as u32;
        words[6] = (bias2.sqrt() as f32).to_bits();
        bytemuck::cast(words)
    }

    /// The update of `x` (n values) from `grad`, with moments `m1`, `m2` (n values each,
    /// zero before step 1) and the uniform `params` (from [`Self::params_bytes`]).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        ctx: &GpuContext,
        params: &wgpu::Buffer,
        x: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        m1: &wgpu::Buffer,
        m2: &wgpu::Buffer,
        n: usize,
    ) -> Dispatch {
        // The uniform is bound like a storage buffer so that it can be rewritten each step.
        self.step.dispatch(
            ctx,
            &[],
            &[(0, params), (1, x), (2, grad), (3, m1), (4, m2)],
            groups_2d(groups(n, WORKGROUP)),
        )
    }
}
