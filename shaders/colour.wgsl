// Colour control (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer"), per pixel on
// HWC RGB f32 images, in place (each thread reads and writes only its own pixel). YIQ is the colour
// space throughout, as in the paper.
// - `luma_swap`: x = RGB(Y(x), I(content), Q(content)), clamped to [0, 1]. Applied to the final image
//   (no backward).
// - `colour_map`: x = clamp(A x + b, 0, 1), an affine map of the colours. The luminance-only mode maps
//   the photo and the painting to grey, (Y, Y, Y), the painting's Y matched to the photo's mean and
//   variance; the histogram mode maps the painting's colours to the photo's mean and covariance. Applied
//   to the inputs before the targets are computed (no backward).
// - `luminance_grad`: the backward of the luminance → RGB replication x = (Y, Y, Y) that the
//   luminance-only mode optimises through: dL/dY = Σ_c dL/dx_c, written to all three channels, so that
//   the optimiser's update keeps x grey.

struct ColourParams {
    pixels: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    // colour_map: rows of A (w unused) and b (w unused).
    row0: vec4<f32>,
    row1: vec4<f32>,
    row2: vec4<f32>,
    offset: vec4<f32>,
}

@group(0) @binding(0) var<uniform> cp: ColourParams;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> content: array<f32>;

const TO_YIQ = mat3x3<f32>(
    vec3<f32>(0.299, 0.595716, 0.211456),
    vec3<f32>(0.587, -0.274453, -0.522591),
    vec3<f32>(0.114, -0.321263, 0.311135),
);
const FROM_YIQ = mat3x3<f32>(
    vec3<f32>(1.0, 1.0, 1.0),
    vec3<f32>(0.9563, -0.2721, -1.1070),
    vec3<f32>(0.6210, -0.6474, 1.7046),
);

fn pixel_id(wg: vec3<u32>, nwg: vec3<u32>, lane: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * 64u + lane;
}

fn load(p: u32) -> vec3<f32> {
    return vec3<f32>(x[3u * p], x[3u * p + 1u], x[3u * p + 2u]);
}

fn store(p: u32, rgb: vec3<f32>) {
    x[3u * p] = rgb.x;
    x[3u * p + 1u] = rgb.y;
    x[3u * p + 2u] = rgb.z;
}

@compute @workgroup_size(64)
fn luma_swap(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let p = pixel_id(wg, nwg, lane);
    if (p >= cp.pixels) {
        return;
    }
    let c = vec3<f32>(content[3u * p], content[3u * p + 1u], content[3u * p + 2u]);
    let yiq = vec3<f32>((TO_YIQ * load(p)).x, (TO_YIQ * c).y, (TO_YIQ * c).z);
    store(p, clamp(FROM_YIQ * yiq, vec3<f32>(0.0), vec3<f32>(1.0)));
}

@compute @workgroup_size(64)
fn colour_map(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let p = pixel_id(wg, nwg, lane);
    if (p >= cp.pixels) {
        return;
    }
    let v = load(p);
    let mapped = vec3<f32>(dot(cp.row0.xyz, v), dot(cp.row1.xyz, v), dot(cp.row2.xyz, v)) + cp.offset.xyz;
    store(p, clamp(mapped, vec3<f32>(0.0), vec3<f32>(1.0)));
}

@compute @workgroup_size(64)
fn luminance_grad(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let p = pixel_id(wg, nwg, lane);
    if (p >= cp.pixels) {
        return;
    }
    let g = load(p);
    store(p, vec3<f32>(g.x + g.y + g.z));
}
