//! `stylize fuzz`: a seeded structured-mutation fuzzer of everything that reads untrusted input:
//! share links, the settings JSON of `configure`, the weights loader, and the planner (settings
//! and image sizes from anywhere). Each input must give a value or an error, never a panic.
//!
//! Inputs are built from the grammar of each format (its keys, values that are almost right,
//! percent escapes, huge numbers) and from byte-level mutations of valid inputs. The weights target
//! re-seals the file's checksums on half of its inputs, so that mutations reach the parser behind
//! them. `cargo test` runs 10^4 inputs per target; `stylize fuzz --iterations 1000000` the full run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::model::CONVS;
use crate::plan::Plan;
use crate::settings::{self, Overrides, Settings};
use crate::weights::{ConvWeights, InputConvention, Weights, WeightsDtype};

/// The fuzz targets, by name.
pub const TARGETS: [&str; 4] = ["share-link", "settings-json", "weights", "plan"];

/// splitmix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values that are almost right, wrong, huge, or strange, for any option.
const VALUES: [&str; 40] = [
    "0", "1", "-1", "16", "15", "4096", "4097", "8192", "2048", "1e38", "1e39", "-0", "nan", "NaN", "inf", "-inf",
    "0.5", "1.5", "99999999999999999999", "18446744073709551615", "18446744073709551616", "9007199254740993", "",
    " ", "adam", "lbfgs", "max", "avg", "noise", "content", "style", "seed", "canonical", "relu4_2",
    "relu1_1,relu5_1", "relu4_2:1e38", "relu9_9", "relu1_1:-1,relu1_1", "0.7,0.3", "%",
];

const ODD: [&str; 16] = [
    "%", "%2", "%zz", "%25", "%00", "%FF%FE", "&&", "==", "#", "<script>", "é", "\u{202e}", "\u{0}", "..%2f", "ø%C3", "💥",
];

fn random_text(rng: &mut Rng, max: usize) -> String {
    let len = rng.below(max + 1);
    let mut s = String::new();
    while s.len() < len {
        match rng.below(4) {
            0 => s.push_str(ODD[rng.below(ODD.len())]),
            1 => s.push_str(VALUES[rng.below(VALUES.len())]),
            2 => s.push(char::from_u32(rng.below(0x3000) as u32).unwrap_or('?')),
            _ => s.push((b' ' + rng.below(95) as u8) as char),
        }
    }
    s
}

fn value(rng: &mut Rng) -> String {
    if rng.chance(4) {
        random_text(rng, 24)
    } else {
        rng.pick(&VALUES).to_string()
    }
}

fn key(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => random_text(rng, 12),
        1 => "style".into(),
        2 => "content".into(),
        3 => "preset".into(),
        _ => rng.pick(&settings::KEYS).to_string(),
    }
}

fn share_link(rng: &mut Rng) -> String {
    if rng.chance(8) {
        return random_text(rng, 300);
    }
    let mut parts = Vec::new();
    for _ in 0..rng.below(12) {
        let k = key(rng);
        let v = if k == "style" || k == "content" {
            let url = format!("https://example.org/{}", random_text(rng, 20));
            if rng.chance(2) { settings::percent_encode(&url) } else { url }
        } else {
            value(rng)
        };
        let v = if rng.chance(3) { settings::percent_encode(&v) } else { v };
        parts.push(format!("{k}={v}"));
    }
    let mut s = parts.join(if rng.chance(10) { ";" } else { "&" });
    if rng.chance(2) {
        s.insert(0, '#');
    }
    if rng.chance(20) {
        s = s.repeat(1 + rng.below(40));
    }
    s
}

fn settings_json(rng: &mut Rng) -> String {
    if rng.chance(8) {
        return random_text(rng, 200);
    }
    let mut members = Vec::new();
    for _ in 0..rng.below(10) {
        let k = key(rng);
        let v = value(rng);
        let json_value = match rng.below(6) {
            0 => v.clone(),
            1 => serde_json::Value::String(v).to_string(),
            2 => "null".into(),
            3 => format!("[{}]", serde_json::Value::String(v)),
            4 => format!("{{\"x\":{}}}", serde_json::Value::String(v)),
            _ => rng.pick(&["true", "1e400", "-1e400", "1.0e38", "123456789012345678901234567890", "0.1"]).to_string(),
        };
        members.push(format!("{}:{json_value}", serde_json::Value::String(k)));
    }
    let mut s = format!("{{{}}}", members.join(","));
    if rng.chance(10) {
        let mut cut = rng.below(s.len() + 1);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// A small valid weights file (conv1_1 and conv1_2 only: the parser reads all of it, then refuses
/// the missing layers), and where its two digests sit.
struct WeightsSeed {
    bytes: Vec<u8>,
    header_len: usize,
}

/// The first `convs` convolutions of VGG19 with deterministic pseudo-random values in ±0.1 (the
/// fuzzer's seed file and the weights tests use them: no shared data needed).
pub fn synthetic_weights(convs: usize) -> Weights {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
    };
    let layers = CONVS[..convs.min(CONVS.len())]
        .iter()
        .map(|c| ConvWeights {
            name: c.conv.to_string(),
            cin: c.cin,
            cout: c.cout,
            kernel: (0..9 * c.cin * c.cout).map(|_| next()).collect(),
            bias: (0..c.cout).map(|_| next()).collect(),
        })
        .collect();
    Weights {
        layers,
        input: InputConvention { channel_order: "BGR".into(), scale: 255.0, mean: [103.939, 116.779, 123.68] },
        dtype: WeightsDtype::F32,
    }
}

fn weights_seed() -> WeightsSeed {
    let w = synthetic_weights(2);
    let bytes = w.to_bytes(WeightsDtype::Q8);
    // The header ends with the sha256 of everything before it: find where.
    let header_len = (64..bytes.len().min(1 << 16))
        .find(|&h| crate::weights::file_sha256(&bytes[..h - 32]) == crate::weights::hex(&bytes[h - 32..h]))
        .expect("the seed has a header digest");
    WeightsSeed { bytes, header_len }
}

fn mutate_weights(rng: &mut Rng, seed: &WeightsSeed) -> Vec<u8> {
    let mut b = seed.bytes.clone();
    let h = seed.header_len;
    for _ in 0..1 + rng.below(4) {
        // Every position is taken within the bytes as they are now (an earlier mutation may have cut them).
        let len = b.len();
        let header = h.min(len);
        match rng.below(8) {
            // Flip bits in the header (most structure lives there) or anywhere.
            0..=2 if header > 0 => {
                let at = rng.below(header);
                b[at] ^= 1 << rng.below(8);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                b[at] = rng.next() as u8;
            }
            // A 32-bit field set to an extreme.
            4 if header >= 4 => {
                let at = rng.below(header - 3) & !3;
                let v = *rng.pick(&[0u32, 1, 2, 0xFFFF_FFFF, 0x8000_0000, 64, 1 << 20, 17]);
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            5 => b.truncate(rng.below(len + 1)),
            6 => b.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
            // A float of the payload made NaN or infinite.
            7 if len > h + 4 => {
                let at = h + (rng.below(len - h - 4) & !3);
                let v = *rng.pick(&[f32::NAN, f32::INFINITY, -f32::INFINITY, 1e38]);
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
    // Re-seal the digests (when the header still has room for them) so the mutation reaches the
    // parser behind the checksums.
    if rng.chance(2) && b.len() >= h && h >= 64 {
        let payload = crate::weights::sha256_bytes(&b[h..]);
        b[h - 64..h - 32].copy_from_slice(&payload);
        let header = crate::weights::sha256_bytes(&b[..h - 32]);
        b[h - 32..h].copy_from_slice(&header);
    }
    b
}

/// (settings, content size, style sizes, style weights, convolutions in the weights).
type PlanInput = (Settings, (u32, u32), Vec<(u32, u32)>, Vec<f32>, usize);

fn plan_input(rng: &mut Rng) -> Option<PlanInput> {
    let mut o = Overrides::default();
    for _ in 0..rng.below(4) {
        let _ = o.set(&key(rng), &value(rng));
    }
    let settings = Settings::resolve(None, &o).ok()?;
    let side = |rng: &mut Rng| {
        if rng.chance(3) {
            *rng.pick(&[0u32, 1, 2, 7, 15, 16, 17, 31, 33, 2048, 4096, 60000, u32::MAX])
        } else {
            16 + rng.below(2000) as u32
        }
    };
    let content = (side(rng), side(rng));
    let styles: Vec<(u32, u32)> = (0..rng.below(4)).map(|_| (side(rng), side(rng))).collect();
    let weights = styles.iter().map(|_| *rng.pick(&[0.0f32, 1.0, 1.0, 1.0, 0.5, 2.0, -1.0, f32::NAN, f32::INFINITY, 1e38])).collect();
    let convs = if rng.chance(5) { rng.below(17) } else { *rng.pick(&[13, 16]) };
    Some((settings, content, styles, weights, convs))
}

/// The report of one target.
#[derive(Debug, Clone)]
pub struct FuzzReport {
    pub target: &'static str,
    pub inputs: u64,
    /// Inputs that got past the first check (a link with a setting applied, JSON accepted, a
    /// weights file past its checksums, a run planned): the fuzzer reaches the code behind it.
    pub deep: u64,
    /// The first input that panicked, and the panic's message.
    pub panic: Option<(String, String)>,
    pub seconds: f64,
}

impl std::fmt::Display for FuzzReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.panic {
            None => write!(
                f,
                "{}: {} inputs ({} past the first check), no panic ({:.1} s)",
                self.target, self.inputs, self.deep, self.seconds
            ),
            Some((input, message)) => write!(f, "{}: PANIC after {} inputs: {message}; input: {input}", self.target, self.inputs),
        }
    }
}

/// Runs `iterations` inputs of `target` from `seed`; stops at the first panic.
pub fn run(target: &str, iterations: u64, seed: u64) -> Result<FuzzReport, String> {
    let target: &'static str = TARGETS
        .iter()
        .find(|t| **t == target)
        .ok_or_else(|| format!("unknown fuzz target {target:?}; targets: {}", TARGETS.join(", ")))?;
    let mut rng = Rng(seed ^ 0x5EED);
    let weights = (target == "weights").then(weights_seed);
    let previous_hook = std::panic::take_hook();
    let message = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = message.clone();
    std::panic::set_hook(Box::new(move |info| {
        *sink.lock().unwrap_or_else(|p| p.into_inner()) = info.to_string();
    }));
    let started = Instant::now();
    let mut report = FuzzReport { target, inputs: 0, deep: 0, panic: None, seconds: 0.0 };
    for _ in 0..iterations {
        let (shown, outcome) = match target {
            "share-link" => {
                let input = share_link(&mut rng);
                let outcome = catch_unwind(|| settings::parse_share_fragment(&input).settings != Settings::default());
                (input, outcome)
            }
            "settings-json" => {
                let input = settings_json(&mut rng);
                let outcome = catch_unwind(|| {
                    let mut s = Settings::default();
                    let ok = s.apply_json(&input).is_ok();
                    if ok {
                        // What configure() returns must parse back.
                        let _ = Settings::default().apply_json(&s.to_json());
                    }
                    ok
                });
                (input, outcome)
            }
            "weights" => {
                let input = mutate_weights(&mut rng, weights.as_ref().expect("seeded"));
                let outcome = catch_unwind(|| {
                    use crate::weights::WeightsErrorKind::*;
                    Weights::from_bytes(&input).map_or_else(|e| !matches!(e.kind(), Checksum | BadMagic | Truncated), |_| true)
                });
                (format!("{} bytes", input.len()), outcome)
            }
            _ => {
                let Some((settings, content, styles, weights, convs)) = plan_input(&mut rng) else { continue };
                let shown = format!("{settings:?} content {content:?} styles {styles:?} weights {weights:?} convs {convs}");
                let outcome = catch_unwind(AssertUnwindSafe(|| match Plan::for_images(&settings, content, &styles, &weights, convs) {
                    Ok(plan) => {
                        let _ = plan.to_json(&crate::plan::Budget { max_buffer: 1 << 27, total: 1 << 31 });
                        true
                    }
                    Err(_) => false,
                }));
                (shown, outcome)
            }
        };
        report.inputs += 1;
        if let Ok(true) = outcome {
            report.deep += 1;
        }
        if outcome.is_err() {
            let text = message.lock().unwrap_or_else(|p| p.into_inner()).clone();
            report.panic = Some((shown.chars().take(2000).collect(), text));
            break;
        }
    }
    std::panic::set_hook(previous_hook);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
