//! The plan of a run: refusals before any allocation (each with its message, never a panic), the
//! figures `stylize plan` prints, and plan == allocation on the GPU for several settings. Also the
//! last-finite image a diverging run stops on, and a long run that creates no GPU objects per step.

mod common;

use std::sync::Arc;
use stylize::engine::{EngineError, Network, Stylizer};
use stylize::imageio::{self, Image};
use stylize::model::{self, LayerOp, CONVS, VGG19};
use stylize::plan::{self, Budget, Plan};
use stylize::settings::{parse_layers, OptimizerChoice, Pooling, Settings};
use stylize::weights::{Weights, DEFAULT_WEIGHTS_FILE, REQUIRED_LAYERS};

fn committed_net() -> &'static (Arc<stylize::gpu::GpuContext>, Network) {
    static NET: std::sync::OnceLock<(Arc<stylize::gpu::GpuContext>, Network)> = std::sync::OnceLock::new();
    NET.get_or_init(|| {
        let ctx = Arc::new(common::context());
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS_FILE);
        let weights = Weights::load(&path).expect("the committed weights");
        let net = Network::upload(&ctx, &weights).expect("upload");
        (ctx, net)
    })
}

fn plan_err(settings: &Settings, content: (u32, u32), styles: &[(u32, u32)]) -> String {
    let ones = vec![1.0; styles.len()];
    match Plan::for_images(settings, content, styles, &ones, REQUIRED_LAYERS) {
        Ok(p) => panic!("planned {}x{} for {content:?}", p.width, p.height),
        Err(e) => e.0,
    }
}

fn pattern(w: u32, h: u32, phase: f32) -> Image {
    let mut rgb = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            rgb.extend([0.5 + 0.4 * (7.0 * fx + phase).sin(), 0.5 + 0.4 * (5.0 * fy).cos(), 0.5 + 0.3 * (9.0 * (fx - fy)).sin()]);
        }
    }
    Image { width: w, height: h, rgb }
}

#[test]
fn the_layer_table_is_the_one_source_of_names_and_sides() {
    assert_eq!(CONVS.len(), 16);
    assert_eq!(VGG19.iter().filter(|op| matches!(op, LayerOp::Conv(_))).count(), 16);
    for c in &CONVS {
        assert_eq!(c.relu.replacen("relu", "conv", 1), c.conv, "the names of one conv agree");
        assert_eq!(model::conv_of(c.relu).unwrap().conv, c.conv);
        let op = model::layer_index(c.relu).unwrap();
        assert!(matches!(VGG19[op], LayerOp::Conv(x) if x == *c));
    }
    assert_eq!(model::relu_layer_names().len(), 16);
    assert_eq!(model::layer_index("relu4_2"), Some(12));
    assert_eq!(model::layer_index("conv4_2"), None);
    assert_eq!(plan::committed_depth(), 17, "conv1_1..conv5_1 cover 17 ops");
    assert_eq!(plan::depth_for_convs(16), 20);
    assert_eq!(plan::depth_for_convs(0), 0);
}

#[test]
fn images_too_small_for_the_deepest_layer_are_refused_not_panicked() {
    let s = Settings::default();
    // The cat photo (451x300) at sizes 16..23: its short side stays under relu5_1's 16 px.
    for size in 16..24 {
        let s = Settings { size, ..s.clone() };
        let e = plan_err(&s, (451, 300), &[(800, 600)]);
        assert!(e.contains("needs at least 16 px"), "size {size}: {e}");
    }
    // 60000x8 becomes 2048x1.
    let e = plan_err(&Settings { size: 2048, ..s.clone() }, (60000, 8), &[(800, 600)]);
    assert!(e.contains("2048×1") && e.contains("16 px"), "{e}");
    // A style image too elongated for relu5_1 at its style size.
    let e = plan_err(&Settings { size: 64, ..s.clone() }, (64, 64), &[(4000, 10)]);
    assert!(e.contains("a style image would be 64×1 px"), "{e}");
    // Shallow layers need less: relu1_x plans at 1 px.
    let shallow = Settings {
        size: 16,
        content_layers: parse_layers("relu1_1").unwrap(),
        style_layers: parse_layers("relu1_2").unwrap(),
        ..s.clone()
    };
    let p = Plan::for_images(&shallow, (60000, 8), &[(60000, 8)], &[1.0], REQUIRED_LAYERS).unwrap();
    assert_eq!((p.width, p.height, p.min_side), (16, 1, 1));
}

#[test]
fn style_size_is_bounded_before_anything_is_resized() {
    let s = Settings { size: 2048, style_scale: 8.0, ..Settings::default() };
    let e = plan_err(&s, (2048, 2048), &[(1000, 800)]);
    assert!(e.contains("16384 px") && e.contains("8192"), "{e}");
    let p = Plan::for_images(&Settings { size: 512, style_scale: 8.0, ..Settings::default() }, (512, 512), &[(1000, 800)], &[1.0], 13)
        .unwrap();
    assert_eq!((p.styles[0].width, p.styles[0].height), (4096, 3277), "style at 8 × 512");
    assert!(p.style_setup_bytes() > 0 && p.total_bytes() >= p.weight_bytes() + p.style_setup_bytes());
}

#[test]
fn layers_the_weights_lack_and_blend_mistakes_are_refused() {
    let s = Settings { style_layers: parse_layers("relu1_1,relu5_4").unwrap(), ..Settings::default() };
    let e = plan_err(&s, (100, 100), &[(100, 100)]);
    assert!(e.contains("relu5_4 needs conv5_4"), "{e}");
    let ok = Plan::for_images(&s, (100, 100), &[(100, 100)], &[1.0], 16).unwrap();
    assert_eq!(ok.layers.depth, 20);
    let s = Settings { style_blend: vec![1.0, 2.0], ..Settings::default() };
    assert!(plan_err(&s, (100, 100), &[(100, 100)]).contains("style_blend has 2 weights but 1 style images"));
    let zero = Plan::for_images(&Settings::default(), (100, 100), &[(90, 90), (80, 80)], &[0.0, 0.0], 13).unwrap_err();
    assert!(zero.0.contains("all 0"), "{zero}");
    let p = Plan::for_images(&Settings::default(), (100, 100), &[(90, 90), (80, 80)], &[1.0, 3.0], 13).unwrap();
    assert_eq!(p.styles.iter().map(|s| s.weight).collect::<Vec<_>>(), [0.25, 0.75]);
    let none = plan_err(&Settings::default(), (100, 100), &[]);
    assert!(none.contains("no style image"), "{none}");
}

#[test]
fn the_budget_refuses_with_the_figures() {
    // The page's hostile link: L-BFGS with 100 pairs at 2048 px needs about 10 GB.
    let s = Settings { size: 2048, optimizer: OptimizerChoice::Lbfgs, lbfgs_history: 100, lr: 1.0, ..Settings::default() };
    let p = Plan::for_images(&s, (2048, 2048), &[(2048, 2048)], &[1.0], 13).unwrap();
    assert!(p.total_bytes() > 9 << 30, "{}", p.total_bytes());
    let budget = Budget { max_buffer: 4 << 30, total: plan::DEFAULT_MEMORY_BUDGET };
    let e = p.check(&budget).unwrap_err().0;
    assert!(e.contains("more than the memory budget of 2048.0 MiB") && e.contains("--memory-budget"), "{e}");
    // The largest buffer against the binding limit.
    let e = p.check(&Budget { max_buffer: plan::WEBGPU_DEFAULT_MAX_BINDING, total: u64::MAX }).unwrap_err().0;
    assert!(e.contains("allows at most 128.0 MiB per buffer"), "{e}");
    // 256 px with the defaults fits both.
    let small = Plan::for_images(&Settings { size: 256, ..Settings::default() }, (256, 256), &[(256, 256)], &[1.0], 13).unwrap();
    small.check(&Budget { max_buffer: plan::WEBGPU_DEFAULT_MAX_BINDING, total: plan::DEFAULT_MEMORY_BUDGET }).unwrap();
}

#[test]
fn a_scale_that_does_not_fit_runs_in_the_largest_tile_that_fits() {
    let webgpu = Budget { max_buffer: plan::WEBGPU_DEFAULT_MAX_BINDING, total: plan::DEFAULT_MEMORY_BUDGET };
    let at = |size: u32| Plan::for_images(&Settings { size, ..Settings::default() }, (size, size), &[(512, 512)], &[1.0], 13).unwrap();
    // 512 px fits untiled: it stays untiled.
    let fitted = plan::fit_plans(vec![at(512)], None, &webgpu).unwrap();
    assert!(fitted[0].tiling.is_none() && fitted[0].check(&webgpu).is_ok());
    // 1536 px does not (a conv1 map alone is 576 MiB): tiled, it fits, in the largest tile that does.
    let big = at(1536);
    assert!(big.check(&webgpu).is_err());
    let fitted = plan::fit_plans(vec![big.clone()], None, &webgpu).unwrap().remove(0);
    fitted.check(&webgpu).unwrap();
    let tile = fitted.tiling.as_ref().expect("not tiled").grid.tile;
    assert!(plan::AUTO_TILES.contains(&(tile as u32)), "tile {tile}");
    for &larger in plan::AUTO_TILES.iter().filter(|&&t| t as usize > tile && t < 1536) {
        assert!(big.clone().tiled(larger as usize).unwrap().check(&webgpu).is_err(), "{larger} px tiles fit too, yet {tile} was chosen");
    }
    // A schedule: the small scales stay untiled, the large one is tiled.
    let schedule = plan::fit_plans(vec![at(256), at(512), at(1536)], None, &webgpu).unwrap();
    assert_eq!(schedule.iter().map(|p| p.tiling.is_some()).collect::<Vec<_>>(), [false, false, true]);
    // A budget no tile meets: the tiled plan that needs the least memory, whose refusal names it.
    let tiny = Budget { max_buffer: plan::WEBGPU_DEFAULT_MAX_BINDING, total: 64 << 20 };
    let kept = plan::fit_plans(vec![big.clone()], None, &tiny).unwrap().remove(0);
    let least = plan::AUTO_TILES.iter().filter_map(|&t| big.clone().tiled(t as usize).ok()).map(|p| p.total_bytes()).min().unwrap();
    assert_eq!((kept.tiling.is_some(), kept.total_bytes()), (true, least));
    let e = kept.check(&tiny).unwrap_err().0;
    assert!(e.contains("1536×1536") && e.contains("memory budget of 64.0 MiB"), "{e}");
    // A buffer limit no tile meets: the untiled plan, whose refusal names its largest buffer.
    let narrow = Budget { max_buffer: 1 << 20, total: plan::DEFAULT_MEMORY_BUDGET };
    let kept = plan::fit_plans(vec![big.clone()], None, &narrow).unwrap().remove(0);
    assert!(kept.tiling.is_none() && kept.check(&narrow).unwrap_err().0.contains("per buffer"));
    // A tile given is used as given, whether or not it is needed.
    let forced = plan::fit_plans(vec![at(512)], Some(128), &webgpu).unwrap();
    assert_eq!(forced[0].tiling.as_ref().map(|t| t.grid.tile), Some(128));
}

/// Issue 8's memory target: 4096×4096 (content and style) within 2 GiB and no buffer over WebGPU's
/// 128 MiB, the image, its gradient, Adam's moments and the content target in bands; a
/// coarse-to-fine run leaves out the earlier scales whose image would need bands.
#[test]
fn a_4096_px_run_fits_2_gib_with_no_buffer_over_128_mib() {
    let webgpu = Budget { max_buffer: plan::WEBGPU_DEFAULT_MAX_BINDING, total: plan::DEFAULT_MEMORY_BUDGET };
    let settings = Settings { size: 4096, ..Settings::default() };
    let plan = Plan::for_images(&settings, (4096, 4096), &[(4096, 4096)], &[1.0], 13).unwrap();
    let fitted = plan::fit_plans(vec![plan], None, &webgpu).unwrap().remove(0);
    fitted.check(&webgpu).unwrap();
    assert!(fitted.total_bytes() <= 2 << 30, "{} MiB", fitted.total_bytes() >> 20);
    assert!(fitted.largest_buffer_bytes() <= 128 << 20, "{} MiB", fitted.largest_buffer_bytes() >> 20);
    let bands = |label: &str| fitted.run_buffers().iter().filter(|b| b.label.starts_with(label)).count();
    assert_eq!((bands("x rows"), bands("adam m rows"), bands("content target rows")), (2, 2, 4));
    assert_eq!(fitted.styles[0].x.specs().len(), 2);
    // 8192 coarse to fine: the 5793 and 4096 px images would need bands to go to the next scale, so
    // fitting leaves those scales out and the run goes from 2896 px to 8192; unfitted, the schedule
    // is refused with the reason.
    let big = Settings { size: 8192, scales: stylize::settings::Scales::Auto, ..Settings::default() };
    let plans = plan::schedule_plans(&big, (8192, 8192), &[(8192, 8192)], &[1.0], 13).unwrap();
    let unlimited = Budget { total: u64::MAX, ..webgpu };
    let each_fitted: Vec<Plan> = plans.iter().map(|p| plan::fit_plans(vec![p.clone()], None, &unlimited).unwrap().remove(0)).collect();
    let e = plan::check_schedule(&each_fitted, &unlimited).unwrap_err().0;
    assert!(e.contains("--scales off"), "{e}");
    let fitted = plan::fit_plans(plans.clone(), None, &unlimited).unwrap();
    let sizes: Vec<u32> = fitted.iter().map(|p| p.settings.size).collect();
    assert_eq!(sizes[sizes.len() - 2..], [2896, 8192], "{sizes:?}");
    assert_eq!(fitted.len(), plans.len() - 2);
    plan::check_schedule(&fitted, &unlimited).unwrap();
}

#[test]
fn the_json_names_are_stable() {
    let p = Plan::for_images(&Settings { size: 128, ..Settings::default() }, (451, 300), &[(1000, 800)], &[1.0], 13).unwrap();
    let budget = Budget { max_buffer: plan::WEBGPU_DEFAULT_MAX_BINDING, total: plan::DEFAULT_MEMORY_BUDGET };
    let j = p.to_json(&budget);
    assert_eq!((j["width"].as_u64(), j["height"].as_u64()), (Some(128), Some(85)));
    assert_eq!(j["style_sizes"], serde_json::json!([[128, 102]]));
    assert_eq!(j["total_bytes"].as_u64(), Some(p.total_bytes()));
    assert_eq!(j["largest_buffer_bytes"].as_u64(), Some(p.largest_buffer_bytes()));
    assert_eq!(j["flops_per_step"].as_u64(), Some(p.flops_per_step));
    assert_eq!(j["fits"], serde_json::json!(true));
    let listed: u64 = j["buffers"].as_array().unwrap().iter().map(|b| b["bytes"].as_u64().unwrap()).sum();
    assert_eq!(listed, p.run_bytes());
    // FLOPs: the convs forward and backward, about 2 × 2·H·W·Cin·Cout·9 per conv.
    assert!(p.flops_per_step > 10_000_000_000 && p.flops_per_step < 20_000_000_000, "{}", p.flops_per_step);
}

/// plan == allocation: the run's storage buffers are exactly the plan's, for several settings.
#[test]
fn the_gpu_allocates_exactly_the_plan() {
    let (ctx, net) = committed_net();
    let cases = [
        Settings { size: 40, ..Settings::default() },
        Settings { size: 37, pooling: Pooling::Avg, optimizer: OptimizerChoice::Lbfgs, lr: 1.0, lbfgs_history: 3, ..Settings::default() },
        Settings {
            size: 29,
            content_layers: parse_layers("relu1_1,relu3_2").unwrap(),
            style_layers: parse_layers("relu1_1,relu2_1:0.5").unwrap(),
            tv_weight: 1.0,
            ..Settings::default()
        },
    ];
    // The last case again in tiles: the stack of the largest tile region plus the tiles' scratch.
    let tiled = cases[2].clone();
    for (s, tile) in cases.into_iter().map(|s| (s, None)).chain([(tiled, Some(16))]) {
        let content = pattern(61, 43, 0.0);
        let styles = [pattern(50, 70, 1.0), pattern(33, 33, 2.0)];
        let sizes: Vec<(u32, u32)> = styles.iter().map(|i| (i.width, i.height)).collect();
        let p = Plan::for_images(&s, (content.width, content.height), &sizes, &[1.0, 2.0], net.convs.len()).unwrap();
        let p = match tile {
            Some(t) => p.tiled(t).unwrap(),
            None => p,
        };
        let inputs = p.prepare(&content, &styles.iter().collect::<Vec<_>>(), None).unwrap();
        let st = pollster::block_on(Stylizer::from_plan(ctx.clone(), net, &p, &inputs)).unwrap();
        assert_eq!(st.allocated_bytes(), p.run_bytes(), "{s:?}");
        assert_eq!(net.weight_bytes(), p.weight_bytes());
        assert_eq!((st.width(), st.height()), (p.width, p.height));
    }
}

/// A non-finite objective stops the run on the last image whose objective was finite.
#[test]
fn a_diverging_run_stops_on_the_last_finite_image() {
    let (ctx, net) = committed_net();
    // The page's hostile link: the loss overflows f32 at step 1, and every pixel would turn black.
    let s = Settings {
        size: 32,
        content_weight: 1e38,
        content_layers: parse_layers("relu4_2:1e38").unwrap(),
        ..Settings::default()
    };
    let content = pattern(32, 24, 0.3);
    let mut st = pollster::block_on(Stylizer::new(ctx.clone(), net, &s, &content, &[(pattern(32, 32, 1.0), 1.0)], None)).unwrap();
    // Step 1 starts at the content image: its content loss is 0, so the objective is finite.
    st.step();
    let first = pollster::block_on(st.losses()).unwrap();
    st.check_finite(&first).unwrap();
    st.step();
    let losses = pollster::block_on(st.losses()).unwrap();
    assert!(!losses.total.is_finite(), "{losses:?}");
    let err = st.check_finite(&losses).unwrap_err();
    assert!(matches!(err, EngineError::Diverged { step: 2, .. }), "{err}");
    assert!(err.to_string().contains("too large") && err.to_string().contains("last step whose objective was finite"));
    // Step 2's start image x₂ gave the overflow: the image is x₁, the content.
    let image = pollster::block_on(st.image()).unwrap();
    assert_eq!(image.rgb, content.rgb, "back at the last image whose objective was finite");
    st.step();
    assert_eq!(st.steps_done(), 2, "a diverged run takes no more steps");
    assert!(st.check_finite(&losses).is_err());

    // A healthy run: the kept image follows x, and check_finite passes.
    let mut ok = pollster::block_on(Stylizer::new(ctx.clone(), net, &Settings { size: 32, ..Settings::default() }, &content, &[(pattern(32, 32, 1.0), 1.0)], None)).unwrap();
    for _ in 0..3 {
        ok.step();
        let l = pollster::block_on(ok.losses()).unwrap();
        ok.check_finite(&l).unwrap();
    }
    assert!(!ok.diverged());
}

/// Long runs: no GPU buffers or bind groups are created per step, and process memory stays flat.
/// Quick version here; `STYLIZE_LONG_STEPS=10000 cargo test --release --test plan -- --ignored` is the full one.
#[test]
fn steps_create_no_gpu_objects_and_memory_stays_flat() {
    long_run(150);
}

#[test]
#[ignore = "10 000 steps (about 20 minutes on lavapipe): run with --ignored"]
fn ten_thousand_steps_create_no_gpu_objects() {
    let steps = std::env::var("STYLIZE_LONG_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    long_run(steps);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn long_run(steps: u32) {
    // A context of its own: the other tests of this binary run at the same time on the shared one.
    let ctx = Arc::new(common::context());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WEIGHTS_FILE);
    let net = &Network::upload(&ctx, &Weights::load(&path).unwrap()).unwrap();
    let s = Settings { size: 32, ..Settings::default() };
    let mut st = pollster::block_on(Stylizer::new(ctx.clone(), net, &s, &pattern(32, 32, 0.0), &[(pattern(32, 32, 1.0), 1.0)], None)).unwrap();
    let warm = 20;
    for _ in 0..warm {
        st.step();
    }
    ctx.finish();
    let (buffers0, groups0) = ctx.objects_created();
    let rss0 = rss_kib();
    let mut reads = 0u64;
    for k in 0..steps {
        st.step();
        if k % 50 == 0 {
            let l = pollster::block_on(st.losses()).unwrap();
            st.check_finite(&l).unwrap();
            reads += 1;
        }
    }
    ctx.finish();
    let (buffers1, groups1) = ctx.objects_created();
    let rss1 = rss_kib();
    assert_eq!(groups1 - groups0, 0, "bind groups created during {steps} steps");
    assert_eq!(buffers1 - buffers0, reads, "only the readbacks' staging buffers are created (one per read)");
    eprintln!("{steps} steps: RSS {rss0} KiB -> {rss1} KiB, {reads} readbacks");
    assert!(rss1 < rss0 + 32 * 1024, "process memory grew from {rss0} KiB to {rss1} KiB over {steps} steps");
}

#[test]
fn prepare_resizes_to_the_plan() {
    let s = Settings { size: 48, style_scale: 0.5, ..Settings::default() };
    let content = pattern(96, 64, 0.0);
    let style = pattern(200, 100, 1.0);
    let p = Plan::for_images(&s, (96, 64), &[(200, 100)], &[1.0], 13);
    // 24×12 style: too small for relu5_1 (16 px).
    assert!(p.unwrap_err().0.contains("24×12"));
    let s = Settings { size: 48, ..Settings::default() };
    let p = Plan::for_images(&s, (96, 64), &[(200, 100)], &[1.0], 13).unwrap();
    let inputs = p.prepare(&content, &[&style], Some(&style)).unwrap();
    assert_eq!((inputs.content.width, inputs.content.height), (48, 32));
    assert_eq!((inputs.styles[0].0.width, inputs.styles[0].0.height), (48, 24));
    let init = inputs.init.unwrap();
    assert_eq!((init.width, init.height), (48, 32));
    assert_eq!(imageio::resize_to(&content, 48, 32).rgb, inputs.content.rgb);
}

#[test]
fn schedules_go_from_the_start_size_to_the_target() {
    use stylize::settings::Scales;
    let sizes = |s: &Settings, content: (u32, u32)| -> Vec<(u32, u32)> {
        plan::schedule(s, content, &[(800, 600)], 13).unwrap().iter().map(|x| (x.size, x.steps)).collect()
    };
    let base = Settings { size: 256, steps: 300, scale_steps: 50, scales: Scales::Off, min_size: 0, ..Settings::default() };
    // Off, and one scale, are the target alone.
    assert_eq!(sizes(&base, (451, 300)), [(256, 300)]);
    assert_eq!(sizes(&Settings { scales: Scales::Count(1), ..base.clone() }, (451, 300)), [(256, 300)]);
    // Auto: from the smallest size that reaches relu5_1 (451x300 at 24 px is 24x16), √2 apart.
    let auto = sizes(&Settings { scales: Scales::Auto, ..base.clone() }, (451, 300));
    assert_eq!(auto.first(), Some(&(24, 50)));
    assert_eq!(auto.last(), Some(&(256, 300)));
    for w in auto.windows(2) {
        let r = w[1].0 as f64 / w[0].0 as f64;
        assert!(w[1].0 > w[0].0 && r <= 1.45, "{auto:?}");
    }
    // N scales from min_size, geometric, odd sizes included.
    let three = sizes(&Settings { scales: Scales::Count(3), min_size: 64, size: 257, ..base.clone() }, (451, 300));
    assert_eq!(three, [(64, 50), (128, 50), (257, 300)]);
    // A min size at or above the target: one scale.
    assert_eq!(sizes(&Settings { scales: Scales::Auto, min_size: 300, ..base.clone() }, (451, 300)), [(256, 300)]);
    // A min size too small for the deepest layer is raised to the smallest that fits.
    assert_eq!(sizes(&Settings { scales: Scales::Auto, min_size: 16, ..base.clone() }, (451, 300)).first(), Some(&(24, 50)));
    // The defaults: from 128 px, √2 apart, 100 steps each, then 150 at the target; a long thin
    // image starts where its short side reaches the deepest layer (16 px).
    let defaults = Settings { size: 256, ..Settings::default() };
    assert_eq!(sizes(&defaults, (451, 300)), [(128, 100), (181, 100), (256, 150)]);
    let thin = sizes(&Settings { size: 512, ..defaults }, (2000, 200));
    assert!(thin.len() >= 2 && thin[0].0 > 128 && (thin[0].0 as f64 / 10.0).round() >= 16.0, "{thin:?}");
    // The target's own refusal comes first.
    assert!(plan::schedule(&Settings { scales: Scales::Auto, size: 20, ..base }, (451, 300), &[(800, 600)], 13).is_err());
}

#[test]
fn a_schedule_peaks_at_its_largest_scale() {
    use stylize::settings::Scales;
    let s = Settings { size: 512, scales: Scales::Auto, ..Settings::default() };
    let plans = plan::schedule_plans(&s, (512, 512), &[(512, 512)], &[1.0], 13).unwrap();
    let last = plans.last().unwrap();
    assert_eq!(plan::schedule_peak_bytes(&plans), plan::scale_peak_bytes(&plans, plans.len() - 1));
    assert_eq!(plan::schedule_peak_bytes(&plans), last.total_bytes() + plans[plans.len() - 2].image.x.bytes());
    let budget = Budget { max_buffer: 1 << 30, total: last.total_bytes() };
    let e = plan::check_schedule(&plans, &budget).unwrap_err();
    assert!(e.0.contains("more than the memory budget"), "{e}");
}

#[test]
fn a_scale_starts_from_the_previous_image_upsampled() {
    let (ctx, net) = committed_net();
    let s = Settings { size: 48, ..Settings::default() };
    let small = pattern(24, 17, 0.7);
    let coarse = pollster::block_on(Stylizer::new(ctx.clone(), net, &Settings { size: 24, ..s.clone() }, &small, &[(pattern(24, 24, 1.0), 1.0)], None)).unwrap();
    let previous = coarse.copy_image();
    drop(coarse);
    let mut fine = pollster::block_on(Stylizer::new(ctx.clone(), net, &s, &pattern(48, 34, 0.0), &[(pattern(48, 48, 1.0), 1.0)], None)).unwrap();
    fine.start_from(net, &previous, (24, 17));
    let got = pollster::block_on(fine.image()).unwrap();
    let want = stylize::kernels::resize::upsample_cpu(&small.rgb, (24, 17), (48, 34));
    let worst = got.rgb.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "{worst}");
}
