// Adam update of the image x (HWC RGB f32, n = h*w*3 values), in place.
//
// Arithmetic follows torch.optim.Adam (beta1 = 0.9, beta2 = 0.999, eps = 1e-8):
//   m <- beta1*m + (1-beta1)*g
//   v <- beta2*v + (1-beta2)*g*g
//   x <- x - step_c * m / (sqrt(v)/sqrt(1-beta2^t) + eps),   step_c = lr_c / (1-beta1^t)
// then, if asked, x is clamped to [0,1]. The learning rate is per colour channel
// (channel = i % 3), which is how the seed form expresses "lr in ImageNet-normalised units".
//
// The bias corrections depend on the step number t, so the host rewrites the uniform
// before each step's submit; nothing is read back.
//
// Bindings: 0 params (uniform), 1 x (rw), 2 grad (read), 3 m (rw), 4 v (rw).
// Grid: one thread per element, 256 per workgroup, spread over x and y
// (linear workgroup = wg.x + wg.y * num_workgroups.x) to stay under 65535 per dimension.

struct Params {
    // lr_c / (1 - beta1^t) for channels 0,1,2 (w unused).
    step_size: vec4<f32>,
    n: u32,
    // 1: clamp x to [0,1] after the update.
    clamp01: u32,
    // sqrt(1 - beta2^t).
    sqrt_bc2: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> moment1: array<f32>;
@group(0) @binding(4) var<storage, read_write> moment2: array<f32>;

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
// 1 - beta as torch passes them (computed in f64, then rounded): 1.0 - 0.999 in f32
// would be off by 1.3e-5 relative.
const ONE_MINUS_BETA1: f32 = 0.1;
const ONE_MINUS_BETA2: f32 = 0.001;
const EPS: f32 = 1e-8;

@compute @workgroup_size(256)
fn adam_step(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = (wg.x + wg.y * nwg.x) * 256u + lid.x;
    if (i >= p.n) {
        return;
    }
    let g = grad[i];
    let m = BETA1 * moment1[i] + ONE_MINUS_BETA1 * g;
    let v = BETA2 * moment2[i] + ONE_MINUS_BETA2 * g * g;
    moment1[i] = m;
    moment2[i] = v;
    let denom = sqrt(v) / p.sqrt_bc2 + EPS;
    var xi = x[i] - p.step_size[i % 3u] * m / denom;
    if (p.clamp01 != 0u) {
        xi = clamp(xi, 0.0, 1.0);
    }
    x[i] = xi;
}
