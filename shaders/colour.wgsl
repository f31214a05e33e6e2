// Colour control. `luma_swap`: the result's luminance with the content image's chroma, in YIQ (the
// colour space of Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer"):
// x = RGB(Y(x), I(content), Q(content)), clamped to [0, 1], in place (each thread reads and writes
// only its own pixel). Applied to the final image (no backward).

struct ColourParams {
    pixels: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
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

@compute @workgroup_size(64)
fn luma_swap(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let p = (wg.x + wg.y * nwg.x) * 64u + lane;
    if (p >= cp.pixels) {
        return;
    }
    let s = vec3<f32>(x[3u * p], x[3u * p + 1u], x[3u * p + 2u]);
    let c = vec3<f32>(content[3u * p], content[3u * p + 1u], content[3u * p + 2u]);
    let yiq = vec3<f32>((TO_YIQ * s).x, (TO_YIQ * c).y, (TO_YIQ * c).z);
    let rgb = clamp(FROM_YIQ * yiq, vec3<f32>(0.0), vec3<f32>(1.0));
    x[3u * p] = rgb.x;
    x[3u * p + 1u] = rgb.y;
    x[3u * p + 2u] = rgb.z;
}
