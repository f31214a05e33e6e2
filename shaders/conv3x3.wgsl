// 3x3 convolution, stride 1, zero padding 1, + bias + ReLU, as a tiled implicit GEMM
// (no im2col: each thread gathers its 3x3 neighbourhood straight from the HWC map).
//
// Variant "register-4x8" (shared parts: conv3x3_shared.wgsl, prepended).
//
// Tiling: a thread owns 4 pixels x 8 channels, as two 4x4 blocks side by side (pixels are 4
// consecutive flattened pixels, so a block may wrap to the next row). Per gathered input
// vec4 it does 32 FMAs against 8 weight vec4s that every thread of the workgroup shares;
// that register blocking and the vec4 loads are what make CPU-backed WebGPU (lavapipe,
// SwiftShader) fast, where workgroup-memory tiling with barriers is slow (4x8 measured
// about 1.5x faster than 4x4 on lavapipe, and as fast as 8x8 with half the registers).
// Each 4x4 block is exactly one mask word, so the mask needs no atomics and no clearing.
//
// Dispatch: x (+ z for overflow: linear = wg.x + wg.z * num_workgroups.x) over groups of
// 64 pixel blocks, y over pairs of 4-channel blocks (output channels forward, input
// channels backward). With an odd number of 4-channel blocks the last pair's second block
// repeats the first (clamped loads, nothing stored) rather than branching in the loop.

const WG: u32 = 64u;

fn pixel_block(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.z * nwg.x) * WG + lid;
}

@compute @workgroup_size(64)
fn forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = params.h * params.w;
    let block = pixel_block(wg, nwg, lid);
    let p0 = block * 4u;
    if (p0 >= n) {
        return;
    }
    let w = i32(params.w);
    let h = i32(params.h);
    let cin_v = params.cin4 / 4u;
    let cout_v = params.cout4 / 4u;
    // this thread's two output-channel blocks (the second clamped, see the header)
    let cb0 = wg.y * 2u;
    let cb1 = min(cb0 + 1u, cout_v - 1u);

    let p = vec4<u32>(p0) + vec4<u32>(0u, 1u, 2u, 3u);
    let inside = p < vec4<u32>(n);
    let py = vec4<i32>(p / params.w);
    let px = vec4<i32>(p % params.w);

    let zero = vec4<f32>(0.0);
    // acc_j: pixel j x channels of block cb0; bcc_j: the same for block cb1
    var acc0 = zero;
    var acc1 = zero;
    var acc2 = zero;
    var acc3 = zero;
    var bcc0 = zero;
    var bcc1 = zero;
    var bcc2 = zero;
    var bcc3 = zero;
    // vec4 stride between consecutive output-channel rows of the weight
    let wrow = 9u * cin_v;
    let second = (cb1 - cb0) * 4u * wrow;
    for (var ky = 0; ky < 3; ky++) {
        let yy = py + vec4<i32>(ky - 1);
        let row_ok = inside & (yy >= vec4<i32>(0)) & (yy < vec4<i32>(h));
        for (var kx = 0; kx < 3; kx++) {
            let xx = px + vec4<i32>(kx - 1);
            let ok = row_ok & (xx >= vec4<i32>(0)) & (xx < vec4<i32>(w));
            // out-of-image taps read element 0 and then select zero
            let base = select(vec4<u32>(0u), vec4<u32>(yy * w + xx) * cin_v, ok);
            let wbase = (cb0 * 4u * 9u + u32(ky * 3 + kx)) * cin_v;
            for (var c = 0u; c < cin_v; c++) {
                let wi = wbase + c;
                let wm = mat4x4<f32>(
                    fwd_w(wi),
                    fwd_w(wi + wrow),
                    fwd_w(wi + 2u * wrow),
                    fwd_w(wi + 3u * wrow),
                );
                let wj = wi + second;
                let wn = mat4x4<f32>(
                    fwd_w(wj),
                    fwd_w(wj + wrow),
                    fwd_w(wj + 2u * wrow),
                    fwd_w(wj + 3u * wrow),
                );
                let a0 = select(zero, fwd_input[base.x + c], ok.x);
                let a1 = select(zero, fwd_input[base.y + c], ok.y);
                let a2 = select(zero, fwd_input[base.z + c], ok.z);
                let a3 = select(zero, fwd_input[base.w + c], ok.w);
                // row vector x matrix: component k = dot(a, weight row of output channel k)
                acc0 += a0 * wm;
                acc1 += a1 * wm;
                acc2 += a2 * wm;
                acc3 += a3 * wm;
                bcc0 += a0 * wn;
                bcc1 += a1 * wn;
                bcc2 += a2 * wn;
                bcc3 += a3 * wn;
            }
        }
    }

    store_forward(block, p, inside, cb0, cout_v, acc0, acc1, acc2, acc3);
    if (cb1 != cb0) {
        store_forward(block, p, inside, cb1, cout_v, bcc0, bcc1, bcc2, bcc3);
    }
}

// dL/d(input) from dL/d(post-ReLU output): grad_in[q] = sum over taps (ky, kx) of
// W[:, ky, kx, :]^T (grad_out * mask)[q - (ky-1, kx-1)], reading the forward weight layout
// directly (no transposed copy). Each thread owns 4 pixels x 8 input channels of the
// rectangle and writes every element it owns: the rectangle needs no clearing, and the rest
// of grad_input keeps what it held.
@compute @workgroup_size(64)
fn backward_input(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // pixels are numbered row by row within the rectangle, 4 consecutive ones per thread
    let n = params.rh * params.rw;
    let block = pixel_block(wg, nwg, lid);
    let q0 = block * 4u;
    if (q0 >= n) {
        return;
    }
    let w = i32(params.w);
    let h = i32(params.h);
    let cin_v = params.cin4 / 4u;
    let cout_v = params.cout4 / 4u;
    // this thread's two input-channel blocks (the second clamped, see the header)
    let ib0 = wg.y * 2u;
    let ib1 = min(ib0 + 1u, cin_v - 1u);

    let q = vec4<u32>(q0) + vec4<u32>(0u, 1u, 2u, 3u);
    let inside = q < vec4<u32>(n);
    let py = vec4<i32>(params.ry + q / params.rw);
    let px = vec4<i32>(params.rx + q % params.rw);
    // the pixels' places in the map (only stored where inside)
    let p = vec4<u32>(py) * params.w + vec4<u32>(px);

    let zero = vec4<f32>(0.0);
    let bits = vec4<u32>(1u, 2u, 4u, 8u);
    var acc0 = zero;
    var acc1 = zero;
    var acc2 = zero;
    var acc3 = zero;
    var bcc0 = zero;
    var bcc1 = zero;
    var bcc2 = zero;
    var bcc3 = zero;
    let wrow = 9u * cin_v;
    let second = ib1 - ib0;
    for (var ky = 0; ky < 3; ky++) {
        let yy = py - vec4<i32>(ky - 1);
        let row_ok = inside & (yy >= vec4<i32>(0)) & (yy < vec4<i32>(h));
        for (var kx = 0; kx < 3; kx++) {
            let xx = px - vec4<i32>(kx - 1);
            let ok = row_ok & (xx >= vec4<i32>(0)) & (xx < vec4<i32>(w));
            let src = select(vec4<u32>(0u), vec4<u32>(yy * w + xx), ok);
            let gbase = src * cout_v;
            let mbase = (src / 4u) * cout_v;
            let mshift = (src % 4u) * 4u;
            let wbase = u32(ky * 3 + kx) * cin_v + ib0;
            for (var c = 0u; c < cout_v; c++) {
                let wi = wbase + c * 4u * wrow;
                let wm = mat4x4<f32>(
                    bwd_w(wi),
                    bwd_w(wi + wrow),
                    bwd_w(wi + 2u * wrow),
                    bwd_w(wi + 3u * wrow),
                );
                let wj = wi + second;
                let wn = mat4x4<f32>(
                    bwd_w(wj),
                    bwd_w(wj + wrow),
                    bwd_w(wj + 2u * wrow),
                    bwd_w(wj + 3u * wrow),
                );
                // taps outside the image get a zero mask, which zeroes their gradient
                let m0 = vec4<u32>(select(0u, bwd_mask[mbase.x + c] >> mshift.x, ok.x)) & bits;
                let m1 = vec4<u32>(select(0u, bwd_mask[mbase.y + c] >> mshift.y, ok.y)) & bits;
                let m2 = vec4<u32>(select(0u, bwd_mask[mbase.z + c] >> mshift.z, ok.z)) & bits;
                let m3 = vec4<u32>(select(0u, bwd_mask[mbase.w + c] >> mshift.w, ok.w)) & bits;
                let g0 = select(zero, bwd_grad_output[gbase.x + c], m0 != vec4<u32>(0u));
                let g1 = select(zero, bwd_grad_output[gbase.y + c], m1 != vec4<u32>(0u));
                let g2 = select(zero, bwd_grad_output[gbase.z + c], m2 != vec4<u32>(0u));
                let g3 = select(zero, bwd_grad_output[gbase.w + c], m3 != vec4<u32>(0u));
                // matrix x column vector: sum over output channels k of g[k] * weight row k
                acc0 += wm * g0;
                acc1 += wm * g1;
                acc2 += wm * g2;
                acc3 += wm * g3;
                bcc0 += wn * g0;
                bcc1 += wn * g1;
                bcc2 += wn * g2;
                bcc3 += wn * g3;
            }
        }
    }

    store_backward(p, inside, ib0, cin_v, acc0, acc1, acc2, acc3);
    if (ib1 != ib0) {
        store_backward(p, inside, ib1, cin_v, bcc0, bcc1, bcc2, bcc3);
    }
}
