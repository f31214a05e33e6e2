//! VGG19's feature stack: the layer table, the weights on the GPU, and the
//! per-size plan of activation buffers with its forward and backward dispatches.
//!
//! Memory is the point of this module. Only what the backward pass needs is kept:
//! ReLU masks (1 bit per element, [`crate::kernels::mask_words`]), max-pool choices
//! (2 bits), and the feature maps of the loss layers. Every other activation lives
//! in one of two ping-pong buffers that the backward pass reuses for gradients.

use crate::autotune::{ConvKernelChoice, ConvOp};
use crate::gpu::{Dispatch, GpuContext};
use crate::kernels::{c4, colour, conv, gram, image, keep_finite, loss, mask_words, pool, reduce, resize, tv, window};
use crate::kernels::window::Rect;
use crate::plan::BufferSpec;
use crate::weights::Weights;
use std::sync::Arc;

/// One 3×3 conv + bias + ReLU of VGG19, with the names of its output before and after the ReLU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvLayer {
    /// The weights' name, e.g. "conv4_2".
    pub conv: &'static str,
    /// The name of its ReLU output, which content and style layers are named by, e.g. "relu4_2".
    pub relu: &'static str,
    pub cin: usize,
    pub cout: usize,
}

/// One op of VGG19's feature stack, in network order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerOp {
    Conv(ConvLayer),
    /// 2×2 stride-2 pooling.
    Pool,
}

const fn conv(conv: &'static str, relu: &'static str, cin: usize, cout: usize) -> LayerOp {
    LayerOp::Conv(ConvLayer { conv, relu, cin, cout })
}

/// VGG19's feature stack up to conv5_4 (pool5 is never needed: no loss layer follows it).
/// This is the one layer table: every name, channel count, conv↔relu mapping and pool position
/// elsewhere (weights file, settings, the page's layer list) is derived from it.
pub const VGG19: [LayerOp; 20] = [
    conv("conv1_1", "relu1_1", 3, 64),
    conv("conv1_2", "relu1_2", 64, 64),
    LayerOp::Pool,
    conv("conv2_1", "relu2_1", 64, 128),
    conv("conv2_2", "relu2_2", 128, 128),
    LayerOp::Pool,
    conv("conv3_1", "relu3_1", 128, 256),
    conv("conv3_2", "relu3_2", 256, 256),
    conv("conv3_3", "relu3_3", 256, 256),
    conv("conv3_4", "relu3_4", 256, 256),
    LayerOp::Pool,
    conv("conv4_1", "relu4_1", 256, 512),
    conv("conv4_2", "relu4_2", 512, 512),
    conv("conv4_3", "relu4_3", 512, 512),
    conv("conv4_4", "relu4_4", 512, 512),
    LayerOp::Pool,
    conv("conv5_1", "relu5_1", 512, 512),
    conv("conv5_2", "relu5_2", 512, 512),
    conv("conv5_3", "relu5_3", 512, 512),
    conv("conv5_4", "relu5_4", 512, 512),
];

/// The convolutions of [`VGG19`] alone, in network order (the weights file holds a prefix of them).
pub const CONVS: [ConvLayer; 16] = conv_layers();

const fn conv_layers() -> [ConvLayer; 16] {
    let mut out = [ConvLayer { conv: "", relu: "", cin: 0, cout: 0 }; 16];
    let (mut i, mut j) = (0, 0);
    while i < VGG19.len() {
        if let LayerOp::Conv(c) = VGG19[i] {
            out[j] = c;
            j += 1;
        }
        i += 1;
    }
    assert!(j == 16, "VGG19 has 16 convolutions");
    out
}

/// Names accepted for loss layers, in network order.
pub fn relu_layer_names() -> Vec<&'static str> {
    CONVS.iter().map(|c| c.relu).collect()
}

/// Index in [`VGG19`] of the conv whose ReLU output is `relu` ("relu4_2" → 12).
pub fn layer_index(relu: &str) -> Option<usize> {
    VGG19.iter().position(|op| matches!(op, LayerOp::Conv(c) if c.relu == relu))
}

/// The conv layer whose ReLU output is `relu`.
pub fn conv_of(relu: &str) -> Option<&'static ConvLayer> {
    CONVS.iter().find(|c| c.relu == relu)
}

/// The smallest side an image may have for a stack of the first `depth` ops: every 2×2 pooling
/// halves it (dropping an odd last row or column) and must leave at least one pixel.
pub fn min_side_for_depth(depth: usize) -> u32 {
    1 << VGG19[..depth.min(VGG19.len())].iter().filter(|op| matches!(op, LayerOp::Pool)).count()
}

/// The smallest image side for these loss layers (names that are not in the table count as none).
pub fn min_side_for<'a>(relus: impl IntoIterator<Item = &'a str>) -> u32 {
    let depth = relus.into_iter().filter_map(layer_index).map(|i| i + 1).max().unwrap_or(0);
    min_side_for_depth(depth)
}

/// How many input pixels each pixel of op `op`'s output spans: 2 to the number of poolings up to it.
pub fn downsampling(op: usize) -> usize {
    1 << VGG19[..=op].iter().filter(|o| matches!(o, LayerOp::Pool)).count()
}

/// The receptive-field radius of op `op`'s output, in input pixels: its value at a pixel depends on
/// the input within this many pixels of that pixel's span (each 3×3 conv adds one pixel at its own
/// resolution; a 2×2 pooling adds none when windows align to its grid).
pub fn receptive_margin(op: usize) -> usize {
    let mut stride = 1;
    let mut margin = 0;
    for o in &VGG19[..=op] {
        match o {
            LayerOp::Conv(_) => margin += stride,
            LayerOp::Pool => stride *= 2,
        }
    }
    margin
}

/// Height, width and (real, unpadded) channels of a feature map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapShape {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl MapShape {
    /// f32 elements in storage (channels padded to 4).
    pub fn padded_len(&self) -> usize {
        self.h * self.w * c4(self.c)
    }
    /// Real elements (the `mean` of the content loss divides by this).
    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Output shapes of the first `depth` ops for an `h`×`w` image (floor-mode pooling).
pub fn output_shapes(h: usize, w: usize, depth: usize) -> Vec<MapShape> {
    let mut shape = MapShape { h, w, c: 3 };
    VGG19[..depth]
        .iter()
        .map(|op| {
            shape = match *op {
                LayerOp::Conv(c) => MapShape { c: c.cout, ..shape },
                LayerOp::Pool => MapShape { h: shape.h / 2, w: shape.w / 2, c: shape.c },
            };
            shape
        })
        .collect()
}

/// The compiled kernels, built once per GPU context.
pub struct Kernels {
    pub conv: conv::Conv3x3,
    pub pool: pool::Pool2x2,
    pub gram: gram::Gram,
    pub content: loss::ContentLoss,
    pub style: loss::StyleLoss,
    pub tv: tv::TvLoss,
    pub image: image::ImageOps,
    pub reduce: reduce::Reduce,
    pub keep_finite: keep_finite::KeepFinite,
    pub resize: resize::Resize,
    pub colour: colour::Colour,
    pub window: window::WindowCopy,
    pub optimizer: crate::optim::OptimizerKernels,
}

/// VGG19 on the GPU: the compiled kernels, the padded weights and the input convention.
/// Uploaded once and shared by every [`crate::engine::Stylizer`].
pub struct Network {
    pub ctx: Arc<GpuContext>,
    pub kernels: Kernels,
    /// (weight [cout][3][3][cin4], bias [cout4]) per conv, in network order; only the convs the file has.
    pub convs: Vec<(wgpu::Buffer, wgpu::Buffer)>,
    /// How many ops of [`VGG19`] the weights cover (a file with conv1_1..conv5_1 covers 17).
    pub available_depth: usize,
    /// x → v: channel order, scale and mean, as the weights file states them.
    pub input: image::InputTransform,
    /// The conv kernel variant of each layer shape (timed on this GPU, or forced).
    pub tuning: std::sync::Mutex<crate::autotune::Tuning>,
}

impl Kernels {
    /// Every kernel, the convolutions in `precision` (an error when the GPU cannot run it), the loss
    /// sums by `lane_sum`.
    pub fn new(ctx: &GpuContext, precision: conv::Precision, lane_sum: reduce::LaneSum) -> Result<Self, String> {
        Ok(Kernels {
            conv: conv::Conv3x3::with_precision(ctx, precision)?,
            pool: pool::Pool2x2::new(ctx),
            gram: gram::Gram::new(ctx),
            content: loss::ContentLoss::with_lane_sum(ctx, lane_sum),
            style: loss::StyleLoss::with_lane_sum(ctx, lane_sum),
            tv: tv::TvLoss::with_lane_sum(ctx, lane_sum),
            image: image::ImageOps::new(ctx),
            reduce: reduce::Reduce::with_lane_sum(ctx, lane_sum),
            keep_finite: keep_finite::KeepFinite::new(ctx),
            resize: resize::Resize::new(ctx),
            colour: colour::Colour::new(ctx),
            window: window::WindowCopy::new(ctx),
            optimizer: crate::optim::OptimizerKernels::new(ctx),
        })
    }
}

impl Network {
    /// [`Network::upload_in`] f32.
    pub fn upload(ctx: &Arc<GpuContext>, weights: &Weights) -> Result<Network, String> {
        Self::upload_in(ctx, weights, conv::Precision::F32)
    }

    /// Pads and uploads the weights once, stored in `precision` (as [`crate::plan::weight_layout`]
    /// counts them); compiles every kernel once, the loss sums with subgroups where the GPU has them.
    /// An error when the GPU cannot run `precision`.
    pub fn upload_in(ctx: &Arc<GpuContext>, weights: &Weights, precision: conv::Precision) -> Result<Network, String> {
        Self::upload_with(ctx, weights, precision, reduce::LaneSum::for_device(ctx))
    }

    /// [`Network::upload_in`] with the loss sums by `lane_sum` (the tests and the benchmark compare them).
    pub fn upload_with(ctx: &Arc<GpuContext>, weights: &Weights, precision: conv::Precision, lane_sum: reduce::LaneSum) -> Result<Network, String> {
        if !lane_sum.available(ctx) {
            return Err(format!("{} has no subgroups", ctx.describe()));
        }
        let kernels = Kernels::new(ctx, precision, lane_sum)?;
        let present = CONVS.iter().take_while(|c| weights.layer(c.conv).is_some()).count();
        let layout = crate::plan::weight_layout(present, precision);
        let mut convs = Vec::new();
        for (c, (weight_spec, bias_spec)) in CONVS.iter().zip(&layout) {
            let layer = weights.layer(c.conv).expect("counted as present");
            if layer.cin != c.cin || layer.cout != c.cout {
                return Err(format!(
                    "weights layer {} is {}→{} channels, VGG19 has {}→{}",
                    c.conv, layer.cin, layer.cout, c.cin, c.cout
                ));
            }
            let kernel = conv::pad_weights(c.cin, c.cout, &layer.kernel);
            let bias = conv::pad_bias(c.cout, &layer.bias);
            let (weight_buffer, bias_buffer) = (ctx.alloc(weight_spec), ctx.alloc(bias_spec));
            ctx.queue.write_buffer(&weight_buffer, 0, &precision.weight_buffer_bytes(&kernel));
            ctx.queue.write_buffer(&bias_buffer, 0, bytemuck::cast_slice(&bias));
            convs.push((weight_buffer, bias_buffer));
        }
        let input = image::InputTransform::new(&weights.input.channel_order, weights.input.scale, weights.input.mean)
            .map_err(|e| format!("the weights file's input convention: {e}"))?;
        Ok(Network {
            ctx: ctx.clone(),
            kernels,
            available_depth: crate::plan::depth_for_convs(convs.len()),
            convs,
            input,
            tuning: std::sync::Mutex::new(crate::autotune::Tuning::for_precision(precision)),
        })
    }

    /// How the conv weights are stored (and the conv kernels compiled).
    pub fn precision(&self) -> conv::Precision {
        self.kernels.conv.precision()
    }

    /// How the loss kernels sum their lanes.
    pub fn lane_sum(&self) -> reduce::LaneSum {
        self.kernels.reduce.lane_sum()
    }

    /// The conv kernel variant for `shape` ([`crate::autotune::Tuning::variant`]).
    pub fn conv_variant(&self, op: ConvOp, shape: conv::ConvShape) -> conv::ConvVariant {
        self.tuning.lock().unwrap_or_else(|p| p.into_inner()).variant(op, shape)
    }

    /// Forces a conv kernel variant, or (`Auto`) lets timings choose, for the runs built after this.
    pub fn set_conv_kernel(&self, choice: ConvKernelChoice) {
        self.tuning.lock().unwrap_or_else(|p| p.into_inner()).choice = choice;
    }

    /// With `auto`, times the conv variants on every layer shape of `plan` not timed before on this
    /// GPU (or read from the cache); `starting(n)` hears of it first. Returns how many shape keys
    /// were timed.
    pub async fn tune_for(&self, plan: &crate::plan::Plan, starting: impl FnOnce(usize)) -> usize {
        let shapes = crate::autotune::conv_shapes(&plan.stack_maps());
        crate::autotune::Tuning::prepare(&self.tuning, &self.ctx, &self.kernels.conv, &shapes, starting).await
    }

    /// The conv weights and bias buffers of op `index` of [`VGG19`].
    fn conv_buffers(&self, index: usize) -> &(wgpu::Buffer, wgpu::Buffer) {
        let conv_number = VGG19[..index].iter().filter(|op| matches!(op, LayerOp::Conv(_))).count();
        &self.convs[conv_number]
    }

    /// Bytes of the uploaded weights (for the memory report).
    pub fn weight_bytes(&self) -> u64 {
        self.convs.iter().map(|(w, b)| w.size() + b.size()).sum()
    }
}

/// Where the output of an op lives during the forward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    /// One of the two ping-pong buffers.
    Ping(usize),
    /// A dedicated buffer kept for the backward pass (loss layers).
    Kept,
}

/// The buffers of a feature stack for one image size, worked out without a GPU. [`FeatureStack::new`]
/// allocates exactly these, so a plan's figures are the allocation.
#[derive(Clone, Debug)]
pub struct StackLayout {
    pub h: usize,
    pub w: usize,
    /// Number of ops of [`VGG19`] evaluated (the deepest loss layer + 1).
    pub depth: usize,
    /// Output shape of each op.
    pub shapes: Vec<MapShape>,
    /// The network input v (h×w×4).
    pub input: BufferSpec,
    pub ping: [BufferSpec; 2],
    /// The output of op i, when it is kept for the backward pass (loss layers).
    pub kept: Vec<Option<BufferSpec>>,
    /// ReLU mask (conv) or choice words (max pool) of op i.
    pub masks: Vec<Option<BufferSpec>>,
    /// Whether op i carries a loss term.
    pub loss: Vec<bool>,
    pub pooling: pool::PoolKind,
}

impl StackLayout {
    /// `loss_ops`: ops with a loss term; `content_ops`: those with a content term. Every map must be
    /// non-empty (the plan checks the minimum side first).
    pub fn new(h: usize, w: usize, depth: usize, loss_ops: &[usize], content_ops: &[usize], pooling: pool::PoolKind) -> StackLayout {
        let shapes = output_shapes(h, w, depth);
        let keep = kept_ops(depth, loss_ops, content_ops);
        let input_len = h * w * 4;
        let ping_len = shapes.iter().map(|s| s.padded_len()).chain([input_len]).max().unwrap_or(input_len);
        let f32s = |label: String, len: usize| BufferSpec::new(label, len as u64 * 4);
        StackLayout {
            h,
            w,
            depth,
            input: f32s("network input".into(), input_len),
            ping: [f32s("ping".into(), ping_len), f32s("pong".into(), ping_len)],
            kept: (0..depth).map(|i| keep[i].then(|| f32s(format!("features {i}"), shapes[i].padded_len()))).collect(),
            masks: (0..depth)
                .map(|i| {
                    let bytes = mask_bytes(&VGG19[i], shapes[i], pooling);
                    (bytes > 0).then(|| BufferSpec::new(format!("mask {i}"), bytes))
                })
                .collect(),
            loss: (0..depth).map(|i| loss_ops.contains(&i)).collect(),
            shapes,
            pooling,
        }
    }

    /// Every buffer of the stack.
    pub fn buffers(&self) -> impl Iterator<Item = &BufferSpec> {
        [&self.input].into_iter().chain(&self.ping).chain(self.kept.iter().flatten()).chain(self.masks.iter().flatten())
    }
}

/// The feature stack for one image size: buffers allocated once, dispatches built once.
pub struct FeatureStack {
    pub h: usize,
    pub w: usize,
    pub depth: usize,
    pub shapes: Vec<MapShape>,
    /// The network input v (h×w×4, BGR·255 − mean).
    pub input: wgpu::Buffer,
    ping: [wgpu::Buffer; 2],
    slots: Vec<Slot>,
    kept: Vec<Option<wgpu::Buffer>>,
    masks: Vec<Option<wgpu::Buffer>>,
    loss: Vec<bool>,
    pooling: pool::PoolKind,
}

/// Which ops must keep their output for the backward pass: the loss layers, except
/// op 0 when it only serves the style loss, since conv1_1 (3 input channels) is cheap
/// to recompute from v and its output is the largest map of all.
fn kept_ops(depth: usize, loss_ops: &[usize], content_ops: &[usize]) -> Vec<bool> {
    (0..depth).map(|i| loss_ops.contains(&i) && (i != 0 || content_ops.contains(&0))).collect()
}

fn mask_bytes(op: &LayerOp, out: MapShape, pooling: pool::PoolKind) -> u64 {
    let words = match op {
        LayerOp::Conv(_) => mask_words(out.h, out.w, out.c),
        LayerOp::Pool if pooling == pool::PoolKind::Max => mask_words(out.h, out.w, out.c),
        LayerOp::Pool => 0,
    };
    words as u64 * 4
}

impl FeatureStack {
    /// Allocates the buffers of `layout` (and nothing else).
    pub fn new(net: &Network, layout: &StackLayout) -> FeatureStack {
        let ctx = &net.ctx;
        let mut slots = Vec::with_capacity(layout.depth);
        let mut previous: Option<Slot> = None;
        for kept in &layout.kept {
            let slot = if kept.is_some() {
                Slot::Kept
            } else {
                // Never write into the buffer the op reads from.
                match previous {
                    Some(Slot::Ping(p)) => Slot::Ping(1 - p),
                    _ => Slot::Ping(0),
                }
            };
            slots.push(slot);
            previous = Some(slot);
        }
        FeatureStack {
            h: layout.h,
            w: layout.w,
            depth: layout.depth,
            shapes: layout.shapes.clone(),
            input: ctx.alloc(&layout.input),
            ping: [ctx.alloc(&layout.ping[0]), ctx.alloc(&layout.ping[1])],
            slots,
            kept: layout.kept.iter().map(|k| k.as_ref().map(|spec| ctx.alloc(spec))).collect(),
            masks: layout.masks.iter().map(|m| m.as_ref().map(|spec| ctx.alloc(spec))).collect(),
            loss: layout.loss.clone(),
            pooling: layout.pooling,
        }
    }

    /// The same buffers for an `h`×`w` image no larger on either side (a tile's region: the tiled
    /// step sizes the stack for its largest region and runs every region through it).
    pub fn resized(&self, h: usize, w: usize) -> FeatureStack {
        assert!(h <= self.h && w <= self.w, "a {h}×{w} region does not fit a {}×{} stack", self.h, self.w);
        FeatureStack {
            h,
            w,
            depth: self.depth,
            shapes: output_shapes(h, w, self.depth),
            input: self.input.clone(),
            ping: self.ping.clone(),
            slots: self.slots.clone(),
            kept: self.kept.clone(),
            masks: self.masks.clone(),
            loss: self.loss.clone(),
            pooling: self.pooling,
        }
    }

    /// Shape of op `i`'s input.
    fn input_shape(&self, i: usize) -> MapShape {
        if i == 0 {
            MapShape { h: self.h, w: self.w, c: 3 }
        } else {
            self.shapes[i - 1]
        }
    }

    fn output_buffer(&self, i: usize) -> &wgpu::Buffer {
        match self.slots[i] {
            Slot::Ping(p) => &self.ping[p],
            Slot::Kept => self.kept[i].as_ref().expect("kept op has a buffer"),
        }
    }

    fn input_buffer(&self, i: usize) -> &wgpu::Buffer {
        if i == 0 {
            &self.input
        } else {
            self.output_buffer(i - 1)
        }
    }

    /// The features of op `i` as they stand after the forward pass (kept ops only).
    pub fn kept_features(&self, i: usize) -> Option<&wgpu::Buffer> {
        self.kept.get(i).and_then(|k| k.as_ref())
    }

    fn op_forward(&self, net: &Network, i: usize, output: &wgpu::Buffer) -> Dispatch {
        let input = self.input_buffer(i);
        let in_shape = self.input_shape(i);
        let mask = self.masks[i].as_ref();
        match VGG19[i] {
            LayerOp::Conv(ConvLayer { cin, cout, .. }) => {
                let (weight, bias) = net.conv_buffers(i);
                let shape = conv::ConvShape { h: in_shape.h, w: in_shape.w, cin, cout };
                net.kernels.conv.forward(&net.ctx, net.conv_variant(ConvOp::Forward, shape), shape, input, weight, bias, output, mask.expect("conv has a mask"))
            }
            LayerOp::Pool => net.kernels.pool.forward(&net.ctx, self.pooling, in_shape.h, in_shape.w, in_shape.c, input, output, mask),
        }
    }

    /// Forward dispatches; after each op, `after_op(i, features)` may add dispatches that
    /// use op i's output while it is still in its buffer (Gram matrices, loss values).
    pub fn forward(&self, net: &Network, mut after_op: impl FnMut(usize, &wgpu::Buffer) -> Vec<Dispatch>) -> Vec<Dispatch> {
        let mut dispatches = Vec::new();
        for i in 0..self.depth {
            let output = self.output_buffer(i);
            dispatches.push(self.op_forward(net, i, output));
            dispatches.extend(after_op(i, output));
        }
        dispatches
    }

    /// Backward dispatches from the deepest op down to the network input. The gradient of
    /// the loss terms at op i is added by `loss_grad(i, features, grad, accumulate)`; at the
    /// deepest op the first term overwrites (`accumulate == false`). Returns the dispatches
    /// and the buffer that ends up holding dL/dv (h×w×4).
    ///
    /// With `within`, conv op i computes dL/d(its input) only in `within[i]` (a tiled step's
    /// cone, [`crate::tiling::TileGrid::backward_rects`]); elsewhere its gradient buffer keeps
    /// stale values, which must not reach the rectangles of the ops below.
    pub fn backward(
        &self,
        net: &Network,
        within: Option<&[Rect]>,
        mut loss_grad: impl FnMut(usize, &wgpu::Buffer, &wgpu::Buffer, bool) -> Vec<Dispatch>,
    ) -> (Vec<Dispatch>, &wgpu::Buffer) {
        let mut dispatches = Vec::new();
        let deepest = self.depth - 1;
        let mut grad = 0usize; // the ping buffer holding dL/d(output of the current op)
        let features = self.features_for_backward(deepest, &mut dispatches, net, 1);
        dispatches.extend(loss_grad(deepest, features, &self.ping[0], false));
        for i in (0..self.depth).rev() {
            let grad_out = &self.ping[grad];
            let grad_in = &self.ping[1 - grad];
            let in_shape = self.input_shape(i);
            dispatches.push(match VGG19[i] {
                LayerOp::Conv(ConvLayer { cin, cout, .. }) => {
                    let (weight, _) = net.conv_buffers(i);
                    let shape = conv::ConvShape { h: in_shape.h, w: in_shape.w, cin, cout };
                    let rect = within.map_or(shape.full(), |r| r[i]);
                    let mask = self.masks[i].as_ref().expect("conv mask");
                    net.kernels.conv.backward_input_within(&net.ctx, net.conv_variant(ConvOp::BackwardInput, shape), shape, rect, grad_out, mask, weight, grad_in)
                }
                LayerOp::Pool => net.kernels.pool.backward(
                    &net.ctx,
                    self.pooling,
                    in_shape.h,
                    in_shape.w,
                    in_shape.c,
                    grad_out,
                    self.masks[i].as_ref(),
                    grad_in,
                ),
            });
            grad = 1 - grad;
            if i > 0 && self.loss[i - 1] {
                // The buffer we just read (grad_out) is free now: op 0's recomputation may use it.
                let features = self.features_for_backward(i - 1, &mut dispatches, net, 1 - grad);
                dispatches.extend(loss_grad(i - 1, features, &self.ping[grad], true));
            }
        }
        (dispatches, &self.ping[grad])
    }

    /// Op i's features during the backward pass: its kept buffer, or (op 0 only) a
    /// recomputation from v into the free ping buffer `free`.
    fn features_for_backward<'a>(&'a self, i: usize, dispatches: &mut Vec<Dispatch>, net: &Network, free: usize) -> &'a wgpu::Buffer {
        match &self.kept[i] {
            Some(buffer) => buffer,
            None => {
                debug_assert_eq!(i, 0, "only op 0 is recomputed");
                dispatches.push(self.op_forward(net, i, &self.ping[free]));
                &self.ping[free]
            }
        }
    }
}
