//! A style-transfer run from the command line: inputs, plan, GPU, steps with a progress bar and
//! `--log-json` lines, and the output (also when the run diverges).

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A `.npy` (format 1.0) file of little-endian float32 with the given C-order shape.
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.div_ceil(64) * 64 - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Which scale of a coarse-to-fine run a log line belongs to: its index (1-based) and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogScale {
    pub scale: usize,
    pub width: u32,
    pub height: u32,
}

/// One `--log-json` line:
/// `{"step":k,"scale":i,"width":w,"height":h,"content":..,"style":..,"tv":..,"total":..,"ms":..}`.
pub fn log_line(losses: &StepLosses, ms: f64, at: LogScale) -> String {
    format!(
        "{{\"step\":{},\"scale\":{},\"width\":{},\"height\":{},\"content\":{},\"style\":{},\"tv\":{},\"total\":{},\"ms\":{}}}",
        losses.step,
        at.scale,
        at.width,
        at.height,
        json_f64(losses.content),
        json_f64(losses.style),
        json_f64(losses.tv),
        json_f64(losses.total),
        json_f64((ms * 1000.0).round() / 1000.0)
    )
}

/// A JSON number in its shortest exact form; `null` for NaN and infinities (JSON has none).
fn json_f64(x: f64) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    settings::fmt_float(x)
}

fn load_image(option: &str, path: &Path) -> Result<Image, CliError> {
    imageio::load(path).map_err(|e| err(option, e))
}

/// A file we will write later, created now so that a bad path fails before minutes of work.
fn create_file(option: &str, path: &Path) -> Result<File, CliError> {
    File::create(path).map_err(|e| err(option, format!("cannot write {}: {e}", path.display())))
}

fn check_writable_dir(option: &str, path: &Path) -> Result<(), CliError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(err(
            option,
            format!(
                "cannot write {}: the directory {} does not exist",
                path.display(),
                parent.display()
            ),
        ));
    }
    if path.is_dir() {
        return Err(err(option, format!("{} is a directory", path.display())));
    }
    Ok(())
}

/// `--dump-grad`: dL/dx at the start image of the first scale, as .npy.
fn dump_grad(stylizer: &mut Stylizer, path: &Path) -> Result<(), CliError> {
    let grad = pollster::block_on(stylizer.gradient()).map_err(|e| err("--dump-grad", e))?;
    let (w, h) = (stylizer.width() as usize, stylizer.height() as usize);
    if grad.len() != w * h * 3 {
        return Err(err("--dump-grad", format!("the engine gave {} values for a {w}x{h} image", grad.len())));
    }
    std::fs::write(path, npy_bytes(&[h, w, 3], &grad)).map_err(|e| err("--dump-grad", format!("cannot write {}: {e}", path.display())))
}

/// A style-transfer run: check everything the user gave before touching the GPU, then optimise.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let (Some(content_path), Some(out)) = (&args.content, &args.out) else {
        return Err(CliError("--content, --style and --out are required".into()));
    };
    if args.style.is_empty() {
        return Err(CliError("at least one --style image is required".into()));
    }
    let settings = args.options.settings(args.style.len())?;

    // Inputs, and the plan from their sizes: every check before any resizing or GPU work.
    let content = load_image("--content", content_path)?;
    let mut styles = Vec::with_capacity(args.style.len());
    for path in &args.style {
        styles.push(load_image("--style", path)?);
    }
    let init_image = match &settings.init {
        Init::Path(p) => Some(load_image("--init", Path::new(p))?),
        _ => None,
    };
    let weights = load_weights(&args.device)?;
    let sizes: Vec<(u32, u32)> = styles.iter().map(|s| (s.width, s.height)).collect();
    let content_size = (content.width, content.height);
    let ones = vec![1.0; sizes.len()];
    let plans = plan::schedule_plans(&settings, content_size, &sizes, &ones, weights.layers.len()).map_err(|e| CliError(e.0))?;
    let plans = args.device.in_precision(plans);
    // The memory budget now, before any GPU work (tiled where a scale needs it); the per-buffer limit
    // once the GPU is known.
    let fitted = plan::fit_plans(plans.clone(), args.device.tile, &budget(&args.device, u64::MAX)).map_err(|e| err("--tile", e))?;
    plan::check_schedule(&fitted, &budget(&args.device, u64::MAX)).map_err(|e| CliError(e.0))?;

    // Outputs: fail on a bad path now, not after the run.
    check_writable_dir("--out", out)?;
    for (option, path) in [
        ("--log-json", &args.log_json),
        ("--dump-grad", &args.dump_grad),
    ] {
        if let Some(p) = path {
            check_writable_dir(option, p)?;
        }
    }
    let mut log = match &args.log_json {
        Some(p) => Some(BufWriter::new(create_file("--log-json", p)?)),
        None => None,
    };

    // GPU.
    let ctx = Arc::new(crate::gpu::native_context().map_err(|e| err("GPU", e))?);
    let gpu_budget = budget(&args.device, ctx.max_buffer());
    let plans = plan::fit_plans(plans, args.device.tile, &gpu_budget).map_err(|e| err("--tile", e))?;
    plan::check_schedule(&plans, &gpu_budget).map_err(|e| CliError(e.0))?;
    let precision = args.device.precision.unwrap_or_default();
    precision.check(&ctx).map_err(|e| err("--precision", e))?;
    let net = Network::upload_in(&ctx, &weights, precision).map_err(|e| err("--weights", e))?;
    drop(weights);
    let style_refs: Vec<&Image> = styles.iter().collect();
    tune(&net, &plans, args.device.conv_kernel.unwrap_or_default());

    // The scales, coarse to fine: each starts from the previous one's image, upsampled on the GPU; the
    // previous run's buffers are freed (only its image is kept) before the next one's are allocated.
    let started = Instant::now();
    let mut previous = None;
    let mut outcome = (None, None);
    let mut stylizer = None;
    for (index, plan) in plans.iter().enumerate() {
        let init = if index == 0 { init_image.as_ref() } else { None };
        let inputs = plan.prepare(&content, &style_refs, init).map_err(|e| CliError(e.0))?;
        let mut st = pollster::block_on(Stylizer::for_scale(ctx.clone(), &net, plan, &inputs, previous.take()))
            .map_err(|e| err("engine", e))?;
        drop(inputs);
        if index == 0 {
            if let Some(path) = &args.dump_grad {
                dump_grad(&mut st, path)?;
            }
        }
        let at = LogScale { scale: index + 1, width: plan.width, height: plan.height };
        if plans.len() > 1 && std::io::stderr().is_terminal() {
            eprintln!("scale {} of {} · {}×{} · {} steps", index + 1, plans.len(), plan.width, plan.height, plan.settings.steps);
        }
        outcome = optimise(&mut st, plan.settings.steps, log.as_mut(), at)?;
        let done = outcome.1.is_some() || index + 1 == plans.len();
        if !done {
            previous = Some(st.carry());
        } else {
            stylizer = Some(st);
            break;
        }
    }
    let mut stylizer = stylizer.expect("a schedule has at least one scale");
    let (last, diverged) = outcome;
    let elapsed = started.elapsed();
    if let Some(mut log) = log {
        log.flush().map_err(|e| err("--log-json", e))?;
    }
    let diverged = diverged.and_then(|losses: StepLosses| stylizer.check_finite(&losses).err());
    let last_plan = plans.last().expect("a schedule has at least one scale");
    let content_at_size = imageio::resize_to(&content, last_plan.width, last_plan.height);
    stylizer.apply_colour(&net, &settings, &content_at_size).map_err(|e| err("--colour", e))?;
    let image = pollster::block_on(stylizer.image()).map_err(|e| err("engine", e))?;
    image.save_png(out).map_err(|e| err("--out", e))?;
    if let Some(e) = diverged {
        return Err(CliError(format!("{e} (written to {})", out.display())));
    }
    let loss = last
        .map(|l| format!(", loss {:.4e}", l.total))
        .unwrap_or_default();
    println!(
        "wrote {} ({}x{}): {} steps in {:.1} s{loss}, {:.1} MiB of GPU memory (weights {:.1} MiB)",
        out.display(),
        image.width,
        image.height,
        plans.iter().map(|p| p.settings.steps).sum::<u32>(),
        elapsed.as_secs_f64(),
        (stylizer.allocated_bytes() + net.weight_bytes()) as f64 / 1048576.0,
        net.weight_bytes() as f64 / 1048576.0
    );
    Ok(())
}

/// Sets the conv kernel choice and, with `auto`, times the variants on the layer shapes of every
/// scale not timed on this GPU before (a one-off: the timings are cached), saying so on stderr.
fn tune(net: &Network, plans: &[plan::Plan], choice: crate::autotune::ConvKernelChoice) {
    net.set_conv_kernel(choice);
    let started = Instant::now();
    let say = |n: usize| eprintln!("tuning the conv kernels for this GPU ({n} layer shapes; once, then cached)…");
    let timed: usize = plans.iter().map(|p| pollster::block_on(net.tune_for(p, say))).sum();
    if timed > 0 {
        eprintln!("tuned {timed} layer shapes in {:.1} s", started.elapsed().as_secs_f64());
    }
}

/// Runs the steps with a progress bar (on a terminal) and the `--log-json` lines. Losses are read
/// back after every step when logging; otherwise only about every 200 ms, so the GPU is kept busy.
fn optimise(
    stylizer: &mut Stylizer,
    steps: u32,
    mut log: Option<&mut BufWriter<File>>,
    at: LogScale,
) -> Result<(Option<StepLosses>, Option<StepLosses>), CliError> {
    // A tiled step can take minutes: its bar moves per tile pass, told by the engine as each one
    // finishes (natively, even while a submit blocks).
    let parts = stylizer.tile_progress().map_or(1, |p| p.parts());
    let bar = progress_bar(steps, parts);
    let steps_before = Arc::new(AtomicU32::new(0));
    let follow = parts > 1 && !bar.is_hidden();
    if follow {
        let (bar, before) = (bar.clone(), steps_before.clone());
        stylizer.on_tile_pass(Arc::new(move |p| {
            let k = before.load(Ordering::Relaxed);
            bar.set_position(k as u64 * p.parts() as u64 + p.done as u64);
            bar.set_prefix(format!("step {}/{steps}, {}", k + 1, p.describe()));
        }));
    }
    let mut last: Option<StepLosses> = None;
    let write = |log: &mut BufWriter<File>, losses: &StepLosses, ms: f64| -> Result<(), CliError> {
        writeln!(log, "{}", log_line(losses, ms, at))
            .and_then(|_| log.flush())
            .map_err(|e| err("--log-json", e))
    };

    if steps == 0 {
        if let Some(log) = log.as_deref_mut() {
            // The objective of the initial image, evaluated without an update.
            let t = Instant::now();
            stylizer.evaluate();
            let losses = pollster::block_on(stylizer.losses()).map_err(|e| err("engine", e))?;
            write(log, &losses, t.elapsed().as_secs_f64() * 1e3)?;
            last = Some(losses);
        }
        bar.finish_and_clear();
        return Ok((last, None));
    }

    let mut sync_every: u32 = 1;
    let mut since_sync = 0u32;
    let mut window = Instant::now();
    let run_started = Instant::now();
    for k in 1..=steps {
        let t = Instant::now();
        steps_before.store(k - 1, Ordering::Relaxed);
        stylizer.step();
        if follow {
            wait_for_tiles(stylizer);
        }
        since_sync += 1;
        let logging = log.is_some();
        if logging || since_sync >= sync_every || k == steps {
            let losses = pollster::block_on(stylizer.losses()).map_err(|e| err("engine", e))?;
            if let Some(log) = log.as_deref_mut() {
                write(log, &losses, t.elapsed().as_secs_f64() * 1e3)?;
            }
            if !losses.total.is_finite() {
                bar.finish_and_clear();
                return Ok((last, Some(losses)));
            }
            // Aim for a readback about every 200 ms.
            let per_step = window.elapsed().as_secs_f64() / since_sync as f64;
            sync_every = ((0.2 / per_step.max(1e-6)) as u32).clamp(1, 50);
            since_sync = 0;
            window = Instant::now();
            let rate = k as f64 / run_started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("{rate:.2} steps/s, loss {:.4e}", losses.total));
            last = Some(losses);
        }
        bar.set_position(k as u64 * parts as u64);
    }
    bar.finish_and_clear();
    Ok((last, None))
}

/// Waits for the step just submitted, polling the device so that its tile passes report themselves.
/// Stops waiting (the readback after it then reports what went wrong) when the device reports an
/// error or nothing finishes for a minute.
fn wait_for_tiles(stylizer: &Stylizer) {
    let mut last = (Instant::now(), 0);
    loop {
        stylizer.poll();
        match stylizer.tile_progress() {
            Some(p) if p.done < p.parts() && !stylizer.has_error() => {
                if p.done != last.1 {
                    last = (Instant::now(), p.done);
                } else if last.0.elapsed() > Duration::from_secs(60) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => return,
        }
    }
}

/// A bar of `steps` × `parts` (tile passes per step; the step and tile then show in its prefix).
fn progress_bar(steps: u32, parts: u32) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps as u64 * parts as u64);
    let template = if parts > 1 { "{bar:24} {prefix}  {msg}  left {eta}" } else { "{bar:24} {pos}/{len}  {msg}  left {eta}" };
    let style = indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}
