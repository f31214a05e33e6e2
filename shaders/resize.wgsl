// Bicubic (Catmull-Rom) upsampling of an image x (HWC RGB f32) between the scales of a coarse-to-fine
// run, sampled as the `image` crate's resize (and so PIL's and torchvision's) samples it: output pixel o
// looks at source position (o + 0.5)·ratio − 0.5, the taps within 2 pixels that lie inside the image
// are weighted by the Catmull-Rom kernel and renormalised (no clamping of coordinates at the edges),
// separably in x and y, and the result is clamped to [0, 1]. Upsampling only (ratio ≤ 1): the support
// is then 2 pixels. One thread per output pixel; no backward (the resize is not part of the objective).

struct ResizeParams {
    src_w: u32,
    src_h: u32,
    dst_w: u32,
    dst_h: u32,
    ratio_x: f32, // src_w / dst_w
    ratio_y: f32, // src_h / dst_h
    // the rows of dst written: dst holds rows row0 .. row0 + rows (a band of the image, see
    // src/bands.rs), row0 first
    row0: u32,
    rows: u32,
}

@group(0) @binding(0) var<uniform> rp: ResizeParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn catmull_rom(t: f32) -> f32 {
    let a = abs(t);
    if (a < 1.0) {
        return ((1.5 * a - 2.5) * a) * a + 1.0;
    }
    if (a < 2.0) {
        return ((-0.5 * a + 2.5) * a - 4.0) * a + 2.0;
    }
    return 0.0;
}

// The taps [first, first + count) and their normalised weights for output index o on one axis.
struct Taps {
    first: i32,
    count: i32,
    w: array<f32, 5>,
}

fn taps(o: u32, ratio: f32, size: u32) -> Taps {
    var out: Taps;
    let centre = (f32(o) + 0.5) * ratio;
    let left = clamp(i32(floor(centre - 2.0)), 0, i32(size) - 1);
    let right = clamp(i32(ceil(centre + 2.0)), left + 1, i32(size));
    out.first = left;
    out.count = min(right - left, 5);
    var sum = 0.0;
    for (var k = 0; k < out.count; k = k + 1) {
        let w = catmull_rom(f32(left + k) - (centre - 0.5));
        out.w[k] = w;
        sum = sum + w;
    }
    for (var k = 0; k < out.count; k = k + 1) {
        out.w[k] = out.w[k] / sum;
    }
    return out;
}

@compute @workgroup_size(64)
fn upsample(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let p = (wg.x + wg.y * nwg.x) * 64u + lane;
    if (p >= rp.dst_w * rp.rows) {
        return;
    }
    let ox = p % rp.dst_w;
    let oy = rp.row0 + p / rp.dst_w;
    let tx = taps(ox, rp.ratio_x, rp.src_w);
    let ty = taps(oy, rp.ratio_y, rp.src_h);
    var acc = vec3<f32>(0.0);
    for (var j = 0; j < ty.count; j = j + 1) {
        // The vertical pass first, as the image crate does.
        var row = vec3<f32>(0.0);
        let y = u32(ty.first + j);
        for (var i = 0; i < tx.count; i = i + 1) {
            let s = 3u * (y * rp.src_w + u32(tx.first + i));
            row = row + tx.w[i] * vec3<f32>(src[s], src[s + 1u], src[s + 2u]);
        }
        acc = acc + ty.w[j] * row;
    }
    let v = clamp(acc, vec3<f32>(0.0), vec3<f32>(1.0));
    dst[3u * p] = v.x;
    dst[3u * p + 1u] = v.y;
    dst[3u * p + 2u] = v.z;
}
