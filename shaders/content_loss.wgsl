// Content loss sum((F - Fc)^2) and its gradient, on HWC feature maps viewed
// as flat arrays of vec4 (channels padded to 4, padding 0 in both maps).
//
// - `partial`: workgroup b sums the squared difference over its block of
//   64 threads x 8 vec4s and writes partials[offset + b]; reduce.wgsl `finish`
//   adds the blocks up and applies w_l / (C*H*W).
// - `grad`: g = (accumulate ? g : 0) + coef * (F - Fc), where the engine passes
//   coef = 2 * alpha * w_l / (C*H*W).

struct PartialParams {
    count4: u32,  // vec4s in each map
    offset: u32,  // first partial to write
    blocks: u32,  // workgroups that own a block (the 2-D grid may have a few more)
    _pad0: u32,
}

struct GradParams {
    count4: u32,
    accumulate: u32,
    coef: f32,
    _pad0: u32,
}

// Also the lane count of workgroup_sum (workgroup_sum.wgsl or workgroup_sum_subgroups.wgsl, appended
// by src/kernels/reduce.rs: LaneSum).
const THREADS: u32 = 64u;
const PER_THREAD: u32 = 8u;

@group(0) @binding(0) var<uniform> pp: PartialParams;
@group(0) @binding(1) var<storage, read> features: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> content_features: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

@group(0) @binding(0) var<uniform> gp: GradParams;
@group(0) @binding(3) var<storage, read_write> grad_features: array<vec4<f32>>;

@compute @workgroup_size(64)
fn partial(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let block = wg.x + wg.y * nwg.x;
    let base = block * THREADS * PER_THREAD;
    var acc = vec4<f32>(0.0);
    // Lane-strided so that neighbouring threads read neighbouring vec4s.
    for (var k = 0u; k < PER_THREAD; k = k + 1u) {
        let i = base + k * THREADS + lane;
        if (i < pp.count4) {
            let d = features[i] - content_features[i];
            acc = acc + d * d;
        }
    }
    let total = workgroup_sum(lane, (acc.x + acc.y) + (acc.z + acc.w));
    if (lane == 0u && block < pp.blocks) {
        partials[pp.offset + block] = total;
    }
}

@compute @workgroup_size(64)
fn grad(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (wg.x + wg.y * nwg.x) * THREADS + lane;
    if (i >= gp.count4) {
        return;
    }
    let d = gp.coef * (features[i] - content_features[i]);
    if (gp.accumulate != 0u) {
        grad_features[i] = grad_features[i] + d;
    } else {
        grad_features[i] = d;
    }
}
