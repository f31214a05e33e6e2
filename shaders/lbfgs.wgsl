// L-BFGS on the GPU: the two-loop recursion of torch.optim.LBFGS (line_search_fn=None,
// one function evaluation per step), with every dot product and every coefficient
// (rho, alpha, beta, gamma = H_diag, t) computed and consumed on the GPU.
//
// Vectors (n f32 each): g (this step's gradient), gprev (last step's gradient),
// dir (the search direction d; during a step it holds q, then r, then the new d),
// and a ring of m history pairs y_j = g_k - g_{k-1}, s_j = t_{k-1} d_{k-1}, one buffer
// per slot. The host picks which slot each dispatch touches from the step number alone.
//
// Reductions are two-stage: each element kernel also produces per-workgroup partial
// sums (vec4, up to three dot products at once) into `partials`; `lbfgs_finish` (one
// workgroup) adds them in a fixed order (so results are bit-reproducible) and turns
// them into coefficients in `scalars`. Each axpy is fused with the dot product the
// next coefficient needs, so a step reads each history vector twice (once per loop).
//
// scalars layout (f32): [T] step length t of the current d, [GAMMA] H_diag,
// [GTD] g.d, [L1] |g|_1 at step 1, [YS], [YY] of the newest pair (diagnostics),
// [RHO + j] rho_j (0 disables slot j), [RHO + m + j] alpha_j, [RHO + 2m + j] beta_j.
//
// Element kernels for reductions: workgroup w, thread l handles elements
// (w*per_thread + r)*256 + l for r < per_thread (coalesced). `lbfgs_update` uses one
// thread per element on a 2-D grid (linear workgroup = wg.x + wg.y*num_workgroups.x).

struct Params {
    n: u32,
    // elements per thread in the reduction kernels
    per_thread: u32,
    // workgroups of the reduction kernels = number of partials
    groups: u32,
    // history size m
    hist: u32,
    // slot whose coefficients an axpy uses (element kernels)
    slot_a: u32,
    // slot whose coefficient a finish writes
    slot_b: u32,
    // MODE_* (axpy_dot) or FIN_* (finish)
    mode: u32,
    lr: f32,
}

const T: u32 = 0u;
const GAMMA: u32 = 1u;
const GTD: u32 = 2u;
const L1: u32 = 3u;
const YS: u32 = 4u;
const YY: u32 = 5u;
const RHO: u32 = 8u;

// lbfgs_axpy_dot modes
const MODE_LOOP1: u32 = 0u;      // q <- q - alpha_a y_a
const MODE_LOOP1_LAST: u32 = 1u; // r <- gamma (q - alpha_a y_a)
const MODE_LOOP2: u32 = 2u;      // r <- r + (alpha_a - beta_a) s_a

// lbfgs_finish modes
const FIN_FIRST: u32 = 0u; // sums (|g|_1, g.d): t = min(1, 1/|g|_1) * lr
const FIN_PAIR: u32 = 1u;  // sums (y.s, y.y, s.q): rho, gamma, alpha of the new pair
const FIN_ALPHA: u32 = 2u; // sum s_b.q: alpha_b = rho_b * sum
const FIN_BETA: u32 = 3u;  // sum y_b.r: beta_b = rho_b * sum
const FIN_GTD: u32 = 4u;   // sums (g.d, |d|_1): t = lr, bounded by MAX_MEAN_MOVE

// torch: the pair is kept only if y.s > 1e-10
const CURVATURE_MIN: f32 = 1e-10;
// Largest mean |x step| per element, in [0,1] pixel units (not in torch: see FIN_GTD)
const MAX_MEAN_MOVE: f32 = 0.05;
// torch (tolerance_change): no move if g.d > -1e-9
const DESCENT_MIN: f32 = -1e-9;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scalars_in: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> gprev: array<f32>;
@group(0) @binding(4) var<storage, read_write> dir: array<f32>;
@group(0) @binding(5) var<storage, read> vec_a: array<f32>;
@group(0) @binding(6) var<storage, read> vec_b: array<f32>;
@group(0) @binding(7) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> x: array<f32>;
@group(0) @binding(9) var<storage, read_write> scalars: array<f32>;
@group(0) @binding(10) var<storage, read> partials_in: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read_write> y_out: array<f32>;
@group(0) @binding(12) var<storage, read_write> s_out: array<f32>;

var<workgroup> red: array<vec4<f32>, 256>;

// Tree sum over the workgroup; every thread must call it (it has barriers).
fn workgroup_sum(lid: u32, v: vec4<f32>) -> vec4<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride = stride >> 1u) {
        if (lid < stride) {
            red[lid] = red[lid] + red[lid + stride];
        }
        workgroupBarrier();
    }
    return red[0];
}

// Step 1: d = -g, remember g; partials (|g|_1, g.d).
@compute @workgroup_size(256)
fn lbfgs_first(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    var acc = vec4<f32>(0.0);
    let base = wg.x * p.per_thread * 256u + lid.x;
    for (var r = 0u; r < p.per_thread; r = r + 1u) {
        let i = base + r * 256u;
        if (i < p.n) {
            let gi = g[i];
            gprev[i] = gi;
            dir[i] = -gi;
            acc = acc + vec4<f32>(abs(gi), gi * -gi, 0.0, 0.0);
        }
    }
    let total = workgroup_sum(lid.x, acc);
    if (lid.x == 0u) {
        partials[wg.x] = total;
    }
}

// Step k >= 2, start: the new pair y = g - gprev, s = t_prev * d into its slot (y_out, s_out),
// gprev <- g, q = -g into dir; partials (y.s, y.y, s.q) for rho, gamma and the first alpha.
@compute @workgroup_size(256)
fn lbfgs_pair(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let t_prev = scalars_in[T];
    var acc = vec4<f32>(0.0);
    let base = wg.x * p.per_thread * 256u + lid.x;
    for (var r = 0u; r < p.per_thread; r = r + 1u) {
        let i = base + r * 256u;
        if (i < p.n) {
            let gi = g[i];
            let yi = gi - gprev[i];
            let si = dir[i] * t_prev;
            y_out[i] = yi;
            s_out[i] = si;
            gprev[i] = gi;
            dir[i] = -gi;
            acc = acc + vec4<f32>(yi * si, yi * yi, si * -gi, 0.0);
        }
    }
    let total = workgroup_sum(lid.x, acc);
    if (lid.x == 0u) {
        partials[wg.x] = total;
    }
}

// One iteration of either loop, fused with the dot product of the next one:
// dir <- (dir + c * vec_a) * scale, partial sum of vec_b . dir.
// Loop 1: vec_a = y_a, vec_b = s of the next older slot (or y_a itself in the last
// iteration, whose dot starts loop 2). Loop 2: vec_a = s_a, vec_b = y of the next newer
// slot, or g after the newest (that dot is g.d).
@compute @workgroup_size(256)
fn lbfgs_axpy_dot(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let alpha = scalars_in[RHO + p.hist + p.slot_a];
    let beta = scalars_in[RHO + 2u * p.hist + p.slot_a];
    var c = -alpha;
    var scale = 1.0;
    if (p.mode == MODE_LOOP1_LAST) {
        scale = scalars_in[GAMMA];
    } else if (p.mode == MODE_LOOP2) {
        c = alpha - beta;
    }
    var acc = vec4<f32>(0.0);
    let base = wg.x * p.per_thread * 256u + lid.x;
    for (var r = 0u; r < p.per_thread; r = r + 1u) {
        let i = base + r * 256u;
        if (i < p.n) {
            let v = (dir[i] + c * vec_a[i]) * scale;
            dir[i] = v;
            // .y: |d|_1, for the step-length bound (only the last dispatch's is used)
            acc = acc + vec4<f32>(vec_b[i] * v, abs(v), 0.0, 0.0);
        }
    }
    let total = workgroup_sum(lid.x, acc);
    if (lid.x == 0u) {
        partials[wg.x] = total;
    }
}

// Adds the partials in a fixed order and updates the coefficients.
@compute @workgroup_size(256)
fn lbfgs_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    var acc = vec4<f32>(0.0);
    for (var i = lid.x; i < p.groups; i = i + 256u) {
        acc = acc + partials_in[i];
    }
    let total = workgroup_sum(lid.x, acc);
    if (lid.x != 0u) {
        return;
    }
    let m = p.hist;
    let b = p.slot_b;
    switch p.mode {
        case FIN_FIRST: {
            let l1 = total.x;
            scalars[L1] = l1;
            scalars[GTD] = total.y;
            // min(1, 1/|g|_1) without dividing by zero
            scalars[T] = select(1.0, 1.0 / l1, l1 > 1.0) * p.lr;
        }
        case FIN_PAIR: {
            let ys = total.x;
            let yy = total.y;
            scalars[YS] = ys;
            scalars[YY] = yy;
            var rho = 0.0;
            if (ys > CURVATURE_MIN) {
                rho = 1.0 / ys;
                scalars[GAMMA] = ys / yy;
            }
            scalars[RHO + b] = rho;
            scalars[RHO + m + b] = select(0.0, rho * total.z, rho != 0.0);
            scalars[RHO + 2u * m + b] = 0.0;
        }
        case FIN_ALPHA: {
            let rho = scalars[RHO + b];
            scalars[RHO + m + b] = select(0.0, rho * total.x, rho != 0.0);
        }
        case FIN_BETA: {
            let rho = scalars[RHO + b];
            scalars[RHO + 2u * m + b] = select(0.0, rho * total.x, rho != 0.0);
        }
        case FIN_GTD: {
            scalars[GTD] = total.x;
            // Without a line search, a step from a poor curvature estimate can throw the image
            // far outside [0,1] (and overflow to NaN in the deep layers). Bound the step so that
            // pixels move by at most MAX_MEAN_MOVE on average; healthy steps are far below it.
            let limit = MAX_MEAN_MOVE * f32(p.n);
            scalars[T] = select(p.lr, limit / total.y, p.lr * total.y > limit);
        }
        default: {}
    }
}

// x <- x + t d, unless d is not a descent direction (torch stops before moving then).
@compute @workgroup_size(256)
fn lbfgs_update(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid.x;
    if (i >= p.n || scalars_in[GTD] > DESCENT_MIN) {
        return;
    }
    x[i] = x[i] + scalars_in[T] * dir[i];
}
