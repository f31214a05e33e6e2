//! The `StyleTransfer` JS class (wasm32 only): the engine as the web page and embedders see it.
//!
//! ```js
//! import init, { StyleTransfer } from './pkg/stylize.js';
//! await init();
//! const st = await StyleTransfer.create();          // WebGPU adapter + device
//! await st.loadWeights(new Uint8Array(await (await fetch('weights/vgg19.q8.bin')).arrayBuffer()));
//! st.setContent(rgba, w, h); st.setStyle(rgba2, w2, h2);
//! st.configure(JSON.stringify({ size: 256, steps: 100 }));
//! for (let i = 0; i < 100; i++) { const l = await st.step(); st.render(canvas); }
//! const png = await st.image();                     // RGBA8 at full resolution
//! st.destroy();
//! ```
//!
//! Design notes:
//! - Everything async returns a JS Promise built from a future that owns an `Rc` of the state, so
//!   JS may call other methods while a step is in flight. No `RefCell` borrow is ever held across
//!   an await except shared borrows of the running `Stylizer` during readback; a `step()` that
//!   would need it mutably at that moment rejects with "busy" instead of panicking.
//! - The `Stylizer` is (re)built lazily, on the first `step()` after images or settings change:
//!   inputs are cheap to set, building means allocating GPU buffers and computing style targets.
//! - `render(canvas)` draws from the engine's image buffer with a render pipeline
//!   (shaders/render.wgsl): no CPU readback per frame.
//!
//! Files: this one holds the class, its inputs and settings; `weights.rs` loading the weights and
//! their precision; `run.rs` what one `step()` does; `statics.rs` the static methods (links,
//! settings, layers); `benchmark.rs` the conv kernel choice and "benchmark this GPU"; `render.rs`.

// Shared `RefCell` borrows of the running Stylizer are held across readback awaits on purpose (see the
// module docs): other calls only need shared borrows too, and `step()` uses `try_borrow_mut`.
#![allow(clippy::await_holding_refcell_ref)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Display;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::autotune::ConvKernelChoice;
use crate::kernels::conv::Precision;
use crate::engine::{Network, Stylizer};
use crate::gpu::GpuContext;
use crate::imageio::Image;
use crate::model::CONVS;
use crate::plan::{self, Budget, Plan, PreparedInputs};
use crate::settings::{self, Init, Settings};
use crate::weights::Weights;

mod benchmark;
mod render;
mod run;
mod statics;
mod weights;
use render::Renderer;
use run::{apply_colour, step_inner};
use statics::{apply_settings_json, check_page_sides, settings_object};


#[wasm_bindgen(start)]
fn start() {
    // Panics show their message in the console instead of "unreachable executed".
    console_error_panic_hook::set_once();
}

/// A JS `Error` with our message (what JS code and the page show).
fn js_error(message: impl Display) -> JsValue {
    js_sys::Error::new(&message.to_string()).into()
}

/// A plain JS object from (key, value) pairs.
fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let obj = Object::new();
    for (key, value) in pairs {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&obj, &JsValue::from_str(key), value);
    }
    obj.into()
}

// Device-lost callbacks must be `Send` (wgpu's bound), so they cannot hold a JS function: they
// look the page's callback up here by instance id (wasm runs on one thread).
thread_local! {
    static LOST_CALLBACKS: RefCell<HashMap<u32, Function>> = RefCell::new(HashMap::new());
}
static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// What the page has given us; turned into a `Stylizer` on the next step.
struct Inputs {
    net: Option<Rc<Network>>,
    /// The verified weights file `net` was made from, to upload again in another precision (kept
    /// only where the GPU has another: shader-f16).
    weights_file: Option<Rc<Vec<u8>>>,
    settings: Settings,
    content: Option<Image>,
    styles: Vec<(Image, f32)>,
    init: Option<Image>,
    /// GPU memory a run may use (WebGPU cannot tell how much there is).
    memory_budget: u64,
    /// Bumped by every change; the stylizer remembers the generation it was built from.
    generation: u64,
}

struct Inner {
    id: u32,
    instance: wgpu::Instance,
    adapter: wgpu::Adapter,
    adapter_limits: wgpu::Limits,
    ctx: Arc<GpuContext>,
    inputs: RefCell<Inputs>,
    /// The running optimisation and the input generation it was built from.
    run: RefCell<Option<(Rc<RefCell<Stylizer>>, u64)>>,
    /// The coarse-to-fine schedule of the run (one plan per scale) and the scale running now.
    scales: RefCell<Option<(Vec<Plan>, usize)>>,
    renderer: RefCell<Option<Renderer>>,
    /// Set when a step (or a build) is in flight: JS must await one step before the next.
    stepping: Cell<bool>,
    /// Set once the run's colour mode has put the photo's colours into its image (by the last step or
    /// `finish()`): the run is over, and the next step() starts a new one.
    colour_applied: Cell<bool>,
    /// The conv kernel variants: timed on this GPU (`auto`) or forced (`configure({conv_kernel})`).
    conv_kernel: Cell<ConvKernelChoice>,
    /// How the conv weights are stored (`configure({precision})`; f32 by default).
    precision: Cell<Precision>,
    /// Why the device was lost, once it is.
    lost: Arc<Mutex<Option<String>>>,
    destroyed: Cell<bool>,
}

impl Inner {
    fn check_usable(&self) -> Result<(), JsValue> {
        if self.destroyed.get() {
            return Err(js_error("this StyleTransfer was destroyed; create a new one"));
        }
        if let Some(reason) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(js_error(format!(
                "the GPU device was lost ({reason}); create a new StyleTransfer to continue"
            )));
        }
        Ok(())
    }

    fn changed(&self) {
        self.inputs.borrow_mut().generation += 1;
    }

    fn stylizer(&self) -> Option<Rc<RefCell<Stylizer>>> {
        self.run.borrow().as_ref().map(|(s, _)| s.clone())
    }

    fn budget(&self) -> Budget {
        Budget { max_buffer: self.ctx.max_buffer(), total: self.inputs.borrow().memory_budget }
    }

    /// The plans of a run (one per scale of its schedule) from the inputs given now, checked against
    /// this GPU and the budget, and the generation of the inputs they were made from.
    fn prepare(&self) -> Result<(Rc<Network>, Vec<Plan>, u64), JsValue> {
        let budget = self.budget();
        let inputs = self.inputs.borrow();
        let net = inputs.net.clone().ok_or_else(|| js_error("load the weights first: await st.loadWeights(bytes)"))?;
        let content = inputs
            .content
            .as_ref()
            .ok_or_else(|| js_error("no content image: call st.setContent(rgba, width, height) first"))?;
        if inputs.styles.is_empty() {
            return Err(js_error("no style image: call st.setStyle(rgba, width, height) first"));
        }
        if let (None, Init::Path(path)) = (&inputs.init, &inputs.settings.init) {
            return Err(js_error(format!(
                "init {}: a file path cannot be opened in the browser; give the image with st.setInit(rgba, width, height)",
                settings::show(path)
            )));
        }
        check_page_sides(&inputs.settings)?;
        let sizes: Vec<(u32, u32)> = inputs.styles.iter().map(|(i, _)| (i.width, i.height)).collect();
        let weights: Vec<f32> = inputs.styles.iter().map(|(_, w)| *w).collect();
        let plans = plan::schedule_plans(&inputs.settings, (content.width, content.height), &sizes, &weights, net.convs.len())
            .map_err(js_error)?
            .into_iter()
            .map(|p| p.weights_in(net.precision()))
            .collect();
        // Scales that do not fit untiled run in tiles.
        let plans = plan::fit_plans(plans, None, &budget).map_err(js_error)?;
        plan::check_schedule(&plans, &budget).map_err(js_error)?;
        Ok((net, plans, inputs.generation))
    }

    /// The inputs at one scale's sizes (the one preparation path, shared with the CLI:
    /// [`Plan::prepare`]); the init image only for the first scale.
    fn inputs_for(&self, plan: &Plan, first: bool) -> Result<PreparedInputs, JsValue> {
        let inputs = self.inputs.borrow();
        let content = inputs.content.as_ref().ok_or_else(|| js_error("no content image"))?;
        let styles: Vec<&Image> = inputs.styles.iter().map(|(i, _)| i).collect();
        let init = if first { inputs.init.as_ref() } else { None };
        plan.prepare(content, &styles, init).map_err(js_error)
    }
}

/// The engine as a JS class. Method names are part of the public JS API (see the README).
#[wasm_bindgen]
pub struct StyleTransfer {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl StyleTransfer {
    /// `await StyleTransfer.create()`: takes the WebGPU adapter and device; rejects with a readable
    /// error when the browser has no WebGPU or no usable adapter.
    pub fn create() -> Promise {
        future_to_promise(async move {
            let instance = GpuContext::instance();
            let adapter = GpuContext::request_adapter(&instance)
                .await
                .map_err(|e| {
                    let first = match e {
                        crate::gpu::GpuError::NoAdapter(reason) => reason,
                        other => other.to_string(),
                    };
                    let first = first.split(';').next().unwrap_or_default().trim().to_string();
                    js_error(format!(
                        "WebGPU is not available: the browser offered no GPU adapter ({first}). Use Chrome or Edge \
                         113+, Safari 26+, or Firefox 141+ on Windows; on Linux enable chrome://flags/#enable-unsafe-webgpu"
                    ))
                })?;
            let adapter_limits = adapter.limits();
            let ctx = GpuContext::from_adapter(adapter.clone()).await.map_err(js_error)?;
            let lost: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
            let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            {
                let lost = lost.clone();
                ctx.device.set_device_lost_callback(move |reason, message| {
                    let text = match reason {
                        wgpu::DeviceLostReason::Destroyed => format!("destroyed: {message}"),
                        _ => if message.is_empty() { "lost by the browser or the driver".to_string() } else { message },
                    };
                    *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(text.clone());
                    let callback = LOST_CALLBACKS.with(|c| c.borrow().get(&id).cloned());
                    if let Some(callback) = callback {
                        let _ = callback.call1(&JsValue::NULL, &JsValue::from_str(&text));
                    }
                });
            }
            let inner = Inner {
                id,
                instance,
                adapter,
                adapter_limits,
                // The engine's API takes Arc<GpuContext> (shared with the native build); on wasm it is
                // not Send, which is fine on the browser's single thread.
                #[allow(clippy::arc_with_non_send_sync)]
                ctx: Arc::new(ctx),
                inputs: RefCell::new(Inputs {
                    net: None,
                    weights_file: None,
                    settings: Settings::default(),
                    content: None,
                    styles: Vec::new(),
                    init: None,
                    memory_budget: plan::DEFAULT_MEMORY_BUDGET,
                    generation: 0,
                }),
                run: RefCell::new(None),
                scales: RefCell::new(None),
                renderer: RefCell::new(None),
                stepping: Cell::new(false),
                colour_applied: Cell::new(false),
                conv_kernel: Cell::new(ConvKernelChoice::Auto),
                precision: Cell::new(Precision::F32),
                lost,
                destroyed: Cell::new(false),
            };
            Ok(StyleTransfer { inner: Rc::new(inner) }.into())
        })
    }

    /// The content image: RGBA8 pixels (`Uint8Array` or `Uint8ClampedArray`), alpha composited over
    /// white. It is resized to `size` (longest side) when the run is built.
    #[wasm_bindgen(js_name = setContent)]
    pub fn set_content(&self, rgba: &[u8], width: u32, height: u32) -> Result<(), JsValue> {
        let image = image_from_rgba(rgba, width, height, "content")?;
        self.inner.inputs.borrow_mut().content = Some(image);
        self.inner.changed();
        Ok(())
    }

    /// One style image (replaces all styles).
    #[wasm_bindgen(js_name = setStyle)]
    pub fn set_style(&self, rgba: &[u8], width: u32, height: u32) -> Result<(), JsValue> {
        let image = image_from_rgba(rgba, width, height, "style")?;
        self.inner.inputs.borrow_mut().styles = vec![(image, 1.0)];
        self.inner.changed();
        Ok(())
    }

    /// Adds a style image to the blend with `weight` (weights are normalised to sum to 1).
    #[wasm_bindgen(js_name = addStyle)]
    pub fn add_style(&self, rgba: &[u8], width: u32, height: u32, weight: f32) -> Result<(), JsValue> {
        if !weight.is_finite() || weight < 0.0 {
            return Err(js_error(format!("style weight {weight} must be a number >= 0")));
        }
        let image = image_from_rgba(rgba, width, height, "style")?;
        let mut inputs = self.inner.inputs.borrow_mut();
        if inputs.styles.len() >= settings::MAX_STYLES {
            return Err(js_error(format!("at most {} style images can be blended", settings::MAX_STYLES)));
        }
        inputs.styles.push((image, weight));
        drop(inputs);
        self.inner.changed();
        Ok(())
    }

    /// Removes every style image.
    #[wasm_bindgen(js_name = clearStyles)]
    pub fn clear_styles(&self) {
        self.inner.inputs.borrow_mut().styles.clear();
        self.inner.changed();
    }

    /// The image the optimisation starts from (instead of the `init` setting); resized to the
    /// content's size.
    #[wasm_bindgen(js_name = setInit)]
    pub fn set_init(&self, rgba: &[u8], width: u32, height: u32) -> Result<(), JsValue> {
        let image = image_from_rgba(rgba, width, height, "init")?;
        self.inner.inputs.borrow_mut().init = Some(image);
        self.inner.changed();
        Ok(())
    }

    /// Goes back to the `init` setting.
    #[wasm_bindgen(js_name = clearInit)]
    pub fn clear_init(&self) {
        self.inner.inputs.borrow_mut().init = None;
        self.inner.changed();
    }

    /// `st.configure(json)`: the CLI's options in snake_case (see `Settings::apply_json`); a
    /// `preset` is applied first, then the other keys; `"preset": ""` means the defaults. Throws
    /// with the reason on a bad value (and then changes nothing). Returns the settings now in force.
    /// `conv_kernel` (`"auto"` or a variant, as `--conv-kernel`) is taken too: an engine option, so
    /// not among the settings returned or put in links (`st.convKernel()` tells it).
    pub fn configure(&self, json: &str) -> Result<JsValue, JsValue> {
        let mut settings = self.inner.inputs.borrow().settings.clone();
        let options = apply_settings_json(&mut settings, json)?;
        if let Some(precision) = options.precision {
            self.inner.set_precision(precision)?;
        }
        let out = settings_object(&settings);
        self.inner.inputs.borrow_mut().settings = settings;
        if let Some(choice) = options.conv_kernel {
            self.inner.conv_kernel.set(choice);
        }
        self.inner.changed();
        Ok(out)
    }

    /// The settings in force, as an object of strings (`Settings::get` forms, which parse back exactly).
    pub fn settings(&self) -> JsValue {
        settings_object(&self.inner.inputs.borrow().settings)
    }

    /// `await st.step()`: one optimisation step. Resolves to `{step, content, style, tv, total}`,
    /// the objective at the start of that step (as the CLI's `--log-json`). Builds the run first
    /// when inputs or settings changed since the last step.
    pub fn step(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.check_usable()?;
            if inner.stepping.replace(true) {
                return Err(js_error("a step is already running: await each step() before the next"));
            }
            let result = step_inner(&inner).await;
            inner.stepping.set(false);
            result
        })
    }

    /// Draws the current image into `canvas` (resizing the canvas to the image, within the GPU's
    /// texture limit), straight from the GPU buffer. Does nothing before the first step.
    pub fn render(&self, canvas: web_sys::HtmlCanvasElement) -> Result<(), JsValue> {
        self.inner.check_usable()?;
        let Some(stylizer) = self.inner.stylizer() else {
            return Ok(());
        };
        let stylizer = stylizer.try_borrow().map_err(|_| js_error("render: the engine is busy"))?;
        let mut slot = self.inner.renderer.borrow_mut();
        let same_canvas = slot.as_ref().is_some_and(|r| {
            let a: &JsValue = r.canvas.as_ref();
            let b: &JsValue = canvas.as_ref();
            a == b
        });
        if !same_canvas {
            *slot = None; // drop the old surface before configuring the canvas again
            *slot = Some(Renderer::new(&self.inner, canvas)?);
        }
        let renderer = slot.as_mut().expect("renderer was just created");
        renderer.draw(&self.inner, stylizer.image_bands(), stylizer.width(), stylizer.height())
    }

    /// `await st.image()`: the current image as RGBA8 (`Uint8Array`, width*height*4) at full resolution.
    pub fn image(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.check_usable()?;
            let stylizer = inner.stylizer().ok_or_else(|| js_error("no image yet: run at least one step()"))?;
            let image = {
                let s = stylizer.try_borrow().map_err(|_| js_error("image(): the engine is busy"))?;
                s.image().await.map_err(js_error)?
            };
            Ok(Uint8Array::from(image.to_rgba8().as_slice()).into())
        })
    }

    /// Width of the current run's image (0 before the first step).
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u32 {
        self.inner.stylizer().map_or(0, |s| s.borrow().width())
    }

    /// Height of the current run's image (0 before the first step).
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> u32 {
        self.inner.stylizer().map_or(0, |s| s.borrow().height())
    }

    /// Steps done by the current run.
    #[wasm_bindgen(getter, js_name = stepsDone)]
    pub fn steps_done(&self) -> u32 {
        self.inner.stylizer().map_or(0, |s| s.borrow().steps_done())
    }

    /// `st.tileProgress()`: where the running step stands when the run is tiled (a size over the
    /// GPU's budget runs in tiles, and a step can take minutes): `{tiles, done, pass, tile, text}`,
    /// `done` of `2 × tiles` tile passes finished, `text` like "tile 3 of 12, pass 2 of 2". Null when
    /// the run is not tiled or there is none. It can be called while `step()` is pending.
    #[wasm_bindgen(js_name = tileProgress)]
    pub fn tile_progress(&self) -> JsValue {
        let progress = self.inner.stylizer().and_then(|s| s.try_borrow().ok().and_then(|s| s.tile_progress()));
        let Some(p) = progress else { return JsValue::NULL };
        let (pass, tile) = p.running();
        object(&[
            ("tiles", JsValue::from(p.tiles)),
            ("done", JsValue::from(p.done)),
            ("pass", JsValue::from(pass)),
            ("tile", JsValue::from(tile)),
            ("text", JsValue::from_str(&p.describe())),
        ])
    }

    /// `st.gpuProgress()`: how many submissions the GPU has finished since the engine was created. It
    /// grows while any work advances (a run's setup, each tile pass), so a watchdog can tell a slow
    /// GPU from a stuck one. It can be called while `step()` is pending.
    #[wasm_bindgen(js_name = gpuProgress)]
    pub fn gpu_progress(&self) -> f64 {
        self.inner.ctx.finished_submissions() as f64
    }

    /// `st.finish()`: for a run stopped before its last step in the luma-swap or luminance mode, puts
    /// the photo's colours in now (the last step does it by itself), so that `image()` and `render()`
    /// show the result; the image stays, and the next `step()` starts a new run. Nothing to do before
    /// the first step or in the other colour modes (their runs can go on).
    pub fn finish(&self) -> Result<(), JsValue> {
        self.inner.check_usable()?;
        if self.inner.stepping.get() {
            return Err(js_error("finish(): a step is running: await it first"));
        }
        let Some(stylizer) = self.inner.stylizer() else {
            return Ok(());
        };
        let plan = self.inner.scales.borrow().as_ref().and_then(|(plans, i)| plans.get(*i).cloned());
        match plan {
            Some(plan) => apply_colour(&self.inner, &stylizer, &plan),
            None => Ok(()),
        }
    }

    /// Drops the current run (its GPU buffers); the next step() builds a new one from the inputs.
    pub fn reset(&self) {
        *self.inner.run.borrow_mut() = None;
    }

    /// `st.plan(request)`: the plan of a run, without allocating anything. `request` is JSON
    /// `{settings?: {...as configure}, content?: [w, h], styles?: [[w, h, weight], ...]}`; missing
    /// images are square ones of the size. Returns `stylize plan`'s object (`width`, `height`,
    /// `style_sizes`, `total_bytes`, `largest_buffer_bytes`, `flops_per_step`, `memory_budget`,
    /// `max_buffer`, `fits`, `refusal`, ...), checked against this GPU and the memory budget. Throws
    /// when the run cannot be planned at all (sizes, layers), with the reason.
    pub fn plan(&self, request: &str) -> Result<JsValue, JsValue> {
        let request: serde_json::Value =
            serde_json::from_str(request).map_err(|e| js_error(format!("plan: the request must be a JSON object: {e}")))?;
        let (mut settings, convs) = {
            let inputs = self.inner.inputs.borrow();
            (inputs.settings.clone(), inputs.net.as_ref().map_or(crate::weights::REQUIRED_LAYERS, |n| n.convs.len()))
        };
        let mut precision = self.inner.precision.get();
        if let Some(s) = request.get("settings") {
            precision = apply_settings_json(&mut settings, &s.to_string())?.precision.unwrap_or(precision);
        }
        precision.check(&self.inner.ctx).map_err(|e| js_error(format!("precision: {e}")))?;
        check_page_sides(&settings)?;
        let pair = |v: &serde_json::Value| -> Option<(u32, u32)> {
            let w = v.get(0)?.as_u64()?.min(u32::MAX as u64) as u32;
            let h = v.get(1)?.as_u64()?.min(u32::MAX as u64) as u32;
            Some((w, h))
        };
        let content = request.get("content").and_then(pair).unwrap_or((settings.size, settings.size));
        let mut styles = Vec::new();
        let mut weights = Vec::new();
        for style in request.get("styles").and_then(|s| s.as_array()).into_iter().flatten() {
            styles.push(pair(style).ok_or_else(|| js_error("plan: each style is [width, height, weight]"))?);
            weights.push(style.get(2).and_then(|w| w.as_f64()).unwrap_or(1.0) as f32);
        }
        if styles.is_empty() {
            let side = plan::style_side(&settings).min(plan::MAX_STYLE_SIDE);
            styles.push((side, side));
            weights.push(1.0);
        }
        let budget = self.inner.budget();
        let plans = plan::schedule_plans(&settings, content, &styles, &weights, convs).map_err(js_error)?;
        let plans = plan::fit_plans(plans.into_iter().map(|p| p.weights_in(precision)).collect(), None, &budget).map_err(js_error)?;
        let json = plan::schedule_json(&plans, &budget).to_string();
        js_sys::JSON::parse(&json)
    }

    /// The GPU memory a run may use, in bytes (default 2 GiB: WebGPU cannot tell how much the GPU
    /// has). Larger runs are refused before anything is allocated.
    #[wasm_bindgen(js_name = setMemoryBudget)]
    pub fn set_memory_budget(&self, bytes: f64) -> Result<(), JsValue> {
        if !(16.0 * 1048576.0..=1e15).contains(&bytes) {
            return Err(js_error(format!("memory budget {bytes} bytes: give at least 16 MiB")));
        }
        let mut inputs = self.inner.inputs.borrow_mut();
        if inputs.memory_budget != bytes as u64 {
            inputs.memory_budget = bytes as u64;
            drop(inputs);
            self.inner.changed();
        }
        Ok(())
    }

    /// The memory budget in force, in bytes.
    #[wasm_bindgen(js_name = memoryBudget)]
    pub fn memory_budget(&self) -> f64 {
        self.inner.inputs.borrow().memory_budget as f64
    }

    /// GPU bytes allocated so far by this instance (weights, buffers of every run built).
    #[wasm_bindgen(js_name = allocatedBytes)]
    pub fn allocated_bytes(&self) -> f64 {
        self.inner.ctx.allocated_bytes() as f64
    }

    /// The adapter: `{name, fallback, backend, limits: {...}}` (limits: what the adapter offers).
    #[wasm_bindgen(js_name = adapterInfo)]
    pub fn adapter_info(&self) -> JsValue {
        let info = &self.inner.ctx.adapter_info;
        let l = &self.inner.adapter_limits;
        let limits = object(&[
            ("maxBufferSize", JsValue::from(l.max_buffer_size as f64)),
            ("maxStorageBufferBindingSize", JsValue::from(l.max_storage_buffer_binding_size as f64)),
            ("maxStorageBuffersPerShaderStage", JsValue::from(l.max_storage_buffers_per_shader_stage)),
            ("maxComputeWorkgroupStorageSize", JsValue::from(l.max_compute_workgroup_storage_size)),
            ("maxComputeInvocationsPerWorkgroup", JsValue::from(l.max_compute_invocations_per_workgroup)),
            ("maxComputeWorkgroupsPerDimension", JsValue::from(l.max_compute_workgroups_per_dimension)),
            ("maxTextureDimension2D", JsValue::from(l.max_texture_dimension_2d)),
        ]);
        object(&[
            ("name", JsValue::from_str(&info.name)),
            ("fallback", JsValue::from(info.device_type == wgpu::DeviceType::Cpu)),
            ("backend", JsValue::from_str(&format!("{:?}", info.backend))),
            ("limits", limits),
        ])
    }

    /// Why the GPU device was lost, or `null` while it works.
    #[wasm_bindgen(js_name = lostReason)]
    pub fn lost_reason(&self) -> Option<String> {
        self.inner.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Calls `callback(reason)` when the GPU device is lost (the page then recovers).
    #[wasm_bindgen(js_name = onDeviceLost)]
    pub fn on_device_lost(&self, callback: Function) {
        LOST_CALLBACKS.with(|c| c.borrow_mut().insert(self.inner.id, callback));
    }

    /// Destroys the GPU device as a driver reset would lose it: for testing recovery.
    #[wasm_bindgen(js_name = loseDeviceForTesting)]
    pub fn lose_device_for_testing(&self) {
        self.inner.ctx.device.destroy();
    }

    /// Frees the GPU resources (the run, the renderer, the weights, the device). Later calls fail.
    pub fn destroy(&self) {
        if self.inner.destroyed.replace(true) {
            return;
        }
        LOST_CALLBACKS.with(|c| c.borrow_mut().remove(&self.inner.id));
        *self.inner.run.borrow_mut() = None;
        *self.inner.renderer.borrow_mut() = None;
        if let Ok(mut inputs) = self.inner.inputs.try_borrow_mut() {
            inputs.net = None;
            inputs.content = None;
            inputs.styles.clear();
            inputs.init = None;
        }
        // Mark it first so that the lost callback does not report our own destroy as a loss.
        *self.inner.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some("destroyed by st.destroy()".into());
        self.inner.ctx.device.destroy();
    }

}

impl Drop for StyleTransfer {
    fn drop(&mut self) {
        // A JS `free()` without `destroy()`: forget the device-lost callback (the run's buffers are
        // released with the last reference to the state, which in-flight promises may still hold).
        if Rc::strong_count(&self.inner) == 1 {
            LOST_CALLBACKS.with(|c| c.borrow_mut().remove(&self.inner.id));
        }
    }
}

fn image_from_rgba(rgba: &[u8], width: u32, height: u32, what: &str) -> Result<Image, JsValue> {
    if width == 0 || height == 0 {
        return Err(js_error(format!("the {what} image has zero size ({width}x{height})")));
    }
    Image::from_rgba8(rgba, width, height).map_err(|e| js_error(format!("the {what} image: {e}")))
}
