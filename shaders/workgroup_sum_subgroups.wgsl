// Workgroup sum through subgroup operations: the same `workgroup_sum` as workgroup_sum.wgsl, for GPUs
// with subgroups (src/kernels/reduce.rs appends this file instead; wgpu's Naga takes the subgroup
// functions without `enable subgroups;`, which it does not accept yet).
// One barrier instead of log2(THREADS): each subgroup adds its lanes in hardware, its first lane
// stores the subgroup's sum in its own slot (the other lanes store 0), and then every subgroup adds up
// all THREADS slots, each lane a strided share. Nothing assumes which lanes form a subgroup or how
// large it is, and the order of the additions is fixed by the hardware, so the result is deterministic.

var<workgroup> lane_sums: array<f32, THREADS>;

// Every thread must call it, once, in uniform control flow.
fn workgroup_sum(lane: u32, value: f32) -> f32 {
    // this lane's place in its subgroup and the subgroup's size, as its lanes count them
    let place = subgroupExclusiveAdd(1u);
    let size = subgroupAdd(1u);
    let subgroup_total = subgroupAdd(value);
    lane_sums[lane] = select(0.0, subgroup_total, place == 0u);
    workgroupBarrier();
    var share = 0.0;
    for (var i = place; i < THREADS; i += size) {
        share += lane_sums[i];
    }
    return subgroupAdd(share);
}
