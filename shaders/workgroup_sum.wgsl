// Workgroup tree sum, shared by content_loss.wgsl, style_loss.wgsl, tv_loss.wgsl
// and reduce.wgsl. WGSL has no #include: src/kernels/reduce.rs (LaneSum) appends this
// file, or workgroup_sum_subgroups.wgsl where the GPU has subgroups, to each of those
// sources. The including shader defines `const THREADS: u32`, its workgroup size (a
// power of two).

var<workgroup> lane_sums: array<f32, THREADS>;

// Sums `value` over the THREADS lanes, pairwise in a fixed tree order (so the
// result is deterministic), and returns the total to every lane. Every thread
// must call it, in uniform control flow (it has barriers).
fn workgroup_sum(lane: u32, value: f32) -> f32 {
    lane_sums[lane] = value;
    workgroupBarrier();
    for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (lane < stride) {
            lane_sums[lane] = lane_sums[lane] + lane_sums[lane + stride];
        }
        workgroupBarrier();
    }
    return lane_sums[0];
}
