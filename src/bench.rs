//! `stylize bench`: speed and memory figures, printed (and optionally written into
//! the README between `<!-- bench:start -->` and `<!-- bench:end -->`).
//!
//! Speed: ms per optimisation step and GFLOP/s of the whole step at each size, then
//! the time and GFLOP/s of every kernel, measured by running each dispatch on its own.
//! Memory: bytes the run allocated, and the same figure from the size plan alone, which
//! is also given at sizes too large to allocate here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use crate::autotune::ConvKernelChoice;
use crate::engine::{Network, Stylizer};
use crate::kernels::conv::{ConvVariant, Precision};
use crate::kernels::reduce::LaneSum;
use crate::gpu::GpuContext;
use crate::imageio::{test_pattern, Image};
use crate::plan::Plan;
use crate::settings::Settings;
use crate::weights::Weights;

pub struct BenchOptions {
    /// Longest side of the square test images to run; empty: 64 and 128, plus 256 and 512 on a
    /// hardware GPU (a software rasteriser such as lavapipe would take minutes per step there).
    pub sizes: Vec<u32>,
    /// Optimisation steps timed per size (after one warm-up step).
    pub steps: u32,
    /// Sizes for which only the memory plan is reported.
    pub plan_sizes: Vec<u32>,
    /// Also run each size above this many px in tiles of it, and report the tiled step's cost against
    /// the untiled one.
    pub tile: Option<u32>,
    /// Also time the whole step with each conv kernel variant forced, against the autotuner's choice.
    pub variants: bool,
    /// How the conv weights are stored (`--precision`).
    pub precision: Precision,
}

/// The plan of a square `size` run with one square style image of the same size, weights in `precision`.
fn square_plan(settings: &Settings, size: u32, weight_convs: usize, precision: Precision) -> Result<Plan, String> {
    let plan = Plan::at_sizes(settings, (size, size), &[(size, size)], &[1.0], weight_convs).map_err(|e| e.to_string())?;
    Ok(plan.weights_in(precision))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn run(weights: &Weights, opts: &BenchOptions) -> Result<String, String> {
    let ctx = Arc::new(crate::gpu::native_context().map_err(|e| e.to_string())?);
    let net = Network::upload_in(&ctx, weights, opts.precision)?;
    let settings = Settings::default();
    let mut report = String::new();
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().ok();
    let date = date.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    writeln!(
        report,
        "`stylize bench` on {} ({date}), default settings (Adam, relu4_2 content, relu1_1..relu5_1 style), weights in {}.",
        ctx.describe(),
        opts.precision.name()
    )
    .unwrap();
    writeln!(report).unwrap();
    writeln!(report, "| size | ms/step | GFLOP/step | GFLOP/s | allocated MiB | planned MiB |").unwrap();
    writeln!(report, "|---|---|---|---|---|---|").unwrap();
    let mut kernel_tables = String::new();
    let sizes = if opts.sizes.is_empty() {
        match ctx.adapter_info.device_type {
            wgpu::DeviceType::Cpu => vec![64, 128],
            _ => vec![64, 128, 256, 512],
        }
    } else {
        opts.sizes.clone()
    };
    // The conv variants timed on every layer shape of every size first (fresh, not from the cache):
    // the autotuner then chooses from exactly these timings.
    let mut variant_tables = String::new();
    for &size in &sizes {
        variant_tables.push_str(&conv_variants(&ctx, &net, &settings, size)?);
    }
    let mut by_size = Vec::new();
    for &size in &sizes {
        let measured = bench_size(&ctx, &net, &settings, size, opts.steps)?;
        report.push_str(&measured.line);
        kernel_tables.push_str(&measured.kernel_table);
        eprintln!("{}", measured.line.trim_end());
        by_size.push((size, measured));
    }
    writeln!(report).unwrap();
    if opts.variants && net.lane_sum() == LaneSum::Subgroups {
        report.push_str(&lane_sums(&ctx, weights, opts, &settings, &by_size)?);
    }
    if opts.variants {
        let choices: Vec<ConvKernelChoice> = std::iter::once(ConvKernelChoice::Auto).chain(ConvVariant::ALL.map(ConvKernelChoice::Forced)).collect();
        let names: Vec<&str> = choices.iter().map(|c| c.name()).collect();
        writeln!(report, "The whole step (ms) with the conv kernels the autotuner chose (`auto`) and with each variant forced (`--conv-kernel NAME`):\n").unwrap();
        writeln!(report, "| size | {} |\n|---|{}", names.join(" | "), "---|".repeat(names.len())).unwrap();
        for &size in &sizes {
            let mut row = format!("| {size} |");
            for choice in &choices {
                net.set_conv_kernel(*choice);
                let content = test_pattern(size, 0.0);
                let mut st = pollster::block_on(Stylizer::new(ctx.clone(), &net, &settings, &content, &[(test_pattern(size, 1.3), 1.0)], None)).map_err(|e| e.to_string())?;
                write!(row, " {:.1} |", pollster::block_on(st.ms_per_step(opts.steps))).unwrap();
            }
            net.set_conv_kernel(ConvKernelChoice::Auto);
            eprintln!("{row}");
            writeln!(report, "{row}").unwrap();
        }
        writeln!(report).unwrap();
    }
    report.push_str(&variant_tables);
    if let Some(tile) = opts.tile {
        writeln!(report, "Tiled against untiled: the same steps on the same images, each way (tiled: `stylize --tile {tile}`).").unwrap();
        writeln!(report).unwrap();
        writeln!(report, "| size | tile | tiles | untiled ms/step | tiled ms/step | measured ratio | FLOP ratio |").unwrap();
        writeln!(report, "|---|---|---|---|---|---|---|").unwrap();
        for &size in sizes.iter().filter(|&&s| s > tile) {
            let line = tiled_cost(&ctx, &net, &settings, size, tile, opts.steps)?;
            report.push_str(&line);
            eprintln!("{}", line.trim_end());
        }
        writeln!(report).unwrap();
    }
    report.push_str(&kernel_tables);
    writeln!(report, "Memory plan (no allocation), square images, weights included:").unwrap();
    writeln!(report).unwrap();
    writeln!(report, "| size | planned MiB |").unwrap();
    writeln!(report, "|---|---|").unwrap();
    for &size in &opts.plan_sizes {
        let plan = square_plan(&settings, size, crate::weights::REQUIRED_LAYERS, opts.precision)?;
        writeln!(report, "| {size} | {:.1} |", mib(plan.total_bytes())).unwrap();
    }
    Ok(report)
}

/// Every conv variant on every layer shape of a `size` run (each dispatch alone, as the autotuner
/// times them), with the variant it chooses; the timings become the network's, so the runs that
/// follow use these choices.
fn conv_variants(ctx: &GpuContext, net: &Network, settings: &Settings, size: u32) -> Result<String, String> {
    let plan = square_plan(settings, size, net.convs.len(), net.precision())?;
    let mut timings = Vec::new();
    for (key, shape) in crate::autotune::conv_shapes(&plan.stack_maps()) {
        let of_key = pollster::block_on(crate::autotune::time_variants(ctx, &net.kernels.conv, key, shape));
        eprintln!("{size} px, {} {}×{} {}→{}: {}", key.op.name(), shape.h, shape.w, shape.cin, shape.cout,
            of_key.iter().map(|t| format!("{} {:.2} ms", t.variant, t.ms)).collect::<Vec<_>>().join(", "));
        timings.extend(of_key);
    }
    let table = crate::autotune::variants_table(&timings);
    net.tuning.lock().unwrap_or_else(|p| p.into_inner()).adopt(ctx, timings);
    Ok(format!("Conv kernel variants at {size}×{size} (ms per dispatch by {}, GFLOP/s in brackets; the autotuner keeps the fastest per layer shape):\n\n{table}\n", crate::autotune::timer(ctx)))
}


/// The loss sums by a workgroup tree against the subgroup ones `by_size` ran with: the kernels that
/// differ, and the whole step, at each size.
fn lane_sums(ctx: &Arc<GpuContext>, weights: &Weights, opts: &BenchOptions, settings: &Settings, by_size: &[(u32, SizeBench)]) -> Result<String, String> {
    // (the tree network reads the conv timings just cached, so both choose the same conv kernels)
    let tree = Network::upload_with(ctx, weights, opts.precision, LaneSum::Tree)?;
    let mut table = String::from(
        "The loss sums (`workgroup_sum`) by a workgroup tree and by subgroup operations: ms, each dispatch timed alone and summed per kernel, and the whole step:\n\n| size | kernel | tree | subgroups |\n|---|---|---|---|\n",
    );
    for (size, subgroups) in by_size {
        let tree_bench = bench_size(ctx, &tree, settings, *size, opts.steps)?;
        for (label, (secs, _, _)) in &subgroups.per_label {
            let Some(base) = label.strip_suffix("[subgroups]") else { continue };
            let tree_secs = tree_bench.per_label.get(base).map_or(f64::NAN, |t| t.0);
            writeln!(table, "| {size} | {base} | {:.2} | {:.2} |", tree_secs * 1000.0, secs * 1000.0).unwrap();
        }
        writeln!(table, "| {size} | whole step | {:.1} | {:.1} |", tree_bench.ms, subgroups.ms).unwrap();
        eprintln!("lane sums at {size} px: whole step tree {:.1} ms, subgroups {:.1} ms", tree_bench.ms, subgroups.ms);
    }
    table.push('\n');
    Ok(table)
}

/// What [`bench_size`] measured at one size.
struct SizeBench {
    /// The row of the speed and memory table.
    line: String,
    /// The per-kernel table.
    kernel_table: String,
    /// Per kernel label: (seconds, FLOPs, launches).
    per_label: BTreeMap<String, (f64, u64, u32)>,
    /// ms per whole step.
    ms: f64,
}

/// One size: whole steps, then every kernel on its own.
fn bench_size(ctx: &Arc<GpuContext>, net: &Network, settings: &Settings, size: u32, steps: u32) -> Result<SizeBench, String> {
    let content = test_pattern(size, 0.0);
    let style = test_pattern(size, 1.3);
    let mut st = pollster::block_on(Stylizer::new(ctx.clone(), net, settings, &content, &[(style, 1.0)], None)).map_err(|e| e.to_string())?;
    let ms = pollster::block_on(st.ms_per_step(steps));
    let flops: u64 = st.evaluate_dispatches().map(|d| d.flops).sum();
    let allocated = st.allocated_bytes() + net.weight_bytes();
    let plan = square_plan(settings, size, net.convs.len(), net.precision())?;
    let planned = plan.weight_bytes() + plan.run_bytes();
    let line = format!(
        "| {size} | {ms:.1} | {:.2} | {:.2} | {:.1} | {:.1} |\n",
        flops as f64 / 1e9,
        flops as f64 / 1e9 / (ms / 1000.0),
        mib(allocated),
        mib(planned)
    );

    // Per kernel: each dispatch run alone, repeated, grouped by label.
    let mut per_label: BTreeMap<String, (f64, u64, u32)> = BTreeMap::new();
    let reps = 3;
    for d in st.evaluate_dispatches().chain(st.optimizer_dispatches()) {
        ctx.run(&[d]);
        ctx.finish();
        let t = Instant::now();
        for _ in 0..reps {
            ctx.run(&[d]);
        }
        ctx.finish();
        let secs = t.elapsed().as_secs_f64() / reps as f64;
        let entry = per_label.entry(d.label.clone()).or_insert((0.0, 0, 0));
        entry.0 += secs;
        entry.1 += d.flops;
        entry.2 += 1;
    }
    let mut rows: Vec<_> = per_label.iter().collect();
    rows.sort_by(|a, b| b.1 .0.partial_cmp(&a.1 .0).unwrap_or(std::cmp::Ordering::Equal));
    let mut table = format!("Per kernel at {size}×{size} (each dispatch timed alone, summed per kernel):\n\n| kernel | launches | ms | GFLOP/s |\n|---|---|---|---|\n");
    for (label, &(secs, flops, count)) in rows {
        let gflops = if flops > 0 { format!("{:.2}", flops as f64 / 1e9 / secs) } else { "-".into() };
        writeln!(table, "| {label} | {count} | {:.2} | {gflops} |", secs * 1000.0).unwrap();
    }
    table.push('\n');
    Ok(SizeBench { line, kernel_table: table, per_label, ms })
}

/// One size run untiled and in tiles of `tile` px: ms per step each way, and their ratio against the
/// ratio of the planned FLOPs.
fn tiled_cost(ctx: &Arc<GpuContext>, net: &Network, settings: &Settings, size: u32, tile: u32, steps: u32) -> Result<String, String> {
    let plan = square_plan(settings, size, net.convs.len(), net.precision())?;
    let tiled = plan.clone().tiled(tile as usize).map_err(|e| e.to_string())?;
    let inputs = plan.prepare(&test_pattern(size, 0.0), &[&test_pattern(size, 1.3)], None).map_err(|e| e.to_string())?;
    // One run at a time: the untiled one's buffers go before the tiled one allocates.
    let time = |p: &Plan| -> Result<f64, String> {
        let mut st = pollster::block_on(Stylizer::from_plan(ctx.clone(), net, p, &inputs)).map_err(|e| e.to_string())?;
        Ok(pollster::block_on(st.ms_per_step(steps)))
    };
    let untiled_ms = time(&plan)?;
    let tiled_ms = time(&tiled)?;
    let tiles = tiled.tiling.as_ref().map_or(1, |t| t.grid.tiles.len());
    Ok(format!(
        "| {size} | {tile} | {tiles} | {untiled_ms:.1} | {tiled_ms:.1} | {:.2} | {:.2} |\n",
        tiled_ms / untiled_ms,
        tiled.flops_per_step as f64 / plan.flops_per_step as f64
    ))
}

pub fn write_readme(path: &std::path::Path, report: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (start, end) = ("<!-- bench:start -->", "<!-- bench:end -->");
    let (Some(a), Some(b)) = (text.find(start), text.find(end)) else {
        return Err(format!("{} has no {start} ... {end} markers", path.display()));
    };
    let updated = format!("{}{start}\n{report}{}", &text[..a], &text[b..]);
    std::fs::write(path, updated).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Quantisation cost: per-layer relative feature error ‖F_q8 − F_f32‖/‖F_f32‖ on real
/// images, and the relative change of the objective, q8 file against float32 source.
pub fn quantisation_report(f32_weights: &Weights, q8_weights: &Weights, images: &[(String, Image)], style: &Image) -> Result<String, String> {
    let ctx = Arc::new(crate::gpu::native_context().map_err(|e| e.to_string())?);
    let nets = [Network::upload(&ctx, f32_weights)?, Network::upload(&ctx, q8_weights)?];
    difference_report(&ctx, [&nets[0], &nets[1]], "q8", images, style)
}

/// The cost of `--precision f16`: the same weights stored in f16 against f32 ([`difference_report`]),
/// with each conv kernel variant forced in f16 (the workgroup variant also stages its input in f16).
pub fn precision_report(weights: &Weights, images: &[(String, Image)], style: &Image) -> Result<String, String> {
    let ctx = Arc::new(crate::gpu::native_context().map_err(|e| e.to_string())?);
    let f32_net = Network::upload_in(&ctx, weights, Precision::F32)?;
    let f16_net = Network::upload_in(&ctx, weights, Precision::F16)?;
    f32_net.set_conv_kernel(ConvKernelChoice::Forced(ConvVariant::Register4x8));
    let mut report = String::new();
    for variant in ConvVariant::ALL {
        f16_net.set_conv_kernel(ConvKernelChoice::Forced(variant));
        writeln!(report, "\nf16 with `--conv-kernel {}` against f32:\n", variant.name()).unwrap();
        report.push_str(&difference_report(&ctx, [&f32_net, &f16_net], "f16", images, style)?);
    }
    Ok(report)
}

/// What `nets[1]` (called `name`) changes against `nets[0]` (float32): per conv layer the relative
/// feature error on real images, and the relative change of the objective.
fn difference_report(ctx: &Arc<GpuContext>, nets: [&Network; 2], name: &str, images: &[(String, Image)], style: &Image) -> Result<String, String> {
    use crate::model::{FeatureStack, LayerOp, StackLayout, VGG19};
    let depth = nets[0].available_depth.min(nets[1].available_depth);
    let conv_ops: Vec<usize> = (0..depth).filter(|&i| matches!(VGG19[i], LayerOp::Conv(_))).collect();
    let mut report = String::from("| image | layer | relative feature error |\n|---|---|---|\n");
    let mut objective_rows = String::new();
    for (image_name, image) in images {
        let (h, w) = (image.height as usize, image.width as usize);
        let mut features: Vec<Vec<Vec<f32>>> = Vec::new();
        for net in nets {
            // Keep every conv output (op 0 counts as a content layer so it is kept too).
            let layout = StackLayout::new(h, w, depth, &conv_ops, &conv_ops, crate::kernels::pool::PoolKind::Max);
            let stack = FeatureStack::new(net, &layout);
            let x = ctx.storage_buffer_init("x", bytemuck::cast_slice(&image.rgb));
            let mut dispatches = vec![net.kernels.image.to_network_input(&ctx, h, w, &x, &stack.input, &net.input)];
            dispatches.extend(stack.forward(net, |_, _| Vec::new()));
            ctx.run(&dispatches.iter().collect::<Vec<_>>());
            let mut per_layer = Vec::new();
            for &op in &conv_ops {
                let buffer = stack.kept_features(op).ok_or("feature not kept")?;
                per_layer.push(pollster::block_on(ctx.read_f32(buffer, 0, stack.shapes[op].padded_len())).map_err(|e| e.to_string())?);
            }
            features.push(per_layer);
        }
        for (k, &op) in conv_ops.iter().enumerate() {
            let LayerOp::Conv(conv) = VGG19[op] else { continue };
            let (a, b) = (&features[0][k], &features[1][k]);
            let diff: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt();
            let norm: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            writeln!(report, "| {image_name} | {} | {:.2e} |", conv.relu, diff / norm.max(1e-30)).unwrap();
        }
        // The objective at the content image's mirror (a start image away from the optimum).
        let settings = Settings::default();
        let mut start = image.clone();
        for y in 0..h {
            for x in 0..w {
                let (from, to) = ((y * w + x) * 3, (y * w + (w - 1 - x)) * 3);
                start.rgb[to..to + 3].copy_from_slice(&image.rgb[from..from + 3]);
            }
        }
        let mut totals = Vec::new();
        for net in nets {
            let mut st = pollster::block_on(Stylizer::new(ctx.clone(), net, &settings, image, &[(style.clone(), 1.0)], Some(&start))).map_err(|e| e.to_string())?;
            st.evaluate();
            totals.push(pollster::block_on(st.losses()).map_err(|e| e.to_string())?);
        }
        let change = (totals[1].total - totals[0].total) / totals[0].total;
        writeln!(objective_rows, "| {image_name} | {:.6e} | {:.6e} | {:+.3}% |", totals[0].total, totals[1].total, 100.0 * change).unwrap();
    }
    write!(report, "\nObjective (default settings, start = the mirrored content image):\n\n| image | float32 | {name} | change |\n|---|---|---|---|\n").unwrap();
    report.push_str(&objective_rows);
    Ok(report)
}

/// `stylize bench --convergence`: chelsea × starry_night at `size` px with single-scale Adam for
/// `steps` steps, single-scale L-BFGS for steps/5, and the default settings (coarse to fine). For
/// each: the objective of its final image
/// evaluated at `size` with the single-scale settings, and its cost in `size`-px step-equivalents
/// (Σ steps × pixels / pixels at `size`). `only` keeps the runs whose slugs (e.g.
/// "single-scale-adam") start with one of its entries (empty: every run). `out_dir` receives the images.
pub fn convergence(weights: &Weights, images: &std::path::Path, size: u32, steps: u32, only: &[String], out_dir: &std::path::Path) -> Result<String, String> {
    use crate::engine::Carried;
    use crate::settings::{OptimizerChoice, Scales};
    let single = Settings { size, steps, scales: Scales::Off, ..Settings::default() };
    let runs = [
        ("single-scale Adam", single.clone()),
        ("single-scale L-BFGS", Settings { optimizer: OptimizerChoice::Lbfgs, lr: 1.0, steps: (steps / 5).max(1), ..single.clone() }),
        ("coarse to fine (the default)", Settings { size, ..Settings::default() }),
    ];
    // "coarse to fine (the default)" -> "coarse-to-fine-the-default": the image's file name and the
    // name `only` matches.
    let slug = |name: &str| {
        let kept: String = name.to_lowercase().chars().filter(|c| c.is_alphanumeric() || *c == '-' || c.is_whitespace()).collect();
        kept.split_whitespace().collect::<Vec<_>>().join("-")
    };
    if let Some(unknown) = only.iter().find(|o| !runs.iter().any(|(name, _)| slug(name).starts_with(o.as_str()))) {
        let names: Vec<String> = runs.iter().map(|(name, _)| slug(name)).collect();
        return Err(format!("no convergence run named {unknown:?} (runs: {})", names.join(", ")));
    }
    let ctx = Arc::new(crate::gpu::native_context().map_err(|e| e.to_string())?);
    let net = Network::upload(&ctx, weights)?;
    let load = |p: &str| crate::imageio::load(&images.join(p)).map_err(|e| e.to_string());
    let (content, style) = (load("content/chelsea.png")?, load("style/starry_night.jpg")?);
    let dims = |i: &Image| (i.width, i.height);
    let mut report = format!(
        "Convergence on {} ({}): chelsea × starry_night at {size} px, objective of the final image at {size} px with the single-scale settings.\n\n\
         | run | schedule | objective | {size}-px step-equivalents | seconds |\n|---|---|---|---|---|\n",
        ctx.describe(),
        std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
    );
    for (name, settings) in runs {
        if !only.is_empty() && !only.iter().any(|o| slug(name).starts_with(o.as_str())) {
            continue;
        }
        let started = Instant::now();
        let plans = crate::plan::schedule_plans(&settings, dims(&content), &[dims(&style)], &[1.0], net.convs.len()).map_err(|e| e.to_string())?;
        let full = plans.last().map(|p| (p.width * p.height) as f64).unwrap_or(1.0);
        let mut previous: Option<Carried> = None;
        let mut last = None;
        for (i, plan) in plans.iter().enumerate() {
            let inputs = plan.prepare(&content, &[&style], None).map_err(|e| e.to_string())?;
            let mut st = pollster::block_on(Stylizer::for_scale(ctx.clone(), &net, plan, &inputs, previous.take())).map_err(|e| e.to_string())?;
            for step in 1..=plan.settings.steps {
                st.step();
                // The last scale's objective now and then (at `size`: comparable across runs).
                if i + 1 == plans.len() && step % 25 == 0 {
                    let total = pollster::block_on(st.losses()).map_err(|e| e.to_string())?.total;
                    eprintln!("{name}: step {step} of {} at {}×{}: objective {total:.4e}", plan.settings.steps, plan.width, plan.height);
                }
            }
            ctx.finish();
            eprintln!("{name}: scale {} of {} ({}×{}) done after {:.0} s", i + 1, plans.len(), plan.width, plan.height, started.elapsed().as_secs_f64());
            if i + 1 < plans.len() {
                previous = Some(st.carry());
            } else {
                last = Some(st);
            }
        }
        let st = last.ok_or("empty schedule")?;
        let image = pollster::block_on(st.image()).map_err(|e| e.to_string())?;
        drop(st);
        let seconds = started.elapsed().as_secs_f64();
        // The objective of the result under the single-scale settings, at the full size.
        let eval_plan = crate::plan::Plan::for_images(&Settings { steps: 0, ..single.clone() }, dims(&content), &[dims(&style)], &[1.0], net.convs.len())
            .map_err(|e| e.to_string())?;
        let inputs = eval_plan.prepare(&content, &[&style], Some(&image)).map_err(|e| e.to_string())?;
        let mut eval = pollster::block_on(Stylizer::from_plan(ctx.clone(), &net, &eval_plan, &inputs)).map_err(|e| e.to_string())?;
        eval.evaluate();
        let objective = pollster::block_on(eval.losses()).map_err(|e| e.to_string())?.total;
        let cost: f64 = plans.iter().map(|p| p.settings.steps as f64 * (p.width * p.height) as f64 / full).sum();
        let schedule: Vec<String> = plans.iter().map(|p| format!("{}×{}", p.settings.steps, p.settings.size)).collect();
        writeln!(report, "| {name} | {} | {objective:.4e} | {cost:.0} | {seconds:.0} |", schedule.join(" + ")).unwrap();
        let file = out_dir.join(format!("convergence-{}.png", slug(name)));
        image.save_png(&file).map_err(|e| e.to_string())?;
        eprintln!("{}", report.lines().last().unwrap_or_default());
    }
    Ok(report)
}
