//! Helpers shared by the test binaries (`mod common;` in each): a tiny deterministic
//! PRNG, the GPU context, f32/f64 conversions, and the shared test images.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;
use stylize::gpu::{native_context, GpuContext};

/// xorshift64*: small, deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Uniform in [-scale, scale).
    pub fn sym(&mut self, scale: f64) -> f64 {
        (2.0 * self.unit() - 1.0) * scale
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// `n` values uniform in [lo, hi).
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }
    /// `n` values uniform in [lo, hi), rounded to f32.
    pub fn vec_f32(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| self.range(lo, hi) as f32).collect()
    }
    /// `n` values uniform in [-scale, scale).
    pub fn vec_sym(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| self.sym(scale)).collect()
    }
}

/// A new GPU context (lavapipe natively).
pub fn context() -> GpuContext {
    native_context().expect("a Vulkan adapter (lavapipe: apt-get install mesa-vulkan-drivers)")
}

/// One GPU context per test binary, shared by its (concurrent) tests.
pub fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(context)
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

pub const CHELSEA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/images/content/chelsea.png");
pub const STARRY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/images/style/starry_night.jpg");

/// A scratch folder for this test process, `stylize-{tag}-{pid}` in the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stylize-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
