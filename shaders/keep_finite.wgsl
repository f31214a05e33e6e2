// The last image whose objective was finite, kept on the GPU so that a diverging run can go back
// to it without a readback per step. Runs after the objective's total is written and before the
// update: last_finite = x when scalars[total_slot] is finite, unchanged otherwise.
// (No backward: it is not part of the objective.)

struct KeepParams {
    len: u32,
    total_slot: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> kp: KeepParams;
@group(0) @binding(1) var<storage, read> scalars: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> last_finite: array<f32>;

// Infinity and NaN are the values whose exponent bits are all ones.
fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(64)
fn keep_finite(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (wg.x + wg.y * nwg.x) * 64u + lane;
    if (i >= kp.len || !is_finite(scalars[kp.total_slot])) {
        return;
    }
    last_finite[i] = x[i];
}
