//! VGG19's feature stack: the layer table, the weights on the GPU, and the
//! per-size plan of activation buffers with its forward and backward dispatches.
//!
//! Memory is the point of this module. Only what the backward pass needs is kept:
//! ReLU masks (1 bit per element, [`crate::kernels::mask_words`]), max-pool choices
//! (2 bits), and the feature maps of the loss layers. Every other activation lives
//! in one of two ping-pong buffers that the backward pass reuses for gradients.

use crate::gpu::{Dispatch, GpuContext};
use crate::kernels::{c4, conv, gram, image, loss, mask_words, pool, reduce, tv};
use crate::weights::Weights;
use std::sync::Arc;

/// One op of VGG19's feature stack, in network order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerOp {
    /// 3×3 conv + bias + ReLU; `name` is the conv name ("conv4_2"), the ReLU output is "relu4_2".
    Conv { name: &'static str, cin: usize, cout: usize },
    /// 2×2 stride-2 pooling.
    Pool,
}

/// VGG19's feature stack up to conv5_4 (pool5 is never needed: no loss layer follows it).
pub const VGG19: [LayerOp; 20] = [
    LayerOp::Conv { name: "conv1_1", cin: 3, cout: 64 },
    LayerOp::Conv { name: "conv1_2", cin: 64, cout: 64 },
    LayerOp::Pool,
    LayerOp::Conv { name: "conv2_1", cin: 64, cout: 128 },
    LayerOp::Conv { name: "conv2_2", cin: 128, cout: 128 },
    LayerOp::Pool,
    LayerOp::Conv { name: "conv3_1", cin: 128, cout: 256 },
    LayerOp::Conv { name: "conv3_2", cin: 256, cout: 256 },
    LayerOp::Conv { name: "conv3_3", cin: 256, cout: 256 },
    LayerOp::Conv { name: "conv3_4", cin: 256, cout: 256 },
    LayerOp::Pool,
    LayerOp::Conv { name: "conv4_1", cin: 256, cout: 512 },
    LayerOp::Conv { name: "conv4_2", cin: 512, cout: 512 },
    LayerOp::Conv { name: "conv4_3", cin: 512, cout: 512 },
    LayerOp::Conv { name: "conv4_4", cin: 512, cout: 512 },
    LayerOp::Pool,
    LayerOp::Conv { name: "conv5_1", cin: 512, cout: 512 },
    LayerOp::Conv { name: "conv5_2", cin: 512, cout: 512 },
    LayerOp::Conv { name: "conv5_3", cin: 512, cout: 512 },
    LayerOp::Conv { name: "conv5_4", cin: 512, cout: 512 },
];

/// Names accepted for loss layers, in network order.
pub fn relu_layer_names() -> Vec<String> {
    VGG19
        .iter()
        .filter_map(|op| match op {
            LayerOp::Conv { name, .. } => Some(name.replace("conv", "relu")),
            LayerOp::Pool => None,
        })
        .collect()
}

/// Index in [`VGG19`] of the conv whose ReLU output is `relu` ("relu4_2" → 12).
pub fn layer_index(relu: &str) -> Option<usize> {
    let conv_name = relu.strip_prefix("relu").map(|rest| format!("conv{rest}"))?;
    VGG19.iter().position(|op| matches!(op, LayerOp::Conv { name, .. } if *name == conv_name))
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
                LayerOp::Conv { cout, .. } => MapShape { c: cout, ..shape },
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
}

impl Kernels {
    pub fn new(ctx: &GpuContext) -> Self {
        Kernels {
            conv: conv::Conv3x3::new(ctx),
            pool: pool::Pool2x2::new(ctx),
            gram: gram::Gram::new(ctx),
            content: loss::ContentLoss::new(ctx),
            style: loss::StyleLoss::new(ctx),
            tv: tv::TvLoss::new(ctx),
            image: image::ImageOps::new(ctx),
            reduce: reduce::Reduce::new(ctx),
        }
    }
}

impl Network {
    /// Pads and uploads the weights once; compiles every kernel once.
    pub fn upload(ctx: &Arc<GpuContext>, weights: &Weights) -> Result<Network, String> {
        let mut convs = Vec::new();
        let mut available_depth = 0;
        for (index, op) in VGG19.iter().enumerate() {
            match *op {
                LayerOp::Conv { name, cin, cout } => {
                    let Some(layer) = weights.layer(name) else { break };
                    if layer.cin != cin || layer.cout != cout {
                        return Err(format!(
                            "weights layer {name} is {}→{} channels, VGG19 has {cin}→{cout}",
                            layer.cin, layer.cout
                        ));
                    }
                    let kernel = conv::pad_weights(cin, cout, &layer.kernel);
                    let bias = conv::pad_bias(cout, &layer.bias);
                    convs.push((
                        ctx.storage_buffer_init(&format!("{name}.weight"), bytemuck::cast_slice(&kernel)),
                        ctx.storage_buffer_init(&format!("{name}.bias"), bytemuck::cast_slice(&bias)),
                    ));
                }
                LayerOp::Pool => {}
            }
            available_depth = index + 1;
        }
        let input = image::InputTransform::new(&weights.input.channel_order, weights.input.scale, weights.input.mean)
            .map_err(|e| format!("the weights file's input convention: {e}"))?;
        Ok(Network {
            ctx: ctx.clone(),
            kernels: Kernels::new(ctx),
            convs,
            available_depth,
            input,
        })
    }

    /// The conv weights and bias buffers of op `index` of [`VGG19`].
    fn conv_buffers(&self, index: usize) -> &(wgpu::Buffer, wgpu::Buffer) {
        let conv_number = VGG19[..index].iter().filter(|op| matches!(op, LayerOp::Conv { .. })).count();
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

/// What a size plan holds, in bytes, computed without allocating anything.
#[derive(Clone, Copy, Debug, Default)]
pub struct StackBytes {
    pub input: u64,
    pub ping_pong: u64,
    pub kept: u64,
    pub masks: u64,
}

impl StackBytes {
    pub fn total(&self) -> u64 {
        self.input + self.ping_pong + self.kept + self.masks
    }
}

/// The feature stack for one image size: buffers allocated once, dispatches built once.
pub struct FeatureStack {
    pub h: usize,
    pub w: usize,
    /// Number of ops of [`VGG19`] evaluated (the deepest loss layer + 1).
    pub depth: usize,
    /// Output shape of each op.
    pub shapes: Vec<MapShape>,
    /// The network input v (h×w×4, BGR·255 − mean).
    pub input: wgpu::Buffer,
    ping: [wgpu::Buffer; 2],
    slots: Vec<Slot>,
    kept: Vec<Option<wgpu::Buffer>>,
    /// ReLU mask (conv) or choice words (max pool) per op.
    masks: Vec<Option<wgpu::Buffer>>,
    /// Whether op i carries a loss term.
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
        LayerOp::Conv { .. } => mask_words(out.h, out.w, out.c),
        LayerOp::Pool if pooling == pool::PoolKind::Max => mask_words(out.h, out.w, out.c),
        LayerOp::Pool => 0,
    };
    words as u64 * 4
}

impl FeatureStack {
    /// Bytes the stack needs for an `h`×`w` image (the figure [`FeatureStack::new`] allocates).
    pub fn plan(h: usize, w: usize, depth: usize, loss_ops: &[usize], content_ops: &[usize], pooling: pool::PoolKind) -> StackBytes {
        let shapes = output_shapes(h, w, depth);
        let kept = kept_ops(depth, loss_ops, content_ops);
        let input_len = h * w * 4;
        let ping_len = shapes.iter().map(|s| s.padded_len()).chain([input_len]).max().unwrap_or(input_len);
        let round = |bytes: u64| bytes.max(16).div_ceil(16) * 16;
        StackBytes {
            input: round(input_len as u64 * 4),
            ping_pong: 2 * round(ping_len as u64 * 4),
            kept: (0..depth).filter(|&i| kept[i]).map(|i| round(shapes[i].padded_len() as u64 * 4)).sum(),
            masks: (0..depth).map(|i| mask_bytes(&VGG19[i], shapes[i], pooling)).filter(|&b| b > 0).map(round).sum(),
        }
    }

    pub fn new(
        net: &Network,
        h: usize,
        w: usize,
        depth: usize,
        loss_ops: &[usize],
        content_ops: &[usize],
        pooling: pool::PoolKind,
    ) -> Result<FeatureStack, crate::gpu::GpuError> {
        let ctx = &net.ctx;
        let shapes = output_shapes(h, w, depth);
        let keep = kept_ops(depth, loss_ops, content_ops);
        let input_len = h * w * 4;
        let ping_len = shapes.iter().map(|s| s.padded_len()).chain([input_len]).max().unwrap_or(input_len);
        ctx.check_size("the largest feature map", ping_len as u64 * 4)?;
        let input = ctx.storage_buffer("network input", input_len as u64 * 4);
        let ping = [ctx.storage_buffer("ping", ping_len as u64 * 4), ctx.storage_buffer("pong", ping_len as u64 * 4)];
        let mut slots = Vec::with_capacity(depth);
        let mut kept = Vec::with_capacity(depth);
        let mut masks = Vec::with_capacity(depth);
        let mut previous: Option<Slot> = None;
        for i in 0..depth {
            let slot = if keep[i] {
                Slot::Kept
            } else {
                // Never write into the buffer the op reads from.
                match previous {
                    Some(Slot::Ping(p)) => Slot::Ping(1 - p),
                    _ => Slot::Ping(0),
                }
            };
            kept.push(keep[i].then(|| ctx.storage_buffer(&format!("features {i}"), shapes[i].padded_len() as u64 * 4)));
            let bytes = mask_bytes(&VGG19[i], shapes[i], pooling);
            masks.push((bytes > 0).then(|| ctx.storage_buffer(&format!("mask {i}"), bytes)));
            slots.push(slot);
            previous = Some(slot);
        }
        let loss = (0..depth).map(|i| loss_ops.contains(&i)).collect();
        Ok(FeatureStack { h, w, depth, shapes, input, ping, slots, kept, masks, loss, pooling })
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
            LayerOp::Conv { cin, cout, .. } => {
                let (weight, bias) = net.conv_buffers(i);
                let shape = conv::ConvShape { h: in_shape.h, w: in_shape.w, cin, cout };
                net.kernels.conv.forward(&net.ctx, shape, input, weight, bias, output, mask.expect("conv has a mask"))
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
    pub fn backward(
        &self,
        net: &Network,
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
                LayerOp::Conv { cin, cout, .. } => {
                    let (weight, _) = net.conv_buffers(i);
                    let shape = conv::ConvShape { h: in_shape.h, w: in_shape.w, cin, cout };
                    net.kernels.conv.backward_input(&net.ctx, shape, grad_out, self.masks[i].as_ref().expect("conv mask"), weight, grad_in)
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
