// 3x3 convolution, stride 1, zero padding 1, + bias + ReLU, and its gradient to the input:
// variant "workgroup-64x64", an implicit GEMM tiled through workgroup memory (shared parts:
// conv3x3_shared.wgsl, prepended).
//
// A workgroup of 256 threads computes a 64-pixel x 64-channel tile of the output (forward: output
// channels; backward: input channels). The reduction (9 taps x the other side's channels) runs in
// rounds of 16 channels: each thread stages one vec4 of the gathered input (or masked output
// gradient) and one vec4 of weights into workgroup memory (in the precision's staged4 type, except
// the gradient), then every thread does 64 FMAs per 8
// workgroup loads for its 4 pixels x 4 channels. Real GPUs reward the reuse; CPU-backed WebGPU
// pays for the barriers, which is why the autotuner chooses per device.
//
// Pixels are 64 consecutive flattened pixels per tile (of the map forward, of the rectangle
// backward), so a thread's 4 pixels are one 4-aligned mask block. Threads past the end still
// stage zeros and reach every barrier; they only skip the stores.
//
// Dispatch: x (+ z for overflow: linear = wg.x + wg.z * num_workgroups.x) over 64-pixel tiles,
// y over 64-channel tiles.

const TILE_PIXELS: u32 = 64u;
// vec4s of the reduction staged per round (16 channels)
const ROUND: u32 = 4u;

// [pixel 64][round 4]: the gathered input (forward, in the precision's staged4) or the masked output
// gradient (backward, always f32: see conv3x3_f16.wgsl), one vec4 of padding after every 16 (4
// pixels' rounds): a thread reads 16 consecutive vec4s and its neighbours the next 16, which without
// the padding would all sit on the same memory banks.
var<workgroup> staged_inputs: array<staged4, 272>;
var<workgroup> staged_grads: array<vec4<f32>, 272>;

// Where element e (= pixel * 4 + round slot) of staged_inputs or staged_grads lives.
fn padded(e: u32) -> u32 {
    return e + e / 16u;
}
// forward: [output channel 64][round 4], the weight rows; backward: [output channel 16][input
// channel block 16], the weight vec4s over input channels
var<workgroup> staged_weights: array<staged4, 256>;

@compute @workgroup_size(256)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = params.h * params.w;
    let w = i32(params.w);
    let h = i32(params.h);
    let cin_v = params.cin4 / 4u;
    let cout_v = params.cout4 / 4u;
    let tile = (wg.x + wg.z * nwg.x) * TILE_PIXELS;

    // what this thread stages: pixel lid/4 of the tile, round slot lid%4; weight row lid/4
    let sp = tile + lid / 4u;
    let slot = lid % 4u;
    let sy = i32(sp / params.w);
    let sx = i32(sp % params.w);
    let sc = wg.y * 64u + lid / 4u;
    let sc_ok = sc < params.cout4;
    let sc_row = min(sc, params.cout4 - 1u) * 9u;

    // what this thread computes: 4 pixels x output channel block cb
    let pg = lid % 16u;
    let cg = lid / 16u;
    let cb = wg.y * 16u + cg;

    let zero = vec4<f32>(0.0);
    var acc0 = zero;
    var acc1 = zero;
    var acc2 = zero;
    var acc3 = zero;
    for (var tap = 0u; tap < 9u; tap++) {
        let yy = sy + i32(tap / 3u) - 1;
        let xx = sx + i32(tap % 3u) - 1;
        let ok = sp < n && yy >= 0 && yy < h && xx >= 0 && xx < w;
        let src = select(0u, u32(yy * w + xx), ok) * cin_v;
        let wrow = (sc_row + tap) * cin_v;
        for (var c0 = 0u; c0 < cin_v; c0 += ROUND) {
            let k = c0 + slot;
            let kc = min(k, cin_v - 1u);
            staged_inputs[padded(lid)] = to_staged(select(zero, fwd_input[src + kc], ok && k < cin_v));
            staged_weights[lid] = select(staged4(), staged4(fwd_weight[wrow + kc]), sc_ok && k < cin_v);
            workgroupBarrier();
            for (var r = 0u; r < ROUND; r++) {
                let wb = cg * 16u + r;
                // columns: the weight rows of output channels 4cb..4cb+3
                let wm = mat4x4<f32>(
                    vec4<f32>(staged_weights[wb]),
                    vec4<f32>(staged_weights[wb + 4u]),
                    vec4<f32>(staged_weights[wb + 8u]),
                    vec4<f32>(staged_weights[wb + 12u]),
                );
                let ab = pg * 17u + r; // padded(pg * 16 + r)
                acc0 += vec4<f32>(staged_inputs[ab]) * wm;
                acc1 += vec4<f32>(staged_inputs[ab + 4u]) * wm;
                acc2 += vec4<f32>(staged_inputs[ab + 8u]) * wm;
                acc3 += vec4<f32>(staged_inputs[ab + 12u]) * wm;
            }
            workgroupBarrier();
        }
    }

    let p0 = tile + pg * 4u;
    if (p0 < n && cb < cout_v) {
        let p = vec4<u32>(p0) + vec4<u32>(0u, 1u, 2u, 3u);
        store_forward(p0 / 4u, p, p < vec4<u32>(n), cb, cout_v, acc0, acc1, acc2, acc3);
    }
}

// dL/d(input) within the rectangle (see conv3x3.wgsl's backward_input for the formula): the same
// tiling with input channels as the tile's columns and (tap, output channel) as the reduction.
@compute @workgroup_size(256)
fn backward_input(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = params.rh * params.rw;
    let w = i32(params.w);
    let h = i32(params.h);
    let cin_v = params.cin4 / 4u;
    let cout_v = params.cout4 / 4u;
    let tile = (wg.x + wg.z * nwg.x) * TILE_PIXELS;

    // staging: pixel lid/4 of the tile, output-channel vec4 slot lid%4 of the round
    let sq = tile + lid / 4u;
    let slot = lid % 4u;
    let sy = i32(params.ry + sq / params.rw);
    let sx = i32(params.rx + sq % params.rw);
    // staging of weights: output channel lid/16 of the round, input channel block lid%16 of the tile
    let wco = lid / 16u;
    let wib = wg.y * 16u + lid % 16u;
    let wib_ok = wib < cin_v;
    let wibc = min(wib, cin_v - 1u);

    // computing: 4 pixels x input channel block ib
    let pg = lid % 16u;
    let cg = lid / 16u;
    let ib = wg.y * 16u + cg;

    let zero = vec4<f32>(0.0);
    let bits = vec4<u32>(1u, 2u, 4u, 8u);
    var acc0 = zero;
    var acc1 = zero;
    var acc2 = zero;
    var acc3 = zero;
    for (var tap = 0u; tap < 9u; tap++) {
        let yy = sy - i32(tap / 3u) + 1;
        let xx = sx - i32(tap % 3u) + 1;
        let ok = sq < n && yy >= 0 && yy < h && xx >= 0 && xx < w;
        let src = select(0u, u32(yy * w + xx), ok);
        let mshift = (src % 4u) * 4u;
        for (var c0 = 0u; c0 < cout_v; c0 += ROUND) {
            let k = c0 + slot;
            let kc = min(k, cout_v - 1u);
            // taps outside the image get a zero mask, which zeroes their gradient
            let m = vec4<u32>(select(0u, bwd_mask[(src / 4u) * cout_v + kc] >> mshift, ok && k < cout_v)) & bits;
            staged_grads[padded(lid)] = select(zero, bwd_grad_output[src * cout_v + kc], m != vec4<u32>(0u));
            let co = c0 * 4u + wco;
            let co_ok = co < params.cout4 && wib_ok;
            staged_weights[lid] = select(staged4(), staged4(bwd_weight[(min(co, params.cout4 - 1u) * 9u + tap) * cin_v + wibc]), co_ok);
            workgroupBarrier();
            for (var r = 0u; r < ROUND; r++) {
                // columns: the weight vec4s (over this thread's input channels) of output channels 4r..4r+3
                let wb = r * 64u + cg;
                let wm = mat4x4<f32>(
                    vec4<f32>(staged_weights[wb]),
                    vec4<f32>(staged_weights[wb + 16u]),
                    vec4<f32>(staged_weights[wb + 32u]),
                    vec4<f32>(staged_weights[wb + 48u]),
                );
                let gb = pg * 17u + r; // padded(pg * 16 + r)
                acc0 += wm * staged_grads[gb];
                acc1 += wm * staged_grads[gb + 4u];
                acc2 += wm * staged_grads[gb + 8u];
                acc3 += wm * staged_grads[gb + 12u];
            }
            workgroupBarrier();
        }
    }

    let q0 = tile + pg * 4u;
    if (q0 < n && ib < cin_v) {
        let q = vec4<u32>(q0) + vec4<u32>(0u, 1u, 2u, 3u);
        let p = (vec4<u32>(params.ry) + q / params.rw) * params.w + vec4<u32>(params.rx) + q % params.rw;
        store_backward(p, q < vec4<u32>(n), ib, cin_v, acc0, acc1, acc2, acc3);
    }
}
