//! The native `stylize` command line: a style-transfer run, `plan`, `convert-weights` and
//! `bench`. Every option maps onto [`Settings`] through the same parser as the JS `configure`
//! and share links ([`Overrides::set`]); order: defaults, then `--preset`, then the options given.
//!
//! Every failure (bad path, non-image, unknown layer, bad number, GPU error...) is one line
//! `error: ...` on stderr and exit code 2; `--help`/`--version` exit 0.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

mod run;
pub use run::{log_line, npy_bytes, run, LogScale};

use crate::engine::{Network, StepLosses, Stylizer};
use crate::imageio::{self, Image};
use crate::plan::{self, Budget};
use crate::settings::{self, Init, Overrides, Settings};
use crate::weights::{self, Weights, WeightsDtype};

/// Exit code of every error (usage, input, GPU).
pub const EXIT_ERROR: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "stylize",
    version,
    about = "Neural style transfer (Gatys et al.) on the GPU: repaints a content image in the style of one or more style images",
    after_help = "Examples:\n  stylize --content cat.png --style starry_night.jpg --out out.png\n  \
                  stylize --content cat.png --style a.jpg --style b.jpg --style-blend 0.7,0.3 --size 256 --out out.png\n  \
                  stylize --content cat.png --style a.jpg --preset seed --steps 500 --out out.png\n\n\
                  Presets: default, seed, neural-style, fast. Options given override the preset.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    arg_required_else_help = true,
    allow_negative_numbers = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Converts the float32 VGG19 source directory into the weights file the project commits.
    ConvertWeights {
        /// The source directory (manifest.json plus raw float32 per layer), e.g. ../shared/weights-src
        #[arg(long, value_name = "DIR")]
        src: PathBuf,
        /// The weights file to write, e.g. weights/vgg19.q8.bin
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// q8: 8-bit kernels per output channel (the committed file); f32: unquantised, for exactness checks
        #[arg(long, value_enum, default_value_t = DtypeArg::Q8)]
        dtype: DtypeArg,
    },
    /// Prints ms per iteration, GFLOP/s, every conv kernel variant per layer shape, per-kernel times
    /// and GPU memory at several sizes.
    Bench {
        /// Image sizes (longest side, px), comma-separated [default: 64,128, plus 256,512 on a hardware GPU]
        #[arg(long, value_name = "N,N,...", value_delimiter = ',', value_parser = parse_sizes)]
        sizes: Vec<u32>,
        /// Optimisation steps timed at each size
        #[arg(long, value_name = "N", default_value_t = 10)]
        steps: u32,
        /// Sizes for which only the memory plan (no allocation) is printed
        #[arg(long, value_name = "N,N,...", default_value = "512,1024,2048", value_delimiter = ',', value_parser = parse_sizes)]
        plan_sizes: Vec<u32>,
        /// Also run each size above N px in tiles of N px (a multiple of 16) and print the tiled step's
        /// cost against the untiled one's (both must fit this GPU)
        #[arg(long, value_name = "N")]
        tile: Option<u32>,
        /// Weights file (default: the committed weights/vgg19.q8.bin)
        #[arg(long, value_name = "PATH")]
        weights: Option<PathBuf>,
        /// Also measure the quantisation cost against this float32 source directory
        #[arg(long, value_name = "DIR")]
        quantisation_src: Option<PathBuf>,
        /// Write the figures into this README between its bench markers
        #[arg(long, value_name = "FILE")]
        readme: Option<PathBuf>,
        /// Instead: the convergence benchmark (single-scale Adam, L-BFGS, coarse to fine) at this size,
        /// e.g. 256; writes its images into the current directory
        #[arg(long, value_name = "SIZE")]
        convergence: Option<u32>,
        /// Adam steps of the convergence benchmark's single-scale run
        #[arg(long, value_name = "N", default_value_t = 500)]
        convergence_steps: u32,
        /// Only these runs of the convergence benchmark, by the start of their names, comma-separated
        /// (e.g. "single-scale-adam,coarse-to-fine"); default: every run
        #[arg(long, value_name = "NAMES", value_delimiter = ',')]
        convergence_runs: Vec<String>,
        /// Also time the whole step with each conv kernel variant forced, beside the autotuner's
        /// choice (the per-layer table of every variant is always printed)
        #[arg(long)]
        variants: bool,
        /// Store the conv weights in f32 (default) or f16 (needs shader-f16); with f16 the cost on
        /// the features and the objective against f32 is printed too (128 px, two photos)
        #[arg(long, value_name = "f32|f16", value_parser = crate::kernels::conv::Precision::parse)]
        precision: Option<crate::kernels::conv::Precision>,
    },
    /// Fuzzes the parsers of untrusted input (share links, settings JSON, weights files, the planner)
    /// with seeded structured mutations; fails on the first panic, printing its input.
    Fuzz {
        /// share-link, settings-json, weights, plan, or all
        #[arg(long, default_value = "all")]
        target: String,
        /// Inputs per target
        #[arg(long, value_name = "N", default_value_t = 1_000_000)]
        iterations: u64,
        /// Seed of the input generator (a failing input is reproduced by its seed and position)
        #[arg(long, value_name = "N", default_value_t = 0)]
        seed: u64,
    },
    /// Prints the plan of a run as one JSON object (sizes, every GPU buffer, total and largest
    /// buffer, FLOPs per step, whether it fits the memory budget) without touching the GPU.
    Plan(Box<PlanArgs>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    Q8,
    F32,
}

/// The images and outputs of a style-transfer run; its settings are [`SettingsArgs`].
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// The content image (PNG or JPEG)
    #[arg(long, value_name = "IMAGE", required = true)]
    pub content: Option<PathBuf>,
    /// A style image (PNG or JPEG); repeat for a blend of several
    #[arg(long, value_name = "IMAGE", required = true)]
    pub style: Vec<PathBuf>,
    /// The output PNG
    #[arg(long, value_name = "OUT.png", required = true)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub options: SettingsArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Writes one JSON object per step k=1..N: {"step":k,"content":Lc,"style":Ls,"tv":Ltv,"total":L,"ms":t},
    /// the objective at the start of step k and the step's wall time in ms
    #[arg(long, value_name = "FILE")]
    pub log_json: Option<PathBuf>,
    /// Writes dL/dx at the initial image as .npy float32 of shape (H, W, 3), RGB in [0,1] units
    #[arg(long, value_name = "FILE.npy")]
    pub dump_grad: Option<PathBuf>,
}

/// `stylize plan`: the images are optional (without them, square images of the size).
#[derive(Args, Debug, Default)]
pub struct PlanArgs {
    /// The content image (only its header is read); default: a square image of --size
    #[arg(long, value_name = "IMAGE")]
    pub content: Option<PathBuf>,
    /// A style image (only its header is read); repeat for several; default: one square image
    #[arg(long, value_name = "IMAGE")]
    pub style: Vec<PathBuf>,
    #[command(flatten)]
    pub options: SettingsArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Which weights, and how much GPU memory a run may take.
#[derive(Args, Debug, Default)]
pub struct DeviceArgs {
    /// The weights file, or the float32 source directory (default: the committed weights/vgg19.q8.bin)
    #[arg(long, value_name = "PATH")]
    pub weights: Option<PathBuf>,
    /// GPU memory a run may use, e.g. 2G, 512M, 1.5G or bytes (default 2G); larger runs are refused
    /// before anything is allocated
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub memory_budget: Option<u64>,
    /// Run each step in tiles of N px (a multiple of 16): exact (the same objective and gradient),
    /// slower, and with a feature stack the size of one tile and its halo instead of the image's.
    /// Scales of a coarse-to-fine run that fit in one tile run untiled (default: a scale runs tiled
    /// only when it does not fit the memory budget or the GPU's per-buffer limit untiled, in the
    /// largest of 1024, 768, 512, 384, 256, 192 or 128 px tiles that fits)
    #[arg(long, value_name = "N")]
    pub tile: Option<u32>,
    /// The conv kernel variant: auto (time each variant per layer shape on this GPU once, and keep
    /// the fastest; the timings are cached per GPU and driver in ~/.cache/stylize, or
    /// $STYLIZE_CACHE_DIR), or always one of: register-4x8 (registers only; fastest on CPU-backed
    /// Vulkan), workgroup-64x64 (workgroup-memory tiles; for real GPUs). Every variant gives the same
    /// result; forcing one is for tests and bug reports
    #[arg(long, value_name = "auto|NAME", value_parser = parse_conv_kernel)]
    pub conv_kernel: Option<crate::autotune::ConvKernelChoice>,
    /// How the conv kernels store the weights: f32 (default), or f16 where the GPU has shader-f16
    /// (half the weights' memory; the workgroup kernel also stages its input tile in f16; products
    /// are summed in f32; the objective moves by about 0.02%, see the README)
    #[arg(long, value_name = "f32|f16", value_parser = crate::kernels::conv::Precision::parse)]
    pub precision: Option<crate::kernels::conv::Precision>,
}

impl DeviceArgs {
    /// The plans of a schedule with the weights in `--precision`.
    fn in_precision(&self, plans: Vec<plan::Plan>) -> Vec<plan::Plan> {
        plans.into_iter().map(|p| p.weights_in(self.precision.unwrap_or_default())).collect()
    }
}

fn parse_conv_kernel(text: &str) -> Result<crate::autotune::ConvKernelChoice, String> {
    crate::autotune::ConvKernelChoice::parse(text)
}

/// The settings of a run, taken as text and parsed by [`Overrides::set`], so that the CLI,
/// `configure(json)` and share links accept exactly the same values.
#[derive(Args, Debug, Default)]
pub struct SettingsArgs {
    /// Blend weights of the style images, one per --style, e.g. 0.7,0.3 (normalised; default equal)
    #[arg(long, value_name = "W,W,...")]
    pub style_blend: Option<String>,
    /// Longest side of the output in px (16-8192; default 512); an image whose longest side is
    /// already N is used pixel for pixel
    #[arg(long, value_name = "N")]
    pub size: Option<String>,
    /// Each style image's longest side = F x size (0.05-8; default 1)
    #[arg(long, value_name = "F")]
    pub style_scale: Option<String>,
    /// Optimisation steps at the output's size, the last scale (0-100000; default 150)
    #[arg(long, value_name = "N")]
    pub steps: Option<String>,
    /// adam or lbfgs (default adam); changing it without --lr uses its default lr (adam 0.02, lbfgs 1)
    #[arg(long, value_name = "adam|lbfgs")]
    pub optimizer: Option<String>,
    /// Learning rate (> 0): Adam's step in [0,1] pixel units (ImageNet-normalised units with
    /// --loss-form seed); L-BFGS's step scale
    #[arg(long, value_name = "F")]
    pub lr: Option<String>,
    /// L-BFGS history length (1-100; default 5)
    #[arg(long, value_name = "M")]
    pub lbfgs_history: Option<String>,
    /// Content weight alpha (>= 0; default 5)
    #[arg(long, value_name = "F")]
    pub content_weight: Option<String>,
    /// Style weight beta (>= 0; default 100)
    #[arg(long, value_name = "F")]
    pub style_weight: Option<String>,
    /// Total-variation weight gamma (>= 0; default 0)
    #[arg(long, value_name = "F")]
    pub tv_weight: Option<String>,
    /// Content layers with optional weights (default relu4_2)
    #[arg(long, value_name = "relu4_2[:w],...")]
    pub content_layers: Option<String>,
    /// Style layers with optional weights (default relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)
    #[arg(long, value_name = "relu1_1[:w],...")]
    pub style_layers: Option<String>,
    /// max or avg (default max)
    #[arg(long, value_name = "max|avg")]
    pub pooling: Option<String>,
    /// Start from the content, seeded noise around mid-grey, the (first) style, or an image file (default content;
    /// write ./noise for a file named noise)
    #[arg(long, value_name = "content|noise|style|PATH")]
    pub init: Option<String>,
    /// Seed of the noise init (default 0)
    #[arg(long, value_name = "N")]
    pub seed: Option<String>,
    /// canonical or seed (the tutorial's formulation; default canonical)
    #[arg(long, value_name = "canonical|seed")]
    pub loss_form: Option<String>,
    /// Coarse to fine: off (one scale), auto (scales √2 apart from --min-size up to --size), or a number
    /// of scales (1-12); each scale starts from the previous one's image, upsampled bicubically (default auto)
    #[arg(long, value_name = "off|auto|N")]
    pub scales: Option<String>,
    /// Longest side of the first scale (0: the smallest that reaches the deepest layer; default 128);
    /// a --size not above it runs one scale
    #[arg(long, value_name = "N")]
    pub min_size: Option<String>,
    /// Steps at each scale before the last, which runs --steps (default 100)
    #[arg(long, value_name = "N")]
    pub scale_steps: Option<String>,
    /// The result's colours (YIQ): keep-style (the painting's, as optimised); luma-swap (the result's
    /// luminance with the photo's chroma, applied at the end); luminance (luminance-only transfer: the
    /// image is optimised as grey, the painting's luminance matched to the photo's, and the photo's
    /// chroma is put back at the end); histogram (the painting's colours matched to the photo's mean
    /// and covariance before the transfer) (default keep-style)
    #[arg(long, value_name = "keep-style|luma-swap|luminance|histogram")]
    pub colour: Option<String>,
    /// A named set of settings: default, seed, neural-style, fast; other options override it
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
}

impl SettingsArgs {
    /// The options given on the command line, parsed and range-checked.
    pub fn overrides(&self) -> Result<Overrides, CliError> {
        let mut o = Overrides::default();
        let given: [(&str, &Option<String>); 20] = [
            ("size", &self.size),
            ("steps", &self.steps),
            ("optimizer", &self.optimizer),
            ("lr", &self.lr),
            ("lbfgs_history", &self.lbfgs_history),
            ("content_weight", &self.content_weight),
            ("style_weight", &self.style_weight),
            ("tv_weight", &self.tv_weight),
            ("content_layers", &self.content_layers),
            ("style_layers", &self.style_layers),
            ("pooling", &self.pooling),
            ("init", &self.init),
            ("seed", &self.seed),
            ("loss_form", &self.loss_form),
            ("style_scale", &self.style_scale),
            ("style_blend", &self.style_blend),
            ("scales", &self.scales),
            ("min_size", &self.min_size),
            ("scale_steps", &self.scale_steps),
            ("colour", &self.colour),
        ];
        for (key, value) in given {
            if let Some(v) = value {
                o.set(key, v).map_err(|e| CliError(e.cli_message()))?;
            }
        }
        Ok(o)
    }

    /// The settings of this run: preset (or defaults), then the options given; `styles` is the
    /// number of --style images.
    pub fn settings(&self, styles: usize) -> Result<Settings, CliError> {
        let settings = Settings::resolve(self.preset.as_deref(), &self.overrides()?)
            .map_err(|e| CliError(e.cli_message()))?;
        if !settings.style_blend.is_empty() && settings.style_blend.len() != styles {
            return Err(CliError(format!(
                "--style-blend has {} weights but {styles} --style images were given",
                settings.style_blend.len(),
            )));
        }
        if styles > settings::MAX_STYLES {
            return Err(CliError(format!(
                "at most {} --style images are supported",
                settings::MAX_STYLES
            )));
        }
        Ok(settings)
    }
}

/// A one-line error for the user.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

fn err(context: &str, e: impl fmt::Display) -> CliError {
    CliError(format!("{context}: {e}"))
}

/// `2G`, `512M`, `1.5G`, `64K` or plain bytes (binary units).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], t[i..].trim_end_matches(['B', 'b', 'i'])),
        None => (t, ""),
    };
    let scale: f64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1048576.0,
        "G" => 1073741824.0,
        "T" => 1099511627776.0,
        _ => return Err(format!("{} is not a size: write e.g. 2G, 512M or a number of bytes", settings::show(s))),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{} is not a size: write e.g. 2G, 512M or a number of bytes", settings::show(s)))?;
    let bytes = value * scale;
    if !(1048576.0..=1e15).contains(&bytes) {
        return Err(format!("{} is out of range: give at least 1M", settings::show(s)));
    }
    Ok(bytes as u64)
}

fn parse_sizes(s: &str) -> Result<u32, String> {
    let (lo, hi) = settings::SIZE_RANGE;
    let v: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{} is not a whole number", settings::show(s)))?;
    if !(lo..=hi).contains(&v) {
        return Err(format!("{v} is out of range; expected {lo} to {hi}"));
    }
    Ok(v)
}

/// Runs the command line `args` (including the program name); returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> i32 {
    install_panic_hook();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return report_clap_error(e),
    };
    let result = match cli.command {
        Some(Command::ConvertWeights { src, out, dtype }) => convert_weights(&src, &out, dtype),
        Some(Command::Bench {
            sizes,
            steps,
            plan_sizes,
            weights,
            quantisation_src,
            readme,
            convergence,
            convergence_steps,
            convergence_runs,
            tile,
            variants,
            precision,
        }) => match convergence {
            Some(size) => {
                // The convergence benchmark runs its own schedule: options of the speed benchmark would be ignored.
                let given = [
                    ("--sizes", !sizes.is_empty()),
                    ("--tile", tile.is_some()),
                    ("--variants", variants),
                    ("--precision", precision.is_some()),
                    ("--quantisation-src", quantisation_src.is_some()),
                    ("--readme", readme.is_some()),
                ];
                let ignored: Vec<&str> = given.iter().filter(|(_, g)| *g).map(|(name, _)| *name).collect();
                if ignored.is_empty() {
                    convergence_bench(weights, size, convergence_steps, &convergence_runs)
                } else {
                    Err(err("--convergence", format!("runs on its own and does not take {}", ignored.join(", "))))
                }
            }
            None if !convergence_runs.is_empty() => Err(err("--convergence-runs", "needs --convergence SIZE")),
            None => {
                let precision = precision.unwrap_or_default();
                bench(BenchArgs { sizes, steps, plan_sizes, tile, variants, precision }, weights, quantisation_src, readme)
            }
        },
        Some(Command::Plan(args)) => plan(&args),
        Some(Command::Fuzz { target, iterations, seed }) => fuzz(&target, iterations, seed),
        None => run(&cli.run),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.0));
            EXIT_ERROR
        }
    }
}

/// `main` of the binary.
pub fn main() -> i32 {
    main_with_args(std::env::args_os())
}

/// Help and version go to stdout with exit 0; every other clap error becomes one line and exit 2.
fn report_clap_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            EXIT_ERROR
        }
        _ => {
            // clap's message spans several lines (usage, tips); keep what precedes "Usage:".
            let text = e.to_string();
            let message = text.split("\nUsage:").next().unwrap_or(&text);
            let message = message
                .split("\nFor more information")
                .next()
                .unwrap_or(message);
            let line = one_line(message);
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            eprintln!("error: {line} (see stylize --help)");
            EXIT_ERROR
        }
    }
}

/// Collapses whitespace and newlines so that every error is one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Panics are bugs; if one happens anyway, say so in one line instead of a backtrace dump.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error{place}: {}; this is a bug, please report it",
            one_line(&what)
        );
    }));
}

fn convert_weights(src: &Path, out: &Path, dtype: DtypeArg) -> Result<(), CliError> {
    let dtype = match dtype {
        DtypeArg::Q8 => WeightsDtype::Q8,
        DtypeArg::F32 => WeightsDtype::F32,
    };
    let report = weights::convert(src, out, dtype).map_err(|e| err("convert-weights", e))?;
    print!("{report}");
    Ok(())
}

/// The timing options of `stylize bench`.
struct BenchArgs {
    sizes: Vec<u32>,
    steps: u32,
    plan_sizes: Vec<u32>,
    tile: Option<u32>,
    variants: bool,
    precision: crate::kernels::conv::Precision,
}

fn bench(args: BenchArgs, weights_path: Option<PathBuf>, quantisation_src: Option<PathBuf>, readme: Option<PathBuf>) -> Result<(), CliError> {
    let BenchArgs { sizes, steps, plan_sizes, tile, variants, precision } = args;
    if let Some(t) = tile {
        if t == 0 || !t.is_multiple_of(16) {
            return Err(err("--tile", format!("expected a multiple of 16, got {t}")));
        }
        if sizes.is_empty() || sizes.iter().all(|&s| s <= t) {
            return Err(err("--tile", format!("no --sizes above {t} px: name the sizes to run tiled, e.g. --sizes {}", t * 2)));
        }
    }
    let weights_path = match weights_path {
        Some(p) => p,
        None => default_weights_path()?,
    };
    let weights = Weights::load(&weights_path).map_err(|e| err("--weights", e))?;
    let opts = crate::bench::BenchOptions { sizes, steps, plan_sizes, tile, variants, precision };
    let mut report = crate::bench::run(&weights, &opts).map_err(|e| err("bench", e))?;
    // The photos the quantisation and precision costs are measured on: chelsea and astronaut at 128 px,
    // starry_night as the style, from a shared images directory.
    let test_images = |shared: &Path| -> Result<(Vec<(String, crate::imageio::Image)>, crate::imageio::Image), CliError> {
        let load = |p: &str| -> Result<crate::imageio::Image, CliError> {
            let image = crate::imageio::load(&shared.join(p)).map_err(|e| err("bench", e))?;
            Ok(crate::imageio::resize_longest(&image, 128))
        };
        let images = vec![("chelsea".to_string(), load("content/chelsea.png")?), ("astronaut".to_string(), load("content/astronaut.png")?)];
        Ok((images, load("style/starry_night.jpg")?))
    };
    if let Some(src) = &quantisation_src {
        let f32_weights = Weights::load(src).map_err(|e| err("--quantisation-src", e))?;
        let (images, style) = test_images(&src.join("../images"))?;
        let quant = crate::bench::quantisation_report(&f32_weights, &weights, &images, &style)
            .map_err(|e| err("bench", e))?;
        report.push_str("\nQuantisation cost (q8 file against the float32 source, 128 px):\n\n");
        report.push_str(&quant);
    }
    if precision == crate::kernels::conv::Precision::F16 {
        // (the speed figures above are printed even where the photos are missing)
        let cost = test_images(&shared_images()).and_then(|(images, style)| {
            crate::bench::precision_report(&weights, &images, &style).map_err(|e| err("--precision", e))
        });
        match cost {
            Ok(cost) => {
                report.push_str("\nPrecision cost (these weights stored in f16 against f32, 128 px):\n");
                report.push_str(&cost);
            }
            Err(e) => report.push_str(&format!("\nPrecision cost not measured: {}\n", e.0)),
        }
    }
    println!("{report}");
    if let Some(path) = readme {
        crate::bench::write_readme(&path, &report).map_err(|e| err("--readme", e))?;
    }
    Ok(())
}

/// The default weights file: `weights/vgg19.q8.bin` of the repository the executable was built
/// in (the nearest ancestor of the executable holding a Cargo.toml), else of the source tree this
/// binary was compiled from.
pub fn default_weights_path() -> Result<PathBuf, CliError> {
    let rel = weights::DEFAULT_WEIGHTS_FILE;
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        let exe_dir = exe.parent().unwrap_or(Path::new("."));
        if let Some(repo) = exe_dir.ancestors().find(|d| d.join("Cargo.toml").is_file()) {
            candidates.push(repo.join(rel));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(CliError(format!(
        "the weights file {} is missing; pass --weights PATH (a weights file or the float32 source directory), \
         or build it with: stylize convert-weights --src ../shared/weights-src --out {rel}",
        candidates.last().map(|p| p.display().to_string()).unwrap_or_default()
    )))
}

fn fuzz(target: &str, iterations: u64, seed: u64) -> Result<(), CliError> {
    let targets: Vec<&str> = if target == "all" { crate::fuzz::TARGETS.to_vec() } else { vec![target] };
    for t in targets {
        let report = crate::fuzz::run(t, iterations, seed).map_err(|e| err("--target", e))?;
        println!("{report}");
        if report.panic.is_some() {
            return Err(CliError(format!("fuzz: {t} panicked (see above)")));
        }
    }
    Ok(())
}

fn convergence_bench(weights: Option<PathBuf>, size: u32, steps: u32, runs: &[String]) -> Result<(), CliError> {
    let weights = load_weights(&DeviceArgs { weights, ..DeviceArgs::default() })?;
    let report = crate::bench::convergence(&weights, &shared_images(), size, steps, runs, Path::new(".")).map_err(|e| err("bench", e))?;
    println!("{report}");
    Ok(())
}

/// The shared test photos (scikit-image photos, public-domain paintings) the benchmarks measure on:
/// `shared/images` in or beside the current directory, else beside the source tree this was built from.
fn shared_images() -> PathBuf {
    let candidates = [PathBuf::from("shared/images"), PathBuf::from("../shared/images"), Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/images")];
    candidates.iter().find(|p| p.is_dir()).unwrap_or(&candidates[2]).clone()
}

fn load_weights(device: &DeviceArgs) -> Result<Weights, CliError> {
    let path = match &device.weights {
        Some(p) => p.clone(),
        None => default_weights_path()?,
    };
    Weights::load(&path).map_err(|e| err("--weights", e))
}

/// The memory budget, and the largest buffer the GPU allows (WebGPU's default before a GPU is asked).
fn budget(device: &DeviceArgs, max_buffer: u64) -> Budget {
    Budget { max_buffer, total: device.memory_budget.unwrap_or(plan::DEFAULT_MEMORY_BUDGET) }
}

/// `stylize plan`: the plan as JSON, from image headers, without a GPU.
fn plan(args: &PlanArgs) -> Result<(), CliError> {
    let settings = args.options.settings(args.style.len())?;
    let content = match &args.content {
        Some(path) => imageio::probe(path).map_err(|e| err("--content", e))?,
        None => (settings.size, settings.size),
    };
    let mut styles = Vec::new();
    for path in &args.style {
        styles.push(imageio::probe(path).map_err(|e| err("--style", e))?);
    }
    if styles.is_empty() {
        let side = plan::style_side(&settings).min(plan::MAX_STYLE_SIDE);
        styles.push((side, side));
    }
    let convs = match &args.device.weights {
        Some(_) => load_weights(&args.device)?.layers.len(),
        None => weights::REQUIRED_LAYERS,
    };
    let ones = vec![1.0; styles.len()];
    let plans = args.device.in_precision(plan::schedule_plans(&settings, content, &styles, &ones, convs).map_err(|e| err("plan", e))?);
    let budget = budget(&args.device, plan::WEBGPU_DEFAULT_MAX_BINDING);
    let plans = plan::fit_plans(plans, args.device.tile, &budget).map_err(|e| err("--tile", e))?;
    let json = plan::schedule_json(&plans, &budget);
    println!("{json}");
    Ok(())
}
