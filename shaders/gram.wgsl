// Gram matrix G = scale * F^T F of a feature map F (pixels x c4, HWC, c4 = channels
// padded to 4; padded channels are 0, so G's padded rows/columns come out 0).
//
// Split-K in two passes, because a Gram is a long reduction over pixels:
// - `partial`: workgroup (x, chunk) gives each thread one 4x4 tile of G and sums it
//   over one chunk of pixels (two vec4 loads feed 16 FMAs per pixel). G is symmetric,
//   so only tiles on or below the block diagonal (row block r >= column block c) are
//   computed: tile t = r*(r+1)/2 + c. partials[(chunk*tiles + t)*4 + i] is row i of the
//   tile as a vec4.
// - `reduce`: one thread per element of G adds its value over all chunks, mirroring
//   the upper triangle from the lower, and writes scale * sum (or adds it, to sum G over the
//   tiles of a tiled step).

struct PartialParams {
    pixels: u32,  // h*w
    nb: u32,      // c4 / 4: vec4 blocks per pixel
    tiles: u32,   // nb*(nb+1)/2
    chunk: u32,   // pixels per chunk
}

struct ReduceParams {
    c4: u32,
    tiles: u32,
    chunks: u32,
    scale: f32,
    accumulate: u32, // 1: add to G (a tiled step sums G over its tiles)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> pp: PartialParams;
@group(0) @binding(1) var<storage, read> features: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> tile_partials: array<vec4<f32>>;

@group(0) @binding(0) var<uniform> rp: ReduceParams;
@group(0) @binding(1) var<storage, read> chunk_partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> gram: array<f32>;

// Row and column block of lower-triangular tile t (t = r*(r+1)/2 + c, c <= r).
fn tile_coords(t: u32) -> vec2<u32> {
    var r = u32((sqrt(8.0 * f32(t) + 1.0) - 1.0) * 0.5);
    // Guard against float rounding in the square root.
    if ((r + 1u) * (r + 2u) / 2u <= t) {
        r = r + 1u;
    }
    if (r * (r + 1u) / 2u > t) {
        r = r - 1u;
    }
    return vec2<u32>(r, t - r * (r + 1u) / 2u);
}

@compute @workgroup_size(64)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = wg.x * 64u + lane;
    let chunk_index = wg.y;
    if (t >= pp.tiles) {
        return;
    }
    let rc = tile_coords(t);
    let nb = pp.nb;
    let begin = chunk_index * pp.chunk;
    let end = min(begin + pp.chunk, pp.pixels);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var row = begin * nb + rc.x;
    var col = begin * nb + rc.y;
    for (var p = begin; p < end; p = p + 1u) {
        let fr = features[row];
        let fc = features[col];
        a0 = a0 + fr.x * fc;
        a1 = a1 + fr.y * fc;
        a2 = a2 + fr.z * fc;
        a3 = a3 + fr.w * fc;
        row = row + nb;
        col = col + nb;
    }
    let out = (chunk_index * pp.tiles + t) * 4u;
    tile_partials[out] = a0;
    tile_partials[out + 1u] = a1;
    tile_partials[out + 2u] = a2;
    tile_partials[out + 3u] = a3;
}

@compute @workgroup_size(64)
fn reduce(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let e = (wg.x + wg.y * nwg.x) * 64u + lane;
    let c4 = rp.c4;
    if (e >= c4 * c4) {
        return;
    }
    let a = e / c4;
    let b = e % c4;
    let ra = a / 4u;
    let rb = b / 4u;
    var tile: u32;
    var i: u32;
    var j: u32;
    if (ra >= rb) {
        tile = ra * (ra + 1u) / 2u + rb;
        i = a % 4u;
        j = b % 4u;
    } else {
        tile = rb * (rb + 1u) / 2u + ra;
        i = b % 4u;
        j = a % 4u;
    }
    var sum = 0.0;
    for (var chunk = 0u; chunk < rp.chunks; chunk = chunk + 1u) {
        sum = sum + chunk_partials[(chunk * rp.tiles + tile) * 4u + i][j];
    }
    if (rp.accumulate != 0u) {
        gram[e] = gram[e] + rp.scale * sum;
    } else {
        gram[e] = rp.scale * sum;
    }
}
