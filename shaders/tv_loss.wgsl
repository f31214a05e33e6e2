// Total variation of the image x (HWC RGB f32, 3 channels, h x w):
//   TV = sum_{i<h-1} (x[i+1,j] - x[i,j])^2 + sum_{j<w-1} (x[i,j+1] - x[i,j])^2, over all channels.
// - `partial`: workgroup b sums the terms whose left/top pixel lies in its block of
//   256 pixels (of the owner window, the whole image untiled) and writes partials[offset + b];
//   reduce.wgsl `finish` applies 1/(3*H*W).
// - `grad`: dx += coef * dTV/dx, always accumulating (it runs after the network's
//   gradient has been written into dx).

struct PartialParams {
    h: u32,
    w: u32,
    offset: u32,
    blocks: u32,
    // the terms summed: those whose left/top pixel lies in rows oy..oy+oh, columns ox..ox+ow (a
    // tiled step sums its tile's interior; the neighbours may lie outside it)
    oy: u32,
    ox: u32,
    oh: u32,
    ow: u32,
}

struct GradParams {
    h: u32,
    w: u32,
    coef: f32,
    _pad0: u32,
}

// Also the lane count of workgroup_sum (workgroup_sum.wgsl or workgroup_sum_subgroups.wgsl, appended
// by src/kernels/reduce.rs: LaneSum).
const THREADS: u32 = 64u;
const PER_THREAD: u32 = 4u;

@group(0) @binding(0) var<uniform> pp: PartialParams;
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@group(0) @binding(0) var<uniform> gp: GradParams;
@group(0) @binding(2) var<storage, read_write> grad_image: array<f32>;

@compute @workgroup_size(64)
fn partial(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let block = wg.x + wg.y * nwg.x;
    let w = pp.w;
    let owners = pp.oh * pp.ow;
    var sum = 0.0;
    for (var k = 0u; k < PER_THREAD; k = k + 1u) {
        let q = (block * PER_THREAD + k) * THREADS + lane;
        if (q < owners) {
            let y = pp.oy + q / pp.ow;
            let x = pp.ox + q % pp.ow;
            let p = y * w + x;
            let here = vec3<f32>(image[3u * p], image[3u * p + 1u], image[3u * p + 2u]);
            if (y + 1u < pp.h) {
                let q = 3u * (p + w);
                let d = vec3<f32>(image[q], image[q + 1u], image[q + 2u]) - here;
                sum = sum + dot(d, d);
            }
            if (x + 1u < w) {
                let q = 3u * (p + 1u);
                let d = vec3<f32>(image[q], image[q + 1u], image[q + 2u]) - here;
                sum = sum + dot(d, d);
            }
        }
    }
    let total = workgroup_sum(lane, sum);
    if (lane == 0u && block < pp.blocks) {
        partials[pp.offset + block] = total;
    }
}

fn pixel(p: u32) -> vec3<f32> {
    return vec3<f32>(image[3u * p], image[3u * p + 1u], image[3u * p + 2u]);
}

@compute @workgroup_size(64)
fn grad(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let p = (wg.x + wg.y * nwg.x) * THREADS + lane;
    let w = gp.w;
    if (p >= gp.h * w) {
        return;
    }
    let y = p / w;
    let x = p % w;
    let here = pixel(p);
    // Each squared difference (b - a)^2 gives -2(b - a) to a and +2(b - a) to b.
    var g = vec3<f32>(0.0);
    if (y + 1u < gp.h) {
        g = g - 2.0 * (pixel(p + w) - here);
    }
    if (y > 0u) {
        g = g + 2.0 * (here - pixel(p - w));
    }
    if (x + 1u < w) {
        g = g - 2.0 * (pixel(p + 1u) - here);
    }
    if (x > 0u) {
        g = g + 2.0 * (here - pixel(p - 1u));
    }
    let i = 3u * p;
    grad_image[i] = grad_image[i] + gp.coef * g.x;
    grad_image[i + 1u] = grad_image[i + 1u] + gp.coef * g.y;
    grad_image[i + 2u] = grad_image[i + 2u] + gp.coef * g.z;
}
