//! The GPU context: device and queue, buffer helpers, compute kernels as
//! pre-built dispatches, and async readback.
//!
//! Nothing here blocks in the browser: readback awaits the map callback, and
//! only the native build polls the device to drive that callback.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::plan::BufferSpec;

/// Errors from the GPU layer, each worded for the person who sees it.
#[derive(Debug, Clone)]
pub enum GpuError {
    NoAdapter(String),
    NoDevice(String),
    Readback(String),
    Validation(String),
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::NoAdapter(e) => write!(
                f,
                "no GPU adapter found ({e}); natively install a Vulkan driver (on Linux without a GPU: \
                 apt-get install mesa-vulkan-drivers), in the browser use Chrome/Edge 113+ or enable WebGPU"
            ),
            GpuError::NoDevice(e) => write!(f, "the GPU adapter refused to create a device: {e}"),
            GpuError::Readback(e) => write!(f, "reading a result back from the GPU failed: {e}"),
            GpuError::Validation(e) => write!(f, "GPU error: {e}"),
        }
    }
}

impl std::error::Error for GpuError {}

/// The device, its queue and what we know about the adapter.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Bytes of every storage buffer created through this context (a running total).
    allocated: AtomicU64,
    buffers_created: AtomicU64,
    bind_groups_created: AtomicU64,
    /// The first uncaptured validation error, if any (wgpu reports those asynchronously).
    first_error: Arc<Mutex<Option<String>>>,
    /// Submissions the GPU has finished (as wgpu reports them): that the GPU is moving, for a
    /// watchdog over long work.
    finished: Arc<AtomicU64>,
}

impl GpuContext {
    /// Picks the high-performance adapter and asks for its own limits, so that
    /// large images can use the largest buffers the GPU allows.
    pub async fn new() -> Result<Self, GpuError> {
        Self::from_adapter(Self::request_adapter(&Self::instance()).await?).await
    }

    /// A wgpu instance whose backends follow `WGPU_BACKEND` (natively) or WebGPU (in the browser).
    pub fn instance() -> wgpu::Instance {
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
    }

    /// The high-performance adapter of the platform (WebGPU in the browser, Vulkan/Metal/DX12/GL natively).
    pub async fn request_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter, GpuError> {
        instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))
    }

    /// Creates the device on a chosen adapter (the web page picks its own).
    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<Self, GpuError> {
        let adapter_limits = adapter.limits();
        // Ask for what the adapter has where it matters to us; keep defaults elsewhere.
        let mut limits = wgpu::Limits::downlevel_defaults();
        limits.max_storage_buffer_binding_size = adapter_limits.max_storage_buffer_binding_size;
        limits.max_buffer_size = adapter_limits.max_buffer_size;
        limits.max_storage_buffers_per_shader_stage = adapter_limits.max_storage_buffers_per_shader_stage.min(10);
        limits.max_compute_workgroups_per_dimension = adapter_limits.max_compute_workgroups_per_dimension;
        limits.max_compute_invocations_per_workgroup = adapter_limits.max_compute_invocations_per_workgroup.min(256);
        limits.max_compute_workgroup_size_x = adapter_limits.max_compute_workgroup_size_x.min(256);
        limits.max_compute_workgroup_size_y = adapter_limits.max_compute_workgroup_size_y.min(256);
        limits.max_compute_workgroup_storage_size = adapter_limits.max_compute_workgroup_storage_size.min(16384);
        // The web renderer draws the image into a canvas texture of the output's size.
        limits.max_texture_dimension_2d = adapter_limits.max_texture_dimension_2d;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("stylize"),
                // Timestamps let the conv autotuner time the GPU alone (crate::autotune); shader-f16
                // allows the f16 conv kernels (`--precision f16`), compiled only when asked for;
                // subgroups make the loss sums cheaper (crate::kernels::reduce::LaneSum).
                required_features: adapter.features()
                    & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP),
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::NoDevice(e.to_string()))?;
        let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let sink = first_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("wgpu: {e}");
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));
        Ok(GpuContext {
            device,
            queue,
            adapter_info: adapter.get_info(),
            limits,
            allocated: AtomicU64::new(0),
            buffers_created: AtomicU64::new(0),
            bind_groups_created: AtomicU64::new(0),
            first_error,
            finished: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Human-readable adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)".
    pub fn describe(&self) -> String {
        format!("{} ({:?})", self.adapter_info.name, self.adapter_info.backend)
    }

    /// Returns (and clears) a GPU validation error reported since the last call.
    /// Whether an error is waiting for [`GpuContext::take_error`].
    pub fn has_error(&self) -> bool {
        self.first_error.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    pub fn take_error(&self) -> Option<GpuError> {
        let mut slot = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        slot.take().map(GpuError::Validation)
    }

    /// Bytes of GPU storage buffers created through this context so far (what plans count).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated.load(Ordering::Relaxed)
    }

    /// Buffers (storage, uniform, readback staging) and bind groups created so far: a long run
    /// must not add any per step beyond its readbacks' staging buffers.
    pub fn objects_created(&self) -> (u64, u64) {
        (self.buffers_created.load(Ordering::Relaxed), self.bind_groups_created.load(Ordering::Relaxed))
    }

    /// The largest storage buffer this device binds (what plans are checked against).
    pub fn max_buffer(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// A zero-filled storage buffer of `bytes` bytes (rounded up to 16), usable as copy source and target.
    pub fn storage_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        let size = buffer_size(bytes);
        self.allocated.fetch_add(size, Ordering::Relaxed);
        self.buffers_created.fetch_add(1, Ordering::Relaxed);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// The storage buffer a plan's [`BufferSpec`] describes (its size was rounded by [`buffer_size`]).
    pub fn alloc(&self, spec: &BufferSpec) -> wgpu::Buffer {
        self.storage_buffer(&spec.label, spec.bytes)
    }

    /// A storage buffer holding `data` (padded with zeros to a multiple of 16 bytes).
    pub fn storage_buffer_init(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let buffer = self.storage_buffer(label, data.len() as u64);
        if !data.is_empty() {
            self.queue.write_buffer(&buffer, 0, &pad4(data));
        }
        buffer
    }

    /// A uniform buffer holding `data`, for kernel parameters fixed at plan time.
    pub fn uniform_buffer_init(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let size = buffer_size(data.len() as u64);
        self.buffers_created.fetch_add(1, Ordering::Relaxed);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, &pad4(data));
        buffer
    }

    /// Compiles a WGSL source once, for all of its entry points: the one way every kernel is built
    /// (then [`GpuContext::kernel_from_module`] per entry point).
    pub fn shader_module(&self, label: &str, source: &str) -> wgpu::ShaderModule {
        self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(Cow::Owned(source.to_string())),
        })
    }

    /// One entry point of an already compiled module (files with forward and backward share one).
    pub fn kernel_from_module(&self, label: &str, module: &wgpu::ShaderModule, entry_point: &str) -> Kernel {
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module,
            entry_point: Some(entry_point),
            compilation_options: Default::default(),
            cache: None,
        });
        Kernel { label: label.to_string(), pipeline }
    }

    /// Submits recorded work.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.queue.submit(Some(encoder.finish()));
        let finished = self.finished.clone();
        self.queue.on_submitted_work_done(move || {
            finished.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// Resolves when the GPU has finished everything submitted so far (natively it blocks).
    pub async fn idle(&self) {
        let (sender, receiver) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = sender.send(());
        });
        self.wait_native();
        let _ = receiver.await;
    }

    /// Submissions the GPU has finished so far (natively, as of the last poll).
    pub fn finished_submissions(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Runs dispatches in one compute pass and submits them.
    pub fn run(&self, dispatches: &[&Dispatch]) {
        let mut encoder = self.encoder("run");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        self.submit(encoder);
    }

    /// Reads `bytes` bytes at `offset` of a storage buffer back to the CPU.
    pub async fn read_bytes(&self, buffer: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>, GpuError> {
        let size = bytes.div_ceil(4) * 4;
        if size == 0 {
            return Ok(Vec::new());
        }
        self.buffers_created.fetch_add(1, Ordering::Relaxed);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.encoder("readback");
        encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
        self.submit(encoder);
        let (sender, receiver) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = sender.send(result);
        });
        self.wait_native();
        receiver
            .await
            .map_err(|_| GpuError::Readback("the GPU device was lost".into()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let data = {
            let view = staging.get_mapped_range(..).map_err(|e| GpuError::Readback(e.to_string()))?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        staging.destroy();
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        Ok(data)
    }

    /// Reads `len` f32 values starting at element `first`.
    pub async fn read_f32(&self, buffer: &wgpu::Buffer, first: usize, len: usize) -> Result<Vec<f32>, GpuError> {
        let bytes = self.read_bytes(buffer, first as u64 * 4, len as u64 * 4).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Reads `len` u32 values starting at element `first`.
    pub async fn read_u32(&self, buffer: &wgpu::Buffer, first: usize, len: usize) -> Result<Vec<u32>, GpuError> {
        let bytes = self.read_bytes(buffer, first as u64 * 4, len as u64 * 4).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Natively, drives map callbacks by waiting for the queue; in the browser the event loop does it.
    fn wait_native(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        }
    }

    /// Waits until the GPU has finished all submitted work (native only; benchmarks use it).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn finish(&self) {
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }
}

/// A compiled compute pipeline (one WGSL entry point).
#[derive(Clone)]
pub struct Kernel {
    pub label: String,
    pipeline: wgpu::ComputePipeline,
}

impl Kernel {
    /// Binds buffers and freezes the workgroup count into a [`Dispatch`], built once per
    /// image size and replayed every step. `params` (if not empty) go to a uniform at
    /// binding 0; `storage` lists (binding, buffer) pairs.
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        params: &[u8],
        storage: &[(u32, &wgpu::Buffer)],
        workgroups: [u32; 3],
    ) -> Dispatch {
        let uniform = (!params.is_empty()).then(|| ctx.uniform_buffer_init(&self.label, params));
        let mut entries: Vec<wgpu::BindGroupEntry> = Vec::with_capacity(storage.len() + 1);
        if let Some(u) = &uniform {
            entries.push(wgpu::BindGroupEntry { binding: 0, resource: u.as_entire_binding() });
        }
        for (binding, buffer) in storage {
            entries.push(wgpu::BindGroupEntry { binding: *binding, resource: buffer.as_entire_binding() });
        }
        ctx.bind_groups_created.fetch_add(1, Ordering::Relaxed);
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&self.label),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Dispatch { label: self.label.clone(), pipeline: self.pipeline.clone(), bind_group, workgroups, flops: 0 }
    }
}

/// One kernel launch with its buffers bound: recorded into a compute pass every step.
#[derive(Clone)]
pub struct Dispatch {
    pub label: String,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
    /// Floating point operations this launch performs (for the benchmark); 0 if not counted.
    pub flops: u64,
}

impl Dispatch {
    pub fn with_flops(mut self, flops: u64) -> Self {
        self.flops = flops;
        self
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        let [x, y, z] = self.workgroups;
        if x == 0 || y == 0 || z == 0 {
            return;
        }
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Workgroups needed to cover `n` items with `per_group` items each.
pub fn groups(n: usize, per_group: usize) -> u32 {
    n.div_ceil(per_group).max(1) as u32
}

/// Spreads a 1-D workgroup count over x and y so it stays under the 65535-per-dimension limit.
/// Kernels using it compute their linear index as `wg.x + wg.y * num_workgroups.x`.
pub fn groups_2d(count: u32) -> [u32; 3] {
    if count <= 65535 {
        [count, 1, 1]
    } else {
        let y = count.div_ceil(65535);
        [count.div_ceil(y), y, 1]
    }
}

/// The size a buffer of `bytes` bytes gets: at least 16, a multiple of 16 (plans count with it).
pub fn buffer_size(bytes: u64) -> u64 {
    bytes.max(16).div_ceil(16) * 16
}

fn pad4(data: &[u8]) -> Cow<'_, [u8]> {
    if data.len().is_multiple_of(4) {
        Cow::Borrowed(data)
    } else {
        let mut v = data.to_vec();
        v.resize(data.len().div_ceil(4) * 4, 0);
        Cow::Owned(v)
    }
}

/// Creates a context natively, blocking; for tests, benchmarks and the CLI.
#[cfg(not(target_arch = "wasm32"))]
pub fn native_context() -> Result<GpuContext, GpuError> {
    pollster::block_on(GpuContext::new())
}
