//! VGG19 convolution weights: the committed file format, the converter from the float32
//! source directory (`shared/weights-src`), and the loader for both.
//!
//! The file format is documented byte by byte in `weights/README.md`. In short:
//! a 32-byte preamble (magic, version, counts), a table of fixed 72-byte tensor entries
//! (name, dtype, shape, offset, length), the input convention (channel order, scale, mean),
//! the sha256 of the payload, the sha256 of everything before it, then the payload.
//! Kernels are stored `[cout][ky][kx][cin]` (the layout the shaders read), either float32 or
//! 8-bit symmetric per output channel with a float32 scale tensor; biases are always float32.
//!
//! The parser never trusts a number before checking it: sizes and counts are bounded, both
//! checksums are verified before the table is used, and every offset is checked against the
//! payload with overflow-checked arithmetic. Every refusal is a [`WeightsError`] whose message
//! names the problem and what to do about it.

use sha2::{Digest, Sha256};

mod reader;
#[cfg(not(target_arch = "wasm32"))]
mod source;
mod writer;
#[cfg(not(target_arch = "wasm32"))]
pub use writer::{convert, convert_layers, ConvertReport};
pub use writer::{quantize_kernel, LayerReport};
use std::fmt;

#[cfg(not(target_arch = "wasm32"))]
use std::path::{Path, PathBuf};

// The convolutions a file may hold, in order: a prefix of the one layer table.
use crate::model::CONVS as VGG19_CONVS;

/// Every weights file and source directory must hold at least conv1_1 … conv5_1 (the
/// deepest default style layer is relu5_1).
pub const REQUIRED_LAYERS: usize = 13;

/// The committed quantised weights, relative to the repository root.
pub const DEFAULT_WEIGHTS_FILE: &str = "weights/vgg19.q8.bin";

/// The sha256 of the committed weights file, built into the engine: the page refuses a file whose
/// digest differs (a swapped or tampered file passes the self-check, which only proves the file
/// matches digests stored inside itself). `stylize convert-weights` rebuilds the file byte for byte;
/// a test fails when the committed file and this constant part.
pub const COMMITTED_WEIGHTS_SHA256: &str = "3b25b253f245038fca6972a7201e1e2ddfb211768919388069ddc3399233c7b7";

/// The sha256 of a whole file, as hex.
pub fn file_sha256(bytes: &[u8]) -> String {
    hex(&sha256_bytes(bytes))
}

/// The sha256 of `bytes` (what the file's two digests hold).
pub fn sha256_bytes(bytes: &[u8]) -> [u8; 32] {
    sha256(&[bytes])
}

/// First 8 bytes of every weights file.
pub const MAGIC: [u8; 8] = *b"STYLWGTS";
/// The only format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

const PREAMBLE_LEN: usize = 32;
const ENTRY_LEN: usize = 72;
const NAME_LEN: usize = 32;
const INPUT_LEN: usize = 32;
const DIGEST_LEN: usize = 32;
/// Input convention + payload sha256 + header sha256.
const TRAILER_LEN: usize = INPUT_LEN + 2 * DIGEST_LEN;
/// 16 layers × (kernel, scale, bias): anything above is not a VGG19 file.
const MAX_TENSORS: usize = 3 * VGG19_CONVS.len();
/// All 16 layers in float32 take 80 MB; a larger payload is a corrupt length field.
const MAX_PAYLOAD_BYTES: u64 = 256 << 20;

const DTYPE_CODE_F32: u32 = 1;
const DTYPE_CODE_I8: u32 = 2;

const REBUILD_HINT: &str = "rebuild it with `stylize convert-weights --src ../shared/weights-src --out weights/vgg19.q8.bin` (see weights/README.md)";

/// How the kernels are stored in a weights file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsDtype {
    /// 8-bit symmetric integers per output channel (q in [-127, 127], w = q·scale).
    Q8,
    /// Plain float32: exact, for checks against the source weights.
    F32,
}

impl WeightsDtype {
    /// The name used on the command line: "q8" or "f32".
    pub fn name(self) -> &'static str {
        match self {
            WeightsDtype::Q8 => "q8",
            WeightsDtype::F32 => "f32",
        }
    }
}

impl fmt::Display for WeightsDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for WeightsDtype {
    type Err = WeightsError;
    fn from_str(s: &str) -> Result<Self, WeightsError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "q8" => Ok(WeightsDtype::Q8),
            "f32" => Ok(WeightsDtype::F32),
            _ => Err(WeightsError::new(
                WeightsErrorKind::InvalidArgument,
                format!("unknown weights dtype {s:?}: use q8 (8-bit, the committed file) or f32 (exact)"),
            )),
        }
    }
}

/// One 3×3 convolution of the network.
#[derive(Clone, PartialEq)]
pub struct ConvWeights {
    /// VGG name, e.g. "conv1_1".
    pub name: String,
    pub cin: usize,
    pub cout: usize,
    /// `[cout][ky][kx][cin]`, not padded, dequantised to f32 for Q8 files.
    pub kernel: Vec<f32>,
    /// `[cout]`.
    pub bias: Vec<f32>,
}

// Printing millions of floats in a failed assert helps nobody: show the shape instead.
impl fmt::Debug for ConvWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ConvWeights {{ name: {:?}, cin: {}, cout: {}, kernel: [{} f32], bias: [{} f32] }}",
            self.name,
            self.cin,
            self.cout,
            self.kernel.len(),
            self.bias.len()
        )
    }
}

/// How an image becomes the network input: `v[c] = scale·image[channel_order[c]] − mean[c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputConvention {
    /// "BGR" for the Caffe/Keras VGG weights.
    pub channel_order: String,
    /// 255 for the Caffe/Keras VGG weights (image in [0,1] → 0..255).
    pub scale: f32,
    /// Per-channel mean, in `channel_order`.
    pub mean: [f32; 3],
}

/// The VGG19 convolutions (a prefix of [`crate::model::CONVS`], at least up to conv5_1) and the input
/// convention they were trained with.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// In network order.
    pub layers: Vec<ConvWeights>,
    pub input: InputConvention,
    /// How the kernels were stored where they came from (F32 for a source directory).
    pub dtype: WeightsDtype,
}

/// What kind of problem a [`WeightsError`] reports (the message has the details).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsErrorKind {
    /// A file or directory could not be read or written.
    Io,
    /// The file does not start with [`MAGIC`].
    BadMagic,
    /// The file has a format version this build does not read.
    UnsupportedVersion,
    /// The file or a source tensor is shorter than its header or manifest says.
    Truncated,
    /// A structural problem: absurd counts, offsets out of range, bad names or codes, trailing bytes.
    Malformed,
    /// A sha256 does not match.
    Checksum,
    /// A layer's shape is not VGG19's, or layers do not chain.
    ShapeMismatch,
    /// A NaN or infinity in a kernel, bias, scale or the input convention.
    NonFinite,
    /// A required layer is absent or out of order.
    MissingLayer,
    /// The source directory's manifest.json is unreadable or inconsistent.
    Manifest,
    /// A bad argument to the converter (layer count, dtype name).
    InvalidArgument,
}

/// Why weights could not be loaded or converted; the message names the problem and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsError {
    kind: WeightsErrorKind,
    message: String,
}

impl WeightsError {
    fn new(kind: WeightsErrorKind, message: impl Into<String>) -> Self {
        WeightsError {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> WeightsErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn in_path(self, path: &Path) -> Self {
        WeightsError {
            kind: self.kind,
            message: format!("{}: {}", path.display(), self.message),
        }
    }
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WeightsError {}

fn err(kind: WeightsErrorKind, message: impl Into<String>) -> WeightsError {
    WeightsError::new(kind, message)
}

/// Bounds-checked little-endian reads; `None` means "past the end".
fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

fn read_f32(bytes: &[u8], at: usize) -> Option<f32> {
    read_u32(bytes, at).map(f32::from_bits)
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Lower-case hex, for messages, reports and the README.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn align4(n: u64) -> Option<u64> {
    n.checked_add(3).map(|v| v & !3)
}

fn f32s_from_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn first_non_finite(values: &[f32]) -> Option<(usize, f32)> {
    values.iter().copied().enumerate().find(|(_, v)| !v.is_finite())
}

/// Largest |w|; NaN wins so that a NaN weight cannot hide behind a finite scale.
fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, &v| {
        if v.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(v.abs())
        }
    })
}


impl Weights {
    /// The layer called `name` ("conv4_2"), if present.
    pub fn layer(&self, name: &str) -> Option<&ConvWeights> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Reads the float32 source directory as is (manifest.json + raw per-layer files,
    /// e.g. `shared/weights-src`): verifies every file's length and sha256 against the
    /// manifest, checks shapes against VGG19, and converts kernels from HWIO to
    /// `[cout][ky][kx][cin]`. Loads every layer the manifest lists (at least conv1_1..conv5_1).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_source_dir(dir: &Path) -> Result<Weights, WeightsError> {
        source::read_dir(dir).map_err(|e| e.in_path(dir))
    }

    /// Loads a weights file, or a source directory when `path` is a directory.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &Path) -> Result<Weights, WeightsError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            err(
                WeightsErrorKind::Io,
                format!(
                    "{}: cannot open weights ({e}); pass the committed {DEFAULT_WEIGHTS_FILE} (path relative to the repository root) \
                     or a float32 source directory such as ../shared/weights-src",
                    path.display()
                ),
            )
        })?;
        if meta.is_dir() {
            return Weights::from_source_dir(path);
        }
        let bytes = std::fs::read(path).map_err(|e| {
            err(
                WeightsErrorKind::Io,
                format!(
                    "{}: cannot read weights file ({e}); check the path and its permissions",
                    path.display()
                ),
            )
        })?;
        Weights::from_bytes(&bytes).map_err(|e| e.in_path(path))
    }
}

// Checks shared by the file reader and the source-directory reader.

/// Checks a layer's (cin, cout) against the previous layer and VGG19's table.
fn check_layer_shape(
    index: usize,
    name: &str,
    cin: usize,
    cout: usize,
    prev_cout: Option<usize>,
) -> Result<(), WeightsError> {
    let (vgg_name, vgg_cin, vgg_cout) = (VGG19_CONVS[index].conv, VGG19_CONVS[index].cin, VGG19_CONVS[index].cout);
    if let Some(prev) = prev_cout {
        if cin != prev {
            return Err(err(
                WeightsErrorKind::ShapeMismatch,
                format!(
                    "shape mismatch: layer {name} takes {cin} input channels but {} produces {prev}: the layers do not chain; {REBUILD_HINT}",
                    VGG19_CONVS[index - 1].conv
                ),
            ));
        }
    }
    if cin != vgg_cin || cout != vgg_cout {
        return Err(err(
            WeightsErrorKind::ShapeMismatch,
            format!(
                "shape mismatch: layer {name} is {cin}->{cout} channels but VGG19's {vgg_name} is {vgg_cin}->{vgg_cout}; \
                 these are not VGG19 weights; {REBUILD_HINT}"
            ),
        ));
    }
    Ok(())
}

fn missing_layer(index: usize, found: Option<&str>, have: usize) -> WeightsError {
    let want = VGG19_CONVS[index].conv;
    let after = if index == 0 {
        "first".to_string()
    } else {
        format!("after {}", VGG19_CONVS[index - 1].conv)
    };
    let message = match found {
        Some(f) => format!(
            "missing layer {want}: expected {want} {after} but found {f} (layers must be conv1_1..conv5_1 at least, in network order); {REBUILD_HINT}"
        ),
        None => format!(
            "missing layer {want}: only {have} layers present, but conv1_1..conv5_1 ({REQUIRED_LAYERS}) are required; {REBUILD_HINT}"
        ),
    };
    err(WeightsErrorKind::MissingLayer, message)
}

fn non_finite(layer: &str, tensor: &str, index: usize, value: f32) -> WeightsError {
    err(
        WeightsErrorKind::NonFinite,
        format!("layer {layer} {tensor} has a non-finite value ({value}, a NaN or infinity) at element {index}; {REBUILD_HINT}"),
    )
}

/// The layers read, checked for the required ones (conv1_1..conv5_1).
fn complete(layers: Vec<ConvWeights>, input: InputConvention, dtype: WeightsDtype) -> Result<Weights, WeightsError> {
    if layers.len() < REQUIRED_LAYERS {
        return Err(missing_layer(layers.len(), None, layers.len()));
    }
    Ok(Weights { layers, input, dtype })
}
