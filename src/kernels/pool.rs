//! 2×2 pooling, stride 2, floor mode (odd sizes drop their last row/column, as PyTorch
//! does), max or average, forward and backward: `shaders/pool2x2.wgsl`.
//!
//! Max pooling records which input of each 2×2 window won (2 bits per element, 4×4-block
//! word layout, see [`crate::kernels`]) so that the backward pass needs no activations.

use crate::gpu::{groups, groups_2d, Dispatch, GpuContext, Kernel};
use crate::kernels::{c4, mask_words};
use wgpu::Buffer;

const SHADER: &str = include_str!("../../shaders/pool2x2.wgsl");
const WORKGROUP: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// The compiled pooling kernels.
pub struct Pool2x2 {
    forward_max: Kernel,
    forward_avg: Kernel,
    backward_max: Kernel,
    backward_avg: Kernel,
}

/// Output size of pooling an `h`×`w` map.
pub fn pooled_size(h: usize, w: usize) -> (usize, usize) {
    (h / 2, w / 2)
}

/// u32 words of the max-pool choice buffer for an `h`×`w`×`c` input.
pub fn choice_words(h: usize, w: usize, c: usize) -> usize {
    mask_words(h / 2, w / 2, c)
}

fn params(h: usize, w: usize, c: usize) -> [u32; 4] {
    [h as u32, w as u32, c4(c) as u32, 0]
}

fn check(h: usize, w: usize, c: usize) {
    assert!(h > 0 && w > 0 && c > 0, "pool2x2: the map {h}x{w}x{c} must have positive dimensions");
}

fn check_len(what: &str, buffer: &Buffer, elements: usize, h: usize, w: usize, c: usize) {
    let needed = (elements * 4) as u64;
    assert!(
        buffer.size() >= needed,
        "pool2x2: the {what} buffer holds {} bytes but a {h}x{w}x{c} map needs {needed}",
        buffer.size()
    );
}

fn check_choice(kind: PoolKind, choice: Option<&Buffer>, h: usize, w: usize, c: usize) -> Option<&Buffer> {
    match (kind, choice) {
        (PoolKind::Max, Some(b)) => {
            check_len("choice", b, choice_words(h, w, c), h, w, c);
            Some(b)
        }
        (PoolKind::Max, None) => panic!("pool2x2: max pooling needs a choice buffer"),
        (PoolKind::Avg, Some(_)) => panic!("pool2x2: average pooling takes no choice buffer"),
        (PoolKind::Avg, None) => None,
    }
}

impl Pool2x2 {
    pub fn new(ctx: &GpuContext) -> Self {
        let module = ctx.shader_module("pool2x2", SHADER);
        Pool2x2 {
            forward_max: ctx.kernel_from_module("pool2x2_forward_max", &module, "forward_max"),
            forward_avg: ctx.kernel_from_module("pool2x2_forward_avg", &module, "forward_avg"),
            backward_max: ctx.kernel_from_module("pool2x2_backward_max", &module, "backward_max"),
            backward_avg: ctx.kernel_from_module("pool2x2_backward_avg", &module, "backward_avg"),
        }
    }

    /// Pools `input` (`h`×`w`×`c`, HWC c4) into `output` ((h/2)×(w/2), HWC c4). Max pooling
    /// also writes `choice` ([`choice_words`] words); average pooling takes `None`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        ctx: &GpuContext,
        kind: PoolKind,
        h: usize,
        w: usize,
        c: usize,
        input: &Buffer,
        output: &Buffer,
        choice: Option<&Buffer>,
    ) -> Dispatch {
        check(h, w, c);
        let (oh, ow) = pooled_size(h, w);
        check_len("input", input, h * w * c4(c), h, w, c);
        check_len("output", output, oh * ow * c4(c), h, w, c);
        let choice = check_choice(kind, choice, h, w, c);
        let params = params(h, w, c);
        let dispatch = match choice {
            Some(choice) => {
                // one thread per choice word (4 output pixels x 4 channels)
                let threads = mask_words(oh, ow, c);
                self.forward_max.dispatch(
                    ctx,
                    bytemuck::bytes_of(&params),
                    &[(1, input), (2, output), (3, choice)],
                    groups_2d(groups(threads, WORKGROUP)),
                )
            }
            None => {
                let threads = oh * ow * c4(c) / 4;
                self.forward_avg.dispatch(
                    ctx,
                    bytemuck::bytes_of(&params),
                    &[(1, input), (2, output)],
                    groups_2d(groups(threads, WORKGROUP)),
                )
            }
        };
        // one compare or add per input element
        dispatch.with_flops((oh * ow * c * 4) as u64)
    }

    /// Spreads `grad_output` ((h/2)×(w/2), HWC c4) back to `grad_input` (`h`×`w`, HWC c4):
    /// max pooling to each window's winner (from `choice`), average pooling a quarter to
    /// each input. Every element of `grad_input` is written, zeros included.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        ctx: &GpuContext,
        kind: PoolKind,
        h: usize,
        w: usize,
        c: usize,
        grad_output: &Buffer,
        choice: Option<&Buffer>,
        grad_input: &Buffer,
    ) -> Dispatch {
        check(h, w, c);
        let (oh, ow) = pooled_size(h, w);
        check_len("grad_output", grad_output, oh * ow * c4(c), h, w, c);
        check_len("grad_input", grad_input, h * w * c4(c), h, w, c);
        let choice = check_choice(kind, choice, h, w, c);
        let params = params(h, w, c);
        // one thread per input vec4
        let workgroups = groups_2d(groups(h * w * c4(c) / 4, WORKGROUP));
        let dispatch = match choice {
            Some(choice) => self.backward_max.dispatch(
                ctx,
                bytemuck::bytes_of(&params),
                &[(1, grad_output), (2, choice), (3, grad_input)],
                workgroups,
            ),
            None => self.backward_avg.dispatch(
                ctx,
                bytemuck::bytes_of(&params),
                &[(1, grad_output), (2, grad_input)],
                workgroups,
            ),
        };
        dispatch.with_flops((oh * ow * c) as u64)
    }
}
