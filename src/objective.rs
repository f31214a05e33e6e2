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

use crate::bands::{Bands, BandsLayout};
use crate::gpu::{Dispatch, GpuContext};
use crate::kernels::c4;
use crate::kernels::window::Rect;
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
    /// Content layers with their target features (in bands in a tiled run).
    pub content: Vec<(LossLayer, Bands)>,
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
    /// The content target features, one per content layer (rows of the map, HWC c4).
    pub content: Vec<BandsLayout>,
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
            content: content
                .iter()
                .map(|l| BandsLayout::single("content target", shapes[l.op].h, shapes[l.op].w * c4(shapes[l.op].c)))
                .collect(),
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
            .flat_map(|b| b.specs())
            .chain(self.style.iter().flat_map(|(g, t)| [g, t]))
            .chain([&self.scalars, &self.partials, &self.gram_partials])
    }
}

impl Objective {
    /// Allocates the buffers of `layout` for these layers (the ones the layout was made for).
    pub fn new(ctx: &GpuContext, layout: &ObjectiveLayout, content: &[LossLayer], style: &[LossLayer], form: Form, terms: TermWeights) -> Objective {
        Objective {
            content: content.iter().zip(&layout.content).map(|(l, bands)| (l.clone(), Bands::alloc(ctx, bands))).collect(),
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
        let mut out = Vec::new();
        for (layer, target) in self.content.iter().filter(|(l, _)| l.op == op) {
            out.extend(self.content_value(net, layer, (shape.h, shape.w), shape, features, target.single(), written));
        }
        for (layer, gram, target) in self.style.iter().filter(|(l, _, _)| l.op == op) {
            let k = &net.kernels;
            out.extend(k.gram.build(&net.ctx, shape.h, shape.w, shape.c, features, &self.gram_partials, gram, self.form.gram_scale(shape)));
            out.extend(self.style_value(net, layer, shape, gram, target, written));
        }
        out
    }

    /// Adds a content layer's loss over an `h`×`w` window (`features` and `target` both hold just
    /// that window) to the content slot; `full` is the layer's map for the whole image.
    #[allow(clippy::too_many_arguments)]
    fn content_value(
        &self,
        net: &Network,
        layer: &LossLayer,
        (h, w): (usize, usize),
        full: MapShape,
        features: &wgpu::Buffer,
        target: &wgpu::Buffer,
        written: &mut [bool; SCALAR_SLOTS],
    ) -> Vec<Dispatch> {
        let k = &net.kernels;
        let scale = content_scales(layer.weight as f64, full.c, full.h, full.w).loss;
        let partials = crate::kernels::loss::ContentLoss::partials_len(h, w, full.c);
        let out = vec![
            k.content.partial(&net.ctx, h, w, full.c, features, target, &self.partials, 0),
            k.reduce.finish(&net.ctx, &self.partials, 0, partials, &self.scalars, SLOT_CONTENT, scale, written[SLOT_CONTENT]),
        ];
        written[SLOT_CONTENT] = true;
        out
    }

    /// Adds a style layer's loss (its Gram against the target) to the style slot.
    fn style_value(
        &self,
        net: &Network,
        layer: &LossLayer,
        full: MapShape,
        gram: &wgpu::Buffer,
        target: &wgpu::Buffer,
        written: &mut [bool; SCALAR_SLOTS],
    ) -> Vec<Dispatch> {
        let k = &net.kernels;
        let scale = style_scales(layer.weight as f64, full.c, full.h, full.w, self.form.is_seed()).loss;
        let partials = crate::kernels::loss::StyleLoss::partials_len(full.c);
        let out = vec![
            k.style.partial(&net.ctx, full.c, gram, target, &self.partials, 0),
            k.reduce.finish(&net.ctx, &self.partials, 0, partials, &self.scalars, SLOT_STYLE, scale, written[SLOT_STYLE]),
        ];
        written[SLOT_STYLE] = true;
        out
    }

    /// The values pass of one tile at op `op` (see [`crate::tiling`]): the interior window `at` of
    /// the region's features (`region_map`) adds to the content loss and to the Grams (which the
    /// first tile overwrites). `window` and `window_target` are scratch for the interior's features
    /// and content target; `full` is the op's map for the whole image.
    #[allow(clippy::too_many_arguments)]
    pub fn tile_values_at(
        &self,
        net: &Network,
        op: usize,
        (region_map, full): (MapShape, MapShape),
        features: &wgpu::Buffer,
        at: crate::tiling::InteriorAt,
        (window, window_target): (&wgpu::Buffer, &wgpu::Buffer),
        first_tile: bool,
        written: &mut [bool; SCALAR_SLOTS],
    ) -> Vec<Dispatch> {
        use crate::kernels::window::At;
        let (ctx, k) = (&net.ctx, &net.kernels);
        let c4 = c4(full.c);
        let size = (at.local.h, at.local.w);
        let local = At { width: region_map.w, y: at.local.y, x: at.local.x };
        let packed = At { width: at.local.w, y: 0, x: 0 };
        let mut out = Vec::new();
        let has_layers = self.content.iter().any(|(l, _)| l.op == op) || self.style.iter().any(|(l, _, _)| l.op == op);
        if has_layers {
            out.push(k.window.copy(ctx, size, c4, features, local, window, packed));
        }
        for (layer, target) in self.content.iter().filter(|(l, _)| l.op == op) {
            out.extend(target.copy_out(ctx, &k.window, c4, at.global, window_target, packed));
            out.extend(self.content_value(net, layer, size, full, window, window_target, written));
        }
        for (_, gram, _) in self.style.iter().filter(|(l, _, _)| l.op == op) {
            let shape = (size.0, size.1, full.c);
            out.extend(k.gram.build_into(ctx, shape, window, &self.gram_partials, gram, self.form.gram_scale(full), !first_tile));
        }
        out
    }

    /// After the values pass: the style loss of each layer from its Gram summed over the tiles.
    pub fn style_values(&self, net: &Network, full_shapes: &[MapShape], written: &mut [bool; SCALAR_SLOTS]) -> Vec<Dispatch> {
        self.style.iter().flat_map(|(layer, gram, target)| self.style_value(net, layer, full_shapes[layer.op], gram, target, written)).collect()
    }

    /// Dispatches that add dL/dF of the terms at op `op` into `grad`.
    pub fn backward_at(
        &self,
        net: &Network,
        op: usize,
        shape: MapShape,
        features: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        accumulate: bool,
    ) -> Vec<Dispatch> {
        self.grads_at(net, op, (shape, shape), features, grad, accumulate, |_, target| (Vec::new(), target.single().clone()))
    }

    /// The gradient pass of one tile at op `op` (see [`crate::tiling`]): dL/dF over the region's map
    /// `region_map` from the global Grams, and from the content target's window `region_at` of the
    /// full map (`full`), cut into `region_target`.
    #[allow(clippy::too_many_arguments)]
    pub fn tile_grads_at(
        &self,
        net: &Network,
        op: usize,
        (region_map, full): (MapShape, MapShape),
        features: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        accumulate: bool,
        region_at: crate::kernels::window::Rect,
        region_target: &wgpu::Buffer,
    ) -> Vec<Dispatch> {
        use crate::kernels::window::At;
        let cut = |net: &Network, target: &Bands| {
            let to = At { width: region_map.w, y: 0, x: 0 };
            (target.copy_out(&net.ctx, &net.kernels.window, c4(full.c), region_at, region_target, to), region_target.clone())
        };
        self.grads_at(net, op, (region_map, full), features, grad, accumulate, cut)
    }

    /// dL/dF of the terms at op `op` over a map of shape `map` (the whole image's, `full`, or a
    /// tile region's), the coefficients from `full`; `content_target(net, target)` gives the
    /// dispatches that put the content target over `map` and the buffer that then holds it.
    #[allow(clippy::too_many_arguments)]
    fn grads_at(
        &self,
        net: &Network,
        op: usize,
        (map, full): (MapShape, MapShape),
        features: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        mut accumulate: bool,
        content_target: impl Fn(&Network, &Bands) -> (Vec<Dispatch>, wgpu::Buffer),
    ) -> Vec<Dispatch> {
        let ctx = &net.ctx;
        let k = &net.kernels;
        let mut out = Vec::new();
        for (layer, target) in self.content.iter().filter(|(l, _)| l.op == op) {
            let coef = self.terms.content * content_scales(layer.weight as f64, full.c, full.h, full.w).grad;
            let (cut, target) = content_target(net, target);
            out.extend(cut);
            out.push(k.content.grad(ctx, map.h, map.w, map.c, features, &target, grad, coef, accumulate));
            accumulate = true;
        }
        for (layer, gram, target) in self.style.iter().filter(|(l, _, _)| l.op == op) {
            let coef = self.terms.style * style_scales(layer.weight as f64, full.c, full.h, full.w, self.form.is_seed()).grad;
            out.push(k.style.grad(ctx, map.h, map.w, map.c, features, gram, target, grad, coef, accumulate));
            accumulate = true;
        }
        out
    }

    /// The TV value of the whole image x (h×w RGB), in its slot.
    pub fn tv_value(&self, net: &Network, h: usize, w: usize, x: &wgpu::Buffer, written: &mut [bool; SCALAR_SLOTS]) -> Vec<Dispatch> {
        self.tile_tv_value(net, (h, w), (h, w), x, Rect { y: 0, x: 0, h, w }, written)
    }

    /// A tile's share of the TV value: the terms whose top/left pixel lies in `owners` (its
    /// interior, in the region's map `map`, which `x` holds); `full` is the image's size. The first
    /// share overwrites the slot, later ones add to it.
    pub fn tile_tv_value(
        &self,
        net: &Network,
        map: (usize, usize),
        (h, w): (usize, usize),
        x: &wgpu::Buffer,
        owners: Rect,
        written: &mut [bool; SCALAR_SLOTS],
    ) -> Vec<Dispatch> {
        let (ctx, k) = (&net.ctx, &net.kernels);
        let blocks = crate::kernels::tv::TvLoss::partials_len(owners.h, owners.w);
        let accumulate = std::mem::replace(&mut written[SLOT_TV], true);
        vec![
            k.tv.partial_within(ctx, map, owners, x, &self.partials, 0),
            k.reduce.finish(ctx, &self.partials, 0, blocks, &self.scalars, SLOT_TV, tv_scale(h, w), accumulate),
        ]
    }

    /// The total, after every term's value: a term with no layers gets its slot zeroed.
    pub fn finish_values(&self, net: &Network, written: &[bool; SCALAR_SLOTS]) -> Vec<Dispatch> {
        let ctx = &net.ctx;
        let k = &net.kernels;
        let mut out = Vec::new();
        // A term with no layers still needs its slot zeroed: reduce nothing into it.
        for slot in [SLOT_CONTENT, SLOT_STYLE, SLOT_TV] {
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

    /// Adds the TV gradient over a map of size `map` (the image, or a tile region that `x` holds)
    /// into `grad` of the same size; `full` is the image's size. In a region only the pixels one
    /// inside its cut edges are exact.
    pub fn tv_grad(&self, net: &Network, map: (usize, usize), (h, w): (usize, usize), x: &wgpu::Buffer, grad: &wgpu::Buffer) -> Dispatch {
        net.kernels.tv.grad(&net.ctx, map.0, map.1, x, grad, self.terms.tv * tv_scale(h, w))
    }
}
