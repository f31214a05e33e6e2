// Copies an h×w window of one HWC map into another: dst[(dy + y, dx + x)] = src[(sy + y, sx + x)],
// `channels` f32 per pixel in both (3 for images, the padded channel count for features). The tiled
// step uses it both ways: to cut a tile's region out of a full-size map, and to put a tile's interior
// back into one (its backward is the same copy with source and destination swapped).

struct WindowParams {
    h: u32,
    w: u32,
    channels: u32,
    src_width: u32,
    src_y: u32,
    src_x: u32,
    dst_width: u32,
    dst_y: u32,
    dst_x: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> wp: WindowParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn copy_window(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (wg.x + wg.y * nwg.x) * 64u + lane;
    let row = wp.w * wp.channels;
    if (i >= wp.h * row) {
        return;
    }
    let y = i / row;
    let rest = i % row; // x * channels + c
    let src_index = ((wp.src_y + y) * wp.src_width + wp.src_x) * wp.channels + rest;
    let dst_index = ((wp.dst_y + y) * wp.dst_width + wp.dst_x) * wp.channels + rest;
    dst[dst_index] = src[src_index];
}
