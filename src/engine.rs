//! The `Stylizer`: one style-transfer run at one image size.
//!
//! Built once per (settings, images): it allocates every buffer and builds every
//! dispatch up front, so a step is one compute pass and one submit, with nothing
//! read back. The CLI and the web page both drive it; nothing here blocks.

use std::fmt;
use std::sync::Arc;

use crate::gpu::{Dispatch, GpuContext, GpuError};
use crate::imageio::Image;
use crate::kernels::pool::PoolKind;
use crate::model::{layer_index, FeatureStack, MapShape, VGG19};
use crate::objective::{Form, LossLayer, Objective, TermWeights, SCALAR_SLOTS};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerKind, IMAGENET_STD};
use crate::settings::{Init, LayerWeight, LossForm, OptimizerChoice, Pooling, Settings};

pub use crate::model::Network;


/// The objective's terms at the start of a step (before its update).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLosses {
    pub step: u32,
    pub content: f64,
    pub style: f64,
    pub tv: f64,
    pub total: f64,
}

#[derive(Debug, Clone)]
pub enum EngineError {
    Gpu(GpuError),
    Settings(String),
    Input(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Gpu(e) => write!(f, "{e}"),
            EngineError::Settings(e) => write!(f, "{e}"),
            EngineError::Input(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<GpuError> for EngineError {
    fn from(e: GpuError) -> Self {
        EngineError::Gpu(e)
    }
}

/// Loss layers resolved to op indices, and the depth of the stack they need.
struct LayerPlan {
    content: Vec<LossLayer>,
    style: Vec<LossLayer>,
    depth: usize,
    style_depth: usize,
}

fn resolve_layers(settings: &Settings, available_depth: usize) -> Result<LayerPlan, EngineError> {
    let resolve = |layers: &[LayerWeight]| -> Result<Vec<LossLayer>, EngineError> {
        layers
            .iter()
            .map(|l| {
                let op = layer_index(&l.layer).ok_or_else(|| {
                    EngineError::Settings(format!(
                        "unknown layer {:?}; valid layers are {}",
                        l.layer,
                        crate::model::relu_layer_names().join(", ")
                    ))
                })?;
                if op >= available_depth {
                    return Err(EngineError::Settings(format!(
                        "layer {} needs {}, which the weights file does not contain; use a shallower layer or a weights file with it",
                        l.layer,
                        l.layer.replace("relu", "conv")
                    )));
                }
                Ok(LossLayer { op, weight: l.weight })
            })
            .collect()
    };
    let content = resolve(&settings.content_layers)?;
    let style = resolve(&settings.style_layers)?;
    if content.is_empty() && style.is_empty() {
        return Err(EngineError::Settings("no content or style layers given".into()));
    }
    let depth = content.iter().chain(&style).map(|l| l.op + 1).max().unwrap_or(1);
    let style_depth = style.iter().map(|l| l.op + 1).max().unwrap_or(0);
    Ok(LayerPlan { content, style, depth, style_depth })
}

fn pool_kind(settings: &Settings) -> PoolKind {
    match settings.pooling {
        Pooling::Max => PoolKind::Max,
        Pooling::Avg => PoolKind::Avg,
    }
}

fn form(settings: &Settings) -> Form {
    match settings.loss_form {
        LossForm::Canonical => Form::Canonical,
        LossForm::Seed => Form::Seed,
    }
}

fn optimizer_config(settings: &Settings) -> OptimizerConfig {
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

/// GPU memory (bytes) a run at `width`×`height` needs, computed without allocating.
/// Includes the network's weights.
pub fn plan_bytes(net_weight_bytes: u64, width: u32, height: u32, settings: &Settings) -> Result<u64, EngineError> {
    let layers = resolve_layers(settings, VGG19.len())?;
    let (h, w) = (height as usize, width as usize);
    let stack = crate::model::output_shapes(h, w, layers.depth);
    let loss_ops: Vec<usize> = layers.content.iter().chain(&layers.style).map(|l| l.op).collect();
    let content_ops: Vec<usize> = layers.content.iter().map(|l| l.op).collect();
    let style_ops: Vec<usize> = layers.style.iter().map(|l| l.op).collect();
    let n = (h * w * 3) as u64;
    let round = |bytes: u64| bytes.max(16).div_ceil(16) * 16;
    Ok(net_weight_bytes
        + FeatureStack::plan(h, w, layers.depth, &loss_ops, &content_ops, pool_kind(settings)).total()
        + Objective::plan(&stack, &style_ops, &content_ops, h, w)
        + 2 * round(n * 4) // x and dL/dx
        + Optimizer::plan_bytes(&optimizer_config(settings), n as usize))
}

/// Weight bytes of the full committed network (conv1_1..conv5_1), for plans made without a GPU.
pub fn vgg19_weight_bytes(depth: usize) -> u64 {
    VGG19[..depth.min(VGG19.len())]
        .iter()
        .map(|op| match *op {
            crate::model::LayerOp::Conv { cin, cout, .. } => {
                let round = |bytes: u64| bytes.max(16).div_ceil(16) * 16;
                round((cout * 9 * crate::kernels::c4(cin) * 4) as u64) + round((crate::kernels::c4(cout) * 4) as u64)
            }
            crate::model::LayerOp::Pool => 0,
        })
        .sum()
}

/// One style-transfer run.
pub struct Stylizer {
    ctx: Arc<GpuContext>,
    width: u32,
    height: u32,
    /// The image being optimised: HWC RGB f32.
    x: wgpu::Buffer,
    grad_x: wgpu::Buffer,
    objective: Objective,
    /// Objective and gradient at x (no update).
    evaluate: Vec<Dispatch>,
    optimizer: Optimizer,
    steps: u32,
    /// The step whose starting objective the scalars hold (1-based).
    evaluated_step: u32,
    /// Buffers this run allocated (bytes), weights excluded.
    allocated: u64,
    // Kept alive: the dispatches bind these.
    _stack: FeatureStack,
}

impl Stylizer {
    /// `content` is already at the output size; `styles` are (image at its style scale, blend weight);
    /// `init` (for `Init::Path`, or any explicit start image) is resized here to the content's size.
    pub async fn new(
        ctx: Arc<GpuContext>,
        net: &Network,
        settings: &Settings,
        content: &Image,
        styles: &[(Image, f32)],
        init: Option<&Image>,
    ) -> Result<Stylizer, EngineError> {
        let layers = resolve_layers(settings, net.available_depth)?;
        check_image("content", content)?;
        if !layers.style.is_empty() && styles.is_empty() {
            return Err(EngineError::Input("no style image given".into()));
        }
        for (image, weight) in styles {
            check_image("style", image)?;
            if !(weight.is_finite() && *weight >= 0.0) {
                return Err(EngineError::Settings(format!("style blend weight {weight} must be a finite number >= 0")));
            }
        }
        let blend_sum: f64 = styles.iter().map(|(_, w)| *w as f64).sum();
        if !styles.is_empty() && blend_sum <= 0.0 {
            return Err(EngineError::Settings("the style blend weights must not all be 0".into()));
        }
        check_feature_sizes("content", content, layers.depth)?;
        for (image, _) in styles {
            check_feature_sizes("style", image, layers.style_depth)?;
        }
        let allocated_before = ctx.allocated_bytes();
        let pooling = pool_kind(settings);
        let form = form(settings);

        // Style targets: T_l = Σ_k b_k G_l(s_k), computed at each style image's own size.
        let mut targets: Vec<Vec<f64>> = Vec::new();
        if !layers.style.is_empty() {
            for (image, weight) in styles {
                let grams = style_grams(net, image, &layers.style, layers.style_depth, pooling, form).await?;
                let b = *weight as f64 / blend_sum;
                if targets.is_empty() {
                    targets = grams.iter().map(|g| vec![0.0; g.len()]).collect();
                }
                for (t, g) in targets.iter_mut().zip(&grams) {
                    for (ti, gi) in t.iter_mut().zip(g) {
                        *ti += b * *gi as f64;
                    }
                }
            }
        }
        let temporary = ctx.allocated_bytes() - allocated_before;

        let (h, w) = (content.height as usize, content.width as usize);
        let loss_ops: Vec<usize> = layers.content.iter().chain(&layers.style).map(|l| l.op).collect();
        let content_ops: Vec<usize> = layers.content.iter().map(|l| l.op).collect();
        let stack = FeatureStack::new(net, h, w, layers.depth, &loss_ops, &content_ops, pooling)?;
        let terms = TermWeights { content: settings.content_weight, style: settings.style_weight, tv: settings.tv_weight };
        let objective = Objective::new(&ctx, &stack, &layers.content, &layers.style, form, terms);
        for ((_, _, target), t) in objective.style.iter().zip(&targets) {
            let t32: Vec<f32> = t.iter().map(|&v| v as f32).collect();
            ctx.queue.write_buffer(target, 0, bytemuck::cast_slice(&t32));
        }
        let n = h * w * 3;
        ctx.check_size("the image", n as u64 * 4)?;
        let x = ctx.storage_buffer("x", n as u64 * 4);
        let grad_x = ctx.storage_buffer("dL/dx", n as u64 * 4);
        let to_input = net.kernels.image.to_network_input(&ctx, h, w, &x, &stack.input, &net.input);

        // Content targets: features of the content image at the content layers.
        if !layers.content.is_empty() {
            ctx.queue.write_buffer(&x, 0, bytemuck::cast_slice(&content.rgb));
            let mut forward = vec![to_input.clone()];
            forward.extend(stack.forward(net, |_, _| Vec::new()));
            let mut encoder = ctx.encoder("content targets");
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                for d in &forward {
                    d.record(&mut pass);
                }
            }
            for (layer, target) in &objective.content {
                let features = stack.kept_features(layer.op).expect("content layers are kept");
                encoder.copy_buffer_to_buffer(features, 0, target, 0, target.size());
            }
            ctx.submit(encoder);
        }

        // The objective at x and its gradient, built once.
        let mut written = [false; SCALAR_SLOTS];
        let mut evaluate = vec![to_input];
        let shapes = stack.shapes.clone();
        evaluate.extend(stack.forward(net, |op, features| objective.forward_at(net, op, shapes[op], features, &mut written)));
        evaluate.extend(objective.finish_values(net, h, w, &x, &written));
        let (backward, grad_v) = stack.backward(net, |op, features, grad, accumulate| {
            objective.backward_at(net, op, shapes[op], features, grad, accumulate)
        });
        evaluate.extend(backward);
        evaluate.push(net.kernels.image.network_grad_to_image(&ctx, h, w, grad_v, &grad_x, &net.input));
        evaluate.push(objective.tv_grad(net, h, w, &x, &grad_x));

        // The start image.
        let start = start_image(settings, content, styles, init)?;
        ctx.queue.write_buffer(&x, 0, bytemuck::cast_slice(&start));
        let optimizer = Optimizer::new(&ctx, &optimizer_config(settings), &x, &grad_x, n).map_err(|e| EngineError::Settings(e.to_string()))?;
        let allocated = ctx.allocated_bytes() - allocated_before - temporary;
        if let Some(e) = ctx.take_error() {
            return Err(e.into());
        }
        Ok(Stylizer {
            ctx,
            width: content.width,
            height: content.height,
            x,
            grad_x,
            objective,
            evaluate,
            optimizer,
            steps: 0,
            evaluated_step: 1,
            allocated,
            _stack: stack,
        })
    }

    /// Records and submits one step: objective, gradient and update, in one pass.
    pub fn step(&mut self) {
        self.optimizer.prepare_step(&self.ctx);
        let mut encoder = self.ctx.encoder("step");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
            for d in &self.evaluate {
                d.record(&mut pass);
            }
            self.optimizer.record_step(&mut pass);
        }
        self.ctx.submit(encoder);
        self.optimizer.finish_step();
        self.steps += 1;
        self.evaluated_step = self.steps;
    }

    /// Computes the objective and dL/dx at the current image without updating it.
    pub fn evaluate(&mut self) {
        let dispatches: Vec<&Dispatch> = self.evaluate.iter().collect();
        self.ctx.run(&dispatches);
        self.evaluated_step = self.steps + 1;
    }

    pub fn steps_done(&self) -> u32 {
        self.steps
    }

    /// The objective at the start of the last step (or of the last `evaluate`).
    pub async fn losses(&self) -> Result<StepLosses, EngineError> {
        let v = self.ctx.read_f32(&self.objective.scalars, 0, SCALAR_SLOTS).await?;
        Ok(StepLosses {
            step: self.evaluated_step,
            content: v[crate::objective::SLOT_CONTENT] as f64,
            style: v[crate::objective::SLOT_STYLE] as f64,
            tv: v[crate::objective::SLOT_TV] as f64,
            total: v[crate::objective::SLOT_TOTAL] as f64,
        })
    }

    /// The current image, clamped to [0,1].
    pub async fn image(&self) -> Result<Image, EngineError> {
        let mut rgb = self.ctx.read_f32(&self.x, 0, (self.width * self.height * 3) as usize).await?;
        for v in &mut rgb {
            *v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        }
        Ok(Image { width: self.width, height: self.height, rgb })
    }

    /// dL/dx at the current image (HWC RGB, [0,1] units).
    pub async fn gradient(&mut self) -> Result<Vec<f32>, EngineError> {
        self.evaluate();
        Ok(self.ctx.read_f32(&self.grad_x, 0, (self.width * self.height * 3) as usize).await?)
    }

    /// x on the GPU (HWC RGB f32), for renderers that draw straight from it.
    pub fn image_buffer(&self) -> &wgpu::Buffer {
        &self.x
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// GPU bytes this run allocated (the network's weights not included).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated
    }

    /// The dispatches of one evaluation, for the benchmark's per-kernel timing.
    pub fn evaluate_dispatches(&self) -> &[Dispatch] {
        &self.evaluate
    }

    /// The optimiser's dispatches of the next step, for the benchmark's per-kernel timing.
    pub fn optimizer_dispatches(&self) -> Vec<&Dispatch> {
        self.optimizer.step_dispatches()
    }
}

/// Each pooling halves the map: an image too small for the deepest layer would leave it empty.
fn check_feature_sizes(what: &str, image: &Image, depth: usize) -> Result<(), EngineError> {
    let shapes = crate::model::output_shapes(image.height as usize, image.width as usize, depth);
    if shapes.last().is_some_and(|s| s.h == 0 || s.w == 0) {
        let pools = VGG19[..depth].iter().filter(|op| matches!(op, crate::model::LayerOp::Pool)).count();
        return Err(EngineError::Input(format!(
            "the {what} image ({}×{}) is too small for the deepest layer used, which needs at least {} px per side; \
             use a larger size or style scale, or shallower layers",
            image.width,
            image.height,
            1usize << pools
        )));
    }
    Ok(())
}

fn check_image(what: &str, image: &Image) -> Result<(), EngineError> {
    if image.width == 0 || image.height == 0 || image.rgb.len() != (image.width * image.height * 3) as usize {
        return Err(EngineError::Input(format!(
            "the {what} image is empty or malformed ({}×{}, {} values)",
            image.width,
            image.height,
            image.rgb.len()
        )));
    }
    Ok(())
}

/// The style image's Gram matrices at the style layers, at its own size (setup only: reads back).
async fn style_grams(
    net: &Network,
    image: &Image,
    style: &[LossLayer],
    depth: usize,
    pooling: PoolKind,
    form: Form,
) -> Result<Vec<Vec<f32>>, EngineError> {
    let ctx = &net.ctx;
    let (h, w) = (image.height as usize, image.width as usize);
    let ops: Vec<usize> = style.iter().map(|l| l.op).collect();
    let stack = FeatureStack::new(net, h, w, depth, &ops, &[], pooling)?;
    let x = ctx.storage_buffer_init("style x", bytemuck::cast_slice(&image.rgb));
    let shapes = stack.shapes.clone();
    let scratch_len = style
        .iter()
        .map(|l| crate::kernels::gram::Gram::partials_len(shapes[l.op].h, shapes[l.op].w, shapes[l.op].c))
        .max()
        .unwrap_or(1);
    let partials = ctx.storage_buffer("style gram partials", scratch_len as u64 * 4);
    let grams: Vec<(usize, wgpu::Buffer)> = ops
        .iter()
        .map(|&op| (op, ctx.storage_buffer("style gram", crate::kernels::c4(shapes[op].c).pow(2) as u64 * 4)))
        .collect();
    let mut dispatches =
        vec![net.kernels.image.to_network_input(ctx, h, w, &x, &stack.input, &net.input)];
    dispatches.extend(stack.forward(net, |op, features| {
        let s: MapShape = shapes[op];
        grams
            .iter()
            .filter(|(o, _)| *o == op)
            .flat_map(|(_, g)| net.kernels.gram.build(ctx, s.h, s.w, s.c, features, &partials, g, form.gram_scale(s)))
            .collect()
    }));
    let refs: Vec<&Dispatch> = dispatches.iter().collect();
    ctx.run(&refs);
    let mut out = Vec::with_capacity(grams.len());
    for (op, g) in &grams {
        out.push(ctx.read_f32(g, 0, crate::kernels::c4(shapes[*op].c).pow(2)).await?);
    }
    Ok(out)
}

/// The start image x₀ as HWC RGB.
fn start_image(settings: &Settings, content: &Image, styles: &[(Image, f32)], init: Option<&Image>) -> Result<Vec<f32>, EngineError> {
    let (w, h) = (content.width, content.height);
    if let Some(image) = init {
        check_image("init", image)?;
        return Ok(crate::imageio::resize_to(image, w, h).rgb);
    }
    Ok(match &settings.init {
        Init::Content => content.rgb.clone(),
        Init::Style => {
            let (first, _) = styles.first().ok_or_else(|| EngineError::Input("--init style needs a style image".into()))?;
            crate::imageio::resize_to(first, w, h).rgb
        }
        Init::Noise => noise(settings.seed, (w * h * 3) as usize),
        Init::Path(path) => {
            return Err(EngineError::Input(format!("the init image {path} was not loaded; pass it to the engine")));
        }
    })
}

/// Deterministic noise around mid-grey, from `seed` (splitmix64 → Box–Muller).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next(), next());
            let gauss = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (0.5 + 0.15 * gauss).clamp(0.0, 1.0) as f32
        })
        .collect()
}
