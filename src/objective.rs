//! The objective L = α·L_c + β·L_s + γ·L_tv and its gradient, as GPU dispatches.
//!
//! Loss values are reduced into a small `scalars` buffer (slots below) and stay on
//! the GPU until someone asks for them. Every coefficient comes from `kernels/loss.rs` and
//! `kernels/tv.rs` (the ones the kernel tests check):
//! - content: dL/dF = α·w·2(F − Fc)/(C·H·W);
//! - style (both forms): dL/dF = β·4w/(C²·C·H·W) · F(G − T), with G normalised by
//!   1/(C·H·W) in the canonical form and unnormalised in the seed form, where the
//!   layer loss is divided by C·H·W instead;
//! - TV: γ/(3·H·W) times the gradient of the summed squared differences.

use crate::gpu::{Dispatch, GpuContext};
use crate::kernels::c4;
use crate::kernels::loss::{content_scales, gram_scale, style_scales};
use crate::kernels::tv::tv_scale;
use crate::model::{MapShape, Network};
use crate::plan::BufferSpec;

pub const SLOT_CONTENT: usize = 0;
pub const SLOT_STYLE: usize = 1;
pub const SLOT_TV: usize = 2;
pub const SLOT_TOTAL: usize = 3;
/// Number of f32 slots in the scalars buffer.
pub const SCALAR_SLOTS: usize = 4;

/// The two formulations of the style loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Gram / (C·H·W), layer loss = w·mean((G − T)²).
    Canonical,
    /// The tutorial's: Gram unnormalised, layer loss = w·mean((G − T)²)/(C·H·W).
    Seed,
}

impl Form {
    fn is_seed(self) -> bool {
        self == Form::Seed
    }

    /// The factor applied to FᵀF for a map of this shape (the engine's style targets use it too).
    pub fn gram_scale(self, shape: MapShape) -> f32 {
        gram_scale(shape.c, shape.h, shape.w, self.is_seed())
    }
}

/// A loss term at one op of the network.
#[derive(Clone, Debug)]
pub struct LossLayer {
    pub op: usize,
    pub weight: f32,
}

/// Weights of the three terms.
#[derive(Clone, Copy, Debug)]
pub struct TermWeights {
    pub content: f32,
    pub style: f32,
    pub tv: f32,
}

/// Target buffers and scratch space of the objective, for one image size.
pub struct Objective {
    pub content: Vec<(LossLayer, wgpu::Buffer)>,
    /// Style layers with their (current Gram, target Gram) buffers.
    pub style: Vec<(LossLayer, wgpu::Buffer, wgpu::Buffer)>,
    pub scalars: wgpu::Buffer,
    partials: wgpu::Buffer,
    gram_partials: wgpu::Buffer,
    pub form: Form,
    pub terms: TermWeights,
}

/// The objective's buffers for one image size, worked out without a GPU ([`Objective::new`]
/// allocates exactly these).
#[derive(Clone, Debug)]
pub struct ObjectiveLayout {
    /// The content target features, one per content layer.
    pub content: Vec<BufferSpec>,
    /// (current Gram, target Gram), one pair per style layer.
    pub style: Vec<(BufferSpec, BufferSpec)>,
    pub scalars: BufferSpec,
    /// Loss partial sums and Gram partial sums, each shared by every term: a term's partial sums
    /// are finished before the next term writes.
    pub partials: BufferSpec,
    pub gram_partials: BufferSpec,
}

impl ObjectiveLayout {
    pub fn new(shapes: &[MapShape], content: &[LossLayer], style: &[LossLayer], h: usize, w: usize) -> ObjectiveLayout {
        let mut partials = crate::kernels::tv::TvLoss::partials_len(h, w);
        let mut gram_partials = 1;
        for l in style {
            let s = shapes[l.op];
            partials = partials.max(crate::kernels::loss::StyleLoss::partials_len(s.c));
            gram_partials = gram_partials.max(crate::kernels::gram::Gram::partials_len(s.h, s.w, s.c));
        }
        for l in content {
            let s = shapes[l.op];
            partials = partials.max(crate::kernels::loss::ContentLoss::partials_len(s.h, s.w, s.c));
        }
        let f32s = |label: &str, len: usize| BufferSpec::new(label, len as u64 * 4);
        ObjectiveLayout {
            content: content.iter().map(|l| f32s("content target", shapes[l.op].padded_len())).collect(),
            style: style
                .iter()
                .map(|l| {
                    let len = c4(shapes[l.op].c).pow(2);
                    (f32s("gram", len), f32s("gram target", len))
                })
                .collect(),
            scalars: f32s("loss scalars", SCALAR_SLOTS),
            partials: f32s("loss partials", partials),
            gram_partials: f32s("gram partials", gram_partials),
        }
    }

    pub fn buffers(&self) -> impl Iterator<Item = &BufferSpec> {
        self.content
            .iter()
            .chain(self.style.iter().flat_map(|(g, t)| [g, t]))
            .chain([&self.scalars, &self.partials, &self.gram_partials])
    }
}

impl Objective {
    /// Allocates the buffers of `layout` for these layers (the ones the layout was made for).
    pub fn new(ctx: &GpuContext, layout: &ObjectiveLayout, content: &[LossLayer], style: &[LossLayer], form: Form, terms: TermWeights) -> Objective {
        Objective {
            content: content.iter().zip(&layout.content).map(|(l, spec)| (l.clone(), ctx.alloc(spec))).collect(),
            style: style.iter().zip(&layout.style).map(|(l, (g, t))| (l.clone(), ctx.alloc(g), ctx.alloc(t))).collect(),
            scalars: ctx.alloc(&layout.scalars),
            partials: ctx.alloc(&layout.partials),
            gram_partials: ctx.alloc(&layout.gram_partials),
            form,
            terms,
        }
    }

    /// Dispatches that compute the loss terms at op `op`, whose features are in `features`.
    /// Must run while the forward pass has them there. `written` tracks which scalar slots this
    /// step has written already (the first write overwrites, later ones accumulate).
    pub fn forward_at(
        &self,
        net: &Network,
        op: usize,
        shape: MapShape,
        features: &wgpu::Buffer,
        written: &mut [bool; SCALAR_SLOTS],
    ) -> Vec<Dispatch> {
        let ctx = &net.ctx;
        let k = &net.kernels;
        let mut out = Vec::new();
        for (layer, target) in self.content.iter().filter(|(l, _)| l.op == op) {
            out.push(k.content.partial(ctx, shape.h, shape.w, shape.c, features, target, &self.partials, 0));
            let scale = content_scales(layer.weight as f64, shape.c, shape.h, shape.w).loss;
            out.push(k.reduce.finish(
                ctx,
                &self.partials,
                0,
                crate::kernels::loss::ContentLoss::partials_len(shape.h, shape.w, shape.c),
                &self.scalars,
                SLOT_CONTENT,
                scale,
                written[SLOT_CONTENT],
            ));
            written[SLOT_CONTENT] = true;
        }
        for (layer, gram, target) in self.style.iter().filter(|(l, _, _)| l.op == op) {
            out.extend(k.gram.build(ctx, shape.h, shape.w, shape.c, features, &self.gram_partials, gram, self.form.gram_scale(shape)));
            out.push(k.style.partial(ctx, shape.c, gram, target, &self.partials, 0));
            let scale = style_scales(layer.weight as f64, shape.c, shape.h, shape.w, self.form.is_seed()).loss;
            out.push(k.reduce.finish(
                ctx,
                &self.partials,
                0,
                crate::kernels::loss::StyleLoss::partials_len(shape.c),
                &self.scalars,
                SLOT_STYLE,
                scale,
                written[SLOT_STYLE],
            ));
            written[SLOT_STYLE] = true;
        }
        out
    }

    /// Dispatches that add dL/dF of the terms at op `op` into `grad`.
    pub fn backward_at(
        &self,
        net: &Network,
        op: usize,
        shape: MapShape,
        features: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        mut accumulate: bool,
    ) -> Vec<Dispatch> {
        let ctx = &net.ctx;
        let k = &net.kernels;
        let mut out = Vec::new();
        for (layer, target) in self.content.iter().filter(|(l, _)| l.op == op) {
            let coef = self.terms.content * content_scales(layer.weight as f64, shape.c, shape.h, shape.w).grad;
            out.push(k.content.grad(ctx, shape.h, shape.w, shape.c, features, target, grad, coef, accumulate));
            accumulate = true;
        }
        for (layer, gram, target) in self.style.iter().filter(|(l, _, _)| l.op == op) {
            let coef = self.terms.style * style_scales(layer.weight as f64, shape.c, shape.h, shape.w, self.form.is_seed()).grad;
            out.push(k.style.grad(ctx, shape.h, shape.w, shape.c, features, gram, target, grad, coef, accumulate));
            accumulate = true;
        }
        out
    }

    /// TV value of the image x (h×w RGB) and the total; run after the feature losses.
    pub fn finish_values(&self, net: &Network, h: usize, w: usize, x: &wgpu::Buffer, written: &[bool; SCALAR_SLOTS]) -> Vec<Dispatch> {
        let ctx = &net.ctx;
        let k = &net.kernels;
        let mut out = vec![
            k.tv.partial(ctx, h, w, x, &self.partials, 0),
            k.reduce.finish(
                ctx,
                &self.partials,
                0,
                crate::kernels::tv::TvLoss::partials_len(h, w),
                &self.scalars,
                SLOT_TV,
                tv_scale(h, w),
                false,
            ),
        ];
        // A term with no layers still needs its slot zeroed: reduce nothing into it.
        for slot in [SLOT_CONTENT, SLOT_STYLE] {
            if !written[slot] {
                out.push(k.reduce.finish(ctx, &self.partials, 0, 0, &self.scalars, slot, 0.0, false));
            }
        }
        out.push(k.reduce.combine(
            ctx,
            &self.scalars,
            [SLOT_CONTENT, SLOT_STYLE, SLOT_TV],
            [self.terms.content, self.terms.style, self.terms.tv],
            SLOT_TOTAL,
        ));
        out
    }

    /// Adds the TV gradient into dL/dx.
    pub fn tv_grad(&self, net: &Network, h: usize, w: usize, x: &wgpu::Buffer, grad_x: &wgpu::Buffer) -> Dispatch {
        net.kernels.tv.grad(&net.ctx, h, w, x, grad_x, self.terms.tv * tv_scale(h, w))
    }
}
