// Style loss sum((G - T)^2) over the c4 x c4 Gram entries, and its gradient
// with respect to the features F (pixels x c4, HWC).
//
// - `partial`: same block sum as content_loss.wgsl over the flat c4*c4 matrices;
//   padded rows/columns are 0 in both, so they add nothing.
// - `grad`: g[p][c] = (accumulate ? g[p][c] : 0) + coef * sum_k F[p][k] (G - T)[k][c],
//   a (pixels x c4) x (c4 x c4) GEMM. Each thread owns 4 pixels x 4 channels and
//   reads F and (G - T) as vec4s (4 + 8 loads per 64 FMAs). See src/kernels/loss.rs
//   for how the engine derives coef.

struct PartialParams {
    count4: u32,  // vec4s in each matrix: c4*c4/4
    offset: u32,
    blocks: u32,
    _pad0: u32,
}

struct GradParams {
    pixels: u32,
    nb: u32,          // c4 / 4
    accumulate: u32,
    coef: f32,
}

// Also the lane count of workgroup_sum (workgroup_sum.wgsl or workgroup_sum_subgroups.wgsl, appended
// by src/kernels/reduce.rs: LaneSum).
const THREADS: u32 = 64u;
const PER_THREAD: u32 = 8u;

@group(0) @binding(0) var<uniform> pp: PartialParams;
@group(0) @binding(1) var<storage, read> gram: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> target_gram: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

@group(0) @binding(0) var<uniform> gp: GradParams;
@group(0) @binding(1) var<storage, read> features: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad_gram: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad_target_gram: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> grad_features: array<vec4<f32>>;

@compute @workgroup_size(64)
fn partial(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let block = wg.x + wg.y * nwg.x;
    let base = block * THREADS * PER_THREAD;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < PER_THREAD; k = k + 1u) {
        let i = base + k * THREADS + lane;
        if (i < pp.count4) {
            let d = gram[i] - target_gram[i];
            acc = acc + d * d;
        }
    }
    let total = workgroup_sum(lane, (acc.x + acc.y) + (acc.z + acc.w));
    if (lane == 0u && block < pp.blocks) {
        partials[pp.offset + block] = total;
    }
}

fn diff_row(k: u32, cb: u32) -> vec4<f32> {
    let i = k * gp.nb + cb;
    return grad_gram[i] - grad_target_gram[i];
}

fn store(p: u32, cb: u32, value: vec4<f32>) {
    let i = p * gp.nb + cb;
    if (gp.accumulate != 0u) {
        grad_features[i] = grad_features[i] + value;
    } else {
        grad_features[i] = value;
    }
}

@compute @workgroup_size(64)
fn grad(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let nb = gp.nb;
    let t = (wg.x + wg.y * nwg.x) * THREADS + lane;
    // Neighbouring threads take neighbouring channel blocks of the same pixels,
    // so their (G - T) reads and their stores are contiguous.
    let pb = t / nb;
    let cb = t % nb;
    let p0 = pb * 4u;
    if (p0 >= gp.pixels) {
        return;
    }
    // Rows past the last pixel re-read the last pixel; their results are not stored.
    let last = gp.pixels - 1u;
    let r0 = p0 * nb;
    let r1 = min(p0 + 1u, last) * nb;
    let r2 = min(p0 + 2u, last) * nb;
    let r3 = min(p0 + 3u, last) * nb;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var kb = 0u; kb < nb; kb = kb + 1u) {
        let k = kb * 4u;
        let d0 = diff_row(k, cb);
        let d1 = diff_row(k + 1u, cb);
        let d2 = diff_row(k + 2u, cb);
        let d3 = diff_row(k + 3u, cb);
        let f0 = features[r0 + kb];
        let f1 = features[r1 + kb];
        let f2 = features[r2 + kb];
        let f3 = features[r3 + kb];
        a0 = a0 + f0.x * d0 + f0.y * d1 + f0.z * d2 + f0.w * d3;
        a1 = a1 + f1.x * d0 + f1.y * d1 + f1.z * d2 + f1.w * d3;
        a2 = a2 + f2.x * d0 + f2.y * d1 + f2.z * d2 + f2.w * d3;
        a3 = a3 + f3.x * d0 + f3.y * d1 + f3.z * d2 + f3.w * d3;
    }
    let coef = gp.coef;
    store(p0, cb, coef * a0);
    if (p0 + 1u < gp.pixels) {
        store(p0 + 1u, cb, coef * a1);
    }
    if (p0 + 2u < gp.pixels) {
        store(p0 + 2u, cb, coef * a2);
    }
    if (p0 + 3u < gp.pixels) {
        store(p0 + 3u, cb, coef * a3);
    }
}
