//! The plan of one run, worked out without a GPU: the resolved layers, the output and style sizes,
//! every GPU buffer with its size, the FLOPs per step and the checks that refuse a run before
//! anything is allocated.
//!
//! Every component has a layout (`StackLayout`, `ObjectiveLayout`, `OptimizerLayout`) from which
//! it allocates and nothing else, so the plan's figures are the allocation by construction. The
//! CLI (`stylize plan` and runs), the page's estimate and the bench read their figures here.
//!
//! Memory has two phases: the style targets are computed first, one style image at a time, each
//! with a feature stack of its own size that is freed before the next one and before the run's
//! buffers are allocated. The peak is the weights plus the larger of the two phases.
//!
//! A run is a list of plans, one per scale (`schedule.rs`); a plan can run in tiles (`tiled.rs`).

use crate::imageio::{self, Image};
use crate::kernels::c4;
use crate::kernels::conv::Precision;
use crate::kernels::pool::PoolKind;
use crate::model::{self, LayerOp, MapShape, StackLayout, CONVS, VGG19};
use crate::objective::{Form, LossLayer, ObjectiveLayout, TermWeights};
use crate::optim::{OptimizerConfig, OptimizerKind, OptimizerLayout, IMAGENET_STD};
use crate::settings::{self, LayerWeight, LossForm, OptimizerChoice, Pooling, Settings};
use crate::bands::BandsLayout;
use crate::tiling::{self, TileGrid};

mod schedule;
mod tiled;
pub use schedule::*;
pub use tiled::TiledLayout;

/// One GPU storage buffer of a plan: what it holds and its size in bytes (rounded as the GPU
/// context rounds every buffer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferSpec {
    pub label: String,
    pub bytes: u64,
}

impl BufferSpec {
    pub fn new(label: impl Into<String>, bytes: u64) -> Self {
        BufferSpec { label: label.into(), bytes: crate::gpu::buffer_size(bytes) }
    }
}

/// The GPU memory a run may use when nothing else says (WebGPU has no memory query): the page's
/// default, and the CLI's unless `--memory-budget` says otherwise.
pub const DEFAULT_MEMORY_BUDGET: u64 = 2 << 30;
/// The longest side a style image may be resized to (style_scale × size is bounded by it).
pub const MAX_STYLE_SIDE: u32 = settings::SIZE_RANGE.1;
/// The largest buffer WebGPU guarantees without asking for more (`maxStorageBufferBindingSize`).
pub const WEBGPU_DEFAULT_MAX_BINDING: u64 = 128 << 20;

/// What a device allows a run: the largest buffer and the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_buffer: u64,
    pub total: u64,
}

/// Why a run cannot be planned: one message that says what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError(pub String);

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}

fn refuse<T>(message: impl Into<String>) -> Result<T, PlanError> {
    Err(PlanError(message.into()))
}

/// Loss layers resolved to op indices of [`VGG19`], and the depth of the stacks they need.
#[derive(Clone, Debug)]
pub struct Layers {
    pub content: Vec<LossLayer>,
    pub style: Vec<LossLayer>,
    /// Ops evaluated for the image being optimised (deepest loss layer + 1).
    pub depth: usize,
    /// Ops evaluated for the style images (deepest style layer + 1; 0 without style layers).
    pub style_depth: usize,
}

/// The buffers that compute one style image's Gram targets (setup phase).
#[derive(Clone, Debug)]
pub struct StyleSetup {
    pub width: u32,
    pub height: u32,
    /// Normalised blend weight (the weights of all styles sum to 1).
    pub weight: f32,
    pub stack: StackLayout,
    pub x: BandsLayout,
    pub gram_partials: BufferSpec,
    pub grams: Vec<BufferSpec>,
    /// Tiles of a tiled run's style image (its Grams summed over the tiles' interiors), whose
    /// `stack` is then sized for the largest tile region.
    pub tiles: Option<StyleTiles>,
}

/// The tiles of a style image and their scratch buffers: a region of x, and a tile interior's
/// features at one style layer.
#[derive(Clone, Debug)]
pub struct StyleTiles {
    pub grid: TileGrid,
    pub tile_x: BufferSpec,
    pub window: BufferSpec,
}

impl StyleSetup {
    pub fn buffers(&self) -> impl Iterator<Item = &BufferSpec> {
        let tiles = self.tiles.iter().flat_map(|t| [&t.tile_x, &t.window]);
        self.stack.buffers().chain(self.x.specs()).chain([&self.gram_partials]).chain(&self.grams).chain(tiles)
    }

    /// This style image's Grams computed in tiles of `tile` px (`style_ops`: the style layers), the
    /// image itself in bands of at most `band_bytes`.
    fn tiled(mut self, tile: usize, style_ops: &[usize], pooling: PoolKind, band_bytes: u64) -> Result<StyleSetup, PlanError> {
        self.x = BandsLayout::banded("style x", self.height as usize, self.width as usize * 3, band_bytes);
        let grid = TileGrid::new(self.width as usize, self.height as usize, tile, style_ops)?;
        let h = grid.tiles.iter().map(|t| t.values.h).max().unwrap_or(0);
        let w = grid.tiles.iter().map(|t| t.values.w).max().unwrap_or(0);
        let full = model::output_shapes(self.height as usize, self.width as usize, self.stack.depth);
        self.stack = StackLayout::new(h, w, self.stack.depth, style_ops, &[], pooling);
        let window = style_ops.iter().map(|&o| (tile / model::downsampling(o)).pow(2) * c4(full[o].c)).max().unwrap_or(1);
        self.tiles = Some(StyleTiles {
            grid,
            tile_x: BufferSpec::new("style tile x", (h * w * 3) as u64 * 4),
            window: BufferSpec::new("style tile interior features", window as u64 * 4),
        });
        Ok(self)
    }
}

/// The image being optimised, its gradient and the last image whose objective was finite (rows of
/// HWC RGB; in bands in a tiled run, see [`crate::bands`]).
#[derive(Clone, Debug)]
pub struct ImageLayout {
    pub x: BandsLayout,
    pub grad: BandsLayout,
    pub last_finite: BandsLayout,
}

impl ImageLayout {
    fn new(h: usize, w: usize, band_bytes: Option<u64>) -> ImageLayout {
        let x = match band_bytes {
            Some(max) => BandsLayout::banded("x", h, w * 3, max),
            None => BandsLayout::single("x", h, w * 3),
        };
        ImageLayout { grad: x.like("dL/dx"), last_finite: x.like("last finite x"), x }
    }

    fn buffers(&self) -> impl Iterator<Item = &BufferSpec> {
        [&self.x, &self.grad, &self.last_finite].into_iter().flat_map(|b| b.specs())
    }
}

/// Everything a run needs, decided before any allocation.
#[derive(Clone, Debug)]
pub struct Plan {
    pub settings: Settings,
    pub width: u32,
    pub height: u32,
    pub layers: Layers,
    pub pooling: PoolKind,
    pub form: Form,
    pub terms: TermWeights,
    pub optimizer: OptimizerConfig,
    pub styles: Vec<StyleSetup>,
    pub stack: StackLayout,
    pub objective: ObjectiveLayout,
    pub optimizer_state: OptimizerLayout,
    pub image: ImageLayout,
    /// The tiles of a tiled run ([`Plan::tiled`]), whose `stack` is then sized for the largest tile
    /// region instead of the image.
    pub tiling: Option<TiledLayout>,
    /// (weights, bias) of every conv the weights file holds, as the network uploads them.
    pub weights: Vec<(BufferSpec, BufferSpec)>,
    pub flops_per_step: u64,
    /// The smallest side the output may have for these layers, and a style image.
    pub min_side: u32,
    pub min_style_side: u32,
}

/// The ops the committed weights file covers (conv1_1..conv5_1), for plans made without weights.
pub fn committed_depth() -> usize {
    depth_for_convs(crate::weights::REQUIRED_LAYERS)
}

/// The number of ops of [`VGG19`] that the first `convs` convolutions cover.
pub fn depth_for_convs(convs: usize) -> usize {
    if convs == 0 {
        return 0;
    }
    let mut seen = 0;
    for (i, op) in VGG19.iter().enumerate() {
        if matches!(op, LayerOp::Conv(_)) {
            seen += 1;
            if seen == convs {
                return i + 1;
            }
        }
    }
    VGG19.len()
}

/// The blend weights of `count` style images: `settings.style_blend` when given, else `given` (one
/// per image: the page's per-style weights, 1 in the CLI), normalised to sum to 1.
pub fn blend_weights(settings: &Settings, given: &[f32]) -> Result<Vec<f32>, PlanError> {
    let raw: Vec<f32> = if settings.style_blend.is_empty() {
        given.to_vec()
    } else if settings.style_blend.len() == given.len() {
        settings.style_blend.clone()
    } else {
        return refuse(format!(
            "style_blend has {} weights but {} style images are given: give one weight per style image",
            settings.style_blend.len(),
            given.len()
        ));
    };
    if let Some(bad) = raw.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        return refuse(format!("style blend weight {bad} must be a finite number >= 0"));
    }
    let sum: f64 = raw.iter().map(|&w| w as f64).sum();
    if !raw.is_empty() && sum <= 0.0 {
        return refuse("the style blend weights are all 0: give at least one style a weight above 0");
    }
    Ok(raw.iter().map(|&w| (w as f64 / sum) as f32).collect())
}

/// The longest side of the style images for these settings (style_scale × size, rounded).
pub fn style_side(settings: &Settings) -> u32 {
    ((settings.style_scale as f64 * settings.size as f64).round() as u32).max(1)
}

fn resolve_layers(settings: &Settings, available_depth: usize) -> Result<Layers, PlanError> {
    let resolve = |option: &str, layers: &[LayerWeight]| -> Result<Vec<LossLayer>, PlanError> {
        layers
            .iter()
            .map(|l| {
                let Some(op) = model::layer_index(&l.layer) else {
                    return refuse(format!(
                        "{option}: unknown layer {:?}; valid layers are {}",
                        l.layer,
                        model::relu_layer_names().join(", ")
                    ));
                };
                if op >= available_depth {
                    let conv = model::conv_of(&l.layer).map_or("?", |c| c.conv);
                    return refuse(format!(
                        "{option}: {} needs {conv}, which the weights file does not contain; use a shallower layer \
                         or the float32 source weights (all 16 convolutions)",
                        l.layer
                    ));
                }
                Ok(LossLayer { op, weight: l.weight })
            })
            .collect()
    };
    let content = resolve("content_layers", &settings.content_layers)?;
    let style = resolve("style_layers", &settings.style_layers)?;
    if content.is_empty() && style.is_empty() {
        return refuse("no content or style layers given");
    }
    let depth = content.iter().chain(&style).map(|l| l.op + 1).max().unwrap_or(1);
    let style_depth = style.iter().map(|l| l.op + 1).max().unwrap_or(0);
    Ok(Layers { content, style, depth, style_depth })
}

/// The optimiser as these settings configure it.
pub fn optimizer_config(settings: &Settings) -> OptimizerConfig {
    let seed = settings.loss_form == LossForm::Seed;
    let kind = match settings.optimizer {
        OptimizerChoice::Adam => OptimizerKind::Adam,
        OptimizerChoice::Lbfgs => OptimizerKind::Lbfgs,
    };
    OptimizerConfig {
        kind,
        lr: settings.lr,
        channel_lr_scale: if seed { IMAGENET_STD } else { [1.0; 3] },
        lbfgs_history: settings.lbfgs_history as usize,
        // Adam clamps to [0,1] after each step; L-BFGS and the seed form do not (clamped at output).
        clamp: kind == OptimizerKind::Adam && !seed,
    }
}

/// The conv weights as [`crate::model::Network::upload_in`] pads them: `[cout][3][3][cin4]` in
/// `precision` and the bias `[cout4]` in f32.
pub fn weight_layout(convs: usize, precision: Precision) -> Vec<(BufferSpec, BufferSpec)> {
    CONVS[..convs.min(CONVS.len())]
        .iter()
        .map(|c| {
            (
                BufferSpec::new(format!("{}.weight", c.conv), (c.cout * 9 * c4(c.cin) * precision.weight_bytes()) as u64),
                BufferSpec::new(format!("{}.bias", c.conv), (c4(c.cout) * 4) as u64),
            )
        })
        .collect()
}

/// Floating point operations of one conv pass (forward, or backward to the input: the same
/// count) over the first `depth` ops, whose input maps have these (h, w); the rest of a step is
/// negligible.
fn conv_flops(shapes_in: &[(usize, usize)], depth: usize) -> u64 {
    VGG19[..depth]
        .iter()
        .zip(shapes_in)
        .map(|(op, &(h, w))| match op {
            LayerOp::Conv(c) => 2 * (h * w) as u64 * c4(c.cin) as u64 * c.cout as u64 * 9,
            LayerOp::Pool => 0,
        })
        .sum()
}

/// Conv FLOPs of one forward pass of the first `depth` ops over an `h`×`w` image.
fn forward_flops(h: usize, w: usize, depth: usize) -> u64 {
    let inputs: Vec<(usize, usize)> = std::iter::once((h, w)).chain(model::output_shapes(h, w, depth).iter().map(|s| (s.h, s.w))).collect();
    conv_flops(&inputs, depth)
}

impl Plan {
    /// The plan for images of these sizes (before resizing): the output's longest side is
    /// `settings.size`, each style image's is `style_scale × size`. `style_weights` has one weight
    /// per style image (see [`blend_weights`]); `weight_convs` is how many convolutions the weights
    /// file holds.
    pub fn for_images(
        settings: &Settings,
        content: (u32, u32),
        styles: &[(u32, u32)],
        style_weights: &[f32],
        weight_convs: usize,
    ) -> Result<Plan, PlanError> {
        settings.validate().map_err(|e| PlanError(e.to_string()))?;
        if content.0 == 0 || content.1 == 0 {
            return refuse(format!("the content image is empty ({}×{})", content.0, content.1));
        }
        let (width, height) = imageio::size_for_longest(content.0, content.1, settings.size);
        let side = style_side(settings);
        if side > MAX_STYLE_SIDE {
            return refuse(format!(
                "the style images would be resized to {side} px (style_scale {} × size {}), more than the {MAX_STYLE_SIDE} px \
                 allowed: lower style_scale or size",
                settings::fmt_float(settings.style_scale),
                settings.size
            ));
        }
        let style_sizes: Vec<(u32, u32)> = styles
            .iter()
            .map(|&(w, h)| if w == 0 || h == 0 { (0, 0) } else { imageio::size_for_longest(w, h, side) })
            .collect();
        Plan::at_sizes(settings, (width, height), &style_sizes, style_weights, weight_convs)
    }

    /// The plan for an output of exactly `size` and style images of exactly `style_sizes`.
    pub fn at_sizes(
        settings: &Settings,
        (width, height): (u32, u32),
        style_sizes: &[(u32, u32)],
        style_weights: &[f32],
        weight_convs: usize,
    ) -> Result<Plan, PlanError> {
        let available_depth = depth_for_convs(weight_convs);
        let layers = resolve_layers(settings, available_depth)?;
        if style_sizes.len() != style_weights.len() {
            return refuse(format!("{} style images but {} style weights", style_sizes.len(), style_weights.len()));
        }
        if style_sizes.len() > settings::MAX_STYLES {
            return refuse(format!("at most {} style images can be blended", settings::MAX_STYLES));
        }
        if !layers.style.is_empty() && style_sizes.is_empty() {
            return refuse("no style image given: the style layers need at least one");
        }
        let blend = blend_weights(settings, style_weights)?;
        let min_side = model::min_side_for_depth(layers.depth);
        let min_style_side = model::min_side_for_depth(layers.style_depth);
        if width.min(height) < min_side {
            return refuse(format!(
                "the result would be {width}×{height} px, but the deepest layer used needs at least {min_side} px on each side \
                 (each pooling halves the image): raise size, use a less elongated image, or use shallower layers"
            ));
        }
        for &(w, h) in style_sizes {
            if w.min(h) < min_style_side {
                return refuse(format!(
                    "a style image would be {w}×{h} px, but the deepest style layer needs at least {min_style_side} px on each \
                     side: raise size or style_scale, use a less elongated style image, or use shallower style layers"
                ));
            }
        }

        let pooling = match settings.pooling {
            Pooling::Max => PoolKind::Max,
            Pooling::Avg => PoolKind::Avg,
        };
        let form = match settings.loss_form {
            LossForm::Canonical => Form::Canonical,
            LossForm::Seed => Form::Seed,
        };
        let terms = TermWeights { content: settings.content_weight, style: settings.style_weight, tv: settings.tv_weight };
        let optimizer = optimizer_config(settings);
        let (h, w) = (height as usize, width as usize);
        let loss_ops: Vec<usize> = layers.content.iter().chain(&layers.style).map(|l| l.op).collect();
        let content_ops: Vec<usize> = layers.content.iter().map(|l| l.op).collect();
        let style_ops: Vec<usize> = layers.style.iter().map(|l| l.op).collect();
        let stack = StackLayout::new(h, w, layers.depth, &loss_ops, &content_ops, pooling);
        let objective = ObjectiveLayout::new(&stack.shapes, &layers.content, &layers.style, h, w);
        let image = ImageLayout::new(h, w, None);
        let optimizer_state = OptimizerLayout::for_image(&optimizer, &image.x);
        let styles = if layers.style.is_empty() {
            Vec::new()
        } else {
            style_sizes
                .iter()
                .zip(&blend)
                .map(|(&(sw, sh), &weight)| {
                    let (sh_, sw_) = (sh as usize, sw as usize);
                    let stack = StackLayout::new(sh_, sw_, layers.style_depth, &style_ops, &[], pooling);
                    let gram_partials = style_ops
                        .iter()
                        .map(|&op| {
                            let s = stack.shapes[op];
                            crate::kernels::gram::Gram::partials_len(s.h, s.w, s.c)
                        })
                        .max()
                        .unwrap_or(1);
                    StyleSetup {
                        width: sw,
                        height: sh,
                        weight,
                        x: BandsLayout::single("style x", sh_, sw_ * 3),
                        gram_partials: BufferSpec::new("style gram partials", gram_partials as u64 * 4),
                        grams: style_ops
                            .iter()
                            .map(|&op| BufferSpec::new("style gram", c4(stack.shapes[op].c).pow(2) as u64 * 4))
                            .collect(),
                        stack,
                        tiles: None,
                    }
                })
                .collect()
        };
        // forward, and backward to the input over the same maps
        let flops_per_step = 2 * forward_flops(h, w, layers.depth);
        Ok(Plan {
            settings: settings.clone(),
            width,
            height,
            layers,
            pooling,
            form,
            terms,
            optimizer,
            styles,
            stack,
            objective,
            optimizer_state,
            image,
            tiling: None,
            weights: weight_layout(weight_convs, Precision::F32),
            flops_per_step,
            min_side,
            min_style_side,
        })
    }

    /// This plan with the conv weights stored in `precision` (plans are made in f32; a network
    /// uploaded in f16 holds half the weight bytes).
    pub fn weights_in(mut self, precision: Precision) -> Plan {
        self.weights = weight_layout(self.weights.len(), precision);
        self
    }

    /// Every (h, w, depth) a feature stack of this plan runs VGG19 on: the image (or each tile's
    /// two regions) and each style image (or its tiles'). The autotuner times their convolutions.
    pub fn stack_maps(&self) -> Vec<(usize, usize, usize)> {
        let regions = |grid: &crate::tiling::TileGrid, depth: usize| -> Vec<(usize, usize, usize)> {
            grid.tiles.iter().flat_map(|t| [t.values, t.grads]).map(|r| (r.h, r.w, depth)).collect()
        };
        let mut maps = match &self.tiling {
            Some(t) => regions(&t.grid, self.stack.depth),
            None => vec![(self.stack.h, self.stack.w, self.stack.depth)],
        };
        for style in &self.styles {
            match &style.tiles {
                Some(t) => maps.extend(regions(&t.grid, style.stack.depth)),
                None => maps.push((style.height as usize, style.width as usize, style.stack.depth)),
            }
        }
        maps.sort_unstable();
        maps.dedup();
        maps
    }

    /// The shapes of the loss maps for the whole image (the stack's own, unless tiled).
    pub fn objective_shapes(&self) -> Vec<MapShape> {
        model::output_shapes(self.height as usize, self.width as usize, self.layers.depth)
    }

    /// The buffers of the run itself (allocated after the style targets are computed).
    pub fn run_buffers(&self) -> Vec<&BufferSpec> {
        self.stack
            .buffers()
            .chain(self.objective.buffers())
            .chain(self.optimizer_state.buffers())
            .chain(self.image.buffers())
            .chain(self.tiling.iter().flat_map(|t| t.buffers()))
            .collect()
    }

    pub fn weight_bytes(&self) -> u64 {
        self.weights.iter().map(|(w, b)| w.bytes + b.bytes).sum()
    }

    pub fn run_bytes(&self) -> u64 {
        self.run_buffers().iter().map(|b| b.bytes).sum()
    }

    /// The largest style setup (they run one after the other).
    pub fn style_setup_bytes(&self) -> u64 {
        self.styles.iter().map(|s| s.buffers().map(|b| b.bytes).sum::<u64>()).max().unwrap_or(0)
    }

    /// The peak GPU memory of the run: weights plus the larger phase.
    pub fn total_bytes(&self) -> u64 {
        self.weight_bytes() + self.run_bytes().max(self.style_setup_bytes())
    }

    pub fn largest_buffer_bytes(&self) -> u64 {
        let weights = self.weights.iter().flat_map(|(w, b)| [w, b]);
        let styles = self.styles.iter().flat_map(|s| s.buffers());
        self.run_buffers().into_iter().chain(weights).chain(styles).map(|b| b.bytes).max().unwrap_or(0)
    }

    /// Refuses a plan the device cannot hold, naming the figures.
    pub fn check(&self, budget: &Budget) -> Result<(), PlanError> {
        self.check_buffers(budget)?;
        check_schedule(std::slice::from_ref(self), budget)
    }

    /// The largest buffer against the device's limit.
    fn check_buffers(&self, budget: &Budget) -> Result<(), PlanError> {
        let mib = |b: u64| b as f64 / 1048576.0;
        let largest = self.largest_buffer_bytes();
        if largest > budget.max_buffer {
            return refuse(format!(
                "{}×{} needs a {:.1} MiB GPU buffer but this GPU allows at most {:.1} MiB per buffer: choose a smaller size",
                self.width,
                self.height,
                mib(largest),
                mib(budget.max_buffer)
            ));
        }
        Ok(())
    }

    /// The plan as one JSON object (`stylize plan`). The field names are stable: scripts read them.
    pub fn to_json(&self, budget: &Budget) -> serde_json::Value {
        let refusal = self.check(budget).err().map(|e| e.0);
        let buffers: Vec<serde_json::Value> = self
            .run_buffers()
            .iter()
            .map(|b| serde_json::json!({ "label": b.label, "bytes": b.bytes }))
            .collect();
        serde_json::json!({
            "width": self.width,
            "height": self.height,
            "style_sizes": self.styles.iter().map(|s| [s.width, s.height]).collect::<Vec<_>>(),
            "style_weights": self.styles.iter().map(|s| s.weight).collect::<Vec<_>>(),
            "content_layers": self.settings.content_layers.iter().map(|l| l.layer.clone()).collect::<Vec<_>>(),
            "style_layers": self.settings.style_layers.iter().map(|l| l.layer.clone()).collect::<Vec<_>>(),
            "depth": self.layers.depth,
            "min_side": self.min_side,
            "min_style_side": self.min_style_side,
            "optimizer": self.settings.optimizer.name(),
            "total_bytes": self.total_bytes(),
            "largest_buffer_bytes": self.largest_buffer_bytes(),
            "weight_bytes": self.weight_bytes(),
            "run_bytes": self.run_bytes(),
            "style_setup_bytes": self.style_setup_bytes(),
            "flops_per_step": self.flops_per_step,
            "tile": self.tiling.as_ref().map(|t| t.grid.tile),
            "tiles": self.tiling.as_ref().map_or(1, |t| t.grid.tiles.len()),
            "halo": self.tiling.as_ref().map(|t| t.grid.halo_grads),
            "memory_budget": budget.total,
            "max_buffer": budget.max_buffer,
            "fits": refusal.is_none(),
            "refusal": refusal,
            "buffers": buffers,
        })
    }

    /// Resizes the inputs to the plan's sizes: the content to the output size, each style image to
    /// its style size, the init image to the output size. One path for the CLI and the page.
    pub fn prepare(&self, content: &Image, styles: &[&Image], init: Option<&Image>) -> Result<PreparedInputs, PlanError> {
        let expected = if self.layers.style.is_empty() { 0 } else { styles.len() };
        if self.styles.len() != expected {
            return refuse(format!("the plan was made for {} style images, {} given", self.styles.len(), styles.len()));
        }
        Ok(PreparedInputs {
            content: imageio::resize_to(content, self.width, self.height),
            styles: self
                .styles
                .iter()
                .zip(styles)
                .map(|(s, img)| (imageio::resize_to(img, s.width, s.height), s.weight))
                .collect(),
            init: init.map(|img| imageio::resize_to(img, self.width, self.height)),
        })
    }
}

/// The inputs of a run at the plan's sizes.
pub struct PreparedInputs {
    pub content: Image,
    /// Each style image with its normalised blend weight.
    pub styles: Vec<(Image, f32)>,
    pub init: Option<Image>,
}
