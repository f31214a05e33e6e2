//! The `Stylizer`: one style-transfer run at one image size.
//!
//! Built once per (settings, images): it allocates every buffer and builds every
//! dispatch up front, so a step is one compute pass and one submit (one per tile pass in a
//! tiled run, so that its progress can be followed), with nothing read back. The CLI and the
//! web page both drive it; nothing here blocks.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::bands::Bands;
use crate::gpu::{Dispatch, GpuContext, GpuError};
use crate::imageio::Image;
use crate::model::{FeatureStack, MapShape};
use crate::objective::{Form, LossLayer, Objective, SCALAR_SLOTS, SLOT_TOTAL};
use crate::optim::Optimizer;
use crate::plan::{Plan, PlanError, PreparedInputs, StyleSetup};
use crate::kernels::colour::{ColourMap, ColourStats};
use crate::settings::{ColourMode, Init, Settings};
use crate::tiling::{TileBuffers, TiledPasses};

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
    /// The run cannot be planned (sizes, layers, memory): see [`crate::plan`].
    Plan(String),
    /// The objective stopped being a number at this step (its value: NaN or ±inf).
    Diverged { step: u32, value: f64 },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Gpu(e) => write!(f, "{e}"),
            EngineError::Settings(e) => write!(f, "{e}"),
            EngineError::Input(e) => write!(f, "{e}"),
            EngineError::Plan(e) => write!(f, "{e}"),
            EngineError::Diverged { step, value } => write!(
                f,
                "the objective became {value} at step {step}: the content or style weights or the learning rate are \
                 too large; the image is back at the last step whose objective was finite"
            ),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<PlanError> for EngineError {
    fn from(e: PlanError) -> Self {
        EngineError::Plan(e.0)
    }
}

impl From<GpuError> for EngineError {
    fn from(e: GpuError) -> Self {
        EngineError::Gpu(e)
    }
}

/// Where a tiled step stands: it runs two passes over the tiles (values, then gradients), one
/// submission per tile and pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileProgress {
    pub tiles: u32,
    /// Tile passes the GPU has finished in the current step: 0 to 2 × tiles.
    pub done: u32,
}

impl TileProgress {
    /// Tile passes in a step.
    pub fn parts(&self) -> u32 {
        2 * self.tiles
    }

    /// The pass (1 or 2) and the tile (1-based) running now; the last ones once the step is done.
    pub fn running(&self) -> (u32, u32) {
        let part = self.done.min(self.parts() - 1);
        (part / self.tiles + 1, part % self.tiles + 1)
    }

    /// "tile 3 of 12, pass 2 of 2"
    pub fn describe(&self) -> String {
        let (pass, tile) = self.running();
        format!("tile {tile} of {}, pass {pass} of 2", self.tiles)
    }
}

/// A function told of each finished tile pass (it runs wherever wgpu reports finished work: inside a
/// submit or a device poll natively, on the event loop in the browser).
pub type TileHook = Arc<dyn Fn(TileProgress) + Send + Sync>;

/// A scale's image carried to the next scale of a coarse-to-fine run: (width, height) and the buffer.
pub struct Carried {
    pub image: wgpu::Buffer,
    pub size: (usize, usize),
}

/// One style-transfer run.
pub struct Stylizer {
    ctx: Arc<GpuContext>,
    width: u32,
    height: u32,
    /// The image being optimised: HWC RGB f32 (in bands in a tiled run, see [`crate::bands`]).
    x: Bands,
    grad_x: Bands,
    /// The last x whose objective was finite (kept on the GPU by the step itself).
    last_finite: Bands,
    objective: Objective,
    /// Objective and gradient at x (no update), in submissions: one, or in a tiled run one per
    /// tile and pass.
    evaluate: Vec<Vec<Dispatch>>,
    /// Submissions of the current step the GPU has finished (tiled runs only): the step's number in
    /// the high 32 bits, so that a late report from an earlier step counts for nothing.
    finished: Arc<AtomicU64>,
    /// Called as each tile pass finishes ([`Stylizer::on_tile_pass`]).
    tile_hook: Option<TileHook>,
    optimizer: Optimizer,
    steps: u32,
    /// The step whose starting objective the scalars hold (1-based).
    evaluated_step: u32,
    /// Buffers this run allocated (bytes), weights excluded.
    allocated: u64,
    /// (step, value) of the first non-finite objective seen.
    diverged: Option<(u32, f64)>,
    // Kept alive: the dispatches bind these.
    _stack: FeatureStack,
    _tiles: Option<TileBuffers>,
}

impl Stylizer {
    /// A run at exactly the images' sizes: `content` is the output size, `styles` are (image at
    /// its style size, blend weight); `init` (any explicit start image) is resized to the content's
    /// size. The CLI and the page plan from the original images with [`Plan::for_images`] instead.
    pub async fn new(
        ctx: Arc<GpuContext>,
        net: &Network,
        settings: &Settings,
        content: &Image,
        styles: &[(Image, f32)],
        init: Option<&Image>,
    ) -> Result<Stylizer, EngineError> {
        check_image("content", content)?;
        for (image, _) in styles {
            check_image("style", image)?;
        }
        let sizes: Vec<(u32, u32)> = styles.iter().map(|(i, _)| (i.width, i.height)).collect();
        let weights: Vec<f32> = styles.iter().map(|(_, w)| *w).collect();
        let plan = Plan::at_sizes(settings, (content.width, content.height), &sizes, &weights, net.convs.len())?;
        let images: Vec<&Image> = styles.iter().map(|(i, _)| i).collect();
        let inputs = plan.prepare(content, &images, init)?;
        Stylizer::from_plan(ctx, net, &plan, &inputs).await
    }

    /// Allocates exactly the plan's buffers (checked against the device's limits first), computes
    /// the style and content targets and builds every dispatch of a step.
    pub async fn from_plan(ctx: Arc<GpuContext>, net: &Network, plan: &Plan, inputs: &PreparedInputs) -> Result<Stylizer, EngineError> {
        Stylizer::build(ctx, net, plan, inputs, true).await
    }

    /// [`Stylizer::from_plan`]; without `own_start` x starts as the content, for a caller that puts
    /// the start image in itself (a later scale of a coarse-to-fine run, whose init image was the
    /// first scale's).
    async fn build(ctx: Arc<GpuContext>, net: &Network, plan: &Plan, inputs: &PreparedInputs, own_start: bool) -> Result<Stylizer, EngineError> {
        if net.convs.len() != plan.weights.len() {
            return Err(EngineError::Plan(format!(
                "the plan was made for {} convolutions but the network has {}",
                plan.weights.len(),
                net.convs.len()
            )));
        }
        check_image("content", &inputs.content)?;
        if (inputs.content.width, inputs.content.height) != (plan.width, plan.height) {
            return Err(EngineError::Plan("the content image is not at the plan's size (use Plan::prepare)".into()));
        }
        // The callers check the memory budget; every buffer must fit this device whoever calls.
        plan.check(&crate::plan::Budget { max_buffer: ctx.max_buffer(), total: u64::MAX })?;
        // The conv variants of this plan's layer shapes, timed once per GPU (see crate::autotune).
        net.tune_for(plan, |_| ()).await;
        let allocated_before = ctx.allocated_bytes();
        let layers = &plan.layers;
        let colour = InputColours::new(plan.settings.colour, &inputs.content, inputs.styles.iter().map(|(i, _)| i));

        // Style targets: T_l = Σ_k b_k G_l(s_k), computed at each style image's own size.
        let mut targets: Vec<Vec<f64>> = Vec::new();
        for ((setup, (image, _)), map) in plan.styles.iter().zip(&inputs.styles).zip(&colour.styles) {
            let grams = style_grams(net, setup, image, map.as_ref(), &layers.style, plan.form).await?;
            if targets.is_empty() {
                targets = grams.iter().map(|g| vec![0.0; g.len()]).collect();
            }
            for (t, g) in targets.iter_mut().zip(&grams) {
                for (ti, gi) in t.iter_mut().zip(g) {
                    *ti += setup.weight as f64 * *gi as f64;
                }
            }
        }
        let setup_bytes = ctx.allocated_bytes() - allocated_before;

        let (h, w) = (plan.height as usize, plan.width as usize);
        let stack = FeatureStack::new(net, &plan.stack);
        let objective = Objective::new(&ctx, &plan.objective, &layers.content, &layers.style, plan.form, plan.terms);
        for ((_, _, target), t) in objective.style.iter().zip(&targets) {
            let t32: Vec<f32> = t.iter().map(|&v| v as f32).collect();
            ctx.queue.write_buffer(target, 0, bytemuck::cast_slice(&t32));
        }
        let x = Bands::alloc(&ctx, &plan.image.x);
        let grad_x = Bands::alloc(&ctx, &plan.image.grad);
        let last_finite = Bands::alloc(&ctx, &plan.image.last_finite);
        let colour_map = |map: &ColourMap, x: &Bands| x.per_band(|band, len| net.kernels.colour.colour_map(&ctx, len / 3, map, band));
        let tile_buffers = plan.tiling.as_ref().map(|t| TileBuffers::new(&ctx, t));
        let full_shapes = plan.objective_shapes();
        let tiled = plan.tiling.as_ref().zip(tile_buffers.as_ref()).map(|(layout, buffers)| TiledPasses {
            net,
            grid: &layout.grid,
            stack: &stack,
            buffers,
            objective: &objective,
            full: &full_shapes,
        });
        // (untiled runs only: their image is in one band)
        let to_input = || net.kernels.image.to_network_input(&ctx, h, w, x.single(), &stack.input, &net.input);

        // Content targets: features of the content image at the content layers.
        if !layers.content.is_empty() {
            x.write(&ctx, &inputs.content.rgb);
            // One submission, or one per tile (a long setup must not look like a stuck GPU).
            let mut parts: Vec<Vec<Dispatch>> = vec![colour.content.iter().flat_map(|m| colour_map(m, &x)).collect()];
            match &tiled {
                Some(passes) => parts.extend(passes.content_targets(&x)),
                None => {
                    parts[0].push(to_input());
                    parts[0].extend(stack.forward(net, |_, _| Vec::new()));
                }
            }
            for dispatches in &parts {
                ctx.run(&dispatches.iter().collect::<Vec<_>>());
            }
            if tiled.is_none() {
                let mut encoder = ctx.encoder("content targets");
                for (layer, target) in &objective.content {
                    let features = stack.kept_features(layer.op).expect("content layers are kept");
                    let target = target.single();
                    encoder.copy_buffer_to_buffer(features, 0, target, 0, target.size());
                }
                ctx.submit(encoder);
            }
        }

        // The objective at x and its gradient, built once: the values, then the gradients, each
        // in one submission per tile when tiled.
        let mut written = [false; SCALAR_SLOTS];
        let shapes = stack.shapes.clone();
        let mut values = match &tiled {
            Some(passes) => passes.values(&x, &mut written),
            None => {
                let mut d = vec![to_input()];
                d.extend(stack.forward(net, |op, features| objective.forward_at(net, op, shapes[op], features, &mut written)));
                vec![d]
            }
        };
        let last = values.last_mut().expect("at least one tile");
        if tiled.is_none() {
            // (a tiled run sums TV over the tiles)
            last.extend(objective.tv_value(net, h, w, x.single(), &mut written));
        }
        last.extend(objective.finish_values(net, &written));
        let keep = |x: &wgpu::Buffer, last: &wgpu::Buffer, len| net.kernels.keep_finite.keep(&ctx, len, &objective.scalars, SLOT_TOTAL, x, last);
        last.extend(x.per_band_with(&last_finite, keep));
        let mut gradients = match &tiled {
            Some(passes) => passes.gradients(&grad_x, &x),
            None => {
                let (mut d, grad_v) = stack.backward(net, None, |op, features, grad, accumulate| {
                    objective.backward_at(net, op, shapes[op], features, grad, accumulate)
                });
                d.push(net.kernels.image.network_grad_to_image(&ctx, h, w, grad_v, grad_x.single(), &net.input));
                d.push(objective.tv_grad(net, (h, w), (h, w), x.single(), grad_x.single()));
                vec![d]
            }
        };
        let last = gradients.last_mut().expect("at least one tile");
        if colour.optimise_luminance {
            last.extend(grad_x.per_band(|band, len| net.kernels.colour.luminance_grad(&ctx, len / 3, band)));
        }
        let evaluate = match tiled {
            Some(_) => values.into_iter().chain(gradients).collect(),
            // untiled: one submission
            None => vec![values.into_iter().chain(gradients).flatten().collect()],
        };

        // The start image (also the last finite one until a step says otherwise).
        let start = match own_start {
            true => start_image(&plan.settings, &inputs.content, &inputs.styles, inputs.init.as_ref())?,
            false => inputs.content.rgb.clone(),
        };
        x.write(&ctx, &start);
        let mut encoder = ctx.encoder("start image");
        if let Some(map) = &colour.content {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for d in colour_map(map, &x) {
                d.record(&mut pass);
            }
        }
        x.copy_to(&mut encoder, &last_finite);
        ctx.submit(encoder);
        let optimizer = Optimizer::for_image(&ctx, &net.kernels.optimizer, &plan.optimizer, &plan.optimizer_state, &x, &grad_x)
            .map_err(|e| EngineError::Settings(e.to_string()))?;
        let allocated = ctx.allocated_bytes() - allocated_before - setup_bytes;
        if let Some(e) = ctx.take_error() {
            return Err(e.into());
        }
        Ok(Stylizer {
            ctx,
            width: plan.width,
            height: plan.height,
            x,
            grad_x,
            last_finite,
            objective,
            evaluate,
            finished: Arc::new(AtomicU64::new(0)),
            tile_hook: None,
            optimizer,
            steps: 0,
            evaluated_step: 1,
            allocated,
            diverged: None,
            _stack: stack,
            _tiles: tile_buffers,
        })
    }

    /// Records and submits one step: objective, gradient and update (one submission, or one per
    /// tile pass: see [`Stylizer::tile_progress`]). Does nothing once the run has diverged (see
    /// [`Stylizer::check_finite`]).
    /// Milliseconds per step over `steps` steps after one warm-up step, waiting for the GPU to finish
    /// (the benchmarks' measure: `stylize bench` and the page's "Benchmark this GPU").
    pub async fn ms_per_step(&mut self, steps: u32) -> f64 {
        self.step();
        self.ctx.idle().await;
        let start = crate::autotune::clock::now_ms();
        for _ in 0..steps {
            self.step();
        }
        self.ctx.idle().await;
        (crate::autotune::clock::now_ms() - start) / steps.max(1) as f64
    }

    pub fn step(&mut self) {
        if self.diverged.is_some() {
            return;
        }
        self.optimizer.prepare_step(&self.ctx);
        self.submit_evaluation(true);
        self.optimizer.finish_step();
        self.steps += 1;
        self.evaluated_step = self.steps;
    }

    /// Computes the objective and dL/dx at the current image without updating it.
    pub fn evaluate(&mut self) {
        self.submit_evaluation(false);
        self.evaluated_step = self.steps + 1;
    }

    fn submit_evaluation(&mut self, with_update: bool) {
        let generation = (self.finished.load(Ordering::Relaxed) >> 32).wrapping_add(1) & 0xffff_ffff;
        self.finished.store(generation << 32, Ordering::Relaxed);
        let parts = self.evaluate.len();
        for (i, dispatches) in self.evaluate.iter().enumerate() {
            let mut encoder = self.ctx.encoder("step");
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
                for d in dispatches {
                    d.record(&mut pass);
                }
                if with_update && i + 1 == parts {
                    self.optimizer.record_step(&mut pass);
                }
            }
            self.ctx.submit(encoder);
            if parts > 1 {
                let (finished, hook) = (self.finished.clone(), self.tile_hook.clone());
                let tiles = parts as u32 / 2;
                self.ctx.queue.on_submitted_work_done(move || {
                    let counted = finished.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| (v >> 32 == generation).then_some(v + 1));
                    if let (Ok(before), Some(hook)) = (counted, &hook) {
                        hook(TileProgress { tiles, done: (before & 0xffff_ffff) as u32 + 1 });
                    }
                });
            }
        }
    }

    /// Whether the device reported an error (kept for the next readback to return).
    pub fn has_error(&self) -> bool {
        self.ctx.has_error()
    }

    /// Calls `hook` as each tile pass of a step finishes (tiled runs only). Natively a submit can
    /// block until much of its work is done, so a caller that waits for the step in between sees
    /// little: the hook sees every pass.
    pub fn on_tile_pass(&mut self, hook: TileHook) {
        self.tile_hook = Some(hook);
    }

    /// Lets finished GPU work report itself (natively; in the browser the event loop does it):
    /// call before [`Stylizer::tile_progress`] while waiting for a step. Never blocks.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn poll(&self) {
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
    }

    /// Where the last step (or evaluation) stands, in a tiled run: how many of its tile passes the
    /// GPU has finished (natively, as of the last device poll). None when untiled.
    pub fn tile_progress(&self) -> Option<TileProgress> {
        let parts = self.evaluate.len() as u32;
        (parts > 1).then(|| TileProgress { tiles: parts / 2, done: (self.finished.load(Ordering::Relaxed) & 0xffff_ffff) as u32 })
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

    /// Checks an objective read back by [`Stylizer::losses`]. A non-finite one stops the run: the
    /// last image whose objective was finite goes back into x (so `image()`, the page's canvas and the
    /// output show it), later steps do nothing, and the error says why.
    pub fn check_finite(&mut self, losses: &StepLosses) -> Result<(), EngineError> {
        if let Some((step, value)) = self.diverged {
            return Err(EngineError::Diverged { step, value });
        }
        if losses.total.is_finite() {
            return Ok(());
        }
        let mut encoder = self.ctx.encoder("rewind");
        self.last_finite.copy_to(&mut encoder, &self.x);
        self.ctx.submit(encoder);
        self.diverged = Some((losses.step, losses.total));
        Err(EngineError::Diverged { step: losses.step, value: losses.total })
    }

    /// The current image in a buffer of its own (the previous scale's image, which a coarse-to-fine run
    /// keeps while this run's buffers are freed and the next scale's are allocated). The plan keeps
    /// scales before the last in one band ([`crate::plan::check_schedule`]).
    pub fn copy_image(&self) -> wgpu::Buffer {
        let bytes = self.x.layout.len() as u64 * 4;
        let copy = self.ctx.alloc(&crate::plan::BufferSpec::new("previous scale's x", bytes));
        let mut encoder = self.ctx.encoder("copy image");
        for band in self.x.iter() {
            let (offset, len) = ((band.row0 * self.x.layout.row_len * 4) as u64, (band.len(self.x.layout.row_len) * 4) as u64);
            encoder.copy_buffer_to_buffer(band.buffer, 0, &copy, offset, len);
        }
        self.ctx.submit(encoder);
        copy
    }

    /// Starts from `previous` (a smaller scale's image, `size` = (width, height)), upsampled
    /// bicubically on the GPU into x (and into the last finite image). Call before the first step.
    pub fn start_from(&mut self, net: &Network, previous: &wgpu::Buffer, (w, h): (usize, usize)) {
        let to = (self.width as usize, self.height as usize);
        let mut encoder = self.ctx.encoder("start from the previous scale");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for band in self.x.iter() {
                net.kernels.resize.upsample_rows(&self.ctx, (w, h), previous, to, (band.row0, band.rows), band.buffer).record(&mut pass);
            }
        }
        self.x.copy_to(&mut encoder, &self.last_finite);
        self.ctx.submit(encoder);
    }

    /// The run of the next scale of a coarse-to-fine schedule: `plan`'s buffers, starting from the
    /// image `previous` carried from the scale before (see [`Stylizer::carry`]), if any.
    pub async fn for_scale(
        ctx: Arc<GpuContext>,
        net: &Network,
        plan: &Plan,
        inputs: &PreparedInputs,
        previous: Option<Carried>,
    ) -> Result<Stylizer, EngineError> {
        let mut stylizer = Stylizer::build(ctx, net, plan, inputs, previous.is_none()).await?;
        if let Some(Carried { image, size }) = previous {
            stylizer.start_from(net, &image, size);
        }
        Ok(stylizer)
    }

    /// Ends this scale: its image, kept in a buffer of its own while this run's buffers are freed.
    pub fn carry(self) -> Carried {
        Carried { image: self.copy_image(), size: (self.width as usize, self.height as usize) }
    }

    /// Applies the colour mode of `settings` to the final image (in place): with `luma-swap` and
    /// `luminance`, x takes the content's chroma (YIQ) and keeps its luminance. `content` is at the
    /// run's size.
    pub fn apply_colour(&self, net: &Network, settings: &Settings, content: &Image) -> Result<(), EngineError> {
        if !settings.colour.keeps_content_chroma() {
            return Ok(());
        }
        check_image("content", content)?;
        if (content.width, content.height) != (self.width, self.height) {
            return Err(EngineError::Input("the content image is not at the run's size".into()));
        }
        // dL/dx is scratch between steps (every evaluation overwrites it): the content goes there,
        // so the colour mode allocates nothing outside the plan.
        self.grad_x.write(&self.ctx, &content.rgb);
        let swap = self.x.per_band_with(&self.grad_x, |x, content, len| net.kernels.colour.luma_swap(&self.ctx, len / 3, x, content));
        self.ctx.run(&swap.iter().collect::<Vec<_>>());
        Ok(())
    }

    /// Whether the run stopped on a non-finite objective.
    pub fn diverged(&self) -> bool {
        self.diverged.is_some()
    }

    /// The current image, clamped to [0,1].
    pub async fn image(&self) -> Result<Image, EngineError> {
        let mut rgb = self.x.read(&self.ctx).await?;
        for v in &mut rgb {
            *v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        }
        Ok(Image { width: self.width, height: self.height, rgb })
    }

    /// dL/dx at the current image (HWC RGB, [0,1] units).
    pub async fn gradient(&mut self) -> Result<Vec<f32>, EngineError> {
        self.evaluate();
        Ok(self.grad_x.read(&self.ctx).await?)
    }

    /// x on the GPU (HWC RGB f32, in bands), for renderers that draw straight from it.
    pub fn image_bands(&self) -> &Bands {
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
    pub fn evaluate_dispatches(&self) -> impl Iterator<Item = &Dispatch> {
        self.evaluate.iter().flatten()
    }

    /// The optimiser's dispatches of the next step, for the benchmark's per-kernel timing.
    pub fn optimizer_dispatches(&self) -> Vec<&Dispatch> {
        self.optimizer.step_dispatches()
    }
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
/// Its buffers are the plan's style setup and are freed on return.
async fn style_grams(
    net: &Network,
    setup: &StyleSetup,
    image: &Image,
    colour: Option<&ColourMap>,
    style: &[LossLayer],
    form: Form,
) -> Result<Vec<Vec<f32>>, EngineError> {
    let ctx = &net.ctx;
    if (image.width, image.height) != (setup.width, setup.height) {
        return Err(EngineError::Plan("a style image is not at the plan's size (use Plan::prepare)".into()));
    }
    let (h, w) = (setup.height as usize, setup.width as usize);
    let stack = FeatureStack::new(net, &setup.stack);
    let x = Bands::alloc(ctx, &setup.x);
    x.write(ctx, &image.rgb);
    let shapes = stack.shapes.clone();
    let partials = ctx.alloc(&setup.gram_partials);
    let grams: Vec<(usize, wgpu::Buffer)> = style.iter().zip(&setup.grams).map(|(l, spec)| (l.op, ctx.alloc(spec))).collect();
    // One submission, or one per tile.
    let mut parts: Vec<Vec<Dispatch>> =
        vec![colour.iter().flat_map(|m| x.per_band(|band, len| net.kernels.colour.colour_map(ctx, len / 3, m, band))).collect()];
    let tile_buffers = setup.tiles.as_ref().map(|t| (ctx.alloc(&t.tile_x), ctx.alloc(&t.window)));
    match setup.tiles.as_ref().zip(tile_buffers.as_ref()) {
        Some((tiles, (tile_x, window))) => {
            let full = crate::model::output_shapes(h, w, setup.stack.depth);
            let buffers = (&x, tile_x, window, &partials);
            parts.extend(crate::tiling::style_grams(net, &tiles.grid, &stack, buffers, &grams, &full, |s| form.gram_scale(s)));
        }
        None => {
            parts[0].push(net.kernels.image.to_network_input(ctx, h, w, x.single(), &stack.input, &net.input));
            parts[0].extend(stack.forward(net, |op, features| {
                let s: MapShape = shapes[op];
                grams
                    .iter()
                    .filter(|(o, _)| *o == op)
                    .flat_map(|(_, g)| net.kernels.gram.build(ctx, s.h, s.w, s.c, features, &partials, g, form.gram_scale(s)))
                    .collect()
            }));
        }
    }
    for dispatches in &parts {
        ctx.run(&dispatches.iter().collect::<Vec<_>>());
    }
    let mut out = Vec::with_capacity(grams.len());
    for (op, g) in &grams {
        out.push(ctx.read_f32(g, 0, crate::kernels::c4(shapes[*op].c).pow(2)).await?);
    }
    Ok(out)
}

/// How the colour mode changes the inputs (see [`ColourMode`]): the maps applied to the content (and
/// to the start image) and to each style image before the targets are computed, and whether the
/// image is optimised as grey.
struct InputColours {
    content: Option<ColourMap>,
    styles: Vec<Option<ColourMap>>,
    optimise_luminance: bool,
}

impl InputColours {
    fn new<'a>(mode: ColourMode, content: &Image, styles: impl Iterator<Item = &'a Image>) -> InputColours {
        let stats = |image: &Image| ColourStats::of(&image.rgb);
        match mode {
            ColourMode::KeepStyle | ColourMode::LumaSwap => {
                InputColours { content: None, styles: styles.map(|_| None).collect(), optimise_luminance: false }
            }
            ColourMode::Luminance => {
                let target = stats(content);
                InputColours {
                    content: Some(ColourMap::luminance()),
                    styles: styles.map(|s| Some(ColourMap::luminance_matched(&stats(s), &target))).collect(),
                    optimise_luminance: true,
                }
            }
            ColourMode::Histogram => {
                let target = stats(content);
                InputColours {
                    content: None,
                    styles: styles.map(|s| Some(ColourMap::histogram_matched(&stats(s), &target))).collect(),
                    optimise_luminance: false,
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::TileProgress;

    #[test]
    fn tile_progress_names_the_running_tile_and_pass() {
        let at = |done| TileProgress { tiles: 12, done };
        assert_eq!(at(0).describe(), "tile 1 of 12, pass 1 of 2");
        assert_eq!(at(11).running(), (1, 12));
        assert_eq!(at(14).describe(), "tile 3 of 12, pass 2 of 2");
        // a finished step shows its last tile
        assert_eq!(at(24).describe(), "tile 12 of 12, pass 2 of 2");
        assert_eq!(at(24).parts(), 24);
    }
}
