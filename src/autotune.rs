//! Choosing a conv kernel variant per layer shape, by timing them on this GPU (as burn/cubecl's
//! autotune and cuDNN's benchmark mode do).
//!
//! A [`TuneKey`] groups shapes: the op, the channel counts and the pixel count rounded up to a
//! power of two, so the tiles of a tiled run and nearby image sizes share one measurement. Before a
//! plan's dispatches are built, [`Tuning::prepare`] times every variant on each key the plan needs
//! and has no timing for yet; [`Tuning::variant`] then gives the fastest. The timings persist per
//! adapter and driver ([`TuningCache`]: a file natively, localStorage in the page), and a cache
//! made with other kernel sources or on another device is ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::gpu::{Dispatch, GpuContext};
use crate::kernels::c4;
use crate::kernels::conv::{ConvShape, ConvVariant, Precision};
use crate::model::{LayerOp, VGG19};

/// Which convolution a timing is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConvOp {
    Forward,
    BackwardInput,
}

impl ConvOp {
    pub fn name(self) -> &'static str {
        match self {
            ConvOp::Forward => "forward",
            ConvOp::BackwardInput => "backward",
        }
    }
}

/// The shapes that share one choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TuneKey {
    pub op: ConvOp,
    pub cin: u32,
    pub cout: u32,
    /// log2 of the pixel count, rounded up.
    pub pixels_log2: u32,
}

impl TuneKey {
    pub fn of(op: ConvOp, shape: ConvShape) -> TuneKey {
        let pixels = (shape.h * shape.w).max(1);
        TuneKey { op, cin: shape.cin as u32, cout: shape.cout as u32, pixels_log2: pixels.next_power_of_two().trailing_zeros() }
    }
}

/// `--conv-kernel`: time the variants (`auto`) or always use one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvKernelChoice {
    #[default]
    Auto,
    Forced(ConvVariant),
}

impl ConvKernelChoice {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "auto" {
            return Ok(ConvKernelChoice::Auto);
        }
        ConvVariant::from_name(text).map(ConvKernelChoice::Forced).ok_or_else(|| {
            format!("unknown conv kernel {}; valid: {}", crate::settings::show(text), Self::names().join(", "))
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ConvKernelChoice::Auto => "auto",
            ConvKernelChoice::Forced(v) => v.name(),
        }
    }

    /// `auto` and every variant, as `--help` lists them.
    pub fn names() -> Vec<&'static str> {
        std::iter::once("auto").chain(ConvVariant::ALL.iter().map(|v| v.name())).collect()
    }
}

/// The time recorded for a variant whose dispatch raised a GPU error (it is never chosen).
pub const FAILED_MS: f64 = 1e300;
/// The shortest time recorded: a timer too coarse to see a dispatch reads 0, and 0 is no time.
const TIMER_FLOOR_MS: f64 = 1e-6;

/// One measurement: a variant on a shape of a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub key: TuneKey,
    /// The shape actually timed (h, w).
    pub h: u32,
    pub w: u32,
    pub variant: String,
    pub ms: f64,
}

impl Timing {
    /// A time that can be compared: positive and finite (a failed variant is stored as
    /// [`FAILED_MS`], which never wins).
    pub fn valid(&self) -> bool {
        self.ms.is_finite() && self.ms > 0.0
    }

    pub fn failed(&self) -> bool {
        self.ms >= FAILED_MS
    }

    /// GFLOP/s of the timed shape.
    pub fn gflops(&self) -> f64 {
        let shape = ConvShape { h: self.h as usize, w: self.w as usize, cin: self.key.cin as usize, cout: self.key.cout as usize };
        shape.flops() as f64 / 1e6 / self.ms.max(1e-9)
    }
}

/// The fastest known variant of each key (variants the engine no longer has are ignored).
pub fn fastest(timings: &[Timing]) -> BTreeMap<TuneKey, ConvVariant> {
    let mut best: BTreeMap<TuneKey, (ConvVariant, f64)> = BTreeMap::new();
    for t in timings {
        let Some(variant) = ConvVariant::from_name(&t.variant) else { continue };
        if !t.valid() {
            continue;
        }
        let entry = best.entry(t.key).or_insert((variant, t.ms));
        if t.ms < entry.1 {
            *entry = (variant, t.ms);
        }
    }
    best.into_iter().map(|(k, (v, _))| (k, v)).collect()
}

/// Every variant's time per layer shape, as a markdown table (`stylize bench` and the page's
/// benchmark view print the same): ms per dispatch with GFLOP/s, and the variant chosen.
pub fn variants_table(timings: &[Timing]) -> String {
    let names: Vec<&str> = ConvVariant::ALL.iter().map(|v| v.name()).collect();
    let mut table = format!("| op | map | channels | {} | chosen |\n|---|---|---|{}---|\n", names.join(" | "), "---|".repeat(names.len()));
    let chosen = fastest(timings);
    for (key, of_key) in by_key(timings) {
        let cells: Vec<String> = names
            .iter()
            .map(|n| match of_key.iter().find(|t| t.variant == *n) {
                None => "-".to_string(),
                Some(t) if t.failed() => "failed".to_string(),
                Some(t) => format!("{:.2} ({:.1})", t.ms, t.gflops()),
            })
            .collect();
        let (h, w) = (of_key[0].h, of_key[0].w);
        let winner = chosen.get(&key).map_or("-", |v| v.name());
        table.push_str(&format!("| {} | {h}×{w} | {}→{} | {} | {winner} |\n", key.op.name(), key.cin, key.cout, cells.join(" | ")));
    }
    table
}

/// The timings grouped by key, keys in the order they first appear.
pub fn by_key(timings: &[Timing]) -> Vec<(TuneKey, Vec<&Timing>)> {
    let mut groups: Vec<(TuneKey, Vec<&Timing>)> = Vec::new();
    for t in timings {
        match groups.iter_mut().find(|(k, _)| *k == t.key) {
            Some((_, group)) => group.push(t),
            None => groups.push((t.key, vec![t])),
        }
    }
    groups
}

/// Which device, kernels and precision a cache was made with. In the browser WebGPU tells little
/// about the adapter (often no name, vendor or driver), so the limits and features are part of it too.
pub fn fingerprint(ctx: &GpuContext, precision: Precision) -> String {
    let i = &ctx.adapter_info;
    let l = &ctx.limits;
    format!(
        "{} | {:?} {:?} | vendor {:#x} device {:#x} | driver {} {} | buffers {} {} | features {:?} | kernels {} {}",
        i.name,
        i.backend,
        i.device_type,
        i.vendor,
        i.device,
        i.driver,
        i.driver_info,
        l.max_buffer_size,
        l.max_storage_buffer_binding_size,
        ctx.device.features(),
        ConvVariant::sources_hash(),
        precision.name()
    )
}

/// The timings of one device, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningCache {
    pub fingerprint: String,
    pub timings: Vec<Timing>,
}

/// The cache file (or localStorage item): the timings of the last few devices, newest first, so that
/// a laptop's two GPUs (or two browsers' views of one) do not undo each other.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TuningFile {
    devices: Vec<TuningCache>,
}

/// Devices a cache file keeps.
const CACHED_DEVICES: usize = 8;

impl TuningCache {
    /// A cache file holding this device's timings only.
    pub fn to_json(&self) -> String {
        Self::merged(None, self.clone())
    }

    /// The cache file `existing` (if readable) with `entry` in place of that device's older timings.
    pub fn merged(existing: Option<&str>, entry: TuningCache) -> String {
        let mut file: TuningFile = existing.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
        file.devices.retain(|d| d.fingerprint != entry.fingerprint);
        file.devices.insert(0, entry);
        file.devices.truncate(CACHED_DEVICES);
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }

    /// The cached timings of `fingerprint` in the cache file `text`; `None` when it has none (another
    /// GPU or driver, other kernel sources) or is unreadable: then the variants are timed again.
    pub fn from_json(text: &str, fingerprint: &str) -> Option<Vec<Timing>> {
        let file: TuningFile = serde_json::from_str(text).ok()?;
        file.devices.into_iter().find(|d| d.fingerprint == fingerprint).map(|d| d.timings)
    }
}

/// The conv kernel state of one network (one GPU context, one precision): the choice, the timings
/// so far, and whether they came from (or went to) the cache.
#[derive(Debug, Default)]
pub struct Tuning {
    pub choice: ConvKernelChoice,
    /// The precision the kernels are compiled in: timings of the other are another cache entry.
    precision: Precision,
    timings: Vec<Timing>,
    chosen: BTreeMap<TuneKey, ConvVariant>,
    cache_read: bool,
    /// Keys being timed right now, and how many are done (the page's "tuning for this GPU…").
    pub progress: Option<(usize, usize)>,
}

impl Tuning {
    pub fn for_precision(precision: Precision) -> Tuning {
        Tuning { precision, ..Default::default() }
    }

    /// The variant for `shape`: the forced one, else the fastest timed, else the register kernel
    /// (what the engine used before there were variants).
    pub fn variant(&self, op: ConvOp, shape: ConvShape) -> ConvVariant {
        match self.choice {
            ConvKernelChoice::Forced(v) => v,
            ConvKernelChoice::Auto => self.chosen.get(&TuneKey::of(op, shape)).copied().unwrap_or(ConvVariant::Register4x8),
        }
    }

    /// Adds timings (replacing older ones of the same key and variant) and recomputes the choices.
    pub fn add(&mut self, new: Vec<Timing>) {
        self.timings.retain(|t| !new.iter().any(|n| n.key == t.key && n.variant == t.variant));
        self.timings.extend(new);
        self.timings.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.variant.cmp(&b.variant)));
        self.chosen = fastest(&self.timings);
    }

    /// Takes `timings` measured elsewhere (the benchmark's) as this GPU's, in place of the cache, and
    /// stores them.
    pub fn adopt(&mut self, ctx: &GpuContext, timings: Vec<Timing>) {
        self.read_cache_once(ctx);
        self.add(timings);
        self.save(ctx);
    }

    /// Takes this GPU's cached timings, the first time only.
    fn read_cache_once(&mut self, ctx: &GpuContext) {
        if !self.cache_read {
            self.cache_read = true;
            if let Some(cached) = store::load().and_then(|text| TuningCache::from_json(&text, &fingerprint(ctx, self.precision))) {
                self.add(cached);
            }
        }
    }

    /// Writes the timings into the cache, beside other devices' (read again just before, so that
    /// another process's devices are kept).
    fn save(&self, ctx: &GpuContext) {
        let entry = TuningCache { fingerprint: fingerprint(ctx, self.precision), timings: self.timings.clone() };
        store::save(&TuningCache::merged(store::load().as_deref(), entry));
    }

    /// Keys of `shapes` that have no timing of every variant yet.
    pub fn missing(&self, shapes: &[(TuneKey, ConvShape)]) -> Vec<(TuneKey, ConvShape)> {
        shapes
            .iter()
            .filter(|(key, _)| ConvVariant::ALL.iter().any(|v| !self.timings.iter().any(|t| t.key == *key && t.variant == v.name() && t.valid())))
            .copied()
            .collect()
    }

    /// With `auto`: reads the cache once, times the variants on every key of `shapes` still
    /// missing (telling `starting` how many first), and writes the cache back. Returns how many
    /// keys were timed.
    pub async fn prepare(
        cell: &std::sync::Mutex<Tuning>,
        ctx: &GpuContext,
        conv: &crate::kernels::conv::Conv3x3,
        shapes: &[(TuneKey, ConvShape)],
        starting: impl FnOnce(usize),
    ) -> usize {
        let missing = {
            let mut t = lock(cell);
            if t.choice != ConvKernelChoice::Auto {
                return 0;
            }
            t.read_cache_once(ctx);
            let missing = t.missing(shapes);
            if !missing.is_empty() {
                t.progress = Some((0, missing.len()));
            }
            missing
        };
        if !missing.is_empty() {
            starting(missing.len());
        }
        for (i, (key, shape)) in missing.iter().enumerate() {
            let timings = time_variants(ctx, conv, *key, timing_shape(*shape, TUNING_MAX_PIXELS)).await;
            let mut t = lock(cell);
            t.add(timings);
            t.progress = Some((i + 1, missing.len()));
        }
        let mut t = lock(cell);
        t.progress = None;
        if !missing.is_empty() {
            t.save(ctx);
        }
        missing.len()
    }
}

fn lock(cell: &std::sync::Mutex<Tuning>) -> std::sync::MutexGuard<'_, Tuning> {
    cell.lock().unwrap_or_else(|p| p.into_inner())
}

/// A run's tuning times shapes of at most this many pixels: above it the work grows in proportion and
/// the ranking of the variants holds, and a slow GPU (a CPU-backed one) would otherwise spend minutes on
/// a large run's first step. The benchmark times the full shapes.
pub const TUNING_MAX_PIXELS: usize = 256 * 256;

/// `shape` scaled down (keeping its aspect) to at most `max_pixels` pixels.
pub fn timing_shape(shape: ConvShape, max_pixels: usize) -> ConvShape {
    let pixels = shape.h * shape.w;
    if pixels <= max_pixels {
        return shape;
    }
    let f = (max_pixels as f64 / pixels as f64).sqrt();
    let h = ((shape.h as f64 * f) as usize).max(1);
    // (a map too thin to scale both ways keeps one row and is cut in width)
    let w = ((shape.w as f64 * f) as usize).clamp(1, max_pixels / h);
    ConvShape { h, w, ..shape }
}

/// The conv shapes of stacks of VGG19 on `maps` ((h, w, depth) each, [`crate::plan::Plan::stack_maps`]),
/// one per key (the first shape of each key is the one timed), forward and backward.
pub fn conv_shapes(maps: &[(usize, usize, usize)]) -> Vec<(TuneKey, ConvShape)> {
    let mut out: Vec<(TuneKey, ConvShape)> = Vec::new();
    for &(h, w, depth) in maps {
        let (mut h, mut w) = (h, w);
        for op in &VGG19[..depth] {
            match *op {
                LayerOp::Conv(c) => {
                    let shape = ConvShape { h, w, cin: c.cin, cout: c.cout };
                    for op in [ConvOp::Forward, ConvOp::BackwardInput] {
                        let key = TuneKey::of(op, shape);
                        if !out.iter().any(|(k, _)| *k == key) {
                            out.push((key, shape));
                        }
                    }
                }
                LayerOp::Pool => (h, w) = (h / 2, w / 2),
            }
            if h == 0 || w == 0 {
                break;
            }
        }
    }
    out
}

/// Times every variant on `shape` (scratch buffers, not counted as the plan's memory): one
/// warm-up dispatch, then enough repeats in one submission to take about 20 ms, or one for a slow
/// GPU. Wall clock around the submission and its completion (the same on every adapter).
pub async fn time_variants(ctx: &GpuContext, conv: &crate::kernels::conv::Conv3x3, key: TuneKey, shape: ConvShape) -> Vec<Timing> {
    let scratch = |label: &str, elements: usize| {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: crate::gpu::buffer_size(elements as u64 * 4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let (a, weight, bias) = (scratch("tune.a", shape.input_len().max(shape.output_len())), scratch("tune.weight", shape.weight_len()), scratch("tune.bias", c4(shape.cout)));
    let (b, mask) = (scratch("tune.b", shape.input_len().max(shape.output_len())), scratch("tune.mask", shape.mask_words()));
    let mut out = Vec::new();
    for variant in ConvVariant::ALL {
        let d = match key.op {
            ConvOp::Forward => conv.forward(ctx, variant, shape, &a, &weight, &bias, &b, &mask),
            ConvOp::BackwardInput => conv.backward_input(ctx, variant, shape, &a, &mask, &weight, &b),
        };
        let _ = ctx.take_error();
        let timed = async {
            time_dispatch(ctx, &d, 1).await?; // the pipeline's first use
            let once = time_dispatch(ctx, &d, 1).await?;
            let repeats = if once > 0.0 { (20.0 / once).clamp(1.0, 20.0) as u32 } else { 20 };
            let ms = if repeats > 1 { time_dispatch(ctx, &d, repeats).await? } else { once };
            Ok::<f64, crate::gpu::GpuError>(if once > 0.0 { ms.min(once) } else { ms })
        };
        // A variant that failed on this GPU (its dispatches did nothing, fast) must never be chosen.
        let ms = timed.await.unwrap_or_else(|e| {
            log::warn!("conv variant {} failed on {shape:?}: {e}", variant.name());
            FAILED_MS
        });
        out.push(Timing { key, h: shape.h as u32, w: shape.w as u32, variant: variant.name().to_string(), ms: ms.max(TIMER_FLOOR_MS) });
    }
    for buffer in [a, weight, bias, b, mask] {
        buffer.destroy();
    }
    out
}

/// How the autotuner times a dispatch on this GPU: GPU timestamps around the compute pass where the
/// adapter has them, else the wall clock around the submission and its completion.
pub fn timer(ctx: &GpuContext) -> &'static str {
    if ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        "GPU timestamps"
    } else {
        "wall clock"
    }
}

/// Milliseconds per dispatch of `repeats` dispatches in one compute pass: by GPU timestamps where
/// there are (a reading of 0, as a browser's coarsened timer can give, falls back), else wall clock.
async fn time_dispatch(ctx: &GpuContext, d: &Dispatch, repeats: u32) -> Result<f64, crate::gpu::GpuError> {
    let stamps = ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY).then(|| {
        let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("tune"), ty: wgpu::QueryType::Timestamp, count: 2 });
        let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tune.timestamps"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        (set, resolved)
    });
    let start = clock::now_ms();
    let mut encoder = ctx.encoder("tune");
    {
        let timestamp_writes = stamps.as_ref().map(|(set, _)| wgpu::ComputePassTimestampWrites {
            query_set: set,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
        for _ in 0..repeats {
            d.record(&mut pass);
        }
    }
    if let Some((set, resolved)) = &stamps {
        encoder.resolve_query_set(set, 0..2, resolved, 0);
    }
    ctx.submit(encoder);
    ctx.idle().await;
    let wall = (clock::now_ms() - start) / repeats as f64;
    if let Some(e) = ctx.take_error() {
        return Err(e);
    }
    let Some((_, resolved)) = stamps else { return Ok(wall) };
    let bytes = ctx.read_bytes(&resolved, 0, 16).await;
    resolved.destroy();
    let ticks: [u64; 2] = bytemuck::pod_read_unaligned(&bytes?);
    let gpu = ticks[1].saturating_sub(ticks[0]) as f64 * ctx.queue.get_timestamp_period() as f64 / 1e6 / repeats as f64;
    Ok(if gpu > 0.0 && gpu.is_finite() { gpu } else { wall })
}

/// A millisecond clock: `Instant` natively, `performance.now()` in the page.
pub mod clock {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn now_ms() -> f64 {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1000.0
    }

    #[cfg(target_arch = "wasm32")]
    pub fn now_ms() -> f64 {
        web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
    }
}

/// Where the timings persist: a file in the user's cache directory natively
/// (`$STYLIZE_CACHE_DIR`, else `$XDG_CACHE_HOME/stylize`, else `~/.cache/stylize`), localStorage in
/// the page. Failing to read or write it only means timing again.
pub mod store {
    pub const FILE_NAME: &str = "conv-tuning.json";
    pub const STORAGE_KEY: &str = "stylize.conv-tuning";

    #[cfg(not(target_arch = "wasm32"))]
    pub fn path() -> Option<std::path::PathBuf> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
        let dir = var("STYLIZE_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("stylize")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("stylize")))?;
        Some(dir.join(FILE_NAME))
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn load() -> Option<String> {
        std::fs::read_to_string(path()?).ok()
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(text: &str) {
        let Some(path) = path() else { return };
        let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| {
            // Through a temporary file, so a concurrent reader never sees half a cache.
            static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
            std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path))
        });
        if let Err(e) = written {
            log::warn!("could not write the conv tuning cache {}: {e}", path.display());
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    #[cfg(target_arch = "wasm32")]
    pub fn load() -> Option<String> {
        storage()?.get_item(STORAGE_KEY).ok()?
    }

    #[cfg(target_arch = "wasm32")]
    pub fn save(text: &str) {
        if let Some(s) = storage() {
            let _ = s.set_item(STORAGE_KEY, text);
        }
    }
}
