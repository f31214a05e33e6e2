//! stylize: neural style transfer (Gatys et al. 2015/16) with WGSL compute shaders.
//!
//! The crate walks from the bottom up:
//! - [`gpu`]: the wgpu device, buffers, dispatches and async readback;
//! - [`kernels`]: one Rust wrapper per WGSL op in `shaders/`;
//! - [`autotune`]: which conv kernel variant runs each layer shape on this GPU;
//! - [`weights`]: the VGG19 weights file (format, converter, loader);
//! - [`model`]: the VGG19 layer table and the feature stack;
//! - [`plan`]: one run's sizes, buffers, FLOPs and checks, worked out without a GPU;
//! - [`objective`]: content, style and TV losses and their gradient on the GPU;
//! - [`optim`]: Adam and L-BFGS, entirely on the GPU;
//! - [`settings`]: every user-facing option, presets and share links;
//! - [`engine`]: the `Stylizer` that ties it together (used by the CLI and the web page);
//! - [`imageio`]: decoding, resizing and encoding images;
//! - `web` (wasm32 only): the `StyleTransfer` JS class.
pub mod autotune;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod fuzz;
pub mod bands;
pub mod engine;
pub mod gpu;
pub mod imageio;
pub mod kernels;
pub mod model;
pub mod objective;
pub mod optim;
pub mod plan;
pub mod settings;
pub mod tiling;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
