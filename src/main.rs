//! The `stylize` command line; everything lives in [`stylize::cli`].

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(stylize::cli::main());
}

/// The browser uses the library; a wasm32 build of the binary has nothing to do.
#[cfg(target_arch = "wasm32")]
fn main() {}
