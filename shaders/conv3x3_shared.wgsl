// Shared by every conv3x3 variant (conv3x3.wgsl, conv3x3_workgroup.wgsl): the parameters, the
// bindings, the ReLU mask bits and the stores of one 4-pixel x 4-channel block. Each variant's
// source is a precision's prelude (conv3x3_f32.wgsl or conv3x3_f16.wgsl: the types weight4 and
// staged4, and to_staged), this file, then the variant's own (see src/kernels/conv.rs).
//
// Layouts (see src/kernels/mod.rs):
//   feature maps  HWC, channels padded to a multiple of 4 -> array<vec4<f32>>, pixel p = y*w + x
//   weight        [cout4][ky][kx][cin4] (rows cout..cout4 and columns cin..cin4 are zero)
//   bias          [cout4]
//   relu_mask     4x4-block words: word (p/4)*(cout4/4) + c/4, bit (p%4)*4 + c%4
//
// Every variant gives a thread whole 4x4 blocks of 4 consecutive flattened pixels (4-aligned) x 4
// channels, so each mask word has one writer: no atomics, no clearing.

struct Params {
    h: u32,
    w: u32,
    cin4: u32,  // input channels, padded to a multiple of 4
    cout4: u32, // output channels, padded to a multiple of 4
    // backward_input only: the rectangle of grad_input it computes (rows ry..ry+rh, columns
    // rx..rx+rw); a tiled step needs the gradient only in its interior's cone. The forward
    // ignores it.
    ry: u32,
    rx: u32,
    rh: u32,
    rw: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

// forward
@group(0) @binding(1) var<storage, read> fwd_input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> fwd_weight: array<weight4>;
@group(0) @binding(3) var<storage, read> fwd_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> fwd_output: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> fwd_mask: array<u32>;

// backward_input
@group(0) @binding(1) var<storage, read> bwd_grad_output: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bwd_mask: array<u32>;
@group(0) @binding(3) var<storage, read> bwd_weight: array<weight4>;
@group(0) @binding(4) var<storage, read_write> bwd_grad_input: array<vec4<f32>>;

// One weight vec4 (4 input channels of one output channel and tap), in f32 whatever it is stored in.
fn fwd_w(i: u32) -> vec4<f32> {
    return vec4<f32>(fwd_weight[i]);
}
fn bwd_w(i: u32) -> vec4<f32> {
    return vec4<f32>(bwd_weight[i]);
}

// 4 mask bits, bit k set where channel k's pre-activation is positive
fn relu_bits(pre: vec4<f32>) -> u32 {
    let b = select(vec4<u32>(0u), vec4<u32>(1u, 2u, 4u, 8u), pre > vec4<f32>(0.0));
    return b.x | b.y | b.z | b.w;
}


// Bias, ReLU, mask word and output of one 4-pixel x 4-channel block (`acc_j` = pixel j).
fn store_forward(block: u32, p: vec4<u32>, inside: vec4<bool>, cb: u32, cout_v: u32,
                 acc0: vec4<f32>, acc1: vec4<f32>, acc2: vec4<f32>, acc3: vec4<f32>) {
    let zero = vec4<f32>(0.0);
    let b = fwd_bias[cb];
    let pre0 = acc0 + b;
    let pre1 = acc1 + b;
    let pre2 = acc2 + b;
    let pre3 = acc3 + b;
    // pixels past the end of the map keep 0 bits (their pre-activations are just the bias)
    fwd_mask[block * cout_v + cb] = relu_bits(pre0)
        | select(0u, relu_bits(pre1) << 4u, inside.y)
        | select(0u, relu_bits(pre2) << 8u, inside.z)
        | select(0u, relu_bits(pre3) << 12u, inside.w);
    fwd_output[p.x * cout_v + cb] = max(pre0, zero);
    if (inside.y) {
        fwd_output[p.y * cout_v + cb] = max(pre1, zero);
    }
    if (inside.z) {
        fwd_output[p.z * cout_v + cb] = max(pre2, zero);
    }
    if (inside.w) {
        fwd_output[p.w * cout_v + cb] = max(pre3, zero);
    }
}

// 4 gradient vec4s of one 4-pixel x 4-channel block.
fn store_backward(p: vec4<u32>, inside: vec4<bool>, ib: u32, cin_v: u32,
                  acc0: vec4<f32>, acc1: vec4<f32>, acc2: vec4<f32>, acc3: vec4<f32>) {
    bwd_grad_input[p.x * cin_v + ib] = acc0;
    if (inside.y) {
        bwd_grad_input[p.y * cin_v + ib] = acc1;
    }
    if (inside.z) {
        bwd_grad_input[p.z * cin_v + ib] = acc2;
    }
    if (inside.w) {
        bwd_grad_input[p.w * cin_v + ib] = acc3;
    }
}

