// conv3x3 storage precision "f16" (`--precision f16`, where the GPU has shader-f16), prepended before
// conv3x3_shared.wgsl: the weights are stored in f16 (half the memory and the bandwidth), and the
// workgroup variant's forward pass stages its input tile and weights in f16 (half the workgroup
// memory). Every product is accumulated in f32. The backward pass stages the output gradient in
// f32: its range follows the loss weights and could overflow (or vanish in) f16.
enable f16;

alias weight4 = vec4<f16>;
alias staged4 = vec4<f16>;

// An activation in f16: clamped to f16's range first (beyond it the conversion is undefined in
// WGSL; VGG's activations stay far below 65504, but the input convention does not bound them).
fn to_staged(v: vec4<f32>) -> staged4 {
    return staged4(clamp(v, vec4<f32>(-65504.0), vec4<f32>(65504.0)));
}
