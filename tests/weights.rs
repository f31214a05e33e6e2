//! Weights format, converter and loader: exactness against the float32 source, the q8
//! error bound, the committed file, and every refusal (with the words its message must use).
//!
//! The byte offsets used to craft broken files come from the format in weights/README.md,
//! so these tests also hold the README to the code.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use stylize::model::CONVS as VGG19_CONVS;
use stylize::weights::*;

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/weights-src");
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/weights/vgg19.q8.bin");
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/weights/README.md");

// --- helpers ---------------------------------------------------------------------------------

fn source() -> &'static Weights {
    static W: OnceLock<Weights> = OnceLock::new();
    W.get_or_init(|| Weights::from_source_dir(Path::new(SRC)).expect("shared/weights-src must load"))
}

/// The first `n` layers of the source weights.
fn source_prefix(n: usize) -> Weights {
    let s = source();
    Weights {
        layers: s.layers[..n].to_vec(),
        input: s.input.clone(),
        dtype: s.dtype,
    }
}

/// VGG19-shaped weights with deterministic pseudo-random values (no shared data needed).
fn synthetic(layers: usize) -> Weights {
    stylize::fuzz::synthetic_weights(layers)
}

fn synthetic_q8_file() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| synthetic(REQUIRED_LAYERS).to_bytes(WeightsDtype::Q8))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn header_len(b: &[u8]) -> usize {
    u32_at(b, 16) as usize
}

/// Byte offset of tensor table entry `i` (README: 32 + 72·i).
fn entry_at(i: usize) -> usize {
    32 + 72 * i
}

fn entry_index(b: &[u8], name: &str) -> usize {
    let n = u32_at(b, 12) as usize;
    (0..n)
        .find(|&i| {
            let f = &b[entry_at(i)..entry_at(i) + 32];
            &f[..name.len()] == name.as_bytes() && f[name.len()] == 0
        })
        .unwrap_or_else(|| panic!("no tensor {name}"))
}

/// Payload byte range of tensor `i`.
fn tensor_range(b: &[u8], i: usize) -> std::ops::Range<usize> {
    let at = entry_at(i);
    let off = u64::from_le_bytes(b[at + 56..at + 64].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(b[at + 64..at + 72].try_into().unwrap()) as usize;
    let h = header_len(b);
    h + off..h + off + len
}

/// Recomputes both checksums (README: payload sha256 at H−64, header sha256 at H−32), so a
/// crafted file reaches the checks behind them.
fn reseal(b: &mut [u8]) {
    let h = header_len(b);
    let payload: [u8; 32] = Sha256::digest(&b[h..]).into();
    b[h - 64..h - 32].copy_from_slice(&payload);
    let header: [u8; 32] = Sha256::digest(&b[..h - 32]).into();
    b[h - 32..h].copy_from_slice(&header);
}

/// Asserts a refusal of the given kind whose message contains every word (case-insensitive).
fn expect_err(result: Result<Weights, WeightsError>, kind: WeightsErrorKind, words: &[&str]) -> WeightsError {
    let e = match result {
        Ok(w) => panic!("expected {kind:?} error, got weights with {} layers", w.layers.len()),
        Err(e) => e,
    };
    assert_eq!(e.kind(), kind, "wrong kind for: {e}");
    let text = e.to_string().to_lowercase();
    for w in words {
        assert!(text.contains(&w.to_lowercase()), "message lacks {w:?}: {e}");
    }
    e
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stylize-weights-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

// --- the shape table -------------------------------------------------------------------------

#[test]
fn vgg19_table_chains_and_matches_the_network() {
    assert_eq!((VGG19_CONVS[0].conv, VGG19_CONVS[0].cin, VGG19_CONVS[0].cout), ("conv1_1", 3, 64));
    assert_eq!(VGG19_CONVS[REQUIRED_LAYERS - 1].conv, "conv5_1");
    assert_eq!((VGG19_CONVS[15].conv, VGG19_CONVS[15].cout), ("conv5_4", 512));
    for pair in VGG19_CONVS.windows(2) {
        assert_eq!(pair[0].cout, pair[1].cin, "{} -> {} do not chain", pair[0].conv, pair[1].conv);
    }
    let channels: Vec<usize> = VGG19_CONVS.iter().map(|c| c.cout).collect();
    assert_eq!(
        channels,
        [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
    );
}

// --- the source directory --------------------------------------------------------------------

#[test]
fn source_dir_loads_all_16_layers_with_the_manifest_input_convention() {
    let w = source();
    assert_eq!(w.layers.len(), 16);
    for (l, c) in w.layers.iter().zip(VGG19_CONVS.iter()) {
        let (name, cin, cout) = (c.conv, c.cin, c.cout);
        assert_eq!((l.name.as_str(), l.cin, l.cout), (name, cin, cout));
        assert_eq!(l.kernel.len(), 9 * cin * cout);
        assert_eq!(l.bias.len(), cout);
    }
    assert_eq!(
        w.input,
        InputConvention {
            channel_order: "BGR".into(),
            scale: 255.0,
            mean: [103.939, 116.779, 123.68]
        }
    );
    assert_eq!(w.dtype, WeightsDtype::F32);
    assert!(w.layer("conv4_2").is_some() && w.layer("conv6_1").is_none());
}

/// Independent of the loader's transpose: read the raw HWIO file here and index it by hand.
#[test]
fn source_kernels_are_transposed_from_hwio_to_cout_ky_kx_cin() {
    for name in ["conv1_1", "conv2_1"] {
        let l = source().layer(name).unwrap();
        let raw = std::fs::read(format!("{SRC}/{name}.weight.f32")).unwrap();
        let hwio: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let (cin, cout) = (l.cin, l.cout);
        for co in 0..cout {
            for ky in 0..3 {
                for kx in 0..3 {
                    for ci in 0..cin {
                        let want = hwio[((ky * 3 + kx) * cin + ci) * cout + co];
                        let got = l.kernel[((co * 3 + ky) * 3 + kx) * cin + ci];
                        assert_eq!(got.to_bits(), want.to_bits(), "{name} ({co},{ky},{kx},{ci})");
                    }
                }
            }
        }
        let bias = std::fs::read(format!("{SRC}/{name}.bias.f32")).unwrap();
        let bias: Vec<f32> = bias
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(l.bias, bias);
    }
}

// --- round trips -----------------------------------------------------------------------------

#[test]
fn f32_file_from_the_converter_equals_the_source_exactly() {
    let dir = temp_dir("f32");
    let out = dir.join("vgg19.f32.bin");
    let report = convert(Path::new(SRC), &out, WeightsDtype::F32).unwrap();
    assert_eq!(report.layers.len(), REQUIRED_LAYERS);
    assert!(report.layers.iter().all(|l| l.kernel_max_abs_error == 0.0));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(report.file_bytes, bytes.len() as u64);
    assert_eq!(report.sha256, sha256_hex(&bytes));
    let loaded = Weights::load(&out).unwrap();
    assert_eq!(loaded.dtype, WeightsDtype::F32);
    assert_eq!(loaded.input, source().input);
    assert_eq!(loaded.layers.len(), REQUIRED_LAYERS);
    for (a, b) in loaded.layers.iter().zip(&source().layers) {
        assert_eq!((&a.name, a.cin, a.cout), (&b.name, b.cin, b.cout));
        assert!(
            a.kernel.iter().zip(&b.kernel).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{} kernel differs",
            a.name
        );
        assert!(
            a.bias.iter().zip(&b.bias).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{} bias differs",
            a.name
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn all_16_layers_round_trip_through_to_bytes() {
    let w = source();
    assert_eq!(&Weights::from_bytes(&w.to_bytes(WeightsDtype::F32)).unwrap(), w);
}

#[test]
fn q8_dequantised_kernels_are_within_half_a_step_of_the_source() {
    let src = source_prefix(16);
    let q = Weights::from_bytes(&src.to_bytes(WeightsDtype::Q8)).unwrap();
    assert_eq!(q.dtype, WeightsDtype::Q8);
    assert_eq!(q.input, src.input);
    for (a, s) in q.layers.iter().zip(&src.layers) {
        assert_eq!(a.bias, s.bias, "{}: biases stay float32", a.name);
        let per = 9 * s.cin;
        for co in 0..s.cout {
            let w = &s.kernel[co * per..(co + 1) * per];
            let d = &a.kernel[co * per..(co + 1) * per];
            let step = w.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
            if step == 0.0 {
                assert!(
                    d.iter().all(|&v| v == 0.0),
                    "{} channel {co}: all-zero channel not kept",
                    a.name
                );
                continue;
            }
            let mut max_steps = 0.0f32;
            for (x, y) in w.iter().zip(d) {
                assert!(
                    (x - y).abs() <= step * (0.5 + 1e-4),
                    "{} channel {co}: {x} -> {y}, step {step}",
                    a.name
                );
                // Dequantised values sit on the grid q·step, q an integer in [-127, 127].
                let k = y / step;
                assert!(
                    (k - k.round()).abs() < 1e-3 && k.abs() <= 127.0 + 1e-3,
                    "{} channel {co}: {y} off grid",
                    a.name
                );
                max_steps = max_steps.max(k.abs());
            }
            assert!(
                (max_steps - 127.0).abs() < 1e-3,
                "{} channel {co} does not use the full range",
                a.name
            );
        }
    }
}

#[test]
fn all_zero_channel_quantises_to_zero_without_dividing_by_zero() {
    let mut w = synthetic(REQUIRED_LAYERS);
    let per = 9 * w.layers[1].cin;
    w.layers[1].kernel[5 * per..6 * per].fill(0.0);
    let (q, scales) = quantize_kernel(&w.layers[1].kernel, w.layers[1].cout);
    assert_eq!(scales[5], 0.0);
    assert!(q[5 * per..6 * per].iter().all(|&v| v == 0));
    let back = Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)).unwrap();
    assert!(back.layers[1].kernel[5 * per..6 * per].iter().all(|&v| v == 0.0));
}

#[test]
fn converter_accepts_13_to_16_layers_only() {
    let dir = temp_dir("count");
    let out = dir.join("all.q8.bin");
    let report = convert_layers(Path::new(SRC), &out, WeightsDtype::Q8, 16).unwrap();
    assert_eq!(report.layers.len(), 16);
    assert_eq!(Weights::load(&out).unwrap().layers.len(), 16);
    for bad in [12, 17] {
        let e = convert_layers(Path::new(SRC), &dir.join("bad.bin"), WeightsDtype::Q8, bad).unwrap_err();
        assert_eq!(e.kind(), WeightsErrorKind::InvalidArgument, "{e}");
        assert!(e.to_string().contains(&bad.to_string()), "{e}");
    }
    assert!(!dir.join("bad.bin").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dtype_names_parse() {
    assert_eq!("q8".parse::<WeightsDtype>().unwrap(), WeightsDtype::Q8);
    assert_eq!("F32".parse::<WeightsDtype>().unwrap(), WeightsDtype::F32);
    let e = "f16".parse::<WeightsDtype>().unwrap_err();
    assert!(e.to_string().contains("f16") && e.to_string().contains("q8"), "{e}");
}

// --- the committed file ----------------------------------------------------------------------

#[test]
fn committed_file_loads_verifies_and_is_what_the_converter_writes() {
    let bytes = std::fs::read(COMMITTED).expect("weights/vgg19.q8.bin is committed");
    assert!(
        (12_500_000..13_500_000).contains(&bytes.len()),
        "size {} is not about 13 MB",
        bytes.len()
    );
    let w = Weights::from_bytes(&bytes).unwrap();
    assert_eq!(w.dtype, WeightsDtype::Q8);
    let names: Vec<&str> = w.layers.iter().map(|l| l.name.as_str()).collect();
    let want: Vec<&str> = VGG19_CONVS[..REQUIRED_LAYERS].iter().map(|c| c.conv).collect();
    assert_eq!(names, want);
    assert_eq!(
        w.input,
        InputConvention {
            channel_order: "BGR".into(),
            scale: 255.0,
            mean: [103.939, 116.779, 123.68]
        }
    );
    // Byte for byte what `convert` writes today: the file is reproducible from the source.
    let dir = temp_dir("committed");
    let out = dir.join("vgg19.q8.bin");
    let report = convert(Path::new(SRC), &out, WeightsDtype::Q8).unwrap();
    assert!(
        std::fs::read(&out).unwrap() == bytes,
        "converter output differs from the committed file"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // The README states the hash and size of the committed file.
    let sha = sha256_hex(&bytes);
    assert_eq!(report.sha256, sha);
    let readme = std::fs::read_to_string(README).unwrap();
    assert!(
        readme.contains(&sha),
        "weights/README.md does not give the committed file's sha256 {sha}"
    );
    assert!(
        readme.contains(&bytes.len().to_string()),
        "weights/README.md does not give the size {}",
        bytes.len()
    );
}

#[test]
fn load_reads_files_and_directories_and_names_a_missing_path() {
    assert_eq!(Weights::load(Path::new(SRC)).unwrap().layers.len(), 16);
    assert_eq!(
        Weights::load(Path::new(COMMITTED)).unwrap().layers.len(),
        REQUIRED_LAYERS
    );
    let e = Weights::load(Path::new("/nonexistent/vgg.bin")).unwrap_err();
    assert_eq!(e.kind(), WeightsErrorKind::Io);
    assert!(e.to_string().contains("/nonexistent/vgg.bin"), "{e}");
}

// --- refusals of the file format -------------------------------------------------------------

#[test]
fn wrong_magic_is_refused() {
    let mut b = synthetic_q8_file().to_vec();
    b[0] = b'X';
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::BadMagic,
        &["magic", "not a stylize weights file"],
    );
    expect_err(
        Weights::from_bytes(b"{\"model\": 1}"),
        WeightsErrorKind::BadMagic,
        &["magic", "manifest.json"],
    );
    expect_err(Weights::from_bytes(b"PNG"), WeightsErrorKind::BadMagic, &["magic"]);
}

#[test]
fn unsupported_version_is_refused() {
    let mut b = synthetic_q8_file().to_vec();
    put_u32(&mut b, 8, 2);
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::UnsupportedVersion,
        &["version 2", "version 1"],
    );
}

#[test]
fn truncated_files_are_refused() {
    let b = synthetic_q8_file();
    for len in [0, 5, 8, 20, 31, 32, 500, header_len(b), b.len() - 1] {
        expect_err(
            Weights::from_bytes(&b[..len]),
            WeightsErrorKind::Truncated,
            &["truncated"],
        );
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut b = synthetic_q8_file().to_vec();
    b.push(0);
    expect_err(Weights::from_bytes(&b), WeightsErrorKind::Malformed, &["trailing"]);
}

#[test]
fn bad_checksums_are_refused() {
    let mut b = synthetic_q8_file().to_vec();
    let last = b.len() - 1;
    b[last] ^= 0x01;
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::Checksum,
        &["checksum", "payload"],
    );
    // A header change that looks harmless (the mean) is caught by the header checksum.
    let mut b = synthetic_q8_file().to_vec();
    let n = u32_at(&b, 12) as usize;
    b[32 + 72 * n + 8] ^= 0x01;
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::Checksum,
        &["checksum", "header"],
    );
}

#[test]
fn absurd_counts_and_lengths_are_refused() {
    let mut b = synthetic_q8_file().to_vec();
    put_u32(&mut b, 12, 1_000_000);
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::Malformed,
        &["absurd tensor count"],
    );
    let mut b = synthetic_q8_file().to_vec();
    put_u32(&mut b, 12, 0);
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::Malformed,
        &["absurd tensor count"],
    );
    let mut b = synthetic_q8_file().to_vec();
    put_u64(&mut b, 24, 1 << 40);
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::Malformed,
        &["absurd payload length"],
    );
    let mut b = synthetic_q8_file().to_vec();
    put_u32(&mut b, 16, 12345);
    expect_err(Weights::from_bytes(&b), WeightsErrorKind::Malformed, &["header length"]);
    // A rank outside 1..=4, behind a valid checksum.
    let mut b = synthetic_q8_file().to_vec();
    put_u32(&mut b, entry_at(0) + 36, 9);
    reseal(&mut b);
    expect_err(Weights::from_bytes(&b), WeightsErrorKind::Malformed, &["absurd rank"]);
}

#[test]
fn offsets_out_of_range_are_refused() {
    // The last bias claims a shape (and so a length) that runs past the payload.
    let mut b = synthetic_q8_file().to_vec();
    let last = u32_at(&b, 12) as usize - 1;
    put_u32(&mut b, entry_at(last) + 40, 1_000_000);
    put_u64(&mut b, entry_at(last) + 64, 4_000_000);
    reseal(&mut b);
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::Malformed,
        &["offsets out of range"],
    );
    // An offset that points elsewhere than where the table says tensors are packed.
    let mut b = synthetic_q8_file().to_vec();
    put_u64(&mut b, entry_at(3) + 56, u64::MAX - 2);
    reseal(&mut b);
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::Malformed,
        &["offset", "out of place"],
    );
    // A length that disagrees with the shape.
    let mut b = synthetic_q8_file().to_vec();
    put_u64(&mut b, entry_at(2) + 64, 12);
    reseal(&mut b);
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::Malformed,
        &["byte length", "shape"],
    );
}

#[test]
fn bad_names_dtypes_and_quantised_values_are_refused() {
    let mut b = synthetic_q8_file().to_vec();
    b[entry_at(0) + 31] = b'x'; // garbage after the NUL padding
    reseal(&mut b);
    expect_err(Weights::from_bytes(&b), WeightsErrorKind::Malformed, &["invalid name"]);
    let mut b = synthetic_q8_file().to_vec();
    put_u32(&mut b, entry_at(0) + 32, 7);
    reseal(&mut b);
    expect_err(Weights::from_bytes(&b), WeightsErrorKind::Malformed, &["dtype code 7"]);
    let mut b = synthetic_q8_file().to_vec();
    let r = tensor_range(&b, entry_index(&b, "conv2_1.kernel"));
    b[r.start + 10] = 0x80; // -128
    reseal(&mut b);
    expect_err(
        Weights::from_bytes(&b),
        WeightsErrorKind::Malformed,
        &["conv2_1", "-128"],
    );
    let mut b = synthetic_q8_file().to_vec();
    let input_at = 32 + 72 * u32_at(&b, 12) as usize;
    b[input_at] = b'X'; // channel order "XGR"
    reseal(&mut b);
    expect_err(Weights::from_bytes(&b), WeightsErrorKind::Malformed, &["channel order"]);
}

#[test]
fn shape_mismatches_are_refused() {
    // conv1_2 reads 32 channels but conv1_1 writes 64.
    let mut w = synthetic(REQUIRED_LAYERS);
    w.layers[1].cin = 32;
    w.layers[1].kernel.truncate(9 * 32 * 64);
    let e = expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)),
        WeightsErrorKind::ShapeMismatch,
        &["shape mismatch", "conv1_2", "chain"],
    );
    assert!(e.to_string().contains("32"), "{e}");
    // Chains, but is not VGG19: conv1_1 and conv1_2 with 32 channels in between.
    let mut w = synthetic(REQUIRED_LAYERS);
    w.layers[0].cout = 32;
    w.layers[0].kernel.truncate(9 * 3 * 32);
    w.layers[0].bias.truncate(32);
    w.layers[1].cin = 32;
    w.layers[1].kernel.truncate(9 * 32 * 64);
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::F32)),
        WeightsErrorKind::ShapeMismatch,
        &["shape mismatch", "conv1_1", "3->32", "3->64"],
    );
    // A bias of the wrong length.
    let mut w = synthetic(REQUIRED_LAYERS);
    w.layers[4].bias.pop();
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)),
        WeightsErrorKind::ShapeMismatch,
        &["shape mismatch", "conv3_1.bias"],
    );
    // A 1x1 kernel where VGG19 has 3x3.
    let mut b = synthetic_q8_file().to_vec();
    let i = entry_index(&b, "conv1_1.kernel");
    put_u32(&mut b, entry_at(i) + 44, 1);
    put_u32(&mut b, entry_at(i) + 48, 9);
    reseal(&mut b);
    expect_err(Weights::from_bytes(&b), WeightsErrorKind::ShapeMismatch, &["3x3"]);
}

#[test]
fn non_finite_values_are_refused() {
    let mut w = synthetic(REQUIRED_LAYERS);
    w.layers[3].kernel[100] = f32::NAN;
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::F32)),
        WeightsErrorKind::NonFinite,
        &["NaN", "conv2_2", "kernel", "element 100"],
    );
    // In q8 a NaN weight poisons its channel's scale, which the loader refuses.
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)),
        WeightsErrorKind::NonFinite,
        &["NaN", "conv2_2", "kernel_scale"],
    );
    let mut w = synthetic(REQUIRED_LAYERS);
    w.layers[7].bias[3] = f32::INFINITY;
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)),
        WeightsErrorKind::NonFinite,
        &["conv3_4", "bias", "inf"],
    );
    let mut w = synthetic(REQUIRED_LAYERS);
    w.input.mean[1] = f32::NAN;
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)),
        WeightsErrorKind::NonFinite,
        &["NaN", "input"],
    );
}

#[test]
fn missing_or_misordered_layers_are_refused() {
    let mut w = synthetic(REQUIRED_LAYERS);
    w.layers.remove(4); // conv3_1
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)),
        WeightsErrorKind::MissingLayer,
        &["missing layer conv3_1", "conv3_2"],
    );
    let w = synthetic(REQUIRED_LAYERS - 1);
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)),
        WeightsErrorKind::MissingLayer,
        &["missing layer conv5_1", "12 layers"],
    );
    let mut w = synthetic(REQUIRED_LAYERS);
    w.layers.swap(2, 3);
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)),
        WeightsErrorKind::MissingLayer,
        &["missing layer conv2_1", "found conv2_2"],
    );
    let mut w = synthetic(REQUIRED_LAYERS);
    w.layers[5].name = "conv9_9".into();
    expect_err(
        Weights::from_bytes(&w.to_bytes(WeightsDtype::Q8)),
        WeightsErrorKind::Malformed,
        &["unknown layer", "conv9_9", "conv3_2"],
    );
    // A missing bias tensor (the table skips straight to the next kernel).
    let w = synthetic(2);
    let mut b = w.to_bytes(WeightsDtype::F32);
    put_u32(&mut b, entry_at(1), u32::from_le_bytes(*b"xxxx")); // rename "conv1_1.bias"
    reseal(&mut b);
    expect_err(Weights::from_bytes(&b), WeightsErrorKind::Malformed, &["conv1_1.bias"]);
}

#[test]
fn errors_are_std_errors_with_the_message_as_display() {
    let e = Weights::from_bytes(b"").unwrap_err();
    let boxed: Box<dyn std::error::Error> = Box::new(e.clone());
    assert_eq!(boxed.to_string(), e.message());
    assert!(
        e.to_string().contains("convert-weights"),
        "the message says how to fix it: {e}"
    );
}

// --- fuzz-ish: nothing panics, everything broken is refused ----------------------------------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn truncations_and_byte_flips_of_the_committed_file_are_all_refused() {
    let b = std::fs::read(COMMITTED).unwrap();
    let h = header_len(&b);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    // Every length inside the header, then lengths spread over the payload.
    let lengths = (0..=h + 16).chain((0..300).map(|_| rng.below(b.len())));
    for len in lengths {
        assert!(
            Weights::from_bytes(&b[..len]).is_err(),
            "truncated to {len} bytes but accepted"
        );
    }
    let mut b2 = b.clone();
    for round in 0..400 {
        // Mostly the header (cheap to check, most structure); some flips in the payload.
        let at = if round % 8 == 0 {
            rng.below(b.len())
        } else {
            rng.below(h)
        };
        let flip = 1u8 << rng.below(8) | rng.next() as u8;
        b2[at] ^= flip;
        assert!(Weights::from_bytes(&b2).is_err(), "byte {at} ^= {flip:#04x} accepted");
        b2[at] ^= flip;
    }
}

/// With the checksums fixed up after each flip, the structural checks behind them must still
/// never panic (a flip may legitimately give a valid file, e.g. in the mean).
#[test]
fn resealed_random_corruptions_never_panic() {
    let w = synthetic(2);
    for dtype in [WeightsDtype::Q8, WeightsDtype::F32] {
        let b = w.to_bytes(dtype);
        let h = header_len(&b);
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let mut refused = 0;
        for _ in 0..2000 {
            let mut c = b.clone();
            for _ in 0..1 + rng.below(3) {
                let at = if rng.below(4) == 0 {
                    rng.below(c.len())
                } else {
                    rng.below(h - 64)
                };
                c[at] ^= 1 << rng.below(8);
            }
            if c[..8] == b[..8] && u32_at(&c, 16) as usize == h && c.len() >= h {
                reseal(&mut c);
            }
            if rng.below(5) == 0 {
                let cut = rng.below(c.len());
                c.truncate(cut);
            }
            refused += Weights::from_bytes(&c).is_err() as usize;
        }
        // Two layers are never enough, so every variant is refused one way or another.
        assert_eq!(refused, 2000);
    }
}

// --- refusals of the source directory --------------------------------------------------------

/// A copy of shared/weights-src made of symlinks, except the files a test rewrites.
fn source_copy(tag: &str) -> PathBuf {
    let d = temp_dir(tag);
    for entry in std::fs::read_dir(SRC).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::os::unix::fs::symlink(entry.path(), d.join(entry.file_name())).unwrap();
        }
    }
    d
}

fn replace(dir: &Path, file: &str, bytes: &[u8]) {
    let p = dir.join(file);
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, bytes).unwrap();
}

#[test]
fn broken_source_directories_are_refused() {
    let manifest = std::fs::read_to_string(format!("{SRC}/manifest.json")).unwrap();
    let bias = std::fs::read(format!("{SRC}/conv2_1.bias.f32")).unwrap();

    let d = source_copy("src-trunc");
    replace(&d, "conv2_1.bias.f32", &bias[..bias.len() - 4]);
    expect_err(
        Weights::from_source_dir(&d),
        WeightsErrorKind::Truncated,
        &["conv2_1.bias.f32", "truncated"],
    );

    let mut flipped = bias.clone();
    flipped[7] ^= 0x10;
    replace(&d, "conv2_1.bias.f32", &flipped);
    expect_err(
        Weights::from_source_dir(&d),
        WeightsErrorKind::Checksum,
        &["checksum", "conv2_1.bias.f32"],
    );
    replace(&d, "conv2_1.bias.f32", &bias);

    replace(&d, "manifest.json", b"{ not json");
    expect_err(
        Weights::from_source_dir(&d),
        WeightsErrorKind::Manifest,
        &["manifest.json", "JSON"],
    );

    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["layers"].as_array_mut().unwrap().remove(4);
    replace(&d, "manifest.json", m.to_string().as_bytes());
    expect_err(
        Weights::from_source_dir(&d),
        WeightsErrorKind::MissingLayer,
        &["missing layer conv3_1"],
    );

    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["layers"].as_array_mut().unwrap().truncate(12);
    replace(&d, "manifest.json", m.to_string().as_bytes());
    expect_err(
        Weights::from_source_dir(&d),
        WeightsErrorKind::MissingLayer,
        &["missing layer conv5_1"],
    );

    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["layers"][2]["weight"]["shape"] = serde_json::json!([3, 3, 64, 96]);
    replace(&d, "manifest.json", m.to_string().as_bytes());
    expect_err(
        Weights::from_source_dir(&d),
        WeightsErrorKind::ShapeMismatch,
        &["shape mismatch", "conv2_1"],
    );

    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["input"]["preprocessing"] = serde_json::json!("subtract the mean");
    replace(&d, "manifest.json", m.to_string().as_bytes());
    expect_err(Weights::from_source_dir(&d), WeightsErrorKind::Manifest, &["mean"]);

    // A NaN behind a matching sha256 (the manifest updated to the corrupted file).
    let mut nan_bias = bias.clone();
    nan_bias[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    replace(&d, "conv2_1.bias.f32", &nan_bias);
    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["layers"][2]["bias"]["sha256"] = serde_json::json!(sha256_hex(&nan_bias));
    replace(&d, "manifest.json", m.to_string().as_bytes());
    expect_err(
        Weights::from_source_dir(&d),
        WeightsErrorKind::NonFinite,
        &["NaN", "conv2_1", "bias"],
    );

    let e = Weights::from_source_dir(Path::new("/nonexistent-dir")).unwrap_err();
    assert_eq!(e.kind(), WeightsErrorKind::Io);
    assert!(e.to_string().contains("manifest.json"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_committed_file_is_the_one_the_engine_is_built_with() {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS_FILE)).unwrap();
    assert_eq!(
        file_sha256(&bytes),
        COMMITTED_WEIGHTS_SHA256,
        "weights/vgg19.q8.bin changed: update weights::COMMITTED_WEIGHTS_SHA256 (the page refuses any other file)"
    );
}
