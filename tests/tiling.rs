//! Exact tiled steps (src/tiling.rs) against untiled ones on lavapipe: the same objective within
//! 1e-5 relative and the same dL/dx within 1e-4 relative L2, at sizes and layer sets where the tile
//! regions really are cut (halos smaller than the image), and at odd sizes.

use std::sync::Arc;
use stylize::engine::{Network, Stylizer};
use stylize::gpu::GpuContext;
use stylize::imageio::{self, Image};
use stylize::plan::Plan;
use stylize::settings::{ColourMode, LayerWeight, OptimizerChoice, Pooling, Settings};
use stylize::weights::Weights;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared");

fn fixture() -> &'static (Arc<GpuContext>, Network) {
    static FIXTURE: std::sync::OnceLock<(Arc<GpuContext>, Network)> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ctx = Arc::new(stylize::gpu::native_context().expect("a GPU adapter (lavapipe in CI)"));
        let weights = Weights::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/weights/vgg19.q8.bin"))).expect("weights");
        let net = Network::upload(&ctx, &weights).expect("upload");
        (ctx, net)
    })
}

fn image(path: &str, w: u32, h: u32) -> Image {
    let full = imageio::load(std::path::Path::new(&format!("{SHARED}/images/{path}"))).expect("test image");
    imageio::resize_to(&full, w, h)
}

fn layers(spec: &[(&str, f32)]) -> Vec<LayerWeight> {
    spec.iter().map(|(l, w)| LayerWeight { layer: l.to_string(), weight: *w }).collect()
}

/// How a run is laid out: untiled, in tiles of N px, or in tiles with its full-size tensors in bands
/// of at most so many bytes.
#[derive(Clone, Copy, Debug)]
enum Layout {
    Untiled,
    Tiled(usize),
    Banded(usize, u64),
}

/// A run at exactly these images' sizes, tiled with `tile` px tiles or not.
fn stylizer(settings: &Settings, content: &Image, style: &Image, start: &Image, tile: Option<usize>) -> Stylizer {
    laid_out(settings, content, style, start, tile.map_or(Layout::Untiled, Layout::Tiled))
}

fn laid_out(settings: &Settings, content: &Image, style: &Image, start: &Image, layout: Layout) -> Stylizer {
    let (ctx, net) = fixture();
    let plan = Plan::at_sizes(settings, (content.width, content.height), &[(style.width, style.height)], &[1.0], net.convs.len()).unwrap();
    let plan = match layout {
        Layout::Untiled => plan,
        Layout::Tiled(t) => plan.tiled(t).unwrap(),
        Layout::Banded(t, bytes) => {
            let plan = plan.tiled_in_bands(t, bytes).unwrap();
            assert!(plan.image.x.specs().len() > 2 && plan.objective.content.iter().all(|c| c.specs().len() > 2), "few bands prove little");
            plan
        }
    };
    if let Some(t) = &plan.tiling {
        assert!(t.grid.tiles.len() > 1, "one tile proves nothing");
    }
    let inputs = plan.prepare(content, &[style], Some(start)).unwrap();
    pollster::block_on(Stylizer::from_plan(ctx.clone(), net, &plan, &inputs)).expect("stylizer")
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

/// The objective's terms and dL/dx, tiled against untiled.
fn check(settings: &Settings, size: (u32, u32), tile: usize) {
    check_layout(settings, size, Layout::Tiled(tile));
}

/// The objective's terms and dL/dx, laid out as `layout` against untiled.
fn check_layout(settings: &Settings, (w, h): (u32, u32), layout: Layout) {
    let content = image("content/chelsea.png", w, h);
    let style = image("style/starry_night.jpg", w - 3, h + 2);
    let start = image("content/coffee.png", w, h);
    let mut grads = Vec::new();
    let mut losses = Vec::new();
    for l in [Layout::Untiled, layout] {
        let mut s = laid_out(settings, &content, &style, &start, l);
        grads.push(pollster::block_on(s.gradient()).unwrap());
        losses.push(pollster::block_on(s.losses()).unwrap());
    }
    let (a, b) = (losses[0], losses[1]);
    for (name, u, t) in [("content", a.content, b.content), ("style", a.style, b.style), ("tv", a.tv, b.tv), ("total", a.total, b.total)] {
        if u == 0.0 {
            assert_eq!(t, 0.0, "{name}: untiled 0, tiled {t:e}");
        } else {
            assert!(rel(t, u) < 1e-5, "{w}×{h}, {layout:?}: {name} tiled {t:e}, untiled {u:e} ({:e})", rel(t, u));
        }
    }
    let diff: f64 = grads[0].iter().zip(&grads[1]).map(|(u, t)| (*u as f64 - *t as f64).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = grads[0].iter().map(|u| (*u as f64).powi(2)).sum::<f64>().sqrt();
    assert!(norm > 0.0, "a zero gradient proves nothing");
    assert!(diff / norm < 1e-4, "{w}×{h}, {layout:?}: dL/dx relative L2 {:e}", diff / norm);
}

/// Shallow layers, so that the halos (relu3_1: 10 px, 32 px for the gradient) cut the regions.
fn shallow() -> Settings {
    Settings {
        content_weight: 5.0,
        style_weight: 100.0,
        tv_weight: 0.5,
        content_layers: layers(&[("relu2_2", 1.0)]),
        style_layers: layers(&[("relu1_1", 1.0), ("relu2_1", 1.0), ("relu3_1", 1.0)]),
        ..Settings::default()
    }
}

#[test]
fn tiled_equals_untiled_where_the_halos_cut_the_regions() {
    check(&shallow(), (96, 80), 32);
    check(&shallow(), (61, 47), 16);
}

#[test]
fn tiled_equals_untiled_with_avg_pooling_and_luminance_only() {
    let mut s = shallow();
    s.pooling = Pooling::Avg;
    check(&s, (83, 61), 32);
    let mut s = shallow();
    s.colour = ColourMode::Luminance;
    check(&s, (83, 61), 32);
}

#[test]
fn tiled_equals_untiled_for_each_term_alone() {
    for (alpha, beta, gamma) in [(5.0, 0.0, 0.0), (0.0, 100.0, 0.0), (0.0, 0.0, 1.0)] {
        let s = Settings { content_weight: alpha, style_weight: beta, tv_weight: gamma, ..shallow() };
        check(&s, (64, 45), 32);
    }
}

#[test]
fn tiled_equals_untiled_with_the_default_layers_and_without_relu5_1() {
    // The default layers (relu4_2; relu1_1..relu5_1) at an odd size: the Grams summed over tiles.
    check(&Settings { tv_weight: 0.5, ..Settings::default() }, (48, 40), 32);
    // A custom set without relu5_1 (its halos and pooling grid come from relu3_3's).
    let s = Settings {
        content_layers: layers(&[("relu3_2", 1.0)]),
        style_layers: layers(&[("relu1_2", 1.0), ("relu2_2", 0.5), ("relu3_3", 2.0)]),
        ..shallow()
    };
    check(&s, (96, 80), 32);
}

#[test]
fn five_tiled_adam_and_lbfgs_steps_follow_the_untiled_ones() {
    let content = image("content/chelsea.png", 61, 47);
    let style = image("style/starry_night.jpg", 58, 49);
    for (optimizer, lr) in [(OptimizerChoice::Adam, 0.02), (OptimizerChoice::Lbfgs, 1.0)] {
        let s = Settings { optimizer, lr, ..shallow() };
        let mut runs = Vec::new();
        for t in [None, Some(32)] {
            let mut st = stylizer(&s, &content, &style, &content, t);
            for _ in 0..5 {
                st.step();
            }
            st.evaluate();
            runs.push((pollster::block_on(st.losses()).unwrap().total, pollster::block_on(st.image()).unwrap()));
        }
        assert!(rel(runs[1].0, runs[0].0) < 1e-4, "{optimizer:?}: after 5 steps tiled {:e}, untiled {:e}", runs[1].0, runs[0].0);
        let worst = runs[0].1.rgb.iter().zip(&runs[1].1.rgb).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "{optimizer:?}: images differ by {worst} after 5 steps");
    }
}

/// A tiled step is one submission per tile and pass, and says how far it got: every pass done once
/// the GPU has finished the step; an untiled run has no tile progress.
#[test]
fn a_tiled_step_reports_its_tile_passes() {
    let (ctx, _) = fixture();
    let settings = shallow();
    let content = image("content/chelsea.png", 96, 80);
    let style = image("style/starry_night.jpg", 90, 80);
    let mut tiled = stylizer(&settings, &content, &style, &content, Some(32));
    tiled.step();
    ctx.finish();
    tiled.poll();
    let p = tiled.tile_progress().expect("a tiled run reports its tiles");
    assert_eq!((p.tiles, p.done, p.parts()), (9, 18, 18));
    assert_eq!(p.describe(), "tile 9 of 9, pass 2 of 2");
    let mut untiled = stylizer(&settings, &content, &style, &content, None);
    untiled.step();
    assert_eq!(untiled.tile_progress(), None);
}

/// Bands of x this many rows tall at this width (the content target's rows are wider: one row each).
fn rows_of_x(rows: usize, width: u32) -> u64 {
    (rows * width as usize * 3 * 4) as u64
}

/// The full-size tensors in bands (the image, dL/dx, Adam's moments and the last finite image in 7
/// rows each, the content target and the style image in bands too): the same objective and
/// gradient, the same 5 Adam steps, the same colour modes, and the same start from a smaller scale.
#[test]
fn full_size_tensors_in_bands_give_the_untiled_run() {
    check_layout(&shallow(), (96, 80), Layout::Banded(32, rows_of_x(7, 96)));
    let luminance = Settings { colour: ColourMode::Luminance, ..shallow() };
    check_layout(&luminance, (83, 61), Layout::Banded(32, rows_of_x(5, 83)));
    check_layout(&Settings { tv_weight: 0.5, ..Settings::default() }, (48, 40), Layout::Banded(32, rows_of_x(3, 48)));

    let (w, h) = (61, 47);
    let content = image("content/chelsea.png", w, h);
    let style = image("style/starry_night.jpg", 58, 49);
    let small = image("content/coffee.png", 40, 31);
    let (ctx, net) = fixture();
    let previous = ctx.storage_buffer_init("previous", bytemuck::cast_slice(&small.rgb));
    for colour in [ColourMode::KeepStyle, ColourMode::LumaSwap] {
        let s = Settings { colour, ..shallow() };
        let mut runs = Vec::new();
        for layout in [Layout::Untiled, Layout::Banded(32, rows_of_x(4, w))] {
            let mut st = laid_out(&s, &content, &style, &content, layout);
            st.start_from(net, &previous, (40, 31));
            let started = pollster::block_on(st.image()).unwrap();
            for _ in 0..5 {
                st.step();
            }
            st.apply_colour(net, &s, &content).unwrap();
            st.evaluate();
            runs.push((started, pollster::block_on(st.losses()).unwrap().total, pollster::block_on(st.image()).unwrap()));
        }
        assert_eq!(runs[0].0.rgb, runs[1].0.rgb, "{colour:?}: the upsampled start differs in bands");
        assert!(rel(runs[1].1, runs[0].1) < 1e-4, "{colour:?}: after 5 steps banded {:e}, untiled {:e}", runs[1].1, runs[0].1);
        let worst = runs[0].2.rgb.iter().zip(&runs[1].2.rgb).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "{colour:?}: images differ by {worst} after 5 steps");
    }
}

/// L-BFGS keeps many full-size images and runs only on one band: a run that would need bands says so.
#[test]
fn lbfgs_in_bands_is_refused_with_the_reason() {
    let (_, net) = fixture();
    let s = Settings { optimizer: OptimizerChoice::Lbfgs, lr: 1.0, ..shallow() };
    let plan = Plan::at_sizes(&s, (61, 47), &[(58, 49)], &[1.0], net.convs.len()).unwrap();
    let err = plan.clone().tiled_in_bands(32, rows_of_x(4, 61)).unwrap_err().0;
    assert!(err.contains("L-BFGS") && err.contains("use Adam"), "{err}");
    // In one band it runs.
    assert_eq!(plan.tiled(32).unwrap().image.x.specs().len(), 1);
}
