// 2x2 pooling, stride 2, floor mode (an odd height or width drops its last row or column,
// as PyTorch does): an h x w map becomes (h/2) x (w/2). Max and average, forward and backward.
//
// Layouts (see src/kernels/mod.rs): HWC maps with channels padded to 4 (array<vec4<f32>>);
// max-pool choices use the 4x4-block word layout with 2 bits per slot: for output pixel
// q (= oy*(w/2) + ox) and channel c, word (q/4)*(c4/4) + c/4, bits 2*((q%4)*4 + c%4),
// value dy*2 + dx of the winning input (the first maximum in row-major order on ties).
//
// All entries use a 1-D thread index spread over workgroups x and y
// (linear = wg.x + wg.y * num_workgroups.x, see gpu::groups_2d).

struct Params {
    h: u32,  // input height
    w: u32,  // input width
    c4: u32, // channels, padded to a multiple of 4
    _pad: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;

// forward_max / forward_avg
@group(0) @binding(1) var<storage, read> fwd_input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> fwd_output: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> fwd_choice: array<u32>;

// backward_max / backward_avg
@group(0) @binding(1) var<storage, read> bwd_grad_output: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bwd_choice: array<u32>;
// backward_max binds grad_input at 3; backward_avg (no choice buffer) at 2
@group(0) @binding(3) var<storage, read_write> bwd_max_grad_input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> bwd_avg_grad_input: array<vec4<f32>>;

fn thread_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * WG + lid;
}

// One thread per choice word: 4 consecutive output pixels x 4 channels.
@compute @workgroup_size(64)
fn forward_max(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ow = params.w / 2u;
    let on = (params.h / 2u) * ow;
    let c_v = params.c4 / 4u;
    let t = thread_index(wg, nwg, lid);
    let block = t / c_v;
    let cb = t % c_v;
    if (block * 4u >= on) {
        return;
    }
    var word = 0u;
    for (var j = 0u; j < 4u; j++) {
        let q = block * 4u + j;
        if (q < on) {
            let oy = q / ow;
            let ox = q % ow;
            let i00 = ((2u * oy) * params.w + 2u * ox) * c_v + cb;
            let i10 = i00 + params.w * c_v;
            var best = fwd_input[i00];
            var pick = vec4<u32>(0u);
            // strict > keeps the first maximum in row-major order
            let v01 = fwd_input[i00 + c_v];
            pick = select(pick, vec4<u32>(1u), v01 > best);
            best = max(best, v01);
            let v10 = fwd_input[i10];
            pick = select(pick, vec4<u32>(2u), v10 > best);
            best = max(best, v10);
            let v11 = fwd_input[i10 + c_v];
            pick = select(pick, vec4<u32>(3u), v11 > best);
            best = max(best, v11);
            fwd_output[q * c_v + cb] = best;
            let packed = pick.x | (pick.y << 2u) | (pick.z << 4u) | (pick.w << 6u);
            word |= packed << (8u * j);
        }
    }
    fwd_choice[block * c_v + cb] = word;
}

// One thread per output vec4.
@compute @workgroup_size(64)
fn forward_avg(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ow = params.w / 2u;
    let on = (params.h / 2u) * ow;
    let c_v = params.c4 / 4u;
    let t = thread_index(wg, nwg, lid);
    if (t >= on * c_v) {
        return;
    }
    let q = t / c_v;
    let cb = t % c_v;
    let oy = q / ow;
    let ox = q % ow;
    let i00 = ((2u * oy) * params.w + 2u * ox) * c_v + cb;
    let i10 = i00 + params.w * c_v;
    fwd_output[t] = 0.25 * ((fwd_input[i00] + fwd_input[i00 + c_v]) + (fwd_input[i10] + fwd_input[i10 + c_v]));
}

// Where input vec4 t (pixel (y, x), channel block cb) sends its gradient from: the output
// vec4 index and the position d = dy*2 + dx inside its 2x2 window; none for a dropped row or column.
struct Source {
    valid: bool,
    q: u32,
    d: u32,
    cb: u32,
}

fn source_of(t: u32) -> Source {
    let c_v = params.c4 / 4u;
    let ow = params.w / 2u;
    let oh = params.h / 2u;
    let pix = t / c_v;
    let y = pix / params.w;
    let x = pix % params.w;
    var s: Source;
    s.valid = y < 2u * oh && x < 2u * ow;
    s.q = (y / 2u) * ow + x / 2u;
    s.d = (y % 2u) * 2u + (x % 2u);
    s.cb = t % c_v;
    return s;
}

// One thread per input vec4; every input element is written (zero where it did not win).
@compute @workgroup_size(64)
fn backward_max(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c_v = params.c4 / 4u;
    let t = thread_index(wg, nwg, lid);
    if (t >= params.h * params.w * c_v) {
        return;
    }
    let s = source_of(t);
    var g = vec4<f32>(0.0);
    if (s.valid) {
        let word = bwd_choice[(s.q / 4u) * c_v + s.cb] >> ((s.q % 4u) * 8u);
        let pick = (vec4<u32>(word) >> vec4<u32>(0u, 2u, 4u, 6u)) & vec4<u32>(3u);
        g = select(vec4<f32>(0.0), bwd_grad_output[s.q * c_v + s.cb], pick == vec4<u32>(s.d));
    }
    bwd_max_grad_input[t] = g;
}

// One thread per input vec4; every input element is written (zero in a dropped row or column).
@compute @workgroup_size(64)
fn backward_avg(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c_v = params.c4 / 4u;
    let t = thread_index(wg, nwg, lid);
    if (t >= params.h * params.w * c_v) {
        return;
    }
    let s = source_of(t);
    var g = vec4<f32>(0.0);
    if (s.valid) {
        g = 0.25 * bwd_grad_output[s.q * c_v + s.cb];
    }
    bwd_avg_grad_input[t] = g;
}
