//! A run as a list of plans: the coarse-to-fine schedule (one [`Plan`] per scale), each fitted to the
//! memory budget (tiled where it must be), with the schedule's peak memory and its JSON form
//! (`stylize plan`, the page's `st.plan`).

use super::{refuse, Budget, Plan, PlanError};
use crate::settings::{self, Settings};

/// One scale of a coarse-to-fine run: the output's longest side and the steps taken there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    pub size: u32,
    pub steps: u32,
}

/// The scales of a run, from the start size up to `settings.size` (the last one runs `settings.steps`,
/// the others `settings.scale_steps` each). The start size is `settings.min_size`, raised to the
/// smallest longest side at which the run can be planned (each image reaching the deepest layer: a
/// long thin image needs more than 128 px). `Scales::Auto`
/// puts scales √2 apart; `Scales::Count(n)` spaces n scales geometrically; `Scales::Off` is one scale.
pub fn schedule(settings: &Settings, content: (u32, u32), styles: &[(u32, u32)], weight_convs: usize) -> Result<Vec<Scale>, PlanError> {
    use crate::settings::Scales;
    let target = settings.size;
    let last = Scale { size: target, steps: settings.steps };
    if settings.scales == Scales::Off || settings.scales == Scales::Count(1) {
        return Ok(vec![last]);
    }
    let ones = vec![1.0; styles.len()];
    let fits = |size: u32| Plan::for_images(&Settings { size, ..settings.clone() }, content, styles, &ones, weight_convs).is_ok();
    // The target itself must be plannable; its error is the one to show.
    Plan::for_images(settings, content, styles, &ones, weight_convs)?;
    let start = if settings.min_size > 0 && fits(settings.min_size) {
        settings.min_size
    } else {
        // Fitting grows with the size: the smallest size that fits (above min_size), by bisection.
        let (mut lo, mut hi) = (settings.min_size.clamp(settings::SIZE_RANGE.0, target), target);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    };
    if start >= target {
        return Ok(vec![last]);
    }
    let sizes: Vec<u32> = match settings.scales {
        Scales::Count(n) => (0..n)
            .map(|i| (start as f64 * (target as f64 / start as f64).powf(i as f64 / (n - 1) as f64)).round() as u32)
            .collect(),
        _ => {
            let mut sizes = Vec::new();
            let mut k = 0;
            loop {
                let s = (start as f64 * std::f64::consts::SQRT_2.powi(k)).round() as u32;
                if s >= target {
                    break;
                }
                sizes.push(s);
                k += 1;
            }
            sizes.push(target);
            sizes
        }
    };
    let mut out: Vec<Scale> = Vec::new();
    for size in sizes {
        if out.last().is_some_and(|s| s.size >= size) {
            continue;
        }
        out.push(Scale { size, steps: settings.scale_steps });
    }
    if let Some(l) = out.last_mut() {
        *l = last;
    }
    Ok(out)
}

/// The plan of every scale of [`schedule`], coarse to fine (the page's per-style weights are not
/// needed for sizes and bytes: each style counts with weight 1).
pub fn schedule_plans(
    settings: &Settings,
    content: (u32, u32),
    styles: &[(u32, u32)],
    style_weights: &[f32],
    weight_convs: usize,
) -> Result<Vec<Plan>, PlanError> {
    schedule(settings, content, styles, weight_convs)?
        .iter()
        .map(|s| Plan::for_images(&Settings { size: s.size, steps: s.steps, ..settings.clone() }, content, styles, style_weights, weight_convs))
        .collect()
}

/// Each plan of a schedule run in tiles of `tile` px ([`Plan::tiled`]) when its image is larger than
/// one tile; smaller scales stay untiled. `None` leaves every plan untiled.
pub fn tile_plans(plans: Vec<Plan>, tile: Option<u32>) -> Result<Vec<Plan>, PlanError> {
    let Some(tile) = tile else { return Ok(plans) };
    if tile == 0 || !tile.is_multiple_of(16) || tile > settings::SIZE_RANGE.1 {
        return refuse(format!("expected a multiple of 16 from 16 to {}, got {tile}", settings::SIZE_RANGE.1));
    }
    plans.into_iter().map(|p| if p.width.max(p.height) > tile { p.tiled(tile as usize) } else { Ok(p) }).collect()
}

/// Tile sides tried, largest first, when a scale does not fit untiled: multiples of the 16 px pooling
/// grid. Larger tiles spend less work on halos, so the largest that fits wins.
pub const AUTO_TILES: [u32; 7] = [1024, 768, 512, 384, 256, 192, 128];

/// Each plan of a schedule tiled as the run needs it: in `tile` px tiles when one is given (`--tile`,
/// [`tile_plans`]); else only the plans that do not fit `budget` untiled, each in the largest of
/// [`AUTO_TILES`] with which it fits. A plan that fits in none is the tiled one with the least memory
/// whose buffers the GPU takes, else the untiled one, so that its refusal names
/// its own figures.
pub fn fit_plans(plans: Vec<Plan>, tile: Option<u32>, budget: &Budget) -> Result<Vec<Plan>, PlanError> {
    // Each scale's image goes to the next in one buffer ([`check_schedule`]): an earlier scale too
    // large for one is left out, and the run upsamples from the largest that fits.
    let last = plans.len().saturating_sub(1);
    let plans: Vec<Plan> =
        plans.into_iter().enumerate().filter(|(i, p)| *i == last || p.image.x.bytes() <= budget.max_buffer).map(|(_, p)| p).collect();
    if tile.is_some() {
        return tile_plans(plans, tile);
    }
    plans.into_iter().map(|p| fit_plan(p, budget)).collect()
}

fn fit_plan(plan: Plan, budget: &Budget) -> Result<Plan, PlanError> {
    if plan.tiling.is_some() || plan.check(budget).is_ok() {
        return Ok(plan);
    }
    let side = plan.width.max(plan.height);
    let (tiled, refused): (Vec<_>, Vec<_>) =
        AUTO_TILES.iter().filter(|&&t| t < side).map(|&t| plan.clone().tiled(t as usize)).partition(|p| p.is_ok());
    let tiled: Vec<Plan> = tiled.into_iter().flatten().collect();
    if let Some(fits) = tiled.iter().find(|p| p.check(budget).is_ok()) {
        return Ok(fits.clone());
    }
    // No tile can run these settings at all (L-BFGS in bands): that is the reason to give.
    if tiled.is_empty() {
        if let Some(Err(e)) = refused.into_iter().next() {
            return Err(e);
        }
    }
    // None fits: the one whose buffers the GPU takes and that needs the least memory, so that the
    // refusal names the memory it would take in tiles (else the untiled plan's own figures).
    Ok(tiled.into_iter().filter(|p| p.check_buffers(budget).is_ok()).min_by_key(|p| p.total_bytes()).unwrap_or(plan))
}

/// A schedule as `stylize plan` prints it (and the page's `st.plan` returns): the last scale's plan,
/// plus `schedule` (each scale's size, width, height, steps, peak bytes and FLOPs per step),
/// `total_steps`, and `total_bytes`, `fits` and `refusal` covering every scale.
pub fn schedule_json(plans: &[Plan], budget: &Budget) -> serde_json::Value {
    let Some(last) = plans.last() else { return serde_json::Value::Null };
    let mut json = last.to_json(budget);
    let schedule: Vec<serde_json::Value> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({
                "size": p.settings.size, "width": p.width, "height": p.height, "steps": p.settings.steps,
                "total_bytes": scale_peak_bytes(plans, i), "flops_per_step": p.flops_per_step,
            })
        })
        .collect();
    let refusal = check_schedule(plans, budget).err().map(|e| e.0);
    json["schedule"] = schedule.into();
    json["total_steps"] = plans.iter().map(|p| p.settings.steps as u64).sum::<u64>().into();
    json["total_bytes"] = schedule_peak_bytes(plans).into();
    json["fits"] = refusal.is_none().into();
    json["refusal"] = refusal.into();
    json
}

/// The bytes a scale needs at its peak: its plan, plus the previous scale's image it starts from.
pub fn scale_peak_bytes(plans: &[Plan], index: usize) -> u64 {
    let carried = index.checked_sub(1).map_or(0, |p| plans[p].image.x.bytes());
    plans[index].total_bytes() + carried
}

/// The peak GPU memory of a coarse-to-fine run: the largest scale's (the last, in practice).
pub fn schedule_peak_bytes(plans: &[Plan]) -> u64 {
    (0..plans.len()).map(|i| scale_peak_bytes(plans, i)).max().unwrap_or(0)
}

/// Refuses a schedule any of whose scales the device cannot hold.
pub fn check_schedule(plans: &[Plan], budget: &Budget) -> Result<(), PlanError> {
    for (i, plan) in plans.iter().enumerate() {
        plan.check_buffers(budget)?;
        // The next scale starts from this one's image, upsampled from one buffer.
        let carried = plan.image.x.bytes();
        if i + 1 < plans.len() && carried > budget.max_buffer {
            return refuse(format!(
                "a coarse-to-fine run carries each scale's image to the next in one buffer, and the {}×{} scale's is {:.1} MiB, \
                 over this GPU's {:.1} MiB per buffer: run this size without scales (--scales off)",
                plan.width,
                plan.height,
                carried as f64 / 1048576.0,
                budget.max_buffer as f64 / 1048576.0
            ));
        }
        let peak = scale_peak_bytes(plans, i);
        if peak > budget.total {
            return refuse(format!(
                "{}×{} needs {:.1} MiB of GPU memory, more than the memory budget of {:.1} MiB: choose a smaller size \
                 (or a shorter L-BFGS history), or raise the budget (--memory-budget, or the page's advanced settings)",
                plan.width,
                plan.height,
                peak as f64 / 1048576.0,
                budget.total as f64 / 1048576.0
            ));
        }
    }
    Ok(())
}
