// conv3x3 storage precision "f32" (the default), prepended before conv3x3_shared.wgsl: the weights,
// and what the workgroup variant's forward pass stages in workgroup memory, are f32.
alias weight4 = vec4<f32>;
alias staged4 = vec4<f32>;

fn to_staged(v: vec4<f32>) -> staged4 {
    return v;
}
