// Draws the optimised image straight from its storage buffer (HWC RGB f32, the engine's x) into a
// canvas surface: no CPU readback per step. One full-screen triangle; each fragment picks the image
// pixel under it (nearest), so the canvas may be smaller than the image (texture size limits).

struct View {
    image_width: u32,
    image_height: u32,
    out_width: u32,
    out_height: u32,
    // 1 when the surface format is *-srgb (the GPU then encodes: we hand it linear values).
    srgb_target: u32,
    // the image rows the bound buffer holds (a band of x, src/bands.rs; the draw is scissored to
    // the output rows that show them)
    row0: u32,
    rows: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> view: View;
@group(0) @binding(1) var<storage, read> image: array<f32>;

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    // (0,0) (2,0) (0,2) in uv: a triangle that covers the whole clip square.
    let uv = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    return vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let low = c / 12.92;
    let high = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(high, low, c <= vec3<f32>(0.04045));
}

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    // position.xy is the pixel centre in framebuffer coordinates, y down (row 0 at the top, as in x).
    let sx = f32(view.image_width) / f32(view.out_width);
    let sy = f32(view.image_height) / f32(view.out_height);
    let x = min(u32(position.x * sx), view.image_width - 1u);
    let y = min(u32(position.y * sy), view.image_height - 1u);
    if (y < view.row0 || y >= view.row0 + view.rows) {
        discard; // an output row on a band's edge: the neighbouring band draws it
    }
    let i = ((y - view.row0) * view.image_width + x) * 3u;
    // The seed loss form does not clamp during the run: show what the saved PNG will show.
    var rgb = clamp(vec3<f32>(image[i], image[i + 1u], image[i + 2u]), vec3<f32>(0.0), vec3<f32>(1.0));
    if (view.srgb_target == 1u) {
        rgb = srgb_to_linear(rgb);
    }
    return vec4<f32>(rgb, 1.0);
}
