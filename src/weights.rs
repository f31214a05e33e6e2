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

/// Per-output-channel symmetric 8-bit quantisation of a `[cout][ky][kx][cin]` kernel.
/// Returns (q, scales): w ≈ q·scale, |w − q·scale| ≤ scale/2. An all-zero channel gets scale 0.
pub fn quantize_kernel(kernel: &[f32], cout: usize) -> (Vec<i8>, Vec<f32>) {
    let per = kernel.len().checked_div(cout).unwrap_or(0);
    let mut q = Vec::with_capacity(kernel.len());
    let mut scales = Vec::with_capacity(cout);
    for co in 0..cout {
        let channel = &kernel[co * per..(co + 1) * per];
        let scale = max_abs(channel) / 127.0;
        scales.push(scale);
        for &w in channel {
            // `as i8` saturates and maps NaN to 0; the NaN/Inf scale still reaches the file.
            let v = if scale > 0.0 && scale.is_finite() {
                (w / scale).round().clamp(-127.0, 127.0)
            } else {
                0.0
            };
            q.push(v as i8);
        }
    }
    // A kernel whose length is not a multiple of cout keeps its tail as zeros, so that the
    // loader reports the length mismatch instead of this function panicking.
    q.resize(kernel.len(), 0);
    (q, scales)
}

/// One row of the tensor table, checked against the payload.
struct Entry {
    name: String,
    dtype: u32,
    shape: Vec<usize>,
    /// Byte range in the payload.
    start: usize,
    end: usize,
}

/// Fixed-size fields of the preamble.
struct Preamble {
    tensor_count: usize,
    header_len: usize,
    payload_len: usize,
}

fn parse_preamble(bytes: &[u8]) -> Result<Preamble, WeightsError> {
    use WeightsErrorKind::*;
    if bytes.len() < MAGIC.len() {
        if bytes == &MAGIC[..bytes.len()] {
            return Err(err(
                Truncated,
                format!(
                    "weights file is truncated: only {} bytes, not even a header; {REBUILD_HINT}",
                    bytes.len()
                ),
            ));
        }
        return Err(bad_magic(bytes));
    }
    if bytes[..8] != MAGIC {
        return Err(bad_magic(bytes));
    }
    if bytes.len() < PREAMBLE_LEN {
        return Err(err(
            Truncated,
            format!(
                "weights file is truncated: {} bytes, shorter than the {PREAMBLE_LEN}-byte preamble; {REBUILD_HINT}",
                bytes.len()
            ),
        ));
    }
    let (Some(version), Some(count), Some(header_len), Some(reserved), Some(payload_len)) = (
        read_u32(bytes, 8),
        read_u32(bytes, 12),
        read_u32(bytes, 16),
        read_u32(bytes, 20),
        read_u64(bytes, 24),
    ) else {
        return Err(err(
            Truncated,
            format!("weights file is truncated inside its preamble; {REBUILD_HINT}"),
        ));
    };
    if version != FORMAT_VERSION {
        return Err(err(
            UnsupportedVersion,
            format!(
                "unsupported weights file version {version}: this build reads version {FORMAT_VERSION} only; \
                 use the weights file that ships with this version of stylize or {REBUILD_HINT}"
            ),
        ));
    }
    let count = count as usize;
    if count == 0 || count > MAX_TENSORS {
        return Err(err(
            Malformed,
            format!(
                "weights file is corrupt: absurd tensor count {count} (a VGG19 file has 1 to {MAX_TENSORS}); {REBUILD_HINT}"
            ),
        ));
    }
    let expected_header = PREAMBLE_LEN + count * ENTRY_LEN + TRAILER_LEN;
    if header_len as usize != expected_header {
        return Err(err(
            Malformed,
            format!(
                "weights file is corrupt: header length {header_len} does not match {count} tensors \
                 (expected {expected_header}); {REBUILD_HINT}"
            ),
        ));
    }
    if reserved != 0 {
        return Err(err(
            Malformed,
            format!("weights file is corrupt: reserved preamble field is {reserved}, not 0; {REBUILD_HINT}"),
        ));
    }
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(err(
            Malformed,
            format!(
                "weights file is corrupt: absurd payload length {payload_len} bytes (limit {MAX_PAYLOAD_BYTES}); {REBUILD_HINT}"
            ),
        ));
    }
    Ok(Preamble {
        tensor_count: count,
        header_len: expected_header,
        payload_len: payload_len as usize,
    })
}

fn bad_magic(bytes: &[u8]) -> WeightsError {
    let shown = hex(&bytes[..bytes.len().min(8)]);
    let json_hint = if bytes.first() == Some(&b'{') {
        " (it looks like JSON: pass the source directory itself, not its manifest.json)"
    } else {
        ""
    };
    err(
        WeightsErrorKind::BadMagic,
        format!(
            "not a stylize weights file: wrong magic number {shown:?} (expected {:?}){json_hint}; pass {DEFAULT_WEIGHTS_FILE}, \
             a file written by `stylize convert-weights`, or a float32 source directory",
            String::from_utf8_lossy(&MAGIC)
        ),
    )
}

fn parse_name(field: &[u8], index: usize) -> Result<String, WeightsError> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let (name, pad) = field.split_at(end);
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) || pad.iter().any(|&b| b != 0) {
        return Err(err(
            WeightsErrorKind::Malformed,
            format!(
                "weights file is corrupt: tensor {index} has an invalid name (bytes {}); {REBUILD_HINT}",
                hex(field)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

fn parse_entries(bytes: &[u8], pre: &Preamble) -> Result<Vec<Entry>, WeightsError> {
    use WeightsErrorKind::*;
    let payload = &bytes[pre.header_len..pre.header_len + pre.payload_len];
    let mut entries = Vec::with_capacity(pre.tensor_count);
    let mut expected_start = 0u64;
    for i in 0..pre.tensor_count {
        let at = PREAMBLE_LEN + i * ENTRY_LEN;
        let field = &bytes[at..at + ENTRY_LEN];
        let name = parse_name(&field[..NAME_LEN], i)?;
        let corrupt = |what: String| {
            err(
                Malformed,
                format!("weights file is corrupt: tensor {name}: {what}; {REBUILD_HINT}"),
            )
        };
        // The slice is ENTRY_LEN long, so these reads cannot fail; map to an error anyway.
        let rd32 = |o: usize| read_u32(field, o).ok_or_else(|| corrupt("entry cut short".into()));
        let dtype = rd32(32)?;
        let rank = rd32(36)? as usize;
        let dims = [rd32(40)?, rd32(44)?, rd32(48)?, rd32(52)?];
        let offset = read_u64(field, 56).ok_or_else(|| corrupt("entry cut short".into()))?;
        let len = read_u64(field, 64).ok_or_else(|| corrupt("entry cut short".into()))?;
        let elem = match dtype {
            DTYPE_CODE_F32 => 4u64,
            DTYPE_CODE_I8 => 1u64,
            other => return Err(corrupt(format!("unknown dtype code {other} (1 = f32, 2 = i8)"))),
        };
        if !(1..=4).contains(&rank) {
            return Err(corrupt(format!("absurd rank {rank} (1 to 4)")));
        }
        if dims[..rank].contains(&0) || dims[rank..].iter().any(|&d| d != 0) {
            return Err(corrupt(format!("invalid shape {:?} for rank {rank}", dims)));
        }
        let shape: Vec<usize> = dims[..rank].iter().map(|&d| d as usize).collect();
        let elems = dims[..rank].iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let want_len = elems.and_then(|n| n.checked_mul(elem));
        if want_len != Some(len) {
            return Err(corrupt(format!("byte length {len} does not match its shape {shape:?}")));
        }
        if offset != expected_start {
            return Err(corrupt(format!(
                "offset {offset} is out of place (tensors are packed in table order; expected {expected_start})"
            )));
        }
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= pre.payload_len as u64)
            .ok_or_else(|| {
                corrupt(format!(
                    "offsets out of range: bytes {offset}..{offset}+{len} lie beyond the {}-byte payload",
                    pre.payload_len
                ))
            })?;
        let next = align4(end).ok_or_else(|| corrupt("offset overflow".into()))?;
        let pad_end = next.min(pre.payload_len as u64) as usize;
        if payload[end as usize..pad_end].iter().any(|&b| b != 0) {
            return Err(corrupt("non-zero alignment padding after the tensor".into()));
        }
        entries.push(Entry {
            name,
            dtype,
            shape,
            start: offset as usize,
            end: end as usize,
        });
        expected_start = next;
    }
    let last_end = entries.last().map_or(0, |e| e.end);
    if last_end != pre.payload_len {
        return Err(err(
            Malformed,
            format!(
                "weights file is corrupt: the tensors end at byte {last_end} of a {}-byte payload; {REBUILD_HINT}",
                pre.payload_len
            ),
        ));
    }
    Ok(entries)
}

fn parse_input(field: &[u8]) -> Result<InputConvention, WeightsError> {
    use WeightsErrorKind::*;
    let order = match &field[..4] {
        b"BGR\0" => "BGR",
        b"RGB\0" => "RGB",
        other => {
            return Err(err(
                Malformed,
                format!(
                    "weights file is corrupt: input channel order bytes {} are neither BGR nor RGB; {REBUILD_HINT}",
                    hex(other)
                ),
            ))
        }
    };
    let f = |o: usize| read_f32(field, o).unwrap_or(f32::NAN);
    let scale = f(4);
    let mean = [f(8), f(12), f(16)];
    if !scale.is_finite() || mean.iter().any(|m| !m.is_finite()) {
        return Err(err(
            NonFinite,
            format!(
                "weights file has a NaN or infinite input convention (scale {scale}, mean {mean:?}); {REBUILD_HINT}"
            ),
        ));
    }
    if scale <= 0.0 {
        return Err(err(
            Malformed,
            format!("weights file is corrupt: input scale {scale} is not positive; {REBUILD_HINT}"),
        ));
    }
    if field[20..INPUT_LEN].iter().any(|&b| b != 0) {
        return Err(err(
            Malformed,
            format!("weights file is corrupt: reserved input-convention bytes are not zero; {REBUILD_HINT}"),
        ));
    }
    Ok(InputConvention {
        channel_order: order.to_string(),
        scale,
        mean,
    })
}

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

impl Weights {
    /// Parses a weights file (q8 or f32) and validates all of it: magic, version, counts,
    /// checksums, offsets, names, shapes against VGG19, and finiteness of every value.
    /// Never panics on any input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Weights, WeightsError> {
        use WeightsErrorKind::*;
        let pre = parse_preamble(bytes)?;
        let total = pre.header_len + pre.payload_len;
        if bytes.len() < total {
            return Err(err(
                Truncated,
                format!(
                    "weights file is truncated: {} bytes, but its header announces {total}; the copy or download was cut short; {REBUILD_HINT}",
                    bytes.len()
                ),
            ));
        }
        if bytes.len() > total {
            return Err(err(
                Malformed,
                format!(
                    "weights file is corrupt: {} trailing bytes after the {total} its header announces; {REBUILD_HINT}",
                    bytes.len() - total
                ),
            ));
        }
        // Both checksums before any offset is used: the header one guards the table.
        let header_digest_at = pre.header_len - DIGEST_LEN;
        let payload_digest_at = header_digest_at - DIGEST_LEN;
        let header_hash = sha256(&[&bytes[..header_digest_at]]);
        if header_hash[..] != bytes[header_digest_at..pre.header_len] {
            return Err(err(
                Checksum,
                format!(
                    "bad checksum: the weights file header's sha256 is {} but the file records {}; the header is corrupted; {REBUILD_HINT}",
                    hex(&header_hash),
                    hex(&bytes[header_digest_at..pre.header_len])
                ),
            ));
        }
        let payload = &bytes[pre.header_len..total];
        let payload_hash = sha256(&[payload]);
        if payload_hash[..] != bytes[payload_digest_at..header_digest_at] {
            return Err(err(
                Checksum,
                format!(
                    "bad checksum: the weights payload's sha256 is {} but the header records {}; the file is corrupted; {REBUILD_HINT}",
                    hex(&payload_hash),
                    hex(&bytes[payload_digest_at..header_digest_at])
                ),
            ));
        }
        let entries = parse_entries(bytes, &pre)?;
        let input_at = PREAMBLE_LEN + pre.tensor_count * ENTRY_LEN;
        let input = parse_input(&bytes[input_at..input_at + INPUT_LEN])?;

        let mut layers: Vec<ConvWeights> = Vec::new();
        let mut file_dtype: Option<WeightsDtype> = None;
        let mut next = 0usize;
        while next < entries.len() {
            let index = layers.len();
            let kernel_entry = &entries[next];
            let Some(layer_name) = kernel_entry.name.strip_suffix(".kernel") else {
                return Err(err(
                    Malformed,
                    format!(
                        "weights file is corrupt: expected a `<layer>.kernel` tensor at position {next}, found {:?}; {REBUILD_HINT}",
                        kernel_entry.name
                    ),
                ));
            };
            if index >= VGG19_CONVS.len() {
                return Err(err(
                    Malformed,
                    format!("weights file has a 17th layer {layer_name:?}; VGG19 has 16 convolutions; {REBUILD_HINT}"),
                ));
            }
            if layer_name != VGG19_CONVS[index].conv {
                if VGG19_CONVS.iter().any(|c| c.conv == layer_name) {
                    return Err(missing_layer(index, Some(layer_name), index));
                }
                return Err(err(
                    Malformed,
                    format!(
                        "weights file has an unknown layer {layer_name:?} where {} was expected; {REBUILD_HINT}",
                        VGG19_CONVS[index].conv
                    ),
                ));
            }
            let dtype = match kernel_entry.dtype {
                DTYPE_CODE_I8 => WeightsDtype::Q8,
                _ => WeightsDtype::F32,
            };
            if *file_dtype.get_or_insert(dtype) != dtype {
                return Err(err(
                    Malformed,
                    format!("weights file mixes kernel dtypes: {layer_name} is {dtype} but earlier layers are not; {REBUILD_HINT}"),
                ));
            }
            let [cout, kh, kw, cin] = kernel_entry.shape[..] else {
                return Err(err(
                    ShapeMismatch,
                    format!(
                        "shape mismatch: {layer_name}.kernel has shape {:?}, expected [cout, 3, 3, cin]; {REBUILD_HINT}",
                        kernel_entry.shape
                    ),
                ));
            };
            if kh != 3 || kw != 3 {
                return Err(err(
                    ShapeMismatch,
                    format!("shape mismatch: {layer_name}.kernel is {kh}x{kw}, VGG19 uses 3x3 kernels; {REBUILD_HINT}"),
                ));
            }
            check_layer_shape(index, layer_name, cin, cout, layers.last().map(|l| l.cout))?;

            // The tensors that follow the kernel, in order: [kernel_scale (q8 only)], bias.
            let mut take = |suffix: &str| -> Result<&[u8], WeightsError> {
                let want = format!("{layer_name}.{suffix}");
                let Some(e) = entries.get(next + 1).filter(|e| e.name == want) else {
                    return Err(err(
                        Malformed,
                        format!(
                            "weights file is corrupt: tensor {want} must follow {layer_name}.kernel{}; {REBUILD_HINT}",
                            if suffix == "bias" && dtype == WeightsDtype::Q8 {
                                ".kernel_scale"
                            } else {
                                ""
                            }
                        ),
                    ));
                };
                if e.dtype != DTYPE_CODE_F32 || e.shape != [cout] {
                    return Err(err(
                        ShapeMismatch,
                        format!(
                            "shape mismatch: {want} must be f32 of shape [{cout}], found shape {:?}; {REBUILD_HINT}",
                            e.shape
                        ),
                    ));
                }
                next += 1;
                Ok(&payload[e.start..e.end])
            };
            let scales = match dtype {
                WeightsDtype::Q8 => Some(f32s_from_le(take("kernel_scale")?)),
                WeightsDtype::F32 => None,
            };
            let bias = f32s_from_le(take("bias")?);
            next += 1;

            let raw = &payload[kernel_entry.start..kernel_entry.end];
            let kernel = match &scales {
                None => f32s_from_le(raw),
                Some(scales) => {
                    if let Some((i, v)) = first_non_finite(scales) {
                        return Err(non_finite(layer_name, "kernel_scale", i, v));
                    }
                    if let Some(i) = scales.iter().position(|&s| s < 0.0) {
                        return Err(err(
                            Malformed,
                            format!(
                                "weights file is corrupt: {layer_name}.kernel_scale[{i}] is negative; {REBUILD_HINT}"
                            ),
                        ));
                    }
                    if let Some(i) = raw.iter().position(|&b| b as i8 == i8::MIN) {
                        return Err(err(
                            Malformed,
                            format!(
                                "weights file is corrupt: {layer_name}.kernel element {i} is -128, outside the symmetric range [-127, 127]; {REBUILD_HINT}"
                            ),
                        ));
                    }
                    let per = 9 * cin;
                    raw.iter()
                        .enumerate()
                        .map(|(i, &q)| q as i8 as f32 * scales[i / per])
                        .collect()
                }
            };
            if let Some((i, v)) = first_non_finite(&kernel) {
                return Err(non_finite(layer_name, "kernel", i, v));
            }
            if let Some((i, v)) = first_non_finite(&bias) {
                return Err(non_finite(layer_name, "bias", i, v));
            }
            layers.push(ConvWeights {
                name: layer_name.to_string(),
                cin,
                cout,
                kernel,
                bias,
            });
        }
        if layers.len() < REQUIRED_LAYERS {
            return Err(missing_layer(layers.len(), None, layers.len()));
        }
        Ok(Weights {
            layers,
            input,
            dtype: file_dtype.unwrap_or(WeightsDtype::F32),
        })
    }

    /// Serialises to the weights file format, quantising kernels for [`WeightsDtype::Q8`].
    /// Values are written as they are (a NaN stays a NaN, or makes its channel's scale NaN),
    /// so [`Weights::from_bytes`] is the single place that judges validity. The output depends
    /// only on the weights: converting the same source twice gives identical bytes.
    pub fn to_bytes(&self, dtype: WeightsDtype) -> Vec<u8> {
        struct Out {
            name: String,
            dtype: u32,
            shape: Vec<u32>,
            data: Vec<u8>,
        }
        let dim = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut tensors = Vec::new();
        for l in &self.layers {
            let kernel_shape = vec![dim(l.cout), 3, 3, dim(l.cin)];
            match dtype {
                WeightsDtype::F32 => tensors.push(Out {
                    name: format!("{}.kernel", l.name),
                    dtype: DTYPE_CODE_F32,
                    shape: kernel_shape,
                    data: f32_bytes(&l.kernel),
                }),
                WeightsDtype::Q8 => {
                    let (q, scales) = quantize_kernel(&l.kernel, l.cout);
                    tensors.push(Out {
                        name: format!("{}.kernel", l.name),
                        dtype: DTYPE_CODE_I8,
                        shape: kernel_shape,
                        data: q.iter().map(|&v| v as u8).collect(),
                    });
                    tensors.push(Out {
                        name: format!("{}.kernel_scale", l.name),
                        dtype: DTYPE_CODE_F32,
                        shape: vec![dim(l.cout)],
                        data: f32_bytes(&scales),
                    });
                }
            }
            tensors.push(Out {
                name: format!("{}.bias", l.name),
                dtype: DTYPE_CODE_F32,
                shape: vec![dim(l.bias.len())],
                data: f32_bytes(&l.bias),
            });
        }

        let mut payload = Vec::new();
        let mut table = Vec::with_capacity(tensors.len() * ENTRY_LEN);
        for t in &tensors {
            while payload.len() % 4 != 0 {
                payload.push(0);
            }
            let mut name = [0u8; NAME_LEN];
            let n = t.name.len().min(NAME_LEN);
            name[..n].copy_from_slice(&t.name.as_bytes()[..n]);
            table.extend_from_slice(&name);
            table.extend_from_slice(&t.dtype.to_le_bytes());
            table.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for i in 0..4 {
                table.extend_from_slice(&t.shape.get(i).copied().unwrap_or(0).to_le_bytes());
            }
            table.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            table.extend_from_slice(&(t.data.len() as u64).to_le_bytes());
            payload.extend_from_slice(&t.data);
        }

        let header_len = PREAMBLE_LEN + table.len() + TRAILER_LEN;
        let mut out = Vec::with_capacity(header_len + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(tensors.len() as u32).to_le_bytes());
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&table);
        let mut order = [0u8; 4];
        let n = self.input.channel_order.len().min(3);
        order[..n].copy_from_slice(&self.input.channel_order.as_bytes()[..n]);
        out.extend_from_slice(&order);
        out.extend_from_slice(&self.input.scale.to_le_bytes());
        for m in self.input.mean {
            out.extend_from_slice(&m.to_le_bytes());
        }
        out.extend_from_slice(&[0u8; 12]);
        out.extend_from_slice(&sha256(&[&payload]));
        let header_hash = sha256(&[&out]);
        out.extend_from_slice(&header_hash);
        debug_assert_eq!(out.len(), header_len);
        out.extend_from_slice(&payload);
        out
    }

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

/// Per-layer quantisation error of the kernels, measured by the converter against the source.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerReport {
    pub name: String,
    pub cin: usize,
    pub cout: usize,
    /// max |w − w'| over the kernel.
    pub kernel_max_abs_error: f32,
    /// ‖w − w'‖₂ / ‖w‖₂ over the kernel (0 for f32 files).
    pub kernel_rel_rms_error: f64,
}

/// What [`convert`] wrote.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertReport {
    pub out: PathBuf,
    pub dtype: WeightsDtype,
    pub layers: Vec<LayerReport>,
    pub file_bytes: u64,
    /// sha256 of the whole written file, lower-case hex.
    pub sha256: String,
}

#[cfg(not(target_arch = "wasm32"))]
impl fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrote {} ({} bytes, {} kernels, {} layers)",
            self.out.display(),
            self.file_bytes,
            self.dtype,
            self.layers.len()
        )?;
        writeln!(f, "sha256 {}", self.sha256)?;
        for l in &self.layers {
            writeln!(
                f,
                "  {:8} {:>3} -> {:<3}  kernel max |err| {:.3e}  rel L2 err {:.3e}",
                l.name, l.cin, l.cout, l.kernel_max_abs_error, l.kernel_rel_rms_error
            )?;
        }
        Ok(())
    }
}

/// Converts the float32 source directory into a weights file holding conv1_1..conv5_1
/// (the committed layer set). See [`convert_layers`] for all 16.
#[cfg(not(target_arch = "wasm32"))]
pub fn convert(src: &Path, out: &Path, dtype: WeightsDtype) -> Result<ConvertReport, WeightsError> {
    convert_layers(src, out, dtype, REQUIRED_LAYERS)
}

/// Like [`convert`], keeping the first `layer_count` convolutions (13 = up to conv5_1, 16 = all).
/// The written bytes are re-parsed before they are saved, and the file is written atomically
/// (temporary file + rename) so a failed run never leaves a half-written weights file.
#[cfg(not(target_arch = "wasm32"))]
pub fn convert_layers(
    src: &Path,
    out: &Path,
    dtype: WeightsDtype,
    layer_count: usize,
) -> Result<ConvertReport, WeightsError> {
    if !(REQUIRED_LAYERS..=VGG19_CONVS.len()).contains(&layer_count) {
        return Err(err(
            WeightsErrorKind::InvalidArgument,
            format!(
                "cannot convert {layer_count} layers: choose {REQUIRED_LAYERS} (conv1_1..conv5_1, the default) to {} (all of VGG19)",
                VGG19_CONVS.len()
            ),
        ));
    }
    let mut source = Weights::from_source_dir(src)?;
    if source.layers.len() < layer_count {
        return Err(missing_layer(source.layers.len(), None, source.layers.len()).in_path(src));
    }
    source.layers.truncate(layer_count);
    let bytes = source.to_bytes(dtype);
    let written = Weights::from_bytes(&bytes)?;
    let layers = source
        .layers
        .iter()
        .zip(&written.layers)
        .map(|(a, b)| {
            let mut max_abs_error = 0.0f32;
            let (mut diff2, mut norm2) = (0.0f64, 0.0f64);
            for (&x, &y) in a.kernel.iter().zip(&b.kernel) {
                max_abs_error = max_abs_error.max((x - y).abs());
                diff2 += ((x - y) as f64).powi(2);
                norm2 += (x as f64).powi(2);
            }
            LayerReport {
                name: a.name.clone(),
                cin: a.cin,
                cout: a.cout,
                kernel_max_abs_error: max_abs_error,
                kernel_rel_rms_error: if norm2 > 0.0 { (diff2 / norm2).sqrt() } else { 0.0 },
            }
        })
        .collect();

    let io = |what: &str, path: &Path, e: std::io::Error| {
        err(
            WeightsErrorKind::Io,
            format!(
                "{}: cannot {what} ({e}); check that the folder exists and is writable",
                path.display()
            ),
        )
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io("create the output folder", parent, e))?;
    }
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &bytes).map_err(|e| io("write the weights file", &tmp, e))?;
    std::fs::rename(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("move the weights file into place", out, e)
    })?;
    Ok(ConvertReport {
        out: out.to_path_buf(),
        dtype,
        layers,
        file_bytes: bytes.len() as u64,
        sha256: hex(&sha256(&[&bytes])),
    })
}

/// Reading `shared/weights-src`: manifest.json plus raw little-endian float32 files.
#[cfg(not(target_arch = "wasm32"))]
mod source {
    use super::*;
    use serde_json::Value;

    fn manifest_err(message: String) -> WeightsError {
        err(
            WeightsErrorKind::Manifest,
            format!("{message}; the source directory must be an unmodified copy of shared/weights-src (see its PROVENANCE.md)"),
        )
    }

    fn as_usizes(v: Option<&Value>) -> Option<Vec<usize>> {
        v?.as_array()?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect()
    }

    /// Parses the numbers inside the first `[...]` of `text`, e.g. the mean in
    /// "x_bgr - [103.939, 116.779, 123.68] (per-channel mean in B,G,R order)".
    fn bracketed_numbers(text: &str) -> Option<Vec<f32>> {
        let open = text.find('[')?;
        let close = open + text[open..].find(']')?;
        text[open + 1..close]
            .split(',')
            .map(|s| s.trim().parse::<f32>().ok())
            .collect()
    }

    /// The input convention from manifest.json's `input` section. It states the channel
    /// order, the range ("0..255" → scale 255), and the mean either as `mean` (an array) or
    /// inside the `preprocessing` text, in the channel order.
    fn input_convention(manifest: &Value) -> Result<InputConvention, WeightsError> {
        let input = manifest
            .get("input")
            .ok_or_else(|| manifest_err("manifest.json has no \"input\" section".into()))?;
        let order = input.get("channel_order").and_then(Value::as_str).unwrap_or("");
        if order != "BGR" && order != "RGB" {
            return Err(manifest_err(format!(
                "manifest.json input.channel_order is {order:?}, expected \"BGR\" or \"RGB\""
            )));
        }
        let scale = match input.get("scale").and_then(Value::as_f64) {
            Some(s) => Some(s as f32),
            None => input
                .get("range")
                .and_then(Value::as_str)
                .and_then(|r| r.split_once(".."))
                .filter(|(lo, _)| lo.trim() == "0")
                .and_then(|(_, hi)| hi.trim().parse::<f32>().ok()),
        }
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| {
            manifest_err("manifest.json input has neither a positive \"scale\" nor a \"range\" like \"0..255\"".into())
        })?;
        let mean = match input.get("mean").and_then(Value::as_array) {
            Some(a) => a.iter().map(|v| v.as_f64().map(|m| m as f32)).collect::<Option<Vec<f32>>>(),
            None => input.get("preprocessing").and_then(Value::as_str).and_then(bracketed_numbers),
        }
        .filter(|m| m.len() == 3 && m.iter().all(|v| v.is_finite()))
        .ok_or_else(|| {
            manifest_err("manifest.json input gives no 3-channel mean (neither \"mean\" nor a [b, g, r] list in \"preprocessing\")".into())
        })?;
        Ok(InputConvention {
            channel_order: order.to_string(),
            scale,
            mean: [mean[0], mean[1], mean[2]],
        })
    }

    /// Reads one raw float32 tensor and checks its length and sha256 against the manifest.
    fn read_tensor(
        dir: &Path,
        layer: &str,
        role: &str,
        spec: &Value,
        want_elems: usize,
    ) -> Result<Vec<f32>, WeightsError> {
        let file = spec
            .get("file")
            .and_then(Value::as_str)
            .filter(|f| !f.contains('/') && !f.contains('\\') && !f.starts_with('.'))
            .ok_or_else(|| {
                manifest_err(format!(
                    "manifest.json: layer {layer} {role} has no plain \"file\" name"
                ))
            })?;
        let bytes_field = spec.get("bytes").and_then(Value::as_u64);
        let want_bytes = want_elems as u64 * 4;
        if bytes_field != Some(want_bytes) {
            return Err(manifest_err(format!(
                "manifest.json: layer {layer} {role} lists {bytes_field:?} bytes but its shape needs {want_bytes}"
            )));
        }
        let want_sha = spec
            .get("sha256")
            .and_then(Value::as_str)
            .filter(|s| s.len() == 64)
            .ok_or_else(|| manifest_err(format!("manifest.json: layer {layer} {role} has no sha256")))?;
        let path = dir.join(file);
        let data = std::fs::read(&path).map_err(|e| {
            err(
                WeightsErrorKind::Io,
                format!(
                    "cannot read {} ({e}); the source directory is incomplete",
                    path.display()
                ),
            )
        })?;
        if (data.len() as u64) < want_bytes {
            return Err(err(
                WeightsErrorKind::Truncated,
                format!(
                    "{file} is truncated: {} bytes, the manifest says {want_bytes}; copy the source directory again",
                    data.len()
                ),
            ));
        }
        if data.len() as u64 != want_bytes {
            return Err(manifest_err(format!(
                "{file} has {} bytes, the manifest says {want_bytes}",
                data.len()
            )));
        }
        let got_sha = hex(&sha256(&[&data]));
        if !got_sha.eq_ignore_ascii_case(want_sha) {
            return Err(err(
                WeightsErrorKind::Checksum,
                format!("bad checksum: {file} has sha256 {got_sha} but the manifest says {want_sha}; the file is corrupted, copy it again"),
            ));
        }
        let values = f32s_from_le(&data);
        if let Some((i, v)) = first_non_finite(&values) {
            return Err(non_finite(layer, role, i, v).in_path(&path));
        }
        Ok(values)
    }

    pub(super) fn read_dir(dir: &Path) -> Result<Weights, WeightsError> {
        let manifest_path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            err(
                WeightsErrorKind::Io,
                format!(
                    "cannot read {} ({e}); a weights source directory (like ../shared/weights-src) holds manifest.json and the raw .f32 files",
                    manifest_path.display()
                ),
            )
        })?;
        let manifest: Value =
            serde_json::from_str(&text).map_err(|e| manifest_err(format!("manifest.json is not valid JSON ({e})")))?;
        let input = input_convention(&manifest)?;
        let entries = manifest
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| manifest_err("manifest.json has no \"layers\" list".into()))?;
        if entries.len() > VGG19_CONVS.len() {
            return Err(manifest_err(format!(
                "manifest.json lists {} layers; VGG19 has 16 convolutions",
                entries.len()
            )));
        }
        let mut layers: Vec<ConvWeights> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let name = entry.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
            if name != VGG19_CONVS[index].conv {
                return Err(missing_layer(index, Some(name), index));
            }
            let (weight, bias) = match (entry.get("weight"), entry.get("bias")) {
                (Some(w), Some(b)) => (w, b),
                _ => {
                    return Err(manifest_err(format!(
                        "manifest.json: layer {name} lacks \"weight\" or \"bias\""
                    )))
                }
            };
            if let Some(layout) = weight.get("layout").and_then(Value::as_str) {
                if layout != "HWIO" {
                    return Err(manifest_err(format!(
                        "manifest.json: layer {name} has layout {layout:?}; this reader expects HWIO"
                    )));
                }
            }
            let shape = as_usizes(weight.get("shape")).unwrap_or_default();
            let [3, 3, cin, cout] = shape[..] else {
                return Err(err(
                    WeightsErrorKind::ShapeMismatch,
                    format!("shape mismatch: layer {name} kernel shape {shape:?} is not HWIO [3, 3, cin, cout]"),
                ));
            };
            check_layer_shape(index, name, cin, cout, layers.last().map(|l| l.cout))?;
            if as_usizes(bias.get("shape")) != Some(vec![cout]) {
                return Err(err(
                    WeightsErrorKind::ShapeMismatch,
                    format!(
                        "shape mismatch: layer {name} bias shape is {:?}, expected [{cout}]",
                        bias.get("shape")
                    ),
                ));
            }
            let hwio = read_tensor(dir, name, "kernel", weight, 9 * cin * cout)?;
            let bias = read_tensor(dir, name, "bias", bias, cout)?;
            // HWIO (ky,kx,ci,co) at ((ky*3+kx)*cin+ci)*cout+co  →  OHWI at ((co*3+ky)*3+kx)*cin+ci.
            let mut kernel = vec![0.0f32; hwio.len()];
            for tap in 0..9 {
                for ci in 0..cin {
                    let src = &hwio[(tap * cin + ci) * cout..][..cout];
                    for (co, &w) in src.iter().enumerate() {
                        kernel[(co * 9 + tap) * cin + ci] = w;
                    }
                }
            }
            layers.push(ConvWeights {
                name: name.to_string(),
                cin,
                cout,
                kernel,
                bias,
            });
        }
        if layers.len() < REQUIRED_LAYERS {
            return Err(missing_layer(layers.len(), None, layers.len()));
        }
        Ok(Weights {
            layers,
            input,
            dtype: WeightsDtype::F32,
        })
    }
}
