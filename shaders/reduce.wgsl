// Second stage of every loss reduction, and the weighted total.
//
// Ops that produce a loss write one partial sum per workgroup into a shared
// "partials" buffer (at an offset the engine chose). `finish` adds a range of
// partials into one slot of the small `scalars` buffer; `combine` forms
// L = a*L_c + b*L_s + c*L_tv from three slots. Both run as single workgroups,
// so the whole loss stays on the GPU and is read back only when asked for.

struct FinishParams {
    offset: u32,      // first partial
    count: u32,       // number of partials
    slot: u32,        // scalars[slot] receives the result
    accumulate: u32,  // 1: add to the slot, 0: overwrite it
    scale: f32,       // multiplies the sum (e.g. w_l / (C*H*W))
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct CombineParams {
    slots: vec4<u32>, // inputs i, j, k and the output slot
    coefs: vec4<f32>, // a, b, c (w unused)
}

@group(0) @binding(0) var<uniform> fin: FinishParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> scalars: array<f32>;

@group(0) @binding(0) var<uniform> comb: CombineParams;
@group(0) @binding(1) var<storage, read_write> combine_scalars: array<f32>;

// Also the lane count of workgroup_sum (workgroup_sum.wgsl or workgroup_sum_subgroups.wgsl, appended
// by src/kernels/reduce.rs: LaneSum).
const THREADS: u32 = 256u;

// One workgroup: each lane sums a strided share, then a tree adds the lanes.
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) lane: u32) {
    var sum = 0.0;
    // The same trip count in every lane, so that the lanes are converged when they sum (subgroup
    // operations need that on GPUs without maximal reconvergence).
    for (var first = 0u; first < fin.count; first += THREADS) {
        let i = first + lane;
        if (i < fin.count) {
            sum += partials[fin.offset + i];
        }
    }
    let total = workgroup_sum(lane, sum);
    if (lane == 0u) {
        var previous = 0.0;
        if (fin.accumulate != 0u) {
            previous = scalars[fin.slot];
        }
        scalars[fin.slot] = previous + fin.scale * total;
    }
}

@compute @workgroup_size(1)
fn combine() {
    let s = comb.slots;
    let k = comb.coefs;
    let total = k.x * combine_scalars[s.x] + k.y * combine_scalars[s.y] + k.z * combine_scalars[s.z];
    combine_scalars[s.w] = total;
}
