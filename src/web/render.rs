//! Draws the engine's image buffer into a canvas (shaders/render.wgsl): no CPU readback per frame.

use wasm_bindgen::JsValue;

use super::{js_error, Inner};

/// Draws the image buffer into a canvas: a surface on the canvas and one render pipeline.
pub(super) struct Renderer {
    pub(super) canvas: web_sys::HtmlCanvasElement,
    surface: wgpu::Surface<'static>,
    config: Option<wgpu::SurfaceConfiguration>,
    format: wgpu::TextureFormat,
    pipeline: wgpu::RenderPipeline,
    /// One view uniform per band of the image drawn so far (kept: a frame creates none).
    views: Vec<wgpu::Buffer>,
}

impl Renderer {
    pub(super) fn new(inner: &Inner, canvas: web_sys::HtmlCanvasElement) -> Result<Renderer, JsValue> {
        let device = &inner.ctx.device;
        let surface = inner
            .instance
            .create_surface(wgpu::SurfaceTarget::Canvas(canvas.clone()))
            .map_err(|e| js_error(format!("cannot draw into this canvas with WebGPU: {e}")))?;
        let caps = surface.get_capabilities(&inner.adapter);
        // Prefer a plain 8-bit format: our values are already sRGB-encoded.
        let format = caps
            .formats
            .iter()
            .copied()
            .find(|f| matches!(f, wgpu::TextureFormat::Bgra8Unorm | wgpu::TextureFormat::Rgba8Unorm))
            .or_else(|| caps.formats.first().copied())
            .ok_or_else(|| js_error("the canvas offers no texture format to draw with"))?;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("render"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/render.wgsl").into()),
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("render"),
            layout: None,
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        });
        Ok(Renderer { canvas, surface, config: None, format, pipeline, views: Vec::new() })
    }

    /// Draws `image` (width×height, in bands: one draw per band, each scissored to its rows).
    pub(super) fn draw(&mut self, inner: &Inner, image: &crate::bands::Bands, width: u32, height: u32) -> Result<(), JsValue> {
        let device = &inner.ctx.device;
        // The canvas shows the image at full size unless the GPU's texture limit is smaller.
        let max_side = inner.ctx.limits.max_texture_dimension_2d.max(1);
        let (out_w, out_h) = if width.max(height) > max_side {
            crate::imageio::size_for_longest(width, height, max_side)
        } else {
            (width, height)
        };
        if self.canvas.width() != out_w || self.canvas.height() != out_h {
            self.canvas.set_width(out_w);
            self.canvas.set_height(out_h);
        }
        if self.config.as_ref().is_none_or(|c| c.width != out_w || c.height != out_h) {
            let config = wgpu::SurfaceConfiguration {
                usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
                format: self.format,
                width: out_w,
                height: out_h,
                present_mode: wgpu::PresentMode::Fifo,
                desired_maximum_frame_latency: 2,
                alpha_mode: wgpu::CompositeAlphaMode::Opaque,
                view_formats: vec![],
                color_space: wgpu::SurfaceColorSpace::Auto,
            };
            self.surface.configure(device, &config);
            self.config = Some(config);
        }
        let frame = match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t) | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => return Ok(()),
            other => {
                self.config = None; // configure again next time
                return Err(js_error(format!("cannot draw into the canvas: {other:?}")));
            }
        };
        let srgb = u32::from(self.format.is_srgb());
        while self.views.len() < image.band_count() {
            self.views.push(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("render view"),
                size: 32,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        // Each band: its rows, the output rows that show them, and its bind group.
        let mut draws = Vec::new();
        for (band, view) in image.iter().zip(&self.views) {
            let (row0, rows) = (band.row0 as u32, band.rows as u32);
            let params: [u32; 8] = [width, height, out_w, out_h, srgb, row0, rows, 0];
            inner.ctx.queue.write_buffer(view, 0, bytemuck::cast_slice(&params));
            let first = (row0 as u64 * out_h as u64 / height as u64) as u32;
            let end = (((row0 + rows) as u64 * out_h as u64).div_ceil(height as u64) as u32).min(out_h);
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("render"),
                layout: &self.pipeline.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: view.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: band.buffer.as_entire_binding() },
                ],
            });
            draws.push((first, end.max(first + 1).min(out_h) - first, bind_group));
        }
        let target = frame.texture.create_view(&wgpu::TextureViewDescriptor::default());
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("render") });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("render"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &target,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color::WHITE), store: wgpu::StoreOp::Store },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(&self.pipeline);
            for (first, rows, bind_group) in &draws {
                pass.set_scissor_rect(0, *first, out_w, *rows);
                pass.set_bind_group(0, bind_group, &[]);
                pass.draw(0..3, 0..1);
            }
        }
        inner.ctx.queue.submit(Some(encoder.finish()));
        inner.ctx.queue.present(frame);
        Ok(())
    }
}
