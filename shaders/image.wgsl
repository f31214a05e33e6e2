// Image in and out of the network.
// - `to_network_input`: x (HWC RGB f32, 3 channels) -> v (HWC, 4 channels):
//   v[p][k] = scale * x[p][perm[k]] - mean[k] for k < 3, v[p][3] = 0 (channel padding).
//   For VGG's Caffe convention perm = (2, 1, 0) (BGR), scale = 255, mean = BGR means.
// - `network_grad_to_image`: dx[p][perm[k]] = scale * dv[p][k], the chain rule through
//   that affine map (it overwrites dx; the TV gradient is added afterwards).

struct ImageParams {
    perm: vec4<u32>,   // source RGB channel of network channel k (w unused)
    mean: vec4<f32>,   // subtracted per network channel (w unused)
    pixels: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> ip: ImageParams;
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read_write> network_input: array<vec4<f32>>;

@group(0) @binding(1) var<storage, read> network_grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> image_grad: array<f32>;

fn linear_id(wg: vec3<u32>, nwg: vec3<u32>, lane: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * 64u + lane;
}

@compute @workgroup_size(64)
fn to_network_input(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let p = linear_id(wg, nwg, lane);
    if (p >= ip.pixels) {
        return;
    }
    let base = 3u * p;
    let v = vec3<f32>(image[base + ip.perm.x], image[base + ip.perm.y], image[base + ip.perm.z]);
    network_input[p] = vec4<f32>(ip.scale * v - ip.mean.xyz, 0.0);
}

@compute @workgroup_size(64)
fn network_grad_to_image(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let p = linear_id(wg, nwg, lane);
    if (p >= ip.pixels) {
        return;
    }
    let g = ip.scale * network_grad[p];
    let base = 3u * p;
    image_grad[base + ip.perm.x] = g.x;
    image_grad[base + ip.perm.y] = g.y;
    image_grad[base + ip.perm.z] = g.z;
}
