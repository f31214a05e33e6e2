//! The `stylize` binary: every bad input is one line `error: ...` with exit code 2, never a panic;
//! plus the file formats it writes (`--dump-grad` .npy, `--log-json` lines).

mod common;

use std::process::{Command, Output};

use common::{temp_dir, CHELSEA, STARRY};
use stylize::cli::{log_line, npy_bytes, LogScale};
use stylize::engine::StepLosses;

const NOT_AN_IMAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");

fn stylize(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stylize"))
        .args(args)
        .env("STYLIZE_CACHE_DIR", tuning_cache())
        .output()
        .expect("run stylize")
}

/// The conv tuning cache of this test process (not the user's).
fn tuning_cache() -> std::path::PathBuf {
    temp_dir("cli-tuning")
}

/// Whether a stderr line is the autotuner saying it times the conv kernels (once per GPU).
fn is_tuning_note(line: &str) -> bool {
    line.starts_with("tuning the conv kernels") || line.starts_with("tuned ")
}

/// Runs `args` and checks the failure: exit 2, stderr one line `error: ...` containing `needle`,
/// nothing that looks like a panic or a backtrace.
fn fails_with(args: &[&str], needle: &str) {
    let out = stylize(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty() && !is_tuning_note(l)).collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{args:?}: {stderr}");
    assert!(
        lines[0].contains(needle),
        "{args:?}: {needle:?} not in {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

/// A valid command line (up to the GPU) with `extra` appended; `--out` in the temp dir.
fn run_args(extra: &[&'static str]) -> Vec<String> {
    let out = temp_dir("cli").join("out.png");
    let mut args: Vec<String> = ["--content", CHELSEA, "--style", STARRY, "--out"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(out.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn fails_run(extra: &[&'static str], needle: &str) {
    let args = run_args(extra);
    fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), needle);
}

#[test]
fn bad_paths() {
    fails_with(
        &[
            "--content",
            "/no/such/cat.png",
            "--style",
            STARRY,
            "--out",
            "/tmp/x.png",
        ],
        "--content: /no/such/cat.png",
    );
    fails_with(
        &[
            "--content",
            CHELSEA,
            "--style",
            "/no/such/style.jpg",
            "--out",
            "/tmp/x.png",
        ],
        "--style: /no/such/style.jpg",
    );
    fails_with(
        &[
            "--content",
            CHELSEA,
            "--style",
            STARRY,
            "--out",
            "/no/such/dir/out.png",
        ],
        "--out: cannot write /no/such/dir/out.png",
    );
    let dir = temp_dir("cli");
    fails_with(
        &[
            "--content",
            CHELSEA,
            "--style",
            STARRY,
            "--out",
            dir.to_str().unwrap(),
        ],
        "is a directory",
    );
    fails_run(
        &["--init", "/no/such/init.png"],
        "--init: /no/such/init.png",
    );
    fails_run(&["--weights", "/no/such/weights.bin"], "--weights");
    fails_run(
        &["--log-json", "/no/such/dir/log.json"],
        "--log-json: cannot write",
    );
    fails_run(
        &["--dump-grad", "/no/such/dir/g.npy"],
        "--dump-grad: cannot write",
    );
}

#[test]
fn non_images() {
    fails_with(
        &[
            "--content",
            NOT_AN_IMAGE,
            "--style",
            STARRY,
            "--out",
            "/tmp/x.png",
        ],
        "not a PNG or JPEG image",
    );
    fails_with(
        &[
            "--content",
            CHELSEA,
            "--style",
            NOT_AN_IMAGE,
            "--out",
            "/tmp/x.png",
        ],
        "--style",
    );
    let broken = temp_dir("cli").join("broken.png");
    let png = std::fs::read(CHELSEA).unwrap();
    std::fs::write(&broken, &png[..png.len() / 2]).unwrap();
    fails_with(
        &[
            "--content",
            broken.to_str().unwrap(),
            "--style",
            STARRY,
            "--out",
            "/tmp/x.png",
        ],
        "broken",
    );
    let dir = temp_dir("cli");
    fails_with(
        &[
            "--content",
            dir.to_str().unwrap(),
            "--style",
            STARRY,
            "--out",
            "/tmp/x.png",
        ],
        "--content",
    );
}

#[test]
fn unknown_layers() {
    fails_run(
        &["--style-layers", "relu1_1,relu9_9"],
        "--style-layers: unknown layer 'relu9_9'",
    );
    fails_run(
        &["--content-layers", "conv4_2"],
        "valid layers: relu1_1, relu1_2",
    );
    fails_run(
        &["--content-layers", ""],
        "--content-layers: the layer list is empty",
    );
    fails_run(&["--style-layers", "relu1_1,relu1_1"], "twice");
    fails_run(&["--style-layers", "relu1_1:x"], "bad weight");
}

#[test]
fn bad_numbers() {
    fails_run(&["--steps", "abc"], "--steps: 'abc' is not a whole number");
    fails_run(&["--steps", "-3"], "--steps");
    fails_run(&["--size", "12.5"], "--size");
    fails_run(
        &["--size", "8"],
        "--size: '8' is out of range; expected 16 to 8192",
    );
    fails_run(&["--size", "99999999999999999999"], "--size");
    fails_run(&["--lr", "nan"], "--lr");
    fails_run(&["--lr", "0"], "--lr: must be a finite number > 0");
    fails_run(&["--lr", "-1"], "--lr");
    fails_run(&["--content-weight", "1e99"], "--content-weight");
    fails_run(&["--style-weight", "-5"], "--style-weight");
    fails_run(&["--tv-weight", "inf"], "--tv-weight");
    fails_run(&["--lbfgs-history", "0"], "--lbfgs-history");
    fails_run(&["--style-scale", "9"], "--style-scale");
    fails_run(&["--seed", "-1"], "--seed");
    fails_run(
        &["--style-blend", "0.7,0.3"],
        "--style-blend has 2 weights but 1 --style",
    );
    fails_run(&["--style-blend", "0,0"], "--style-blend");
}

#[test]
fn layers_missing_from_the_weights_file() {
    // The committed file holds conv1_1..conv5_1.
    fails_run(
        &["--style-layers", "relu1_1,relu5_4"],
        "style_layers: relu5_4 needs conv5_4, which the weights file does not contain",
    );
    fails_run(&["--content-layers", "relu5_2"], "content_layers: relu5_2 needs conv5_2");
}

#[test]
fn images_too_small_for_the_deepest_layer() {
    // relu5_1 sits after four poolings: 16 px per side at least.
    fails_run(
        &["--size", "24", "--style-scale", "0.5"],
        "a style image would be 12×8 px, but the deepest style layer needs at least 16 px",
    );
    fails_run(&["--size", "20"], "the result would be 20×13 px, but the deepest layer used needs at least 16 px");
    // Shallower style layers need less: relu4_1 needs 8 px, and starry night at 6 px is too small.
    fails_run(
        &["--size", "24", "--style-scale", "0.25", "--style-layers", "relu4_1"],
        "a style image would be 6×4 px, but the deepest style layer needs at least 8 px",
    );
}

#[test]
fn bad_choices_and_presets() {
    fails_run(
        &["--preset", "bogus"],
        "--preset: unknown preset 'bogus'; valid presets: default, seed, neural-style, fast",
    );
    fails_run(
        &["--optimizer", "sgd"],
        "--optimizer: unknown optimizer 'sgd'",
    );
    fails_run(&["--pooling", "min"], "--pooling");
    fails_run(&["--loss-form", "other"], "--loss-form");
    fails_run(&["--init", ""], "--init");
    fails_run(&["--colour", "red"], "--colour: expected one of keep-style, luma-swap, luminance, histogram, got 'red'");
    fails_run(&["--steps"], "--steps");
}

#[test]
fn missing_arguments() {
    fails_with(&["--content", CHELSEA, "--style", STARRY], "--out");
    fails_with(&["--content", CHELSEA, "--out", "/tmp/x.png"], "--style");
    fails_with(&["--style", STARRY, "--out", "/tmp/x.png"], "--content");
    // No arguments at all: the help, on stderr, with exit code 2.
    let out = stylize(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: stylize"));
}

#[test]
fn subcommand_errors() {
    fails_with(
        &[
            "convert-weights",
            "--src",
            "/no/such/dir",
            "--out",
            "/tmp/w.bin",
        ],
        "convert-weights",
    );
    fails_with(
        &[
            "convert-weights",
            "--src",
            "/tmp",
            "--out",
            "/tmp/w.bin",
            "--dtype",
            "q4",
        ],
        "q4",
    );
    fails_with(&["convert-weights", "--out", "/tmp/w.bin"], "--src");
    fails_with(
        &["bench", "--sizes", "64,big"],
        "'big' is not a whole number",
    );
    fails_with(&["bench", "--sizes", "8"], "out of range");
    fails_with(&["bench", "--steps", "x"], "--steps");
    // A subcommand does not mix with the run's options.
    fails_with(&["--content", CHELSEA, "bench"], "error");
}

#[test]
fn help_lists_every_option_of_issue_2() {
    let out = stylize(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--content",
        "--style",
        "--style-blend",
        "--out",
        "--size",
        "--style-scale",
        "--steps",
        "--optimizer",
        "--lr",
        "--lbfgs-history",
        "--content-weight",
        "--style-weight",
        "--tv-weight",
        "--content-layers",
        "--style-layers",
        "--pooling",
        "--init",
        "--seed",
        "--loss-form",
        "--preset",
        "--weights",
        "--log-json",
        "--dump-grad",
        "convert-weights",
        "bench",
    ] {
        assert!(help.contains(option), "{option} missing from --help");
    }
    let out = stylize(&["convert-weights", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--dtype"));
    let out = stylize(&["bench", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--sizes"));
    assert_eq!(stylize(&["--version"]).status.code(), Some(0));
}

#[test]
fn npy_files_have_a_valid_header() {
    let data: Vec<f32> = (0..2 * 5 * 3).map(|i| i as f32 * 0.5 - 3.0).collect();
    let bytes = npy_bytes(&[2, 5, 3], &data);
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!(
        (10 + header_len) % 64,
        0,
        "the data must start 64-byte aligned"
    );
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 5, 3), }"),
        "{header}"
    );
    assert!(header.ends_with('\n'));
    let payload = &bytes[10 + header_len..];
    assert_eq!(payload.len(), data.len() * 4);
    let back: Vec<f32> = payload
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(back, data);
    // One-dimensional shapes carry the trailing comma Python needs.
    let one = npy_bytes(&[4], &[0.0; 4]);
    let len = u16::from_le_bytes([one[8], one[9]]) as usize;
    assert!(std::str::from_utf8(&one[10..10 + len])
        .unwrap()
        .contains("'shape': (4,)"));
}

#[test]
fn log_lines_are_json_with_the_documented_keys() {
    let l = StepLosses {
        step: 3,
        content: 1.5,
        style: 1.54e6,
        tv: 0.0,
        total: 7.7e9,
    };
    let at = LogScale { scale: 2, width: 181, height: 120 };
    let line = log_line(&l, 12.34567, at);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["step"], 3);
    assert_eq!(v["content"].as_f64(), Some(1.5));
    assert_eq!(v["style"].as_f64(), Some(1.54e6));
    assert_eq!(v["tv"].as_f64(), Some(0.0));
    assert_eq!(v["total"].as_f64(), Some(7.7e9));
    assert_eq!(v["ms"].as_f64(), Some(12.346));
    assert_eq!((v["scale"].as_u64(), v["width"].as_u64(), v["height"].as_u64()), (Some(2), Some(181), Some(120)));
    assert!(line.starts_with("{\"step\":3,\"scale\":2,\"width\":181,\"height\":120,\"content\":"), "{line}");
    assert!(!line.contains('\n'));
    // Non-finite losses stay valid JSON.
    let bad = StepLosses {
        step: 1,
        content: f64::NAN,
        style: f64::INFINITY,
        tv: 0.0,
        total: f64::NAN,
    };
    let v: serde_json::Value = serde_json::from_str(&log_line(&bad, 1.0, at)).unwrap();
    assert!(v["total"].is_null());
}

#[test]
fn convert_weights_reproduces_the_committed_file() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/weights-src");
    let out = temp_dir("cli").join("vgg19.q8.bin");
    let run = stylize(&[
        "convert-weights",
        "--src",
        src,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).starts_with("wrote "));
    let committed =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/weights/vgg19.q8.bin")).unwrap();
    assert!(
        std::fs::read(&out).unwrap() == committed,
        "convert-weights output differs from weights/vgg19.q8.bin"
    );
    std::fs::remove_file(&out).unwrap();
}

/// A real run on the GPU (lavapipe in CI): tiny, but end to end through the engine.
#[test]
fn a_tiny_run_writes_the_image_the_log_and_the_gradient() {
    let dir = temp_dir("cli");
    let (out, log, grad) = (
        dir.join("tiny.png"),
        dir.join("tiny.jsonl"),
        dir.join("tiny.npy"),
    );
    let run = stylize(&[
        "--content",
        CHELSEA,
        "--style",
        STARRY,
        "--out",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--steps",
        "3",
        "--log-json",
        log.to_str().unwrap(),
        "--dump-grad",
        grad.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let img = stylize::imageio::load(&out).unwrap();
    assert_eq!((img.width, img.height), (32, 21), "chelsea is 451x300");

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (k, line) in lines.iter().enumerate() {
        assert_eq!(line["step"].as_u64(), Some(k as u64 + 1));
        for key in ["content", "style", "tv", "total", "ms"] {
            assert!(
                line[key]
                    .as_f64()
                    .is_some_and(|v| v.is_finite() && v >= 0.0),
                "{key} in {line}"
            );
        }
        let (c, s, t) = (
            line["content"].as_f64().unwrap(),
            line["style"].as_f64().unwrap(),
            line["tv"].as_f64().unwrap(),
        );
        let total = line["total"].as_f64().unwrap();
        assert!(
            (5.0 * c + 100.0 * s + 0.0 * t - total).abs() <= 1e-4 * total,
            "{line}"
        );
    }
    // Starting from the content: no content loss at first, and the objective goes down.
    assert_eq!(lines[0]["content"].as_f64(), Some(0.0));
    assert!(lines[2]["total"].as_f64().unwrap() < lines[0]["total"].as_f64().unwrap());

    let npy = std::fs::read(&grad).unwrap();
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert!(std::str::from_utf8(&npy[10..10 + header_len])
        .unwrap()
        .contains("'shape': (21, 32, 3)"));
    let g: Vec<f32> = npy[10 + header_len..]
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(g.len(), 21 * 32 * 3);
    assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|v| *v != 0.0));

    // --steps 0: one line for the initial image, and the output is the (resized) content.
    let run = stylize(&[
        "--content",
        CHELSEA,
        "--style",
        STARRY,
        "--out",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--steps",
        "0",
        "--log-json",
        log.to_str().unwrap(),
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let rel = (first["total"].as_f64().unwrap() / lines[0]["total"].as_f64().unwrap() - 1.0).abs();
    assert!(
        rel < 1e-5,
        "the initial objective differs: {first} vs {}",
        lines[0]
    );
    let content =
        stylize::imageio::resize_longest(&stylize::imageio::load(CHELSEA.as_ref()).unwrap(), 32);
    let written = stylize::imageio::load(&out).unwrap();
    assert!(content
        .rgb
        .iter()
        .zip(&written.rgb)
        .all(|(a, b)| (a - b).abs() <= 0.5 / 255.0 + 1e-6));
}

/// The other run options reach the engine: two blended styles at half scale, an init file,
/// L-BFGS, the seed loss form, average pooling, custom layers.
#[test]
fn a_tiny_run_with_blend_init_file_and_lbfgs() {
    let dir = temp_dir("cli");
    let (out, log) = (dir.join("blend.png"), dir.join("blend.jsonl"));
    let scream = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/images/style/the_scream.jpg"
    );
    for extra in [
        &["--optimizer", "lbfgs", "--init", STARRY, "--pooling", "avg"][..],
        &[
            "--preset",
            "seed",
            "--init",
            "noise",
            "--seed",
            "7",
            "--style-layers",
            "relu1_1:2,relu2_1",
        ][..],
    ] {
        let mut args = vec![
            "--content",
            CHELSEA,
            "--style",
            STARRY,
            "--style",
            scream,
            "--style-blend",
            "0.7,0.3",
            "--style-scale",
            "0.75",
            "--size",
            "48",
            "--steps",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--log-json",
            log.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let run = stylize(&args);
        assert_eq!(
            run.status.code(),
            Some(0),
            "{extra:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let lines = std::fs::read_to_string(&log).unwrap();
        assert_eq!(lines.lines().count(), 2, "{extra:?}");
        for line in lines.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(
                v["total"]
                    .as_f64()
                    .is_some_and(|t| t.is_finite() && t > 0.0),
                "{extra:?}: {line}"
            );
        }
        let img = stylize::imageio::load(&out).unwrap();
        assert_eq!((img.width, img.height), (48, 32));
    }
}

/// `stylize bench` runs, and its memory plan (made without allocating) equals what the run allocated.
#[test]
fn bench_reports_speed_and_a_memory_plan_equal_to_the_allocation() {
    let out = stylize(&["bench", "--sizes", "32", "--steps", "1", "--plan-sizes", "512"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.starts_with("| 32 |")).expect("a row for 32 px");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // | size | ms/step | GFLOP/step | GFLOP/s | allocated MiB | planned MiB |
    assert_eq!(cells[5], cells[6], "allocated and planned MiB differ: {row}");
    assert!(cells[2].parse::<f64>().unwrap() > 0.0, "{row}");
    assert!(text.contains("conv3x3_forward"), "per-kernel table missing:\n{text}");
    let plan = text.lines().find(|l| l.starts_with("| 512 |")).expect("a plan row for 512 px");
    let mib: f64 = plan.split('|').nth(2).unwrap().trim().parse().unwrap();
    assert!(mib <= 350.0, "the 512 px plan must fit 350 MiB: {plan}");
}

/// `stylize bench --tile`: one size untiled and in tiles, with the measured and the planned cost ratio.
#[test]
fn bench_measures_a_tiled_step_against_an_untiled_one() {
    let out = stylize(&["bench", "--sizes", "48", "--steps", "1", "--plan-sizes", "64", "--tile", "32"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.starts_with("| 48 | 32 |")).unwrap_or_else(|| panic!("no tiled row:\n{text}"));
    // | size | tile | tiles | untiled ms/step | tiled ms/step | measured ratio | FLOP ratio |
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[3], "4", "{row}");
    let number = |i: usize| cells[i].parse::<f64>().unwrap_or_else(|_| panic!("cell {i} of {row}"));
    let (untiled, tiled, measured, flops) = (number(4), number(5), number(6), number(7));
    assert!(untiled > 0.0 && tiled > 0.0, "{row}");
    assert!((measured - tiled / untiled).abs() <= 0.01 * measured + 0.01, "the ratio is not tiled/untiled: {row}");
    // Four tiles whose regions each cover the whole 48 px image: more work, planned and measured.
    assert!(flops > 2.0 && measured > 1.0, "{row}");
    fails_with(&["bench", "--sizes", "32", "--tile", "64"], "no --sizes above 64 px");
    fails_with(&["bench", "--convergence", "64", "--convergence-runs", "single-scale-adam,nope"], "no convergence run named \"nope\" (runs: single-scale-adam, single-scale-l-bfgs, coarse-to-fine-the-default)");
    fails_with(&["bench", "--sizes", "64", "--tile", "40"], "--tile: expected a multiple of 16, got 40");
    // the convergence benchmark's options and the speed benchmark's do not mix (nothing silently ignored)
    fails_with(&["bench", "--convergence", "64", "--precision", "f16", "--variants"], "--convergence: runs on its own and does not take --variants, --precision");
    fails_with(&["bench", "--convergence-runs", "single-scale-adam"], "--convergence-runs: needs --convergence SIZE");
}

/// A PNG whose header declares `width`×`height` (8-bit RGB) and holds no pixel data: what a
/// decompression bomb looks like before its (tiny, highly compressed) data.
pub fn declared_png(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

fn plan_json(args: &[&str]) -> serde_json::Value {
    // No Vulkan driver at all: `stylize plan` must not need a GPU.
    let out = Command::new(env!("CARGO_BIN_EXE_stylize"))
        .arg("plan")
        .args(args)
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .env("WGPU_BACKEND", "vulkan")
        .output()
        .expect("run stylize plan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"))
}

#[test]
fn plan_prints_the_plan_without_a_gpu() {
    let j = plan_json(&["--content", CHELSEA, "--style", STARRY, "--size", "256"]);
    assert_eq!((j["width"].as_u64(), j["height"].as_u64()), (Some(256), Some(170)));
    for key in ["style_sizes", "total_bytes", "largest_buffer_bytes", "flops_per_step", "memory_budget", "fits"] {
        assert!(!j[key].is_null(), "{key} missing: {j}");
    }
    assert_eq!(j["fits"], serde_json::json!(true));
    // Without images: square ones of the size.
    let j = plan_json(&["--size", "2048", "--optimizer", "lbfgs", "--lbfgs-history", "100"]);
    assert_eq!(j["width"].as_u64(), Some(2048));
    assert_eq!(j["fits"], serde_json::json!(false));
    assert!(j["total_bytes"].as_u64().unwrap() > 9 << 30);
    // (in tiles its buffers fit, so the refusal is the memory it would take)
    assert!(j["refusal"].as_str().unwrap().contains("more than the memory budget"), "{j}");
    let j = plan_json(&["--size", "512", "--memory-budget", "200M"]);
    assert_eq!(j["memory_budget"].as_u64(), Some(200 << 20));
    assert!(j["refusal"].as_str().unwrap().contains("memory budget of 200.0 MiB"), "{j}");
    fails_with(&["plan", "--memory-budget", "lots"], "--memory-budget");
    fails_with(&["plan", "--size", "20", "--content", CHELSEA], "the result would be 20×13 px, but the deepest layer used needs at least 16 px");
    fails_with(&["plan", "--size", "2048", "--style-scale", "8"], "16384 px");
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    let dir = temp_dir("cli-bomb");
    let bomb = dir.join("bomb.png");
    std::fs::write(&bomb, declared_png(16000, 16000)).unwrap();
    let bomb = bomb.display().to_string();
    fails_with(&["plan", "--content", &bomb], "16000x16000 = 256.0 megapixels, more than the 50 megapixels accepted");
    let out = dir.join("out.png").display().to_string();
    fails_with(&["--content", &bomb, "--style", STARRY, "--out", &out], "more than the 50 megapixels accepted");
    fails_with(&["--content", CHELSEA, "--style", &bomb, "--out", &out], "--style");
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_finite_image() {
    let out = temp_dir("cli-diverge").join("diverged.png");
    let _ = std::fs::remove_file(&out);
    let o = out.display().to_string();
    fails_with(
        &["--content", CHELSEA, "--style", STARRY, "--out", &o, "--size", "32", "--steps", "5",
          "--content-weight", "1e38", "--content-layers", "relu4_2:1e38"],
        // Step 1 starts at the content image (content loss 0); step 2's overflows.
        "the objective became inf at step 2",
    );
    // The start image (the content at 32 px), not a black one.
    let image = stylize::imageio::load(&out).expect("the last finite image was written");
    let content = stylize::imageio::resize_longest(&stylize::imageio::load(std::path::Path::new(CHELSEA)).unwrap(), 32);
    assert_eq!((image.width, image.height), (content.width, content.height));
    let diff: f32 = image.rgb.iter().zip(&content.rgb).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff <= 1.0 / 255.0, "the written image is not the start image (max diff {diff})");
}

#[test]
fn a_three_scale_run_goes_down_at_each_scale_and_logs_its_sizes() {
    let dir = temp_dir("cli-scales");
    let (out, log) = (dir.join("scales.png"), dir.join("scales.jsonl"));
    let (o, l) = (out.display().to_string(), log.display().to_string());
    let run = stylize(&["--content", CHELSEA, "--style", STARRY, "--out", &o, "--log-json", &l, "--size", "40", "--scales", "3",
        "--min-size", "28", "--scale-steps", "4", "--steps", "4"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log).unwrap().lines().map(|x| serde_json::from_str(x).unwrap()).collect();
    assert_eq!(lines.len(), 12, "4 steps at each of 3 scales");
    let sizes: Vec<(u64, u64, u64)> = lines.iter().map(|v| (v["scale"].as_u64().unwrap(), v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())).collect();
    // 28 px (starry_night's short side must reach 16 px too), then geometric: 33, 40.
    assert_eq!(sizes[0], (1, 28, 19));
    assert_eq!(sizes[4], (2, 33, 22));
    assert_eq!(sizes[11], (3, 40, 27));
    for scale in 1..=3u64 {
        let totals: Vec<f64> = lines.iter().filter(|v| v["scale"].as_u64() == Some(scale)).map(|v| v["total"].as_f64().unwrap()).collect();
        assert!(totals.last() < totals.first(), "scale {scale}: the objective did not go down: {totals:?}");
    }
    let image = stylize::imageio::load(&out).unwrap();
    assert_eq!((image.width, image.height), (40, 27));
    assert!(String::from_utf8_lossy(&run.stdout).contains("12 steps"), "{}", String::from_utf8_lossy(&run.stdout));

    // An init image starts the first scale; the later ones start from the scale before (this run
    // used to stop at the second scale, asking for the init image again).
    let init = dir.join("init-out.png");
    let i = init.display().to_string();
    let again = stylize(&["--content", CHELSEA, "--style", STARRY, "--out", &i, "--init", &o, "--size", "40", "--scales", "2",
        "--min-size", "28", "--scale-steps", "1", "--steps", "1"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(stylize::imageio::load(&init).map(|m| (m.width, m.height)).unwrap(), (40, 27));
}

#[test]
fn luma_swap_and_luminance_only_keep_the_content_chroma_within_8_bit_rounding() {
    use stylize::kernels::colour::yiq;
    let dir = temp_dir("cli-colour");
    let modes = ["keep-style", "luma-swap", "luminance", "histogram"];
    let outs: Vec<std::path::PathBuf> = modes.iter().map(|m| dir.join(format!("{m}.png"))).collect();
    for (out, colour) in outs.iter().zip(modes) {
        let o = out.display().to_string();
        let run = stylize(&["--content", CHELSEA, "--style", STARRY, "--out", &o, "--size", "32", "--steps", "3", "--colour", colour]);
        assert!(run.status.success(), "{colour}: {}", String::from_utf8_lossy(&run.stderr));
    }
    let images: Vec<stylize::imageio::Image> = outs.iter().map(|o| stylize::imageio::load(o).unwrap()).collect();
    let content = stylize::imageio::resize_longest(&stylize::imageio::load(std::path::Path::new(CHELSEA)).unwrap(), 32);
    let px = |img: &stylize::imageio::Image, p: usize| [img.rgb[3 * p], img.rgb[3 * p + 1], img.rgb[3 * p + 2]];
    // The two modes whose result takes the photo's chroma (keep-style and histogram do not).
    for (mode, image) in modes.iter().zip(&images).filter(|(m, _)| ["luma-swap", "luminance"].contains(m)) {
        let mut checked = 0;
        for p in 0..(image.width * image.height) as usize {
            let o = px(image, p);
            if o.iter().any(|&v| v <= 1.0 / 255.0 || v >= 254.0 / 255.0) {
                continue; // clamped into the gamut: its chroma cannot be kept exactly
            }
            let (yo, yc) = (yiq(o), yiq(px(&content, p)));
            // 8-bit rounding of each channel moves Y, I and Q by at most about 1/255.
            let tol = 1.5 / 255.0;
            assert!((yo[1] - yc[1]).abs() <= tol && (yo[2] - yc[2]).abs() <= tol, "{mode}, pixel {p}: chroma {yo:?} vs content {yc:?}");
            if *mode == "luma-swap" {
                let ys = yiq(px(&images[0], p));
                assert!((yo[0] - ys[0]).abs() <= tol, "pixel {p}: luminance {yo:?} vs the style-coloured result {ys:?}");
            }
            checked += 1;
        }
        assert!(checked > 100, "{mode}: only {checked} pixels checked");
    }
    // Each mode gives its own image (luminance-only optimises another objective than the luma swap's).
    for i in 0..modes.len() {
        for j in i + 1..modes.len() {
            assert_ne!(images[i].rgb, images[j].rgb, "{} and {} gave the same image", modes[i], modes[j]);
        }
    }
    fails_run(&["--colour", "sepia"], "expected one of keep-style, luma-swap, luminance, histogram");
}

#[test]
fn tile_runs_the_same_objective_in_tiles_and_plan_reports_them() {
    let dir = temp_dir("cli-tile");
    let mut totals = Vec::new();
    for tile in [None, Some("16")] {
        let (out, log) = (dir.join("t.png"), dir.join("t.jsonl"));
        let (o, l) = (out.display().to_string(), log.display().to_string());
        let mut args = vec!["--content", CHELSEA, "--style", STARRY, "--out", &o, "--log-json", &l, "--size", "40", "--steps", "3"];
        if let Some(t) = tile {
            args.extend(["--tile", t]);
        }
        let run = stylize(&args);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log).unwrap().lines().map(|x| serde_json::from_str(x).unwrap()).collect();
        totals.push(lines.iter().map(|v| v["total"].as_f64().unwrap()).collect::<Vec<_>>());
    }
    for (u, t) in totals[0].iter().zip(&totals[1]) {
        assert!((u - t).abs() / u < 1e-4, "tiled {t:e} vs untiled {u:e}: {totals:?}");
    }
    let untiled = plan_json(&["--size", "512"]);
    let tiled = plan_json(&["--size", "512", "--tile", "128"]);
    assert_eq!((untiled["tile"].is_null(), untiled["tiles"].as_u64(), untiled["halo"].is_null()), (true, Some(1), true));
    assert_eq!((tiled["tile"].as_u64(), tiled["tiles"].as_u64(), tiled["halo"].as_u64()), (Some(128), Some(16), Some(160)));
    assert!(tiled["run_bytes"].as_u64() < untiled["run_bytes"].as_u64(), "tiling did not shrink the run: {tiled}");
    assert!(tiled["flops_per_step"].as_u64() > untiled["flops_per_step"].as_u64(), "a tiled step cannot cost less");
    // Without --tile, a size that does not fit WebGPU's default per-buffer limit untiled is tiled by
    // itself, in a tile that makes it fit.
    let auto = plan_json(&["--size", "2048", "--scales", "off"]);
    assert_eq!((auto["fits"].as_bool(), auto["halo"].as_u64()), (Some(true), Some(160)), "{auto}");
    assert!(auto["tile"].as_u64().is_some_and(|t| t < 2048) && auto["largest_buffer_bytes"].as_u64() <= Some(128 << 20), "{auto}");
    fails_run(&["--tile", "40"], "--tile: expected a multiple of 16 from 16 to 8192, got 40");
}

/// On a terminal, a tiled run's bar moves per tile pass: run under `script` (a pseudo-terminal), the
/// bar's prefix names several tiles of each pass. 160×106 in 64 px tiles: 6 tiles, each pass long
/// enough on lavapipe (about a second) for the bar to draw it.
#[test]
fn the_progress_bar_moves_per_tile_on_a_terminal() {
    let dir = temp_dir("tile-bar");
    let out = dir.join("out.png");
    let typescript = dir.join("typescript");
    let command = format!(
        "{} --content {CHELSEA} --style {STARRY} --size 160 --scales off --tile 64 --steps 1 --out {}",
        env!("CARGO_BIN_EXE_stylize"),
        out.display()
    );
    let status = Command::new("script")
        .args(["-qec", &command, &typescript.display().to_string()])
        .env("STYLIZE_CACHE_DIR", tuning_cache())
        .output()
        .expect("script (util-linux) runs a command on a pseudo-terminal");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));
    let text = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).replace('\r', "\n");
    let mut seen: Vec<String> = Vec::new();
    // "step 1/1, tile 3 of 6, pass 1 of 2"
    for (at, _) in text.match_indices("step 1/1, tile ") {
        let rest = &text[at..];
        let Some(pass) = rest.find("pass ") else { continue };
        let shown = rest[..(pass + "pass 1 of 2".len()).min(rest.len())].to_string();
        if !seen.contains(&shown) {
            seen.push(shown);
        }
    }
    for pass in ["pass 1 of 2", "pass 2 of 2"] {
        let tiles = seen.iter().filter(|s| s.contains(pass) && s.contains(" of 6,")).count();
        assert!(tiles >= 2, "the bar showed {tiles} tiles of {pass}: {seen:?}");
    }
    assert!(out.exists());
}

/// `--conv-kernel`: a bad name is one clean error listing the names; each variant forced runs and
/// reports the same loss (every variant computes the same objective); `auto` tunes once and says so.
#[test]
fn conv_kernel_is_forced_or_tuned() {
    fails_run(&["--conv-kernel", "fastest"], "auto, register-4x8, workgroup-64x64");
    let loss = |extra: &[&'static str]| -> (f64, String) {
        let args = run_args(&[&["--size", "40", "--steps", "1"], extra].concat());
        let out = stylize(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string());
        assert!(out.status.success(), "{extra:?}: {stderr}");
        let value = stdout.split("loss ").nth(1).and_then(|r| r.split(',').next()).and_then(|v| v.parse().ok());
        (value.unwrap_or_else(|| panic!("no loss in {stdout}")), stderr)
    };
    let (register, _) = loss(&["--conv-kernel", "register-4x8"]);
    let (workgroup, _) = loss(&["--conv-kernel", "workgroup-64x64"]);
    assert!((register - workgroup).abs() <= 1e-4 * register, "register {register:e}, workgroup {workgroup:e}");
    // auto, with an empty cache: tunes and says so; the second run reads the cache silently
    let cache = temp_dir("cli-tuning-fresh");
    let run_auto = || {
        let args = run_args(&["--size", "40", "--steps", "1", "--conv-kernel", "auto"]);
        let out = Command::new(env!("CARGO_BIN_EXE_stylize")).args(&args).env("STYLIZE_CACHE_DIR", &cache).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let _ = std::fs::remove_file(cache.join(stylize::autotune::store::FILE_NAME));
    let first = run_auto();
    assert!(first.lines().any(|l| l.starts_with("tuning the conv kernels for this GPU")), "{first}");
    assert!(cache.join(stylize::autotune::store::FILE_NAME).exists());
    let second = run_auto();
    assert!(!second.lines().any(is_tuning_note), "{second}");
}

/// `--precision f16`: a bad name is one clean error; f16 stores the weights in half the memory and
/// keeps the loss within 1%, with each conv kernel forced.
#[test]
fn precision_f16_halves_the_weights_and_keeps_the_loss() {
    fails_run(&["--precision", "f64"], "unknown precision 'f64'; valid: f32, f16");
    // (loss, weights MiB) from "…, loss 1.2e8, 56.0 MiB of GPU memory (weights 49.4 MiB)"
    let run = |extra: &[&'static str]| -> (f64, f64) {
        let args = run_args(&[&["--size", "40", "--steps", "1", "--scales", "off"], extra].concat());
        let out = stylize(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        let after = |marker: &str, end: char| stdout.split(marker).nth(1).and_then(|r| r.split(end).next()).and_then(|v| v.trim().parse::<f64>().ok());
        (after("loss ", ',').unwrap_or_else(|| panic!("no loss in {stdout}")), after("(weights ", 'M').unwrap_or_else(|| panic!("no weights in {stdout}")))
    };
    let (f32_loss, f32_mib) = run(&["--precision", "f32"]);
    for kernel in ["register-4x8", "workgroup-64x64"] {
        let (f16_loss, f16_mib) = run(&["--precision", "f16", "--conv-kernel", kernel]);
        let change = (f16_loss - f32_loss).abs() / f32_loss;
        // (printed to 5 digits, the two losses may read the same: objective.rs checks that they differ)
        assert!(change < 0.01, "{kernel}: f16 loss {f16_loss:e}, f32 {f32_loss:e}");
        assert!((f16_mib - f32_mib / 2.0).abs() < 0.2, "{kernel}: f16 weights {f16_mib} MiB, f32 {f32_mib} MiB");
    }
}

/// `stylize bench --precision f16`: the plan counts the f16 weights (allocated = planned), and the
/// cost of f16 on the objective is printed per conv kernel, under 1% on each photo.
#[test]
fn bench_in_f16_plans_its_memory_and_prints_the_cost_on_the_objective() {
    let out = stylize(&["bench", "--sizes", "32", "--steps", "1", "--plan-sizes", "512", "--precision", "f16"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("weights in f16"), "{text}");
    let row = text.lines().find(|l| l.starts_with("| 32 |")).expect("a row for 32 px");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[5], cells[6], "allocated and planned MiB differ: {row}");
    let cost = text.split("Precision cost").nth(1).unwrap_or_else(|| panic!("no precision cost:\n{text}"));
    for kernel in ["register-4x8", "workgroup-64x64"] {
        assert!(cost.contains(&format!("`--conv-kernel {kernel}`")), "{kernel} missing:\n{cost}");
    }
    // | image | float32 | f16 | change |: two photos per kernel
    let changes: Vec<f64> = cost
        .lines()
        .filter(|l| l.starts_with("| chelsea |") || l.starts_with("| astronaut |"))
        .filter(|l| l.ends_with("% |"))
        .map(|l| l.split('|').nth(4).unwrap().trim().trim_end_matches('%').parse::<f64>().unwrap())
        .collect();
    assert_eq!(changes.len(), 4, "{cost}");
    assert!(changes.iter().all(|c| c.abs() < 1.0 && *c != 0.0), "{changes:?}");
}
